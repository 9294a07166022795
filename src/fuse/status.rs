//! status.json: what a backup log needs to judge the copy (source, snapshot, whether it
//! is quiesced and why, fallbacks, chain files, per-volume state and errors).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::view::FrozenVm;

pub fn render(vm_name: &str, source: &str, vm: &FrozenVm) -> Vec<u8> {
    let f = &vm.frozen;
    let disks: Vec<Value> = vm
        .disks
        .iter()
        .enumerate()
        .map(|(n, d)| {
            json!({
                "index": n,
                "key": f.disks[n].key,
                "size": d.size(),
                "chain": f.disks[n].chain,
                "partition_table": d.table,
                "descriptor": format!("disks/disk{n}.vmdk"),
                "flat": format!("disks/disk{n}-flat.vmdk"),
            })
        })
        .collect();
    let volumes: Vec<Value> = vm
        .volumes
        .iter()
        .map(|v| {
            let errors = v.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let info = v.info().unwrap_or_default();
            json!({
                "name": v.name,
                "path": v.fs.as_ref().map(|_| format!("volumes/{}", v.name)),
                "disk": v.disk,
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
            })
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
        "volumes": volumes,
        "errors": *vm.errors.lock().unwrap_or_else(|p| p.into_inner()),
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` without a date crate (Howard Hinnant's civil_from_days).
pub fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_matches_known_instants() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(super::iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(super::iso8601(t), "2024-02-29T12:34:56Z");
    }
}
