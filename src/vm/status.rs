//! status.json: what a backup log needs to judge the copy (source, snapshot, whether it
//! is quiesced and why, fallbacks, chain files, per-volume state and errors).

use serde_json::{json, Value};

use crate::sync::Relock;
use crate::time::iso8601;

use super::changes::path_name;
use super::frozen::FrozenVm;

pub fn render(vm_name: &str, source: &str, vm: &FrozenVm) -> Vec<u8> {
    let f = &vm.frozen;
    let disks: Vec<Value> = vm
        .disks
        .iter()
        .zip(&f.disks)
        .map(|(d, fd)| {
            let n = d.number;
            json!({
                "index": n,
                "key": fd.key,
                "file": fd.file,
                "size": d.size(),
                "chain": fd.chain,
                "partition_table": d.table,
                "descriptor": format!("disks/disk{n}.vmdk"),
                "flat": format!("disks/disk{n}-flat.vmdk"),
                "notes": fd.notes,
                "change_id": fd.change_id,
                "cbt": fd.cbt,
                "since": fd.change_id.as_deref().map(|id| format!("disks/since/{}", path_name(id))),
            })
        })
        .collect();
    let unserved: Vec<Value> = f
        .unserved
        .iter()
        .map(|u| json!({"index": u.index, "key": u.key, "file": u.file, "error": u.why}))
        .collect();
    let volumes: Vec<Value> = vm
        .volumes
        .iter()
        .map(|v| {
            let errors = v.errors.lock().relock().clone();
            let info = v.info().unwrap_or_default();
            let mut vol = json!({
                "name": v.name,
                "path": v.fs.as_ref().map(|_| format!("volumes/{}", v.name)),
                "disk": v.disk,
                "lvm": v.lvm,
                "partition": v.partition.as_ref().map(|p| json!({
                    "number": p.number,
                    "start": p.start,
                    "size": p.size,
                    "type": p.type_name,
                    "name": p.name,
                })),
                "fs": v.fs_kind,
                "label": info.label,
                "dirty": info.dirty,
                "hibernated": info.hibernated,
                "total_bytes": info.total_bytes,
                "free_bytes": info.free_bytes,
                "errors": errors,
            });
            // Only where the file system has a journal of that kind.
            if let Some(replayed) = info.journal_replayed {
                vol["journal_replayed"] = replayed.into();
            }
            if let Some(dirty) = info.log_dirty {
                vol["log_dirty"] = dirty.into();
            }
            vol
        })
        .collect();
    let doc = json!({
        "vm": vm_name,
        "source": source,
        "frozen_at": iso8601(vm.frozen_at),
        "config": vm.vmx_name,
        "snapshot": f.snapshot,
        "quiesced": f.quiesced,
        "consistency": f.consistency,
        "fallbacks": f.fallbacks,
        "disks": disks,
        "unserved_disks": unserved,
        "volumes": volumes,
        "errors": *vm.errors.lock().relock(),
        "full_backup_needed": *vm.since.full_needed.lock().relock(),
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}
