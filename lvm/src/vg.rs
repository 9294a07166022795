//! A volume group assembled from the physical volumes found on devices.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::label_header::SECTOR_SIZE;
use crate::lv::{self, LogicalVolume, LvStatus};
use crate::metadata::Section;
use crate::pv::{uuid_key, PhysicalVolume, VgMetadata};
use crate::reader;
use crate::segment::SegmentKind;
use vmsnapfs_io::ReadAt;

/// One PV of a VG as its metadata lists it, with its device when it was given.
#[derive(Clone)]
pub struct PvSlot {
    /// The metadata's name for it (`pv0`, `pv1`...), which segments refer to.
    pub name: String,
    pub uuid: String,
    /// The device path LVM2 last saw it at (a hint only).
    pub device_hint: Option<String>,
    /// Where extent 0 starts, in bytes.
    pub pe_start: u64,
    pub pe_count: u64,
    /// `None`: the PV is missing (not among the devices given to
    /// [`VolumeGroup::assemble`], or flagged `MISSING` in the metadata).
    pub device: Option<Arc<dyn ReadAt>>,
}

impl PvSlot {
    pub fn is_present(&self) -> bool {
        self.device.is_some()
    }
}

impl fmt::Debug for PvSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PvSlot")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("device_hint", &self.device_hint)
            .field("pe_start", &self.pe_start)
            .field("pe_count", &self.pe_count)
            .field("present", &self.is_present())
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct VolumeGroup {
    pub name: String,
    pub uuid: String,
    /// The metadata's sequence number (the newest found).
    pub seqno: u64,
    /// In bytes.
    pub extent_size: u64,
    pub pvs: Vec<PvSlot>,
    pub lvs: Vec<LogicalVolume>,
    /// The metadata this VG was built from.
    pub metadata: Arc<VgMetadata>,
}

fn uint(vg: &str, s: &Section, key: &str) -> Result<u64> {
    let (line, v) = match s.get(key) {
        Some(a) => (a.line, a.value.as_int()),
        None => (s.line, None),
    };
    v.and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| Error::Metadata {
            vg: vg.to_string(),
            line,
            msg: format!("{}: {key} missing or not a non-negative integer", s.name),
        })
}

fn sectors(vg: &str, line: usize, what: &str, n: u64) -> Result<u64> {
    n.checked_mul(SECTOR_SIZE as u64)
        .ok_or_else(|| Error::Metadata {
            vg: vg.to_string(),
            line,
            msg: format!("{what} of {n} sectors overflows"),
        })
}

/// LV nesting (mirror → mimage → ...) is at most this deep.
pub(crate) const MAX_LV_DEPTH: usize = 8;

impl VolumeGroup {
    /// Groups `pvs` by VG uuid, takes the newest (highest seqno) metadata each VG has
    /// among them, and fills its PV list with the devices given; PVs the metadata lists
    /// but that are not given are missing. PVs in no VG (orphans) are left out. VGs come
    /// in name order.
    pub fn assemble(pvs: Vec<(PhysicalVolume, Arc<dyn ReadAt>)>) -> Result<Vec<VolumeGroup>> {
        let mut newest: BTreeMap<String, Arc<VgMetadata>> = BTreeMap::new();
        for (pv, _) in &pvs {
            if let Some(m) = &pv.metadata {
                let k = uuid_key(&m.vg_uuid);
                if newest.get(&k).is_none_or(|b| m.seqno > b.seqno) {
                    newest.insert(k, m.clone());
                }
            }
        }
        let mut devices: BTreeMap<String, Arc<dyn ReadAt>> = BTreeMap::new();
        for (pv, dev) in pvs {
            devices.entry(uuid_key(&pv.uuid)).or_insert(dev);
        }
        let mut vgs = newest
            .into_values()
            .map(|m| Self::from_metadata(m, &devices))
            .collect::<Result<Vec<_>>>()?;
        vgs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(vgs)
    }

