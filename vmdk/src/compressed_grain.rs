//! Compressed grains of streamOptimized (and compressed hosted) extents: a grain marker
//! (`lba`, `size`) followed by a zlib stream that inflates to at most one grain.

use std::cell::RefCell;
use std::ops::Range;

use flate2::{Decompress, FlushDecompress, Status};
use vmsnapfs_io::ReadAt;

use crate::error::{Error, Result};
use crate::grain_directory::read_exact;
use crate::marker::{self, Marker};
use vmsnapfs_io::fits;

/// Per-thread inflater and read buffer: a streamOptimized disk read end to end inflates
/// tens of thousands of grains, and setting up each from scratch shows in the profile.
struct Scratch {
    buf: Vec<u8>,
    z: Decompress,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        buf: Vec::new(),
        z: Decompress::new(true),
    });
}

/// Scratch buffers above this are given back after use (only absurd grain sizes need them).
const KEEP_BYTES: usize = 4 << 20;

/// Inflates the grain whose marker (or, without markers, deflate stream) is at `at` in
/// `src` into `out`, which is one grain long; returns the inflated length.
pub(crate) fn inflate(
    file: &str,
    src: &dyn ReadAt,
    at: u64,
    markers: bool,
    out: &mut [u8],
) -> Result<usize> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let Scratch { buf, z } = &mut *s;
            let r = fetch(file, src, at, markers, out.len() as u64, buf)
                .and_then(|p| run(file, at, z, &buf[p], out));
            if buf.capacity() > KEEP_BYTES {
                *buf = Vec::new();
            }
            r
        }
        // Not reachable (nothing here re-enters), but never worth a panic.
        Err(_) => {
            let mut buf = Vec::new();
            let p = fetch(file, src, at, markers, out.len() as u64, &mut buf)?;
            run(file, at, &mut Decompress::new(true), &buf[p], out)
        }
    })
}

fn run(file: &str, at: u64, z: &mut Decompress, payload: &[u8], out: &mut [u8]) -> Result<usize> {
    z.reset(true);
    match z.decompress(payload, out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) => Ok(z.total_out() as usize),
        Ok(_) if z.total_out() as usize == out.len() => Err(Error::corrupt(
            file,
            at,
            "compressed grain inflates to more than a grain",
        )),
        Ok(_) => Err(Error::corrupt(file, at, "compressed grain is truncated")),
        Err(e) => Err(Error::corrupt(file, at, format!("bad deflate data: {e}"))),
    }
}

/// Reads the compressed bytes of the grain at `at` into `buf`; returns where they are in it.
fn fetch(
    file: &str,
    src: &dyn ReadAt,
    at: u64,
    markers: bool,
    grain_bytes: u64,
    buf: &mut Vec<u8>,
) -> Result<Range<usize>> {
    let size = src.size();
    let avail = size.saturating_sub(at);
    if !markers {
        let len = (2 * grain_bytes).min(avail) as usize;
        buf.resize(len, 0);
        read_exact(file, src, at, buf)?;
        return Ok(0..len);
    }
    // Most grains compress below a grain: one read usually gets marker and data.
    let header = marker::GRAIN_HEADER_LEN as u64;
    let guess = (header + grain_bytes).min(avail);
    if guess < header {
        return Err(Error::corrupt(
            file,
            at,
            "grain marker lies past the end of the file",
        ));
    }
    buf.resize(guess as usize, 0);
    read_exact(file, src, at, buf)?;
    let marker = Marker::parse(buf)
        .map_err(|e| Error::corrupt(file, at, format!("truncated grain marker: {e}")))?;
    let len = match marker {
        Marker::Grain { size, .. } => size as u64,
        Marker::Meta { .. } => {
            return Err(Error::corrupt(
                file,
                at,
                "grain table points at a metadata marker, not a grain",
            ))
        }
    };
    // qemu reads at most two grains of compressed data.
    if len > 2 * grain_bytes {
        return Err(Error::corrupt(
            file,
            at,
            format!("compressed grain of {len} bytes is larger than two grains"),
        ));
    }
    let end = header + len;
    if !fits(at, end, size) {
        return Err(Error::corrupt(
            file,
            at,
            "compressed grain runs past the end of the file",
        ));
    }
    if end > guess {
        buf.resize(end as usize, 0);
        read_exact(file, src, at + guess, &mut buf[guess as usize..])?;
    }
    Ok(header as usize..end as usize)
}
