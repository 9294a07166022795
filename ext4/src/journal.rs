//! The jbd2 journal (big-endian, unlike the rest of ext4): its superblock (v1/v2),
//! descriptor blocks with block tags (32/64-bit, csum v2/v3 layouts), commit blocks
//! and revoke blocks; and a read-only, in-memory replay: which journal block holds
//! the newest committed copy of which file system block.
//!
//! Replay follows jbd2's recovery: walk the log from `s_start` with sequence
//! `s_sequence`, a transaction counting only once its commit block is found; revoke
//! records of committed transactions cancel copies of a block logged in the same or
//! earlier transactions; of the rest, the last copy in log order wins. Checksums
//! (csum v2/v3 tags, commit and descriptor tails) are not verified: without
//! async_commit the commit block is written only after the blocks it covers. The
//! fast-commit area is not replayed.

use std::collections::{BTreeMap, HashMap};

pub const MAGIC: u32 = 0xC03B_3998;
pub const DESCRIPTOR: u32 = 1;
pub const COMMIT: u32 = 2;
pub const SUPERBLOCK_V1: u32 = 3;
pub const SUPERBLOCK_V2: u32 = 4;
pub const REVOKE: u32 = 5;

pub const INCOMPAT_REVOKE: u32 = 0x1;
pub const INCOMPAT_64BIT: u32 = 0x2;
pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
pub const INCOMPAT_CSUM_V2: u32 = 0x8;
pub const INCOMPAT_CSUM_V3: u32 = 0x10;
pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const INCOMPAT_KNOWN: u32 = 0x3F;

pub const FLAG_ESCAPE: u32 = 1;
pub const FLAG_SAME_UUID: u32 = 2;
pub const FLAG_LAST_TAG: u32 = 8;

fn be32(b: &[u8], o: usize) -> Result<u32, String> {
    b.get(o..o + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("4 bytes wanted at {o} of a {}-byte block", b.len()))
}

