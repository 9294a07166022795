//! Answering `disks/since/<id>/` for one freeze: each disk's tracker asked once per id
//! (kept for later lookups), and the sparse view's reads.

use std::sync::Arc;

use crate::source::ChangeError;
use crate::sync::Relock;

use super::ahead::Sink;
use super::changes::{DiskChanges, Since};
use super::error::{Error, Result};
use super::frozen::{DiskView, FrozenVm};

/// Known ids kept per freeze; unknown ones are answered afresh each time.
const KEEP: usize = 64;

impl FrozenVm {
    /// The changes since `id` (`*`: all allocated extents). Fails when no disk knows
    /// the id; a disk that does not is left out, with the reason logged and noted.
    pub fn since(&self, id: &str) -> Result<Arc<Since>> {
        if let Some(s) = self.since.known.lock().relock().get(id) {
            return Ok(s.clone());
        }
        let mut disks = Vec::with_capacity(self.disks.len());
        let mut unknown = Vec::new();
        for (d, fd) in self.disks.iter().zip(&self.frozen.disks) {
            let answer = match &fd.changes {
                Some(t) => t.changed_since(id),
                None => Err(ChangeError::Unknown {
                    id: id.to_owned(),
                    why: fd.cbt.why.clone(),
                }),
            };
            match answer {
                Ok(ranges) => disks.push(Some(Arc::new(DiskChanges::new(ranges, d.size())))),
                Err(e) => {
                    let why = format!("disk{}: since {id:?}: {e}", d.number);
                    tracing::warn!("{why}");
                    self.note_full_needed(why.clone());
                    unknown.push(why);
                    disks.push(None);
                }
            }
        }
        if disks.iter().all(Option::is_none) {
            return Err(Error::UnknownChangeId {
                id: id.to_owned(),
                why: unknown.join("; "),
            });
        }
        let since = Arc::new(Since {
            id: id.to_owned(),
            disks,
        });
        let mut known = self.since.known.lock().relock();
        if known.len() < KEEP {
            known.insert(id.to_owned(), since.clone());
        }
        Ok(since)
    }

    fn note_full_needed(&self, why: String) {
        super::volume::note(&self.since.full_needed, why);
    }

    /// Reads the sparse view of disk `i`'s changes: the disk's bytes inside a changed
    /// extent, zeros elsewhere.
    pub fn read_changes(
        &self,
        i: usize,
        changes: &DiskChanges,
        offset: u64,
        buf: &mut [u8],
        sink: Option<&Sink>,
    ) -> Result<usize> {
        let d: &DiskView = self.disk(i)?;
        let size = d.size();
        if offset >= size {
            return Ok(0);
        }
        let n = ((size - offset) as usize).min(buf.len());
        let (buf, end) = (&mut buf[..n], offset + n as u64);
        buf.fill(0);
        let first = changes.ranges.partition_point(|r| r.end <= offset);
        for (i, r) in changes.ranges.iter().enumerate().skip(first) {
            if r.start >= end {
                break;
            }
            let (s, e) = (r.start.max(offset), r.end.min(end));
            let part = &mut buf[(s - offset) as usize..(e - offset) as usize];
            changes
                .ahead
                .read(&d.data, &changes.ranges, i, s, part, sink)
                .map_err(|source| self.disk_error(d, s, source))?;
        }
        Ok(n)
    }

    /// A reader of disk `i`'s sparse view found data at `offset` (SEEK_DATA): the
    /// extent there, and those after it, are fetched for it and handed to `sink`.
    pub fn seek_changes(&self, i: usize, changes: &DiskChanges, offset: u64, sink: &Sink) {
        if let Ok(d) = self.disk(i) {
            let k = changes.ranges.partition_point(|r| r.end <= offset);
            changes.ahead.seek(&d.data, &changes.ranges, k, sink);
        }
    }
}
