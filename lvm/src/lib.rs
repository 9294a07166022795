#![forbid(unsafe_code)]
//! Read-only LVM2, parsed in-process: physical volumes found on any positional byte
//! sources, their volume groups assembled, logical volumes read as byte sources.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use vmsnapfs_io::ReadAt;
//! # use vmsnapfs_lvm::{probe_named, VolumeGroup, LvStatus};
//! # fn demo(disks: Vec<Arc<dyn ReadAt>>) -> Result<(), Box<dyn std::error::Error>> {
//! let mut pvs = Vec::new();
//! for (i, d) in disks.into_iter().enumerate() {
//!     // `None`: no LVM2 label in the first four sectors.
//!     if let Some(pv) = probe_named(&*d, &format!("disk{i}"))? {
//!         pvs.push((pv, d));
//!     }
//! }
//! for vg in VolumeGroup::assemble(pvs)? {
//!     for lv in vg.lvs.iter().filter(|l| l.visible) {
//!         match &lv.status {
//!             LvStatus::Readable => {
//!                 let r = vg.open(lv)?; // Arc<dyn ReadAt>, lv.size bytes
//!                 let mut buf = vec![0u8; 4096];
//!                 r.read_at(0, &mut buf)?;
//!                 println!("{} ({} bytes)", lv.dm_name, r.size());
//!             }
//!             other => println!("{}: {other:?}", lv.dm_name),
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! * [`probe`] / [`probe_named`]`(dev, name) -> Result<Option<PhysicalVolume>>`: the
//!   label (`LABELONE`, sectors 0..4), the PV header (uuid, device size, data and
//!   metadata areas; `pe_start` is the first data area), and the newest metadata text
//!   among its metadata areas, checksums verified, ring-buffer wrap-around followed,
//!   parsed. Damage is an error naming the device, the byte offset and, in the text, the
//!   line; a device with no label is `Ok(None)`.
//! * [`VolumeGroup::assemble`]`(Vec<(PhysicalVolume, Arc<dyn ReadAt>)>) ->
//!   Result<Vec<VolumeGroup>>`: PVs grouped by VG uuid, the highest seqno wins among all
//!   their metadata areas; PVs the metadata lists but that were not given are missing
//!   ([`PvSlot::device`] is `None`), and so are PVs the metadata flags `MISSING`. Devices
//!   are matched by PV uuid; of two devices with one uuid (a cloned disk) the first given
//!   is used. PVs without metadata areas join the VG that lists them; PVs in no VG are
//!   left out. A VG whose metadata lacks what every LV needs (`extent_size`, a PV's
//!   `id`, `pe_start`, `pe_count`) fails the whole call; damage confined to one LV only
//!   makes that LV [`LvStatus::Damaged`].
//! * [`VolumeGroup`] `{ name, uuid, seqno, extent_size, pvs, lvs, .. }`;
//!   [`LogicalVolume`] `{ name, uuid, dm_name, visible, size, segments, status, .. }`;
//!   [`Segment`] `{ start_extent, extent_count, kind }` with [`SegmentKind`] `Linear`,
//!   `Striped`, `Mirror`, `Raid1`, `Zero`, `Unsupported { type_name, .. }`.
//! * [`VolumeGroup::open`]`(&lv) -> Result<Arc<dyn ReadAt>>`: a `Send + Sync` positional
//!   reader. Linear and striped segments map onto PV devices (stripe chunks of
//!   `stripe_size` sectors round-robin), mirror and raid1 segments read the first leg
//!   whose PVs are all present (a raid1 leg's data is its `_rimage_N` LV); reads are
//!   split at segment and chunk boundaries; `lend` is passed through to the device when
//!   a range lies in one linear part. An LV wholly on present PVs reads even when its VG
//!   misses another PV. An area names a PV, else an LV (as while `pvmove` runs, when the
//!   moved LV's area is `pvmove0`, a mirror of PV areas). A raid1 image is read from its
//!   extent 0: the data offset dm-raid keeps in the `_rmeta_` superblock (non-zero only
//!   after reshapes, which raid1 does not do) is not read.
//! * [`LvStatus`]: `Readable`, `Unsupported` (thin, thin-pool, snapshots and their COW
//!   stores, cache/writecache and their origins, raid levels other than 1, vdo,
//!   integrity...), `MissingPv(uuid of the first PV found missing)`, `Damaged(why)`.
//!   Nothing about these panics.
//! * [`LogicalVolume::dm_name`] is LVM2's `<vg>-<lv>` with `-` doubled inside names.
//!
//! Bounds: the metadata text is at most [`mda_header::MAX_METADATA_TEXT`] bytes and must
//! fit its ring buffer, sections nest at most [`metadata::MAX_DEPTH`] deep, LVs at most 8
//! deep and one open builds at most 4096 LV readers; every offset, length and extent
//! count is checked before use.
//!
//! Modules are named after the structures they parse (lib/format_text/layout.h).

mod crc;
mod error;
pub mod label_header;
pub mod lv;
pub mod mda_header;
pub mod metadata;
pub mod pv;
pub mod pv_header;
mod reader;
pub mod segment;
pub mod vg;

pub use error::{Error, Result};
pub use lv::{dm_name, LogicalVolume, LvStatus};
pub use pv::{probe, probe_named, PhysicalVolume, VgMetadata};
pub use segment::{RaidLeg, Segment, SegmentKind};
pub use vg::{PvSlot, VolumeGroup};

#[doc(hidden)]
pub use crc::calc_crc;

#[cfg(test)]
mod send_sync {
    #[test]
    fn types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::VolumeGroup>();
        check::<super::reader::LvReader>();
    }
}

#[cfg(test)]
mod tests;
