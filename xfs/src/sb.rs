//! The superblock, `xfs_sb`, in the first sector of the volume (and of every AG).
use crate::be::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use crate::error::Damage;

pub const MAGIC: &[u8; 4] = b"XFSB";

pub const VERSION_NUMBITS: u16 = 0x000f;
pub const VERSION_MOREBITSBIT: u16 = 0x8000;
pub const VERSION2_FTYPE: u32 = 0x200;
pub const VERSION2_CRC: u32 = 0x100;

pub const INCOMPAT_FTYPE: u32 = 0x1;
pub const INCOMPAT_SPINODES: u32 = 0x2;
pub const INCOMPAT_META_UUID: u32 = 0x4;
pub const INCOMPAT_BIGTIME: u32 = 0x8;
pub const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
pub const INCOMPAT_NREXT64: u32 = 0x20;
/// Incompatible features this reader understands (the rest refuse to open).
pub const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64;

/// The fields of `xfs_sb` this reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub blocksize: u32,
    pub dblocks: u64,
    pub uuid: [u8; 16],
    pub logstart: u64,
    pub rootino: u64,
    pub agblocks: u32,
    pub agcount: u32,
    pub logblocks: u32,
    pub versionnum: u16,
    pub sectsize: u16,
    pub inodesize: u16,
    pub inopblock: u16,
    pub fname: [u8; 12],
    pub blocklog: u8,
    pub inodelog: u8,
    pub inopblog: u8,
    pub agblklog: u8,
    pub icount: u64,
    pub ifree: u64,
    pub fdblocks: u64,
    pub dirblklog: u8,
    pub features2: u32,
    pub features_compat: u32,
    pub features_ro_compat: u32,
    pub features_incompat: u32,
    pub features_log_incompat: u32,
    /// v5 only: the stored CRC matched.
    pub crc_ok: bool,
}

impl Superblock {
    pub fn version(&self) -> u16 {
        self.versionnum & VERSION_NUMBITS
    }
    pub fn is_v5(&self) -> bool {
        self.version() == 5
    }
    /// Directory entries carry a file type byte.
    pub fn has_ftype(&self) -> bool {
        if self.is_v5() {
            self.features_incompat & INCOMPAT_FTYPE != 0
        } else {
            self.versionnum & VERSION_MOREBITSBIT != 0 && self.features2 & VERSION2_FTYPE != 0
        }
    }
    pub fn has_bigtime(&self) -> bool {
        self.is_v5() && self.features_incompat & INCOMPAT_BIGTIME != 0
    }
    pub fn dirblksize(&self) -> u32 {
        self.blocksize << self.dirblklog
    }
    pub fn label(&self) -> String {
        let end = self.fname.iter().position(|&b| b == 0).unwrap_or(12);
        String::from_utf8_lossy(&self.fname[..end]).into_owned()
    }
    pub fn uuid_string(&self) -> String {
        let u = &self.uuid;
        let h =
            |r: std::ops::Range<usize>| u[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
        format!(
            "{}-{}-{}-{}-{}",
            h(0..4),
            h(4..6),
            h(6..8),
            h(8..10),
            h(10..16)
        )
    }
}

/// Parses and sanity-checks the primary superblock from the first sector(s) of the volume
/// (`buf` holds at least 512 bytes; for the v5 CRC, the whole `sectsize`).
pub fn parse(buf: &[u8]) -> Result<Superblock, Damage> {
    if bytes_at(buf, 0, 4)? != MAGIC {
        return Err(Damage::new("no XFSB magic"));
    }
    let arr = |o: usize, n: usize| -> Result<Vec<u8>, Damage> { Ok(bytes_at(buf, o, n)?.to_vec()) };
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&arr(32, 16)?);
    let mut fname = [0u8; 12];
    fname.copy_from_slice(&arr(108, 12)?);
    let mut sb = Superblock {
        blocksize: u32_at(buf, 4)?,
        dblocks: u64_at(buf, 8)?,
        uuid,
        logstart: u64_at(buf, 48)?,
        rootino: u64_at(buf, 56)?,
        agblocks: u32_at(buf, 84)?,
        agcount: u32_at(buf, 88)?,
        logblocks: u32_at(buf, 96)?,
        versionnum: u16_at(buf, 100)?,
        sectsize: u16_at(buf, 102)?,
        inodesize: u16_at(buf, 104)?,
        inopblock: u16_at(buf, 106)?,
        fname,
        blocklog: u8_at(buf, 120)?,
        inodelog: u8_at(buf, 122)?,
        inopblog: u8_at(buf, 123)?,
        agblklog: u8_at(buf, 124)?,
        icount: u64_at(buf, 128)?,
        ifree: u64_at(buf, 136)?,
        fdblocks: u64_at(buf, 144)?,
        dirblklog: u8_at(buf, 192)?,
        features2: u32_at(buf, 200)?,
        features_compat: 0,
        features_ro_compat: 0,
        features_incompat: 0,
        features_log_incompat: 0,
        crc_ok: false,
    };
    let v = sb.version();
    if v != 4 && v != 5 {
        return Err(Damage::new(format!(
            "superblock version {v} (only 4 and 5 exist)"
        )));
    }
    if v == 5 {
        sb.features_compat = u32_at(buf, 208)?;
        sb.features_ro_compat = u32_at(buf, 212)?;
        sb.features_incompat = u32_at(buf, 216)?;
        sb.features_log_incompat = u32_at(buf, 220)?;
        let sect = (sb.sectsize as usize).min(buf.len());
        sb.crc_ok = crate::be::crc_ok(&buf[..sect], 224);
        if !sb.crc_ok {
            return Err(Damage::new("superblock CRC mismatch"));
        }
    }
    check(&sb)?;
    Ok(sb)
}

