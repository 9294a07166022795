//! Windows Overlay Filter (WOF) "compact" files: the unnamed $DATA is sparse and the real
//! content sits in the `WofCompressedData` stream as independently compressed chunks
//! behind a chunk offset table (the same layout as a WIM resource).

use crate::fields::short;
use vmsnapfs_io::le::u32_at;

pub const STREAM_NAME: &str = "WofCompressedData";
const WOF_PROVIDER_FILE: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Xpress4K,
    Lzx,
    Xpress8K,
    Xpress16K,
}

impl Algorithm {
    pub fn chunk_size(self) -> usize {
        match self {
            Algorithm::Xpress4K => 4096,
            Algorithm::Xpress8K => 8192,
            Algorithm::Xpress16K => 16384,
            Algorithm::Lzx => 32768,
        }
    }

    /// Decompresses one chunk whose uncompressed size is `out.len()`.
    pub fn decompress(self, input: &[u8], out: &mut [u8]) -> Result<(), String> {
        match self {
            Algorithm::Lzx => crate::lzx::decompress(input, out),
            _ => crate::xpress_huffman::decompress(input, out),
        }
    }
}

pub struct WofFile {
    pub algorithm: Algorithm,
    /// Uncompressed size (the unnamed stream's size).
    pub size: u64,
    /// Size of the WofCompressedData stream.
    pub stream_size: u64,
}

/// Parses the WOF reparse buffer (tag, length, reserved, then WOF_EXTERNAL_INFO and
/// FILE_PROVIDER_EXTERNAL_INFO_V1).
pub fn parse_reparse(b: &[u8]) -> Result<Algorithm, String> {
    let provider = u32_at(b, 12).map_err(short("WOF reparse data truncated"))?;
    if provider != WOF_PROVIDER_FILE {
        return Err(format!(
            "WOF provider {provider} (WIM-backed files need their WIM image)"
        ));
    }
    match u32_at(b, 20).map_err(short("WOF reparse data truncated"))? {
        0 => Ok(Algorithm::Xpress4K),
        1 => Ok(Algorithm::Lzx),
        2 => Ok(Algorithm::Xpress8K),
        3 => Ok(Algorithm::Xpress16K),
        x => Err(format!("unknown WOF compression format {x}")),
    }
}

/// Fills a buffer from an offset of the compressed stream.
pub type ChunkSource<'a> = dyn FnMut(u64, &mut [u8]) -> Result<(), String> + 'a;

/// Reads and decompresses chunk `idx`. `read(off, buf)` fills `buf` from the compressed
/// stream. The table holds the end offset of every chunk but the last, relative to the
/// table's end, as u32 (u64 once the uncompressed size exceeds 4 GiB).
pub fn read_chunk(w: &WofFile, idx: u64, read: &mut ChunkSource<'_>) -> Result<Vec<u8>, String> {
    let chunk = w.algorithm.chunk_size() as u64;
    let nchunks = w.size.div_ceil(chunk);
    if idx >= nchunks {
        return Err(format!("chunk {idx} past the last of {nchunks}"));
    }
    let entry = if w.size > u32::MAX as u64 { 8u64 } else { 4 };
    let table = (nchunks - 1) * entry;
    if table > w.stream_size {
        return Err("chunk table larger than the compressed stream".into());
    }
    let data_len = w.stream_size - table;
    let mut read_entry = |i: u64| -> Result<u64, String> {
        let mut b = [0u8; 8];
        read(i * entry, &mut b[..entry as usize])?;
        Ok(u64::from_le_bytes(b))
    };
    let start = if idx == 0 { 0 } else { read_entry(idx - 1)? };
    let end = if idx + 1 == nchunks {
        data_len
    } else {
        read_entry(idx)?
    };
    let ulen = chunk.min(w.size - idx * chunk) as usize;
    if start > end || end > data_len || end - start > ulen as u64 {
        return Err(format!(
            "chunk {idx} spans [{start}, {end}) of {data_len} compressed bytes"
        ));
    }
    let mut comp = vec![0u8; (end - start) as usize];
    read(table + start, &mut comp)?;
    if comp.len() == ulen {
        return Ok(comp);
    }
    let mut out = vec![0u8; ulen];
    w.algorithm.decompress(&comp, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file over 4 GiB switches the chunk table to u64 entries.
    #[test]
    fn u64_chunk_table() {
        let size = 5u64 << 30;
        let chunk = 4096u64;
        let n = size / chunk;
        let table = (n - 1) * 8;
        let w = WofFile {
            algorithm: Algorithm::Xpress4K,
            size,
            stream_size: table + n * chunk,
        };
        let mut read = |off: u64, b: &mut [u8]| -> Result<(), String> {
            if off < table {
                assert_eq!(b.len(), 8);
                let i = off / 8;
                b.copy_from_slice(&((i + 1) * chunk).to_le_bytes());
            } else {
                let idx = ((off - table) / chunk) as u8;
                b.fill(idx);
            }
            Ok(())
        };
        let c = read_chunk(&w, 1_000_003, &mut read).unwrap();
        assert_eq!(c.len(), 4096);
        assert!(c.iter().all(|&x| x == (1_000_003u64 % 256) as u8));
        assert!(read_chunk(&w, n, &mut read).is_err());
    }
}
