//! The one primitive every vmsnapfs reader stands on: fill a buffer from an offset,
//! through `&self`, so that many FUSE threads can read the same source at once; and the
//! few helpers every reader needs on top of it, kept here once so that they behave the
//! same in every crate: little-endian fields ([`le`]), a sharded LRU ([`ShardedLru`]),
//! a fill loop for partial reads ([`fill`]) and one for many placed ranges at once
//! ([`read_placed`]).
#![forbid(unsafe_code)]

mod batch;
pub mod crc;
mod fill;
pub mod hint;
pub mod le;
mod place;
mod sharded_lru;

pub use batch::{read_placed, Merge};
pub use fill::fill;
pub use le::ShortBuffer;
pub use place::{Piece, Places, Ranged};
pub use sharded_lru::{ShardedLru, DEFAULT_SHARDS};

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// A fixed-size, positionally readable byte source.
///
/// `read_at` fills `buf` completely or fails: a read that would cross `size()` is an
/// `UnexpectedEof` error, so parsers never mistake a short read for zeros.
pub trait ReadAt: Send + Sync {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn size(&self) -> u64;

    /// The `len` bytes at `offset` without a copy, from a buffer this source holds
    /// anyway (a read-ahead chunk); None when it holds none that covers them, and the
    /// caller reads them with `read_at`. Streaming a disk image to the kernel from the
    /// buffer its bytes arrived in saves a pass over memory per byte.
    fn lend(&self, _offset: u64, _len: usize) -> Option<io::Result<Lent>> {
        None
    }

    /// Appends to `out` where in local files the `len` bytes at `offset` lie (or that
    /// they read as zeros), exactly as `read_at` would return them. False when some of
    /// them cannot be placed (held in memory, compressed, remote, out of bounds, or the
    /// map could not be read); `out` may then hold a part, which the caller discards
    /// and reads the bytes with `read_at`, which reports any error.
    fn place(&self, _offset: u64, _len: u64, _out: &mut Places) -> bool {
        false
    }

    /// Fills each buffer from its offset, as `read_at` would one by one; a source that
    /// pays a round trip per request (a remote file) asks for them all in one.
    fn read_ranges(&self, ranges: &mut [(u64, &mut [u8])]) -> io::Result<()> {
        for (offset, buf) in ranges.iter_mut() {
            self.read_at(*offset, buf)?;
        }
        Ok(())
    }
}

/// Bytes lent by a source: `data[range]`.
#[derive(Debug, Clone)]
pub struct Lent {
    pub data: Arc<Vec<u8>>,
    pub range: std::ops::Range<usize>,
}

impl Lent {
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.range.clone()]
    }
}

/// Whether `len` bytes at `offset` lie inside `size` bytes.
pub fn fits(offset: u64, len: u64, size: u64) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

/// Checks that `len` bytes at `offset` lie inside a source of `size` bytes.
pub fn check_bounds(offset: u64, len: usize, size: u64) -> io::Result<()> {
    if fits(offset, len as u64, size) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("read of {len} bytes at offset {offset} past end of {size}-byte source"),
    ))
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        (**self).lend(offset, len)
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        (**self).place(offset, len, out)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        (**self).lend(offset, len)
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        (**self).place(offset, len, out)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        (**self).lend(offset, len)
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        (**self).place(offset, len, out)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.len() as u64)?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// Bytes held in memory as a source that lends any range of itself: an in-memory disk
/// or file, as a read-ahead chunk would lend it.
#[derive(Debug, Clone)]
pub struct SharedBytes(pub Arc<Vec<u8>>);

impl ReadAt for SharedBytes {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        if let Err(e) = check_bounds(offset, len, self.size()) {
            return Some(Err(e));
        }
        let at = offset as usize;
        Some(Ok(Lent {
            data: self.0.clone(),
            range: at..at + len,
        }))
    }
}

/// A local file opened read-only, its size taken once at open: a frozen view must not
/// grow under a reader even if someone appends to the file.
#[derive(Debug)]
pub struct FileSource {
    file: Arc<File>,
    size: u64,
}

