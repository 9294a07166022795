//! The on-disk inode, `xfs_dinode`: the core (v1/v2: 100 bytes, v3: 176 bytes), then the
//! data fork and, from `di_forkoff * 8` on, the attribute fork.
use crate::be::{bytes_at, u16_at, u32_at, u64_at, u8_at};
use crate::error::Damage;

pub const MAGIC: u16 = 0x494e; // "IN"

pub const FMT_DEV: u8 = 0;
pub const FMT_LOCAL: u8 = 1;
pub const FMT_EXTENTS: u8 = 2;
pub const FMT_BTREE: u8 = 3;

pub const DIFLAG_REALTIME: u16 = 0x1;
pub const DIFLAG2_BIGTIME: u64 = 0x8;
pub const DIFLAG2_NREXT64: u64 = 0x10;

/// Seconds between the bigtime epoch (the lowest classic timestamp, 1901-12-13) and 1970.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// The fields of one inode this reader uses, and copies of its two forks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dinode {
    pub mode: u16,
    pub version: u8,
    pub format: u8,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub crtime: Option<(i64, u32)>,
    pub size: u64,
    pub nblocks: u64,
    pub nextents: u64,
    pub anextents: u64,
    pub forkoff: u8,
    pub aformat: u8,
    pub flags: u16,
    pub flags2: u64,
    pub gen: u32,
    /// v3: the inode number recorded in the inode itself.
    pub ino: Option<u64>,
    pub data_fork: Vec<u8>,
    /// Empty when the inode has no attribute fork.
    pub attr_fork: Vec<u8>,
}

impl Dinode {
    pub fn has_attr_fork(&self) -> bool {
        self.forkoff != 0
    }
}

fn timestamp(buf: &[u8], off: usize, bigtime: bool) -> Result<(i64, u32), Damage> {
    if bigtime {
        let t = u64_at(buf, off)?;
        let secs = (t / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET;
        Ok((secs, (t % 1_000_000_000) as u32))
    } else {
        let secs = u32_at(buf, off)? as i32 as i64;
        let nsec = u32_at(buf, off + 4)?;
        Ok((secs, nsec.min(999_999_999)))
    }
}

/// Size of the inode core for an inode of `version`.
pub fn core_size(version: u8) -> usize {
    if version >= 3 {
        176
    } else {
        100
    }
}

/// Parses one inode of `buf.len()` bytes (the superblock's inode size). `v5` says
/// whether the volume expects v3 inodes (with a CRC, which is checked).
pub fn parse(buf: &[u8], v5: bool) -> Result<Dinode, Damage> {
    if u16_at(buf, 0)? != MAGIC {
        return Err(Damage::new("no inode magic"));
    }
    let version = u8_at(buf, 4)?;
    match (v5, version) {
        (true, 3) | (false, 1) | (false, 2) => {}
        _ => {
            return Err(Damage::new(format!(
                "inode version {version} on a v{} volume",
                if v5 { 5 } else { 4 }
            )))
        }
    }
    if version == 3 && !crate::be::crc_ok(buf, 100) {
        return Err(Damage::new("inode CRC mismatch"));
    }
    let flags2 = if version == 3 { u64_at(buf, 120)? } else { 0 };
    let bigtime = flags2 & DIFLAG2_BIGTIME != 0;
    let nrext64 = flags2 & DIFLAG2_NREXT64 != 0;
    let (nextents, anextents) = if nrext64 {
        (u64_at(buf, 24)?, u32_at(buf, 76)? as u64)
    } else {
        (u32_at(buf, 76)? as u64, u16_at(buf, 80)? as u64)
    };
    let forkoff = u8_at(buf, 82)?;
    let core = core_size(version);
    if buf.len() <= core {
        return Err(Damage::new(format!("inode of {} bytes", buf.len())));
    }
    let literal = buf.len() - core;
    let (data_len, attr_len) = if forkoff == 0 {
        (literal, 0)
    } else {
        let off = forkoff as usize * 8;
        if off >= literal {
            return Err(Damage::new(format!(
                "attribute fork offset {off} past the inode's {literal} literal bytes"
            )));
        }
        (off, literal - off)
    };
    let data_fork = bytes_at(buf, core, data_len)?.to_vec();
    let attr_fork = bytes_at(buf, core + data_len, attr_len)?.to_vec();
    let format = u8_at(buf, 5)?;
    let aformat = u8_at(buf, 83)?;
    Ok(Dinode {
        mode: u16_at(buf, 2)?,
        version,
        format,
        uid: u32_at(buf, 8)?,
        gid: u32_at(buf, 12)?,
        nlink: if version == 1 {
            u16_at(buf, 6)? as u32
        } else {
            u32_at(buf, 16)?
        },
        atime: timestamp(buf, 32, bigtime)?,
        mtime: timestamp(buf, 40, bigtime)?,
        ctime: timestamp(buf, 48, bigtime)?,
        crtime: if version == 3 {
            Some(timestamp(buf, 144, bigtime)?)
        } else {
            None
        },
        size: u64_at(buf, 56)?,
        nblocks: u64_at(buf, 64)?,
        nextents,
        anextents,
        forkoff,
        aformat,
        flags: u16_at(buf, 90)?,
        flags2,
        gen: u32_at(buf, 92)?,
        ino: if version == 3 {
            Some(u64_at(buf, 152)?)
        } else {
            None
        },
        data_fork,
        attr_fork,
    })
}
