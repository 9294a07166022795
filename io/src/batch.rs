//! Many placed ranges read at once. An incremental copy asks for scattered changed
//! extents, and through a remote datastore every request costs a round trip and the
//! server's own work (authorization, lookup, opening the file). A snapshot link holds
//! the grains it wrote side by side in its file, so extents far apart in the disk often
//! lie next to each other in the link: pieces of one source that lie near each other are
//! read as one range, and the gap between them is read too and dropped, which costs
//! less than a request of its own. The ranges of one source then go to it in one call
//! (`ReadAt::read_ranges`), which a remote file answers with one request for them all.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::{Piece, Places, Ranged};

/// How far pieces of one source are merged into one read.
#[derive(Debug, Clone, Copy)]
pub struct Merge {
    /// Bytes between two pieces at most that are read (and dropped) to join them.
    pub gap: u64,
    /// Bytes one read spans at most, gaps included (a bigger piece is read on its own).
    pub span: u64,
}

enum Src<'a> {
    File(&'a Arc<File>),
    Ranged(&'a Ranged),
}

impl Src<'_> {
    /// Which source: pieces with the same key are read from the same place.
    fn key(&self) -> usize {
        match self {
            Src::File(f) => Arc::as_ptr(f) as *const () as usize,
            Src::Ranged(r) => Arc::as_ptr(&r.0) as *const () as usize,
        }
    }

    fn read_ranges(&self, ranges: &mut [(u64, &mut [u8])]) -> io::Result<()> {
        match self {
            Src::File(f) => ranges
                .iter_mut()
                .try_for_each(|(offset, buf)| f.read_exact_at(buf, *offset)),
            Src::Ranged(r) => r.0.read_ranges(ranges),
        }
    }
}

struct Want<'a> {
    src: Src<'a>,
    key: usize,
    offset: u64,
    len: usize,
    /// Which buffer of the batch, and where in it.
    to: (usize, usize),
}

impl Want<'_> {
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.len as u64)
    }
}