impl FileSource {
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        Self::from_file(File::open(path)?)
    }

    pub fn from_file(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self {
            file: Arc::new(file),
            size,
        })
    }
}

impl ReadAt for FileSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        if !fits(offset, len, self.size) {
            return false;
        }
        out.file(&self.file, offset, len);
        true
    }
}

/// A window `[start, start + len)` of another source, e.g. one partition of a disk.
#[derive(Debug, Clone)]
pub struct Window<R> {
    inner: R,
    start: u64,
    len: u64,
}

impl<R: ReadAt> Window<R> {
    /// Fails when the window does not lie inside `inner`.
    pub fn new(inner: R, start: u64, len: u64) -> io::Result<Self> {
        check_bounds(start, 0, inner.size())?;
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Self { inner, start, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "window {start}+{len} lies outside a {}-byte source",
                    inner.size()
                ),
            )),
        }
    }

    pub fn start(&self) -> u64 {
        self.start
    }
}

impl<R: ReadAt> ReadAt for Window<R> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.inner.read_at(self.start + offset, buf)
    }
    fn size(&self) -> u64 {
        self.len
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        if let Err(e) = check_bounds(offset, len, self.len) {
            return Some(Err(e));
        }
        self.inner.lend(self.start + offset, len)
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        fits(offset, len, self.len) && self.inner.place(self.start + offset, len, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_a_file_places_its_bytes_where_the_file_holds_them() {
        let path = std::env::temp_dir().join(format!("io-place-{}", std::process::id()));
        std::fs::write(&path, (0..=255u8).collect::<Vec<_>>()).unwrap();
        let src = FileSource::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let w = Window::new(&src, 16, 100).unwrap();
        let mut out = Places::new();
        assert!(w.place(10, 50, &mut out));
        match out.pieces() {
            [Piece::File { offset, len, file }] => {
                let mut b = [0u8; 50];
                file.read_exact_at(&mut b, *offset).unwrap();
                let mut want = [0u8; 50];
                w.read_at(10, &mut want).unwrap();
                assert_eq!((*offset, *len, b), (26, 50, want));
            }
            other => panic!("{other:?}"),
        }
        out.clear();
        assert!(!w.place(60, 41, &mut out), "past the window");
        assert!(!w.place(u64::MAX, 2, &mut out));
        assert!(!src.place(250, 7, &mut out), "past the file");
        assert!(
            !SharedBytes(Arc::new(vec![0; 8])).place(0, 8, &mut out),
            "in memory"
        );
    }

    #[test]
    fn window_bounds_are_enforced() {
        let data: Vec<u8> = (0..100u8).collect();
        let w = Window::new(&data, 10, 20).unwrap();
        let mut buf = [0u8; 5];
        w.read_at(15, &mut buf).unwrap();
        assert_eq!(buf, [25, 26, 27, 28, 29]);
        assert!(w.read_at(16, &mut buf).is_err());
        assert!(w.read_at(u64::MAX, &mut buf).is_err());
        assert!(Window::new(&data, 90, 20).is_err());
        assert!(Window::new(&data, u64::MAX, 2).is_err());
    }

    #[test]
    fn windows_lend_from_their_place_in_the_source_and_within_bounds() {
        let src = SharedBytes(Arc::new((0..100u8).collect()));
        let w = Window::new(&src, 10, 20).unwrap();
        assert_eq!(
            w.lend(15, 5).unwrap().unwrap().bytes(),
            [25, 26, 27, 28, 29]
        );
        assert!(w.lend(16, 5).unwrap().is_err());
        assert!(w.lend(u64::MAX, 5).unwrap().is_err());
        // Sources that hold no buffers lend nothing.
        assert!(vec![1u8; 8].lend(0, 4).is_none());
    }

    #[test]
    fn slice_read_past_end_is_eof() {
        let data = vec![1u8; 8];
        let mut buf = [0u8; 4];
        let err = data.read_at(6, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
