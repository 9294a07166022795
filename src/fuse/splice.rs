//! Read replies spliced from the image file's page cache into the FUSE device.
//!
//! A reply written from a buffer of ours costs two copies on our side (the image's
//! pages into the buffer, the buffer into the kernel's pages for the FUSE file) before
//! the reader's own; splicing hands the kernel references to the image's page-cache
//! pages through a pipe, and the kernel copies each byte once into the FUSE file's
//! pages. fuser writes replies only from buffers, so this writes the reply itself to
//! the device, and the request is then answered: fuser's reply object is forgotten.
//!
//! Replies must go to the descriptor the request was read from, so a splicing mount
//! reads every request from one descriptor (no per-thread clones); ours is a dup of it.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{splice, FcntlArg, SpliceFFlags};
use vmsnapfs_io::{Piece, Places};

/// Below this a reply is cheaper written: the splices cost more calls than the copy.
pub const MIN_SPLICE: u32 = 128 * 1024;
/// A placed reply in more pieces than this is written instead: each piece is a call.
const MAX_PIECES: usize = 64;
/// Room for a 1 MiB reply, its header and every piece's unaligned ends; without
/// CAP_SYS_RESOURCE a pipe grows only to pipe-max-size (1 MiB by default), and the
/// mount then asks for smaller replies (see `max_reply`).
const PIPE_BYTES: [usize; 2] = [2 << 20, 1 << 20];
const HEADER: usize = 16;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
/// Pipe slots are pages; 4 KiB is the smallest, so counting by it never overfills.
const PAGE: u64 = 4096;