/// Fills each buffer of `batch` with the bytes its places stand for (as
/// [`Places::gather`] would), reading the pieces that lie in one source near each other
/// with one read. A buffer whose length is not its places' fails the batch.
pub fn read_placed(batch: &mut [(&Places, &mut [u8])], merge: Merge) -> io::Result<()> {
    let mut wants = Vec::new();
    for (k, (places, buf)) in batch.iter_mut().enumerate() {
        let places: &Places = places;
        if places.len() != buf.len() as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes placed for a {}-byte buffer",
                    places.len(),
                    buf.len()
                ),
            ));
        }
        let mut at = 0usize;
        for p in places.pieces() {
            let n = p.len() as usize;
            let (src, offset) = match p {
                Piece::Zero(_) => {
                    buf[at..at + n].fill(0);
                    at += n;
                    continue;
                }
                Piece::File { file, offset, .. } => (Src::File(file), *offset),
                Piece::Ranged { src, offset, .. } => (Src::Ranged(src), *offset),
            };
            let key = src.key();
            wants.push(Want {
                src,
                key,
                offset,
                len: n,
                to: (k, at),
            });
            at += n;
        }
    }
    wants.sort_by_key(|w| (w.key, w.offset));
    // Runs of pieces read as one range each: (first and end want, start, end).
    let mut runs: Vec<(Range<usize>, u64, u64)> = Vec::new();
    let mut i = 0;
    while i < wants.len() {
        let (key, start) = (wants[i].key, wants[i].offset);
        let mut end = wants[i].end();
        let mut j = i + 1;
        while let Some(w) = wants.get(j) {
            let joined = end.max(w.end());
            if w.key != key
                || w.offset > end.saturating_add(merge.gap)
                || joined - start > merge.span
            {
                break;
            }
            end = joined;
            j += 1;
        }
        runs.push((i..j, start, end));
        i = j;
    }
    // The runs of one source go to it at once: a remote file asks for them in one
    // request.
    let mut r = 0;
    while r < runs.len() {
        let key = wants[runs[r].0.start].key;
        let n = runs[r..]
            .iter()
            .take_while(|(w, ..)| wants[w.start].key == key)
            .count();
        let group = &runs[r..r + n];
        let mut bufs = group
            .iter()
            .map(|(_, start, end)| {
                Ok(vec![
                    0u8;
                    usize::try_from(end - start)
                        .map_err(io::Error::other)?
                ])
            })
            .collect::<io::Result<Vec<Vec<u8>>>>()?;
        let mut ranges: Vec<(u64, &mut [u8])> = group
            .iter()
            .zip(bufs.iter_mut())
            .map(|((_, start, _), b)| (*start, &mut b[..]))
            .collect();
        wants[group[0].0.start].src.read_ranges(&mut ranges)?;
        for ((ws, start, _), run) in group.iter().zip(&bufs) {
            for w in &wants[ws.clone()] {
                let from = (w.offset - start) as usize;
                let (k, at) = w.to;
                batch[k].1[at..at + w.len].copy_from_slice(&run[from..from + w.len]);
            }
        }
        r += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReadAt, SharedBytes};
    use std::sync::Mutex;

    /// Bytes are their offset mod 251; every read is recorded, and every call for
    /// several ranges at once counted.
    #[derive(Default)]
    struct Logged {
        reads: Mutex<Vec<(u64, usize)>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl ReadAt for Logged {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads.lock().unwrap().push((offset, buf.len()));
            if offset + buf.len() as u64 > self.size() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            for (k, b) in buf.iter_mut().enumerate() {
                *b = ((offset + k as u64) % 251) as u8;
            }
            Ok(())
        }
        fn size(&self) -> u64 {
            1 << 20
        }
        fn read_ranges(&self, ranges: &mut [(u64, &mut [u8])]) -> io::Result<()> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ranges.iter_mut().try_for_each(|(o, b)| self.read_at(*o, b))
        }
    }

    fn calls(l: &Logged) -> usize {
        l.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bytes(r: std::ops::Range<u64>) -> Vec<u8> {
        r.map(|o| (o % 251) as u8).collect()
    }

    const MERGE: Merge = Merge {
        gap: 100,
        span: 1000,
    };

    /// Reads each places into a buffer of 0xee (so zeros are seen written).
    fn read(all: &[Places], merge: Merge) -> io::Result<Vec<Vec<u8>>> {
        let mut bufs: Vec<Vec<u8>> = all.iter().map(|p| vec![0xee; p.len() as usize]).collect();
        let mut batch: Vec<(&Places, &mut [u8])> = all
            .iter()
            .zip(bufs.iter_mut())
            .map(|(p, b)| (p, &mut b[..]))
            .collect();
        read_placed(&mut batch, merge)?;
        Ok(bufs)
    }

    #[test]
    fn near_pieces_of_one_source_are_read_once_and_each_gets_its_bytes() {
        let log = Arc::new(Logged::default());
        let src = Ranged(log.clone());
        let (mut a, mut b, mut c) = (
            Places::with_ranged(),
            Places::with_ranged(),
            Places::with_ranged(),
        );
        // Out of order across the batch, a gap of 50, zeros between, an overlap.
        assert!(a.ranged(&src, 500, 10));
        a.zero(5);
        assert!(a.ranged(&src, 100, 20));
        assert!(b.ranged(&src, 170, 30));
        assert!(c.ranged(&src, 505, 20));
        let got = read(&[a, b, c], MERGE).unwrap();
        let mut want_a = bytes(500..510);
        want_a.extend([0; 5]);
        want_a.extend(bytes(100..120));
        assert_eq!(got, [want_a, bytes(170..200), bytes(505..525)]);
        // 100..200 joined over a 50-byte gap; 500..525 is 300 past it, more than the gap.
        assert_eq!(*log.reads.lock().unwrap(), [(100, 100), (500, 25)]);
        assert_eq!(calls(&log), 1, "both runs asked of the source at once");
    }

    #[test]
    fn a_span_too_long_and_two_sources_are_separate_reads() {
        let (l1, l2) = (Arc::new(Logged::default()), Arc::new(Logged::default()));
        let (s1, s2) = (Ranged(l1.clone()), Ranged(l2.clone()));
        let mut p = Places::with_ranged();
        for k in 0..5u64 {
            assert!(p.ranged(&s1, k * 300, 250));
        }
        assert!(p.ranged(&s2, 260, 10));
        let got = read(&[p], MERGE).unwrap();
        let mut want = Vec::new();
        for k in 0..5u64 {
            want.extend(bytes(k * 300..k * 300 + 250));
        }
        want.extend(bytes(260..270));
        assert_eq!(got, [want]);
        // At most 1000 bytes a read: 0..850 (three pieces), then 900..1450.
        assert_eq!(*l1.reads.lock().unwrap(), [(0, 850), (900, 550)]);
        assert_eq!(*l2.reads.lock().unwrap(), [(260, 10)]);
        assert_eq!((calls(&l1), calls(&l2)), (1, 1));
    }

    #[test]
    fn file_pieces_are_merged_too_and_errors_come_back() {
        use std::io::Write;
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(&bytes(0..4096)).unwrap();
        let f = Arc::new(File::open(t.path()).unwrap());
        let (mut a, mut b) = (Places::new(), Places::new());
        a.file(&f, 4000, 50);
        b.file(&f, 10, 20);
        b.zero(3);
        let got = read(&[a, b], MERGE).unwrap();
        let mut want_b = bytes(10..30);
        want_b.extend([0; 3]);
        assert_eq!(got, [bytes(4000..4050), want_b]);
        let mut past = Places::new();
        past.file(&f, 4090, 10);
        assert!(read(&[past], MERGE).is_err(), "past the file's end");
        let mut short = Places::new();
        short.zero(4);
        let mut buf = [0u8; 3];
        assert!(read_placed(&mut [(&short, &mut buf[..])], MERGE).is_err());
    }

    #[test]
    fn places_for_splice_take_no_ranged_pieces() {
        let src = Ranged(Arc::new(SharedBytes(Arc::new(vec![1; 10]))));
        let mut p = Places::new();
        assert!(!p.takes_ranged() && !p.ranged(&src, 0, 5));
        assert!(p.is_empty());
        let mut q = Places::with_ranged();
        assert!(q.ranged(&src, 0, 5) && q.ranged(&src, 5, 5));
        assert_eq!(q.pieces().len(), 1, "contiguous pieces of one source merge");
        assert_eq!(q.gather().unwrap(), [1; 10]);
        q.clear();
        assert!(q.takes_ranged(), "clear keeps what the places take");
    }
}