fn check(sb: &Superblock) -> Result<(), Damage> {
    let bad = |m: String| Err(Damage::new(m));
    if !(9..=16).contains(&sb.blocklog) || sb.blocksize != 1 << sb.blocklog {
        return bad(format!("block size {} / log {}", sb.blocksize, sb.blocklog));
    }
    if !sb.sectsize.is_power_of_two() || !(512..=32768).contains(&sb.sectsize) {
        return bad(format!("sector size {}", sb.sectsize));
    }
    if !(8..=11).contains(&sb.inodelog) || sb.inodesize as u32 != 1 << sb.inodelog {
        return bad(format!("inode size {} / log {}", sb.inodesize, sb.inodelog));
    }
    if sb.blocklog < sb.inodelog
        || sb.inopblog != sb.blocklog - sb.inodelog
        || sb.inopblock as u32 != 1 << sb.inopblog
    {
        return bad(format!(
            "{} inodes per block (log {})",
            sb.inopblock, sb.inopblog
        ));
    }
    if sb.agcount == 0 || sb.agblocks < 16 || sb.agblklog > 31 {
        return bad(format!("{} AGs of {} blocks", sb.agcount, sb.agblocks));
    }
    let ceil_log = 32 - (sb.agblocks - 1).leading_zeros();
    if sb.agblklog as u32 != ceil_log {
        return bad(format!(
            "agblklog {} for {} blocks per AG",
            sb.agblklog, sb.agblocks
        ));
    }
    let max = sb.agcount as u64 * sb.agblocks as u64;
    if sb.dblocks == 0 || sb.dblocks > max || sb.dblocks + sb.agblocks as u64 <= max {
        return bad(format!(
            "{} data blocks in {} AGs of {}",
            sb.dblocks, sb.agcount, sb.agblocks
        ));
    }
    if sb.dirblklog > 6 || sb.blocklog as u32 + sb.dirblklog as u32 > 16 {
        return bad(format!("directory block log {}", sb.dirblklog));
    }
    if sb.is_v5() && sb.features_incompat & !INCOMPAT_KNOWN != 0 {
        return bad(format!(
            "unknown incompatible features {:#x}",
            sb.features_incompat & !INCOMPAT_KNOWN
        ));
    }
    Ok(())
}
