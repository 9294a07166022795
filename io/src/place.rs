//! Where a source's bytes lie in local files: what lets the FUSE layer hand the kernel
//! the image file's own page-cache pages (splice) instead of copying them into a buffer
//! of ours first and out of it again. A read through the page cache otherwise copies
//! every byte three times (image pages → our buffer → the FUSE file's pages → the
//! reader); placed bytes are copied twice.
//!
//! A caller that only wants the bytes, not splice, may also take pieces of sources that
//! are not local files ([`Ranged`]: a remote datastore file): many placed ranges can then
//! be read with a few merged requests (see [`crate::read_placed`]).

use std::fs::File;
use std::sync::Arc;

use crate::ReadAt;

/// A source that is no local file (nothing to splice from) but reads a range of any size
/// for about the cost of a small one: a remote file, one request each.
#[derive(Clone)]
pub struct Ranged(pub Arc<dyn ReadAt>);

impl Ranged {
    /// Whether both name the same source (its pieces may then be read together).
    pub fn same(&self, other: &Ranged) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl std::fmt::Debug for Ranged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Ranged({:p}, {} bytes)",
            Arc::as_ptr(&self.0),
            self.0.size()
        )
    }
}

/// One stretch of a placed range, in order.
#[derive(Debug, Clone)]
pub enum Piece {
    /// `len` bytes at `offset` in `file`.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
    /// `len` bytes at `offset` in a source that is no local file; only in places that
    /// take them ([`Places::with_ranged`]).
    Ranged { src: Ranged, offset: u64, len: u64 },
    /// `len` bytes that read as zeros (a sparse run, an unallocated grain).
    Zero(u64),
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::File { len, .. } | Piece::Ranged { len, .. } | Piece::Zero(len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len_mut(&mut self) -> &mut u64 {
        match self {
            Piece::File { len, .. } | Piece::Ranged { len, .. } | Piece::Zero(len) => len,
        }
    }
}

/// The pieces of one placed range, neighbours merged: a file's contiguous stretches
/// become one piece, so a defragmented file in a sparse image is a few splices per
/// megabyte, not one per grain or cluster.
#[derive(Debug, Default)]
pub struct Places {
    pieces: Vec<Piece>,
    len: u64,
    takes_ranged: bool,
}

impl Places {
    /// Places in local files only: what a spliced reply can carry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places in local files or in ranged sources: for a caller that reads the bytes.
    pub fn with_ranged() -> Self {
        Places {
            takes_ranged: true,
            ..Self::default()
        }
    }

    /// Whether a source that is no local file may place its bytes here.
    pub fn takes_ranged(&self) -> bool {
        self.takes_ranged
    }

    pub fn clear(&mut self) {
        self.pieces.clear();
        self.len = 0;
    }

    /// Bytes placed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub fn file(&mut self, file: &Arc<File>, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let continues = |p: &Piece| {
            matches!(p, Piece::File { file: f, offset: o, len: l }
                if Arc::ptr_eq(f, file) && o.checked_add(*l) == Some(offset))
        };
        if !self.extend_last(len, continues) {
            self.pieces.push(Piece::File {
                file: Arc::clone(file),
                offset,
                len,
            });
        }
    }

    /// `len` bytes at `offset` of `src`; false (nothing added) when these places take
    /// local files only.
    pub fn ranged(&mut self, src: &Ranged, offset: u64, len: u64) -> bool {
        if !self.takes_ranged {
            return false;
        }
        if len == 0 {
            return true;
        }
        let continues = |p: &Piece| {
            matches!(p, Piece::Ranged { src: s, offset: o, len: l }
                if s.same(src) && o.checked_add(*l) == Some(offset))
        };
        if !self.extend_last(len, continues) {
            self.pieces.push(Piece::Ranged {
                src: src.clone(),
                offset,
                len,
            });
        }
        true
    }

    /// Counts `len` more bytes, adding them to the last piece when `continues` says they
    /// go on where it ends; false when they need a piece of their own.
    fn extend_last(&mut self, len: u64, continues: impl FnOnce(&Piece) -> bool) -> bool {
        self.len += len;
        match self.pieces.last_mut() {
            Some(last) if continues(last) => {
                *last.len_mut() += len;
                true
            }
            _ => false,
        }
    }

    /// The bytes the pieces stand for, read from the files they name (zeros for the
    /// rest): what a reply spliced from them carries.
    pub fn gather(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut out = vec![0u8; usize::try_from(self.len).map_err(std::io::Error::other)?];
        let mut at = 0usize;
        for piece in &self.pieces {
            let n = piece.len() as usize;
            let to = &mut out[at..at + n];
            match piece {
                Piece::File { file, offset, .. } => file.read_exact_at(to, *offset)?,
                Piece::Ranged { src, offset, .. } => src.0.read_at(*offset, to)?,
                Piece::Zero(_) => {}
            }
            at += n;
        }
        Ok(out)
    }

    pub fn zero(&mut self, len: u64) {
        if len == 0 {
            return;
        }
        if !self.extend_last(len, |p| matches!(p, Piece::Zero(_))) {
            self.pieces.push(Piece::Zero(len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<File> {
        Arc::new(File::open("/dev/null").unwrap())
    }

    #[test]
    fn contiguous_stretches_of_one_file_merge_and_others_do_not() {
        let (a, b) = (file(), file());
        let mut p = Places::new();
        p.file(&a, 100, 10);
        p.file(&a, 110, 5);
        p.file(&a, 200, 5);
        p.file(&b, 205, 5);
        p.zero(3);
        p.zero(4);
        p.file(&b, 0, 0);
        p.zero(0);
        assert_eq!(p.len(), 32);
        let lens: Vec<u64> = p.pieces().iter().map(Piece::len).collect();
        assert_eq!(lens, [15, 5, 5, 7]);
        assert!(matches!(p.pieces()[0], Piece::File { offset: 100, .. }));
        assert!(matches!(p.pieces()[3], Piece::Zero(7)));
        p.clear();
        assert!(p.is_empty() && p.pieces().is_empty());
    }

    #[test]
    fn gather_reads_the_pieces_from_their_files_and_zeros_between() {
        use std::io::Write;
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(b"0123456789").unwrap();
        let f = Arc::new(File::open(t.path()).unwrap());
        let mut p = Places::new();
        p.file(&f, 7, 3);
        p.zero(2);
        p.file(&f, 0, 2);
        assert_eq!(p.gather().unwrap(), b"789\x00\x0001");
        p.file(&f, 9, 2);
        assert!(p.gather().is_err(), "a piece past the file's end");
    }
}
