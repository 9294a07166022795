//! Reading a snapshot's VirtualMachineConfigInfo: the disks as frozen (the chain heads
//! at snapshot time and their `backing.parent` links) in .vmx controller order, and a
//! .vmx synthesized from the same config so the tree's config matches the frozen disks.

use super::soap::Element;

#[derive(Debug, Clone)]
pub struct DiskCfg {
    /// "scsi0:1", as a .vmx names the slot.
    pub key: String,
    /// The chain head, `[ds] folder/file.vmdk`.
    pub file: String,
    /// Head first, then each `backing.parent` file.
    pub chain: Vec<String>,
    /// The head's datastore moref value, which names the VM's datacenter.
    pub datastore: Option<String>,
    sort: (usize, u32, u32),
}

#[derive(Debug, Clone, Default)]
pub struct Controller {
    pub bus: &'static str,
    pub number: u32,
    pub virtual_dev: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct VmConfig {
    pub name: String,
    pub guest_id: String,
    pub version: String,
    pub num_cpu: String,
    pub memory_mb: String,
    pub vmx_path: Option<String>,
    pub controllers: Vec<Controller>,
    pub disks: Vec<DiskCfg>,
}

const BUS_ORDER: [&str; 4] = ["scsi", "sata", "ide", "nvme"];

fn controller_of(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        "VirtualLsiLogicController" => ("scsi", Some("lsilogic")),
        "VirtualLsiLogicSASController" => ("scsi", Some("lsisas1068")),
        "ParaVirtualSCSIController" => ("scsi", Some("pvscsi")),
        "VirtualBusLogicController" => ("scsi", Some("buslogic")),
        "VirtualAHCIController" => ("sata", None),
        "VirtualIDEController" => ("ide", None),
        "VirtualNVMEController" => ("nvme", None),
        k if k.ends_with("SCSIController") => ("scsi", None),
        _ => return None,
    })
}

pub fn parse(config: &Element) -> VmConfig {
    let t = |p: &str| config.text_of(p).unwrap_or("").to_owned();
    let mut out = VmConfig {
        name: t("name"),
        guest_id: t("guestId"),
        version: t("version"),
        num_cpu: t("hardware/numCPU"),
        memory_mb: t("hardware/memoryMB"),
        vmx_path: config.text_of("files/vmPathName").map(str::to_owned),
        ..VmConfig::default()
    };
    let devices: Vec<&Element> = config
        .path("hardware")
        .map(|h| h.children_named("device").collect())
        .unwrap_or_default();
    let mut ctl = std::collections::HashMap::new();
    for d in &devices {
        let Some((bus, dev)) = d.xsi_type().and_then(controller_of) else {
            continue;
        };
        let number: u32 = d
            .text_of("busNumber")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if let Some(key) = d.text_of("key") {
            ctl.insert(key.to_owned(), (bus, number));
        }
        out.controllers.push(Controller {
            bus,
            number,
            virtual_dev: dev,
        });
    }
    for d in &devices {
        if d.xsi_type() != Some("VirtualDisk") {
            continue;
        }
        let Some(backing) = d.child("backing") else {
            continue;
        };
        let Some(file) = backing.text_of("fileName").filter(|f| !f.is_empty()) else {
            continue;
        };
        let Some(&(bus, number)) = d.text_of("controllerKey").and_then(|k| ctl.get(k)) else {
            continue;
        };
        let unit: u32 = d
            .text_of("unitNumber")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut chain = vec![file.to_owned()];
        let mut b = backing;
        while let Some(p) = b.child("parent") {
            if let Some(f) = p.text_of("fileName") {
                chain.push(f.to_owned());
            }
            b = p;
        }
        let rank = BUS_ORDER.iter().position(|x| *x == bus).unwrap_or(0);
        out.disks.push(DiskCfg {
            key: format!("{bus}{number}:{unit}"),
            file: file.to_owned(),
            chain,
            datastore: backing.moref_of("datastore").map(|m| m.value),
            sort: (rank, number, unit),
        });
    }
    out.disks.sort_by_key(|d| d.sort);
    out.controllers
        .sort_by_key(|c| (BUS_ORDER.iter().position(|x| *x == c.bus), c.number));
    out
}

fn q(s: &str) -> String {
    s.replace('|', "|7C").replace('"', "|22")
}

/// A .vmx carrying the frozen hardware: enough to import the folder as a VM.
pub fn synthesize_vmx(cfg: &VmConfig, fallback_name: &str) -> String {
    let mut v = String::from(".encoding = \"UTF-8\"\nconfig.version = \"8\"\n");
    if let Some(hw) = cfg.version.strip_prefix("vmx-") {
        v.push_str(&format!("virtualHW.version = \"{}\"\n", q(hw)));
    }
    let name = if cfg.name.is_empty() {
        fallback_name
    } else {
        &cfg.name
    };
    v.push_str(&format!("displayName = \"{}\"\n", q(name)));
    if !cfg.guest_id.is_empty() {
        v.push_str(&format!("guestOS = \"{}\"\n", q(&cfg.guest_id)));
    }
    if !cfg.num_cpu.is_empty() {
        v.push_str(&format!("numvcpus = \"{}\"\n", q(&cfg.num_cpu)));
    }
    if !cfg.memory_mb.is_empty() {
        v.push_str(&format!("memsize = \"{}\"\n", q(&cfg.memory_mb)));
    }
    for c in &cfg.controllers {
        v.push_str(&format!("{}{}.present = \"TRUE\"\n", c.bus, c.number));
        if let Some(dev) = c.virtual_dev {
            v.push_str(&format!("{}{}.virtualDev = \"{dev}\"\n", c.bus, c.number));
        }
    }
    for d in &cfg.disks {
        let base = d.file.rsplit('/').next().unwrap_or(&d.file);
        v.push_str(&format!("{}.present = \"TRUE\"\n", d.key));
        v.push_str(&format!("{}.fileName = \"{}\"\n", d.key, q(base)));
    }
    v
}
