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
    /// The device's `key`: QueryChangedDiskAreas names the disk by it.
    pub device_key: Option<i32>,
    /// `backing.changeId`: the disk's changed block tracking state at the snapshot, set
    /// only while the VM's changeTrackingEnabled is on.
    pub change_id: Option<String>,
    /// `capacityInBytes` (or `capacityInKB`): how far the disk's changes reach.
    pub capacity: Option<u64>,
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
    /// `changeTrackingEnabled`: whether the server tracks changed blocks of the disks.
    pub change_tracking: bool,
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
        change_tracking: config.text_of("changeTrackingEnabled").map(str::trim) == Some("true"),
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
            device_key: d.text_of("key").and_then(|k| k.trim().parse().ok()),
            change_id: backing
                .text_of("changeId")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            capacity: d
                .text_of("capacityInBytes")
                .and_then(|b| b.trim().parse().ok())
                .filter(|&b: &u64| b > 0)
                .or_else(|| {
                    d.text_of("capacityInKB")
                        .and_then(|k| k.trim().parse::<u64>().ok())
                        .map(|k| k * 1024)
                }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_change_tracking_and_each_disks_change_id() {
        let doc = r#"<config xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <name>vm</name><changeTrackingEnabled>true</changeTrackingEnabled><hardware>
            <device xsi:type="VirtualLsiLogicController"><key>1000</key><busNumber>0</busNumber></device>
            <device xsi:type="VirtualDisk"><key>2000</key><capacityInKB>1024</capacityInKB>
              <capacityInBytes>1048576</capacityInBytes>
              <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] vm/vm.vmdk</fileName>
              <changeId>52 aa bb cc dd ee ff 00-11 22 33 44 55 66 77 88/3</changeId></backing>
              <controllerKey>1000</controllerKey><unitNumber>0</unitNumber></device>
            <device xsi:type="VirtualDisk"><key>2001</key><capacityInKB>64</capacityInKB>
              <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] vm/b.vmdk</fileName></backing>
              <controllerKey>1000</controllerKey><unitNumber>1</unitNumber></device>
            </hardware></config>"#;
        let cfg = parse(&super::super::soap::parse(doc).unwrap());
        assert!(cfg.change_tracking);
        let d = &cfg.disks;
        assert_eq!(d[0].device_key, Some(2000));
        assert_eq!(
            d[0].change_id.as_deref(),
            Some("52 aa bb cc dd ee ff 00-11 22 33 44 55 66 77 88/3")
        );
        assert_eq!(d[0].capacity, Some(1 << 20));
        assert_eq!(
            (d[1].device_key, d[1].change_id.as_deref()),
            (Some(2001), None)
        );
        assert_eq!(d[1].capacity, Some(64 << 10), "capacityInKB when no bytes");
        let off = parse(&super::super::soap::parse("<config><name>x</name></config>").unwrap());
        assert!(!off.change_tracking);
    }
}