/// A block header: (magic ok, blocktype, sequence).
pub fn header(b: &[u8]) -> Option<(u32, u32)> {
    (be32(b, 0).ok()? == MAGIC).then_some((be32(b, 4).ok()?, be32(b, 8).ok()?))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSuperblock {
    pub block_size: u32,
    pub maxlen: u32,
    pub first: u32,
    pub sequence: u32,
    pub start: u32,
    pub errno: i32,
    pub feature_incompat: u32,
    pub num_fc_blocks: u32,
}

impl JournalSuperblock {
    pub fn parse(b: &[u8]) -> Result<JournalSuperblock, String> {
        let (kind, _) = header(b).ok_or("no jbd2 magic in the journal superblock")?;
        if kind != SUPERBLOCK_V1 && kind != SUPERBLOCK_V2 {
            return Err(format!("journal superblock has block type {kind}"));
        }
        let v2 = kind == SUPERBLOCK_V2;
        let sb = JournalSuperblock {
            block_size: be32(b, 0xC)?,
            maxlen: be32(b, 0x10)?,
            first: be32(b, 0x14)?,
            sequence: be32(b, 0x18)?,
            start: be32(b, 0x1C)?,
            errno: be32(b, 0x20)? as i32,
            feature_incompat: if v2 { be32(b, 0x28)? } else { 0 },
            num_fc_blocks: if v2 { be32(b, 0x54)? } else { 0 },
        };
        if sb.feature_incompat & !INCOMPAT_KNOWN != 0 {
            return Err(format!(
                "unknown journal INCOMPAT features {:#x}",
                sb.feature_incompat & !INCOMPAT_KNOWN
            ));
        }
        if sb.first == 0 || sb.first >= sb.maxlen {
            return Err(format!("log area {}..{}", sb.first, sb.maxlen));
        }
        Ok(sb)
    }

    fn has(&self, f: u32) -> bool {
        self.feature_incompat & f != 0
    }

    /// One past the last block of the circular log (the fast-commit area follows it).
    pub fn log_end(&self) -> u32 {
        if self.has(INCOMPAT_FAST_COMMIT) {
            let fc = if self.num_fc_blocks == 0 {
                256
            } else {
                self.num_fc_blocks
            };
            self.maxlen.saturating_sub(fc).max(self.first + 1)
        } else {
            self.maxlen
        }
    }

    /// Bytes per descriptor tag (journal_tag_bytes).
    pub fn tag_bytes(&self) -> usize {
        if self.has(INCOMPAT_CSUM_V3) {
            return 16;
        }
        let sz = 12 + if self.has(INCOMPAT_CSUM_V2) { 2 } else { 0 };
        if self.has(INCOMPAT_64BIT) {
            sz
        } else {
            sz - 4
        }
    }

    /// Room at the end of a descriptor or revoke block for its checksum tail.
    pub fn tail_bytes(&self) -> usize {
        if self.has(INCOMPAT_CSUM_V2) || self.has(INCOMPAT_CSUM_V3) {
            4
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub fs_block: u64,
    pub flags: u32,
}

/// The tags of a descriptor block, in order (each names the fs block of the next log
/// block).
pub fn parse_descriptor(b: &[u8], jsb: &JournalSuperblock) -> Result<Vec<Tag>, String> {
    let tb = jsb.tag_bytes();
    let end = b.len().saturating_sub(jsb.tail_bytes());
    let csum3 = jsb.has(INCOMPAT_CSUM_V3);
    let is64 = jsb.has(INCOMPAT_64BIT);
    let mut out = Vec::new();
    let mut o = 12;
    while o + tb <= end {
        let lo = be32(b, o)? as u64;
        let (flags, hi) = if csum3 {
            (
                be32(b, o + 4)?,
                if is64 { be32(b, o + 8)? as u64 } else { 0 },
            )
        } else {
            let fl = b
                .get(o + 6..o + 8)
                .map(|s| u16::from_be_bytes([s[0], s[1]]) as u32)
                .ok_or("short tag")?;
            (fl, if is64 { be32(b, o + 8)? as u64 } else { 0 })
        };
        out.push(Tag {
            fs_block: hi << 32 | lo,
            flags,
        });
        o += tb;
        if flags & FLAG_SAME_UUID == 0 {
            o += 16;
        }
        if flags & FLAG_LAST_TAG != 0 {
            break;
        }
    }
    Ok(out)
}

/// The block numbers a revoke block revokes.
pub fn parse_revoke(b: &[u8], jsb: &JournalSuperblock) -> Result<Vec<u64>, String> {
    let count = be32(b, 12)? as usize;
    let end = b.len().saturating_sub(jsb.tail_bytes());
    if count < 16 || count > end {
        return Err(format!("revoke block r_count {count}"));
    }
    let rec = if jsb.has(INCOMPAT_64BIT) { 8 } else { 4 };
    let mut out = Vec::new();
    let mut o = 16;
    while o + rec <= count {
        let v = if rec == 8 {
            (be32(b, o)? as u64) << 32 | be32(b, o + 4)? as u64
        } else {
            be32(b, o)? as u64
        };
        out.push(v);
        o += rec;
    }
    Ok(out)
}

/// Where the newest committed copy of a file system block lies in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    /// Logical block within the journal (inode 8's data).
    pub journal_block: u32,
    /// The copy's first 4 bytes were the jbd2 magic, stored escaped as zeros.
    pub escaped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    pub overlay: BTreeMap<u64, Copy>,
    pub transactions: u32,
    pub revoked: usize,
}

/// Walks the log (see the module doc). `read` gives the journal's logical block `n`.
pub fn replay(
    jsb: &JournalSuperblock,
    mut read: impl FnMut(u32) -> Result<Vec<u8>, String>,
) -> Result<Replay, (u32, String)> {
    let mut out = Replay::default();
    if jsb.start == 0 {
        return Ok(out);
    }
    let end = jsb.log_end();
    if jsb.start < jsb.first || jsb.start >= end {
        return Err((
            0,
            format!("log start {} outside {}..{end}", jsb.start, jsb.first),
        ));
    }
    let wrap = |p: u32| if p + 1 >= end { jsb.first } else { p + 1 };
    let mut pos = jsb.start;
    let mut seq = jsb.sequence;
    // Per committed transaction: its sequence and its (fs block, copy) pairs.
    let mut committed: Vec<(u32, Vec<(u64, Copy)>)> = Vec::new();
    let mut revokes: HashMap<u64, u32> = HashMap::new();
    let mut pending: Vec<(u64, Copy)> = Vec::new();
    let mut pending_revokes: Vec<u64> = Vec::new();
    // A log longer than the area is a cycle in corrupt data: bound the walk by it.
    let mut budget = (end - jsb.first) as u64;
    while budget > 0 {
        budget -= 1;
        let b = read(pos).map_err(|e| (pos, e))?;
        let Some((kind, s)) = header(&b) else { break };
        if s != seq {
            break;
        }
        match kind {
            DESCRIPTOR => {
                let tags = parse_descriptor(&b, jsb).map_err(|e| (pos, e))?;
                for t in tags {
                    pos = wrap(pos);
                    if budget == 0 {
                        break;
                    }
                    budget -= 1;
                    pending.push((
                        t.fs_block,
                        Copy {
                            journal_block: pos,
                            escaped: t.flags & FLAG_ESCAPE != 0,
                        },
                    ));
                }
            }
            COMMIT => {
                committed.push((seq, std::mem::take(&mut pending)));
                for r in pending_revokes.drain(..) {
                    let e = revokes.entry(r).or_insert(seq);
                    *e = (*e).max(seq);
                }
                seq = seq.wrapping_add(1);
            }
            REVOKE => {
                pending_revokes.extend(parse_revoke(&b, jsb).map_err(|e| (pos, e))?);
            }
            _ => break,
        }
        pos = wrap(pos);
    }
    out.transactions = committed.len() as u32;
    for (tseq, blocks) in committed {
        for (fs_block, copy) in blocks {
            // Revoked when a committed revoke record for it is as new or newer.
            if revokes
                .get(&fs_block)
                .is_some_and(|&r| r.wrapping_sub(tseq) as i32 >= 0)
            {
                out.revoked += 1;
                continue;
            }
            out.overlay.insert(fs_block, copy);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsb(incompat: u32) -> JournalSuperblock {
        JournalSuperblock {
            block_size: 1024,
            maxlen: 64,
            first: 1,
            sequence: 7,
            start: 1,
            errno: 0,
            feature_incompat: incompat,
            num_fc_blocks: 0,
        }
    }

    fn hdr(kind: u32, seq: u32) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&kind.to_be_bytes());
        b[8..12].copy_from_slice(&seq.to_be_bytes());
        b
    }

    #[test]
    fn tag_sizes_follow_jbd2() {
        assert_eq!(jsb(0).tag_bytes(), 8);
        assert_eq!(jsb(INCOMPAT_64BIT).tag_bytes(), 12);
        assert_eq!(jsb(INCOMPAT_CSUM_V2).tag_bytes(), 10);
        assert_eq!(jsb(INCOMPAT_CSUM_V2 | INCOMPAT_64BIT).tag_bytes(), 14);
        assert_eq!(jsb(INCOMPAT_CSUM_V3).tag_bytes(), 16);
        assert_eq!(jsb(INCOMPAT_CSUM_V3 | INCOMPAT_64BIT).tag_bytes(), 16);
    }

    #[test]
    fn descriptor_tags_64bit_with_uuid_after_the_first() {
        let j = jsb(INCOMPAT_64BIT);
        let mut b = hdr(DESCRIPTOR, 7);
        // tag 1: block 0x1_0000_0005, no SAME_UUID: 16 bytes of UUID follow.
        b[12..16].copy_from_slice(&5u32.to_be_bytes());
        b[18..20].copy_from_slice(&(FLAG_ESCAPE as u16).to_be_bytes());
        b[20..24].copy_from_slice(&1u32.to_be_bytes());
        let t2 = 12 + 12 + 16;
        b[t2..t2 + 4].copy_from_slice(&9u32.to_be_bytes());
        b[t2 + 6..t2 + 8].copy_from_slice(&((FLAG_SAME_UUID | FLAG_LAST_TAG) as u16).to_be_bytes());
        let tags = parse_descriptor(&b, &j).unwrap();
        assert_eq!(
            tags,
            vec![
                Tag {
                    fs_block: 0x1_0000_0005,
                    flags: FLAG_ESCAPE
                },
                Tag {
                    fs_block: 9,
                    flags: FLAG_SAME_UUID | FLAG_LAST_TAG
                }
            ]
        );
    }

    #[test]
    fn replay_keeps_committed_newest_and_honours_revokes() {
        let j = jsb(INCOMPAT_REVOKE | INCOMPAT_CSUM_V3);
        let tag = |b: &mut Vec<u8>, at: usize, block: u32, last: bool| {
            b[at..at + 4].copy_from_slice(&block.to_be_bytes());
            let f = FLAG_SAME_UUID | if last { FLAG_LAST_TAG } else { 0 };
            b[at + 4..at + 8].copy_from_slice(&f.to_be_bytes());
        };
        let mut log: Vec<Vec<u8>> = vec![vec![0; 1024]]; // block 0: the superblock
                                                         // T7: blocks 100, 200; commit.
        let mut d = hdr(DESCRIPTOR, 7);
        tag(&mut d, 12, 100, false);
        tag(&mut d, 28, 200, true);
        log.extend([d, vec![1; 1024], vec![2; 1024], hdr(COMMIT, 7)]);
        // T8: block 100 again, revoke 200; commit.
        let mut d = hdr(DESCRIPTOR, 8);
        tag(&mut d, 12, 100, true);
        let mut r = hdr(REVOKE, 8);
        r[12..16].copy_from_slice(&20u32.to_be_bytes());
        r[16..20].copy_from_slice(&200u32.to_be_bytes());
        log.extend([d, vec![3; 1024], r, hdr(COMMIT, 8)]);
        // T9: block 300, never committed.
        let mut d = hdr(DESCRIPTOR, 9);
        tag(&mut d, 12, 300, true);
        log.extend([d, vec![4; 1024]]);
        let rep = replay(&j, |n| {
            Ok(log.get(n as usize).cloned().unwrap_or(vec![0; 1024]))
        })
        .unwrap();
        assert_eq!(rep.transactions, 2);
        assert_eq!(rep.overlay.len(), 1, "{rep:?}");
        assert_eq!(rep.overlay[&100].journal_block, 6);
        assert_eq!(rep.revoked, 1);
    }

    #[test]
    fn a_log_that_cycles_ends() {
        let mut j = jsb(0);
        j.maxlen = 4;
        // Every block a commit of the expected sequence would cycle forever without a
        // budget; the walk is bounded by the log size.
        let rep = replay(&j, |_| Ok(hdr(COMMIT, 7))).unwrap();
        assert!(rep.transactions <= 4);
    }
}
