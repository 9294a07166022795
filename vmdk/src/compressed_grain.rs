//! Compressed grains of streamOptimized (and compressed hosted) extents: a grain marker
//! (`lba`, `size`) followed by a zlib stream that inflates to at most one grain.

use flate2::{Decompress, FlushDecompress, Status};
use vmsnapfs_io::ReadAt;

use crate::error::{Error, Result};
use crate::grain_directory::{fits, read_exact};
use crate::marker::{self, Marker};

/// Inflates the grain whose marker (or, without markers, deflate stream) is at `at` in
/// `src` into `out`, which is one grain long; returns the inflated length.
pub(crate) fn inflate(
    file: &str,
    src: &dyn ReadAt,
    at: u64,
    markers: bool,
    out: &mut [u8],
) -> Result<usize> {
    let grain_bytes = out.len() as u64;
    let size = src.size();
    let avail = size.saturating_sub(at);
    let payload: Vec<u8> = if markers {
        // Most grains compress below a grain: one read usually gets marker and data.
        let guess = (marker::GRAIN_HEADER_LEN as u64 + grain_bytes).min(avail);
        if guess < marker::GRAIN_HEADER_LEN as u64 {
            return Err(Error::corrupt(
                file,
                at,
                "grain marker lies past the end of the file",
            ));
        }
        let mut b = vec![0u8; guess as usize];
        read_exact(file, src, at, &mut b)?;
        let mut m = [0u8; 16];
        let ml = b.len().min(16);
        m[..ml].copy_from_slice(&b[..ml]);
        let len = match Marker::parse(&m) {
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
        let end = marker::GRAIN_HEADER_LEN as u64 + len;
        if !fits(at, end, size) {
            return Err(Error::corrupt(
                file,
                at,
                "compressed grain runs past the end of the file",
            ));
        }
        if end <= guess {
            b.truncate(end as usize);
            b.drain(..marker::GRAIN_HEADER_LEN);
            b
        } else {
            let mut b = vec![0u8; len as usize];
            read_exact(file, src, at + marker::GRAIN_HEADER_LEN as u64, &mut b)?;
            b
        }
    } else {
        let len = (2 * grain_bytes).min(avail);
        let mut b = vec![0u8; len as usize];
        read_exact(file, src, at, &mut b)?;
        b
    };
    let mut z = Decompress::new(true);
    match z.decompress(&payload, out, FlushDecompress::Finish) {
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
