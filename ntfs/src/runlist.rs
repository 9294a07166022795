//! Data runs ("mapping pairs"): the compressed VCN→LCN map of a non-resident attribute.

/// One extent: `len` clusters starting at virtual cluster `vcn`, stored at logical cluster
/// `lcn`, or not stored at all (`None`: sparse, reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub vcn: u64,
    pub lcn: Option<u64>,
    pub len: u64,
}

impl Run {
    pub fn end_vcn(&self) -> u64 {
        self.vcn + self.len
    }
}

/// Decodes the mapping pairs in `bytes`; `start_vcn` comes from the attribute header
/// because an attribute split over extension records restarts its runlist at that VCN.
pub fn decode(bytes: &[u8], start_vcn: u64) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = start_vcn;
    let mut lcn: i64 = 0;
    while let Some(&header) = bytes.get(pos) {
        if header == 0 {
            break;
        }
        let len_size = (header & 0x0F) as usize;
        let off_size = (header >> 4) as usize;
        if len_size == 0 || len_size > 8 || off_size > 8 {
            return Err(format!("bad run header byte {header:#04x} at {pos}"));
        }
        let len_bytes = bytes
            .get(pos + 1..pos + 1 + len_size)
            .ok_or_else(|| format!("run at {pos} truncated"))?;
        let len = le_unsigned(len_bytes);
        if len == 0 || len > i64::MAX as u64 {
            return Err(format!("run at {pos} has length {len}"));
        }
        let off_start = pos + 1 + len_size;
        let run_lcn = if off_size == 0 {
            None
        } else {
            let off_bytes = bytes
                .get(off_start..off_start + off_size)
                .ok_or_else(|| format!("run at {pos} truncated"))?;
            lcn = lcn
                .checked_add(le_signed(off_bytes))
                .filter(|&l| l >= 0)
                .ok_or_else(|| format!("run at {pos} points before the volume start"))?;
            Some(lcn as u64)
        };
        runs.push(Run {
            vcn,
            lcn: run_lcn,
            len,
        });
        vcn = vcn
            .checked_add(len)
            .ok_or_else(|| format!("run at {pos} overflows the VCN space"))?;
        pos = off_start + off_size;
    }
    Ok(runs)
}

fn le_unsigned(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

fn le_signed(b: &[u8]) -> i64 {
    let v = le_unsigned(b);
    let bits = b.len() * 8;
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The run containing `vcn`, by binary search (runs are sorted and non-overlapping).
pub fn find(runs: &[Run], vcn: u64) -> Option<&Run> {
    let i = runs.partition_point(|r| r.end_vcn() <= vcn);
    runs.get(i).filter(|r| r.vcn <= vcn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sparse_and_negative() {
        // 0x18 clusters at 0x5634, sparse 0x10, 0x08 at 0x5634-0x10
        let b = [0x21, 0x18, 0x34, 0x56, 0x01, 0x10, 0x11, 0x08, 0xF0, 0x00];
        let r = decode(&b, 0).unwrap();
        assert_eq!(
            r,
            vec![
                Run {
                    vcn: 0,
                    lcn: Some(0x5634),
                    len: 0x18
                },
                Run {
                    vcn: 0x18,
                    lcn: None,
                    len: 0x10
                },
                Run {
                    vcn: 0x28,
                    lcn: Some(0x5624),
                    len: 8
                },
            ]
        );
        assert_eq!(find(&r, 0x20).unwrap().lcn, None);
        assert!(find(&r, 0x30).is_none());
    }

    #[test]
    fn rejects_negative_lcn_and_truncation() {
        assert!(decode(&[0x11, 0x01, 0xFF], 0).is_err());
        assert!(decode(&[0x31, 0x01], 0).is_err());
    }
}
