//! `vmsnapfs inspect`: what a mount would show, without mounting. It goes through the
//! same source and the same disk scan as a mount, so a vCenter/ESXi URL works too (its
//! VMs are frozen for the moment of the look, as a mount's first access would, and
//! thawed before the command ends).

use std::sync::Arc;

use serde::Serialize;

use crate::cache::{BlockCache, DEFAULT_CAPACITY};
use crate::options::{Opt, OptionError};
use crate::source::{self, Source, VmEntry};
use crate::sync::Relock;
use crate::vm::{FrozenVm, VolumeView};

#[derive(Serialize)]
pub struct Report {
    pub vms: Vec<VmReport>,
}

#[derive(Serialize)]
pub struct VmReport {
    pub name: String,
    pub path: String,
    pub vmx: Option<String>,
    pub disks: Vec<DiskReport>,
    /// LVM2 logical volumes assembled from the disks' physical volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_volumes: Vec<LvReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct LvReport {
    pub name: String,
    #[serde(flatten)]
    pub lvm: crate::vm::LvInfo,
    pub filesystem: Option<&'static str>,
}

#[derive(Serialize, Default)]
pub struct DiskReport {
    pub index: usize,
    pub file: String,
    pub capacity: u64,
    pub chain: Vec<String>,
    pub table: &'static str,
    pub filesystem: Option<&'static str>,
    pub partitions: Vec<PartitionReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct PartitionReport {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub type_id: String,
    pub type_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub filesystem: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    Source(#[source] std::io::Error),
    #[error("listing VMs: {0}")]
    List(#[source] std::io::Error),
    #[error(transparent)]
    Option(#[from] OptionError),
    /// Every disk or VM that could not be read, one line each; the report was still
    /// printed.
    #[error("{}", .0.join("\n"))]
    Disks(Vec<String>),
}

/// `options` are `-o` lists; only keys a source reads apply to inspect.
pub fn run(source: &str, options: &[String], json: bool) -> Result<(), InspectError> {
    let mut keys = Vec::new();
    for list in options {
        for opt in Opt::list(list) {
            if !source::accepts(opt.key) {
                return Err(OptionError::Unknown(opt.to_string()).into());
            }
            keys.push((opt.key.to_owned(), opt.value.map(str::to_owned)));
        }
    }
    let report = build(source, &keys)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_text(&report);
    }
    let errors: Vec<String> = report
        .vms
        .iter()
        .flat_map(|vm| {
            let disks = vm.disks.iter().filter_map(|d| d.error.clone());
            vm.error.clone().into_iter().chain(disks)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InspectError::Disks(errors))
    }
}

pub fn build(source: &str, keys: &source::SourceKeys) -> Result<Report, InspectError> {
    let src = source::open(source, keys, None).map_err(InspectError::Source)?;
    let entries = src.list().map_err(InspectError::List)?;
    // One cache for the whole run, as a mount would have; inspect reads only a few
    // sectors per disk, so a small one is plenty.
    let cache = BlockCache::new(DEFAULT_CAPACITY.min(16 << 20));
    let vms = entries
        .iter()
        .map(|entry| inspect_vm(src.as_ref(), entry, &cache))
        .collect();
    let (hits, misses) = cache.stats();
    tracing::debug!(hits, misses, "block cache");
    Ok(Report { vms })
}

fn inspect_vm(src: &dyn Source, entry: &VmEntry, cache: &Arc<BlockCache>) -> VmReport {
    let mut report = VmReport {
        name: entry.name.clone(),
        path: entry.location.clone(),
        vmx: None,
        disks: Vec::new(),
        logical_volumes: Vec::new(),
        error: None,
    };
    let frozen = match src.freeze(entry) {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(format!("{}: {e}", entry.name));
            return report;
        }
    };
    let vm = FrozenVm::build(frozen, cache);
    report.vmx = vm.vmx_name.clone();
    let errors = vm.errors.lock().relock().clone();
    // Chains are shown as the VM's folder names them: relative when inside it.
    let prefix = format!("{}/", entry.location);
    let relative = |f: &str| f.strip_prefix(&prefix).unwrap_or(f).to_owned();
    for (d, fd) in vm.disks.iter().zip(&vm.frozen.disks) {
        let volumes: Vec<&VolumeView> = vm
            .volumes
            .iter()
            .filter(|v| v.disk == Some(d.number))
            .collect();
        let whole = volumes.iter().find(|v| v.partition.is_none());
        let table_error = errors
            .iter()
            .find(|e| e.starts_with(&format!("disk{}: partition table: ", d.number)))
            .map(|e| format!("{}: {e}", relative(&fd.file)));
        report.disks.push(DiskReport {
            index: d.number,
            file: fd.file.clone(),
            capacity: d.size(),
            chain: fd.chain.iter().map(|c| relative(c)).collect(),
            table: d.table,
            filesystem: whole.and_then(|v| v.fs_kind),
            partitions: volumes
                .iter()
                .filter_map(|v| {
                    let p = v.partition.clone()?;
                    Some(PartitionReport {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        type_id: p.type_id,
                        type_name: p.type_name,
                        name: p.name,
                        filesystem: v.fs_kind,
                    })
                })
                .collect(),
            notes: fd.notes.clone(),
            error: table_error,
        });
    }
    for u in &vm.frozen.unserved {
        report.disks.push(DiskReport {
            index: u.index,
            file: u.file.clone(),
            table: "none",
            error: Some(u.why.clone()),
            ..Default::default()
        });
    }
    report.disks.sort_by_key(|d| d.index);
    report.logical_volumes = vm
        .volumes
        .iter()
        .filter_map(|v| {
            Some(LvReport {
                name: v.name.clone(),
                lvm: v.lvm.clone()?,
                filesystem: v.fs_kind,
            })
        })
        .collect();
    if let Err(e) = src.thaw(entry, &vm.frozen) {
        report.error = Some(format!("{}: thaw: {e}", entry.name));
    }
    report
}

fn print_text(report: &Report) {
    for vm in &report.vms {
        println!("{}  ({})", vm.name, vm.path);
        print_lvs(vm);
        if let Some(e) = &vm.error {
            println!("  error: {e}");
        }
        for d in &vm.disks {
            println!(
                "  disk{}  {}  {}  chain: {}",
                d.index,
                d.file,
                human(d.capacity),
                d.chain.join(" -> ")
            );
            for n in &d.notes {
                println!("    note: {n}");
            }
            if let Some(e) = &d.error {
                println!("    error: {e}");
                continue;
            }
            match d.filesystem {
                Some(fs) => println!("    no partition table; whole disk is {fs}"),
                None => println!("    table: {}", d.table),
            }
            for p in &d.partitions {
                println!(
                    "    p{:<3} start {:>12}  size {:>10}  {} {}{}  {}",
                    p.number,
                    p.start,
                    human(p.size),
                    p.type_id,
                    p.type_name,
                    p.name
                        .as_ref()
                        .map(|n| format!(" \"{n}\""))
                        .unwrap_or_default(),
                    p.filesystem.unwrap_or("-")
                );
            }
        }
    }
}

fn print_lvs(vm: &VmReport) {
    for lv in &vm.logical_volumes {
        println!(
            "  lv {}  (vg {}, {})  {}  {}",
            lv.name,
            lv.lvm.vg,
            lv.lvm.segments.join("+"),
            lv.lvm.status,
            lv.filesystem.unwrap_or("-")
        );
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
