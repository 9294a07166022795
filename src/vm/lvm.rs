//! The volume-manager step between partitions and file systems: LVM2 physical volumes on
//! any partition or whole disk of the VM are gathered, their volume groups assembled
//! (one may span several disks), and each logical volume becomes a volume of its own,
//! `volumes/<vg>-<lv>/`, whose file system is detected as a partition's is. Logical
//! volumes that cannot be read (thin, snapshots, cache, a missing PV) are listed with why.

use std::sync::Arc;

use vmsnapfs_io::ReadAt;
use vmsnapfs_lvm::{LvStatus, PhysicalVolume, SegmentKind, VolumeGroup};

use super::volume::{open_volume, LvInfo, VolumeView};

/// A PV found on a volume: where (for messages), its header and metadata, its bytes.
pub struct FoundPv {
    pub on: String,
    pub pv: PhysicalVolume,
    pub data: Arc<dyn ReadAt>,
}

/// Looks for an LVM2 label on a volume no file system claimed, and notes it on `view`.
pub fn probe(
    view: Option<&mut VolumeView>,
    data: &Arc<dyn ReadAt>,
    pvs: &mut Vec<FoundPv>,
    errors: &mut Vec<String>,
) {
    let Some(view) = view.filter(|v| v.fs_kind.is_none()) else {
        return;
    };
    match vmsnapfs_lvm::probe_named(data.as_ref(), &view.name) {
        Ok(Some(pv)) => {
            view.fs_kind = Some("lvm2_pv");
            for e in &pv.metadata_errors {
                errors.push(format!("{}: LVM2 metadata: {e}", view.name));
            }
            pvs.push(FoundPv {
                on: view.name.clone(),
                pv,
                data: data.clone(),
            });
        }
        Ok(None) => {}
        Err(e) => errors.push(format!("{}: LVM2 label: {e}", view.name)),
    }
}

/// The volume groups of all PVs found, and a volume for each visible logical volume.
pub fn assemble(found: Vec<FoundPv>, errors: &mut Vec<String>) -> Vec<VolumeView> {
    if found.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = found.iter().map(|f| f.on.clone()).collect();
    let vgs = match VolumeGroup::assemble(found.into_iter().map(|f| (f.pv, f.data)).collect()) {
        Ok(vgs) => vgs,
        Err(e) => {
            errors.push(format!("LVM2 on {}: {e}", names.join(", ")));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for vg in &vgs {
        let missing: Vec<String> = vg
            .pvs
            .iter()
            .filter(|p| !p.is_present())
            .map(|p| p.uuid.clone())
            .collect();
        if !missing.is_empty() {
            errors.push(format!(
                "volume group {}: physical volume(s) {} not found on this VM's disks",
                vg.name,
                missing.join(", ")
            ));
        }
        for lv in vg.lvs.iter().filter(|l| l.visible) {
            let info = LvInfo {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
                segments: lv.segments.iter().map(|s| segment_type(&s.kind)).collect(),
                status: status(&lv.status),
                vg_missing_pvs: missing.clone(),
            };
            let mut view = match (&lv.status, vg.open(lv)) {
                (LvStatus::Readable, Ok(data)) => open_volume(lv.dm_name.clone(), None, None, data),
                (LvStatus::Readable, Err(e)) => {
                    errors.push(format!("{}: {e}", lv.dm_name));
                    unread(lv.dm_name.clone())
                }
                (why, _) => {
                    tracing::info!("{}: not read: {}", lv.dm_name, status(why));
                    unread(lv.dm_name.clone())
                }
            };
            view.lvm = Some(info);
            out.push(view);
        }
    }
    out
}

fn unread(name: String) -> VolumeView {
    VolumeView {
        name,
        disk: None,
        lvm: None,
        partition: None,
        fs_kind: None,
        fs: None,
        errors: Default::default(),
    }
}

fn segment_type(k: &SegmentKind) -> String {
    match k {
        SegmentKind::Linear { .. } => "linear".into(),
        SegmentKind::Striped { .. } => "striped".into(),
        SegmentKind::Mirror { .. } => "mirror".into(),
        SegmentKind::Raid1 { .. } => "raid1".into(),
        SegmentKind::Zero => "zero".into(),
        SegmentKind::Unsupported { type_name, .. } => type_name.clone(),
        _ => "unknown".into(),
    }
}

fn status(s: &LvStatus) -> String {
    match s {
        LvStatus::Readable => "readable".into(),
        LvStatus::Unsupported(why) => format!("unsupported: {why}"),
        LvStatus::MissingPv(uuid) => format!("needs missing physical volume {uuid}"),
        LvStatus::Damaged(why) => format!("damaged metadata: {why}"),
        other => format!("{other:?}"),
    }
}