    /// The VG `m` describes, with devices looked up by PV uuid (without dashes) in
    /// `devices`.
    pub fn from_metadata(
        m: Arc<VgMetadata>,
        devices: &BTreeMap<String, Arc<dyn ReadAt>>,
    ) -> Result<VolumeGroup> {
        let name = m.vg_name.clone();
        let bad = |line: usize, msg: String| Error::Metadata {
            vg: name.clone(),
            line,
            msg,
        };
        let s = m
            .vg_section()
            .ok_or_else(|| bad(1, "no volume group section".into()))?;
        let es = uint(&name, s, "extent_size")?;
        if es == 0 {
            return Err(bad(s.line, "extent_size is 0".into()));
        }
        let extent_size = sectors(&name, s.line, "extent_size", es)?;
        let mut pvs = Vec::new();
        if let Some(list) = s.section("physical_volumes") {
            for p in &list.sections {
                let uuid = p
                    .str("id")
                    .ok_or_else(|| bad(p.line, format!("{}: no id", p.name)))?
                    .to_string();
                let pe_start = sectors(&name, p.line, "pe_start", uint(&name, p, "pe_start")?)?;
                let pe_count = uint(&name, p, "pe_count")?;
                // A PV LVM2 has marked missing may hold stale data even if it is back.
                let device = if p.has_flag("flags", "MISSING") {
                    None
                } else {
                    devices.get(&uuid_key(&uuid)).cloned()
                };
                pvs.push(PvSlot {
                    name: p.name.clone(),
                    device,
                    uuid,
                    device_hint: p.str("device").map(str::to_string),
                    pe_start,
                    pe_count,
                });
            }
        }
        let lvs = s
            .section("logical_volumes")
            .map(|l| {
                l.sections
                    .iter()
                    .map(|ls| lv::parse(&name, extent_size, ls))
                    .collect()
            })
            .unwrap_or_default();
        let mut vg = VolumeGroup {
            uuid: m.vg_uuid.clone(),
            seqno: m.seqno,
            name,
            extent_size,
            pvs,
            lvs,
            metadata: m,
        };
        vg.settle_statuses();
        Ok(vg)
    }

    /// Marks what cannot be read: snapshot COW stores and the origins of cached LVs
    /// (their bytes alone are not the LV's contents), then every LV whose reader cannot
    /// be built, with the reason.
    fn settle_statuses(&mut self) {
        let mut marks: Vec<(String, String)> = Vec::new();
        for lv in &self.lvs {
            for seg in &lv.segments {
                if let SegmentKind::Unsupported {
                    type_name,
                    origin,
                    cow_store,
                } = &seg.kind
                {
                    let origin_name = origin.as_deref().unwrap_or("?");
                    if let Some(cow) = cow_store {
                        marks.push((
                            cow.clone(),
                            format!(
                                "copy-on-write store of snapshot {} of {origin_name}",
                                lv.name
                            ),
                        ));
                    }
                    // A cache's origin alone may lack the blocks still in the cache.
                    if type_name == "cache" || type_name == "writecache" {
                        if let Some(o) = origin {
                            marks
                                .push((o.clone(), format!("origin of {type_name} LV {}", lv.name)));
                        }
                    }
                }
            }
        }
        for i in 0..self.lvs.len() {
            if self.lvs[i].status != LvStatus::Readable {
                continue;
            }
            let status = match reader::build(self, &self.lvs[i]) {
                Ok(_) => LvStatus::Readable,
                Err(Error::MissingPv { pv, .. }) => LvStatus::MissingPv(pv),
                Err(Error::Unsupported { msg, .. }) => LvStatus::Unsupported(msg),
                Err(e) => LvStatus::Damaged(e.to_string()),
            };
            self.lvs[i].status = status;
        }
        for (name, why) in marks {
            if let Some(lv) = self.lvs.iter_mut().find(|l| l.name == name) {
                if lv.status == LvStatus::Readable {
                    lv.status = LvStatus::Unsupported(why);
                }
            }
        }
    }

    pub fn lv(&self, name: &str) -> Option<&LogicalVolume> {
        self.lvs.iter().find(|l| l.name == name)
    }

    pub fn pv(&self, name: &str) -> Option<&PvSlot> {
        self.pvs.iter().find(|p| p.name == name)
    }

    /// Whether every PV the metadata lists was given.
    pub fn is_complete(&self) -> bool {
        self.pvs.iter().all(PvSlot::is_present)
    }

    /// A positional, thread-safe reader of `lv`'s bytes (`size()` is the LV size). Fails
    /// when its status is not [`LvStatus::Readable`].
    pub fn open(&self, lv: &LogicalVolume) -> Result<Arc<dyn ReadAt>> {
        let mine = self.lv(&lv.name).ok_or_else(|| Error::NoSuchLv {
            vg: self.name.clone(),
            lv: lv.name.clone(),
        })?;
        match &mine.status {
            LvStatus::Readable => {}
            LvStatus::Unsupported(msg) => {
                return Err(Error::Unsupported {
                    vg: self.name.clone(),
                    lv: lv.name.clone(),
                    msg: msg.clone(),
                })
            }
            LvStatus::MissingPv(pv) => {
                return Err(Error::MissingPv {
                    vg: self.name.clone(),
                    lv: lv.name.clone(),
                    pv: pv.clone(),
                })
            }
            LvStatus::Damaged(msg) => {
                return Err(Error::Metadata {
                    vg: self.name.clone(),
                    line: mine.line,
                    msg: msg.clone(),
                })
            }
        }
        let r: Arc<dyn ReadAt> = reader::build(self, mine)?;
        Ok(r)
    }

    /// [`open`](Self::open) by LV name.
    pub fn open_name(&self, name: &str) -> Result<Arc<dyn ReadAt>> {
        let lv = self.lv(name).ok_or_else(|| Error::NoSuchLv {
            vg: self.name.clone(),
            lv: name.to_string(),
        })?;
        self.open(lv)
    }
}
