//! `vmsnapfs inspect`: what a mount would show, without mounting.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use vmsnapfs_io::{ReadAt, Window};
use vmsnapfs_vmdk::{Disk, LocalResolver};

use crate::cache::{BlockCache, DEFAULT_CAPACITY};
use crate::detect;
use crate::local::{self, LocalVm};
use crate::partition;

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
    #[error(transparent)]
    Local(#[from] local::LocalError),
    /// Every disk that could not be read, one line each; the report was still printed.
    #[error("{}", .0.join("\n"))]
    Disks(Vec<String>),
}

pub fn run(path: &Path, json: bool) -> Result<(), InspectError> {
    let report = build(path)?;
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
        .flat_map(|vm| vm.disks.iter().filter_map(|d| d.error.clone()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InspectError::Disks(errors))
    }
}

pub fn build(path: &Path) -> Result<Report, InspectError> {
    let found = local::discover(path)?;
    // One cache for the whole run, as a mount would have; inspect reads only a few
    // sectors per disk, so a small one is plenty.
    let cache = BlockCache::new(DEFAULT_CAPACITY.min(16 << 20));
    let vms = found
        .vms
        .iter()
        .map(|vm| VmReport {
            name: vm.name.clone(),
            path: vm.dir.display().to_string(),
            vmx: vm.vmx.as_ref().map(|p| p.display().to_string()),
            disks: vm
                .disks
                .iter()
                .enumerate()
                .map(|(index, file)| inspect_disk(vm, index, file, &cache))
                .collect(),
        })
        .collect();
    let (hits, misses) = cache.stats();
    tracing::debug!(hits, misses, "block cache");
    Ok(Report { vms })
}

fn inspect_disk(vm: &LocalVm, index: usize, file: &str, cache: &Arc<BlockCache>) -> DiskReport {
    let mut report = DiskReport {
        index,
        file: file.to_string(),
        table: partition::TableKind::None.as_str(),
        ..Default::default()
    };
    let disk = match Disk::open(Arc::new(LocalResolver::new(&vm.dir)), file) {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("{}: {e}", vm.dir.join(file).display()));
            return report;
        }
    };
    report.capacity = disk.capacity();
    report.chain = disk.chain().to_vec();
    let disk: Arc<dyn ReadAt> = Arc::new(cache.wrap(Arc::new(disk)));
    match partition::read_table(&*disk) {
        Ok((kind, parts)) => {
            report.table = kind.as_str();
            if kind == partition::TableKind::None {
                report.filesystem = detect::detect(&*disk).map(|k| k.as_str());
            }
            report.partitions = parts
                .into_iter()
                .map(|p| {
                    let filesystem = Window::new(Arc::clone(&disk), p.start, p.size)
                        .ok()
                        .and_then(|w| detect::detect(&w))
                        .map(|k| k.as_str());
                    PartitionReport {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        type_id: p.type_id,
                        type_name: p.type_name,
                        name: p.name,
                        filesystem,
                    }
                })
                .collect();
        }
        Err(e) => report.error = Some(format!("{}: {e}", vm.dir.join(file).display())),
    }
    report
}

fn print_text(report: &Report) {
    for vm in &report.vms {
        println!("{}  ({})", vm.name, vm.path);
        for d in &vm.disks {
            println!(
                "  disk{}  {}  {}  chain: {}",
                d.index,
                d.file,
                human(d.capacity),
                d.chain.join(" -> ")
            );
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