pub struct Splicer {
    dev: OwnedFd,
    pipe_bytes: usize,
    spliced: AtomicU64,
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// The largest pipe this process can make, if splicing is possible at all.
pub fn pipe_bytes() -> Option<usize> {
    let (_r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    PIPE_BYTES
        .into_iter()
        .find(|&b| nix::fcntl::fcntl(&w, FcntlArg::F_SETPIPE_SZ(b as i32)).is_ok())
}

/// The largest reply (and so the largest request to ask for) a pipe of `pipe_bytes`
/// carries whole with its header and the extra page each unaligned piece touches: 1 MiB,
/// or three quarters of a smaller pipe. Images whose grains do not start on a page
/// boundary (qemu-img's monolithicSparse of many disk sizes) have every piece
/// unaligned; a 1 MiB pipe then holds a 768 KiB reply in up to 63 pieces, where a reply
/// a page short of 1 MiB fitted only when aligned. The kernel's 4 MiB read-ahead goes
/// out as five 768 KiB requests and a 256 KiB one, all big enough to splice.
pub fn max_reply(pipe_bytes: usize) -> u32 {
    if pipe_bytes > 1 << 20 {
        1 << 20
    } else {
        (pipe_bytes / 4 * 3) as u32 & !(PAGE as u32 - 1)
    }
}

thread_local! {
    /// One pipe per FUSE thread, made on its first spliced reply; None after a failure
    /// left it in an unknown state (it is made again next time).
    static PIPE: RefCell<Option<Pipe>> = const { RefCell::new(None) };
}

impl Pipe {
    fn new(bytes: usize) -> io::Result<Pipe> {
        // Non-blocking: should a reply ever not fit after all, filling the pipe fails
        // (and the reply is written instead) rather than blocking this thread forever.
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        nix::fcntl::fcntl(&write, FcntlArg::F_SETPIPE_SZ(bytes as i32))?;
        Ok(Pipe { read, write })
    }
}

impl Splicer {
    /// `dev` is the descriptor every request is read from (or a dup of it);
    /// `pipe_bytes` what [`pipe_bytes`] found.
    pub fn new(dev: OwnedFd, pipe_bytes: usize) -> Self {
        Self {
            dev,
            pipe_bytes,
            spliced: AtomicU64::new(0),
        }
    }

    /// Replies spliced so far.
    pub fn spliced(&self) -> u64 {
        self.spliced.load(Ordering::Relaxed)
    }

    /// Sends the answer to request `unique`: the bytes `places` names. Err when it was
    /// not sent, and the caller answers the request as usual.
    pub fn reply(&self, unique: u64, places: &Places) -> io::Result<()> {
        if places.pieces().len() > MAX_PIECES {
            return Err(io::Error::other("too many pieces"));
        }
        if places.takes_ranged() {
            return Err(io::Error::other("pieces outside local files"));
        }
        // A pipe that fills up would block the write into it forever.
        if slots(places) > self.pipe_bytes as u64 / PAGE {
            return Err(io::Error::other("more pages than the pipe holds"));
        }
        PIPE.with_borrow_mut(|slot| {
            if slot.is_none() {
                *slot = Some(Pipe::new(self.pipe_bytes)?);
            }
            let pipe = slot.as_ref().expect("made above");
            let r = self.send(pipe, unique, places);
            if r.is_err() {
                // Whatever part of the reply is still in the pipe must not prefix the
                // next one.
                *slot = None;
            }
            r
        })?;
        self.spliced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn send(&self, pipe: &Pipe, unique: u64, places: &Places) -> io::Result<()> {
        let total = HEADER + places.len() as usize;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&(total as u32).to_ne_bytes());
        header[8..].copy_from_slice(&unique.to_ne_bytes());
        write_all(pipe.write.as_fd(), &header)?;
        for piece in places.pieces() {
            match piece {
                Piece::File { file, offset, len } => {
                    let mut at = *offset as i64;
                    let mut left = *len as usize;
                    while left > 0 {
                        let n = splice(
                            file.as_fd(),
                            Some(&mut at),
                            pipe.write.as_fd(),
                            None,
                            left,
                            SpliceFFlags::SPLICE_F_NONBLOCK,
                        )?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        left -= n;
                    }
                }
                Piece::Zero(len) => {
                    for c in chunks(*len) {
                        write_all(pipe.write.as_fd(), &ZEROS[..c as usize])?;
                    }
                }
                // Refused in `reply`, before anything is written.
                Piece::Ranged { .. } => return Err(io::Error::other("not a local file")),
            }
        }
        // The device takes a message whole from the pipe, or none of it.
        let n = splice(
            pipe.read.as_fd(),
            None,
            self.dev.as_fd(),
            None,
            total,
            SpliceFFlags::empty(),
        )?;
        if n != total {
            return Err(io::Error::other(format!(
                "device took {n} of {total} bytes"
            )));
        }
        Ok(())
    }
}

/// Pipe slots (pages) the reply takes, as the kernel fills a pipe: each spliced page
/// of the file is a slot of its own; a write's first `len % page` bytes join the last
/// written slot where they fit, and the rest takes fresh pages.
fn slots(places: &Places) -> u64 {
    let mut slots = 1;
    // Bytes used in the last slot, when that slot takes more writes.
    let mut open = Some(HEADER as u64);
    for p in places.pieces() {
        match p {
            Piece::File { offset, len, .. } | Piece::Ranged { offset, len, .. } => {
                slots += (offset % PAGE + len).div_ceil(PAGE);
                open = None;
            }
            Piece::Zero(len) => {
                for c in chunks(*len) {
                    let head = c % PAGE;
                    let rest = match open {
                        Some(used) if head > 0 && used + head <= PAGE => c - head,
                        _ => c,
                    };
                    if rest == 0 {
                        open = open.map(|u| u + head);
                    } else {
                        slots += rest.div_ceil(PAGE);
                        open = Some(match rest % PAGE {
                            0 => PAGE,
                            r => r,
                        });
                    }
                }
            }
        }
    }
    slots
}

/// The writes a run of zeros goes out in.
fn chunks(len: u64) -> impl Iterator<Item = u64> {
    let z = ZEROS.len() as u64;
    (0..len.div_ceil(z)).map(move |i| (len - i * z).min(z))
}

fn write_all(fd: BorrowedFd<'_>, mut b: &[u8]) -> io::Result<()> {
    while !b.is_empty() {
        let n = nix::unistd::write(fd, b)?;
        b = &b[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::sync::Arc;

    #[test]
    fn a_reply_fits_the_pipe_with_its_header() {
        assert_eq!(max_reply(2 << 20), 1 << 20);
        assert_eq!(max_reply(1 << 20), 768 << 10);
        assert_eq!(max_reply(64 << 10) % PAGE as u32, 0);
        // A reply that big in 63 unaligned pieces, each a page past its own.
        let f = Arc::new(File::open("/dev/null").unwrap());
        let mut p = Places::new();
        let piece = (768 << 10) / 64;
        for i in 0..62 {
            p.file(&f, 512 + i * 10 * piece, piece);
        }
        p.file(&f, 512, (768 << 10) - 62 * piece);
        assert_eq!(p.len(), 768 << 10);
        assert!(slots(&p) <= 256, "{}", slots(&p));
    }

    #[test]
    fn slots_count_pages_as_a_pipe_fills_them() {
        let f = Arc::new(File::open("/dev/null").unwrap());
        let mut p = Places::new();
        // A reply a page short of 1 MiB fits a 1 MiB pipe, aligned or all zeros.
        p.file(&f, 1 << 20, (1 << 20) - PAGE);
        assert_eq!(slots(&p), 256);
        p.clear();
        p.zero((1 << 20) - PAGE);
        assert_eq!(slots(&p), 256);
        // Unaligned, a piece touches one page more; a short write shares a slot.
        p.clear();
        p.file(&f, 100, 2 * PAGE);
        p.zero(10);
        p.zero(0);
        assert_eq!(slots(&p), 1 + 3 + 1);
        p.clear();
        p.zero(PAGE + 10);
        assert_eq!(slots(&p), 1 + 1, "10 bytes join the header's slot");
        p.clear();
        p.zero(70_000);
        // 65536 bytes in one write (16 pages, the last full), then 4464 (two more).
        assert_eq!(slots(&p), 1 + 16 + 2);
    }
}
