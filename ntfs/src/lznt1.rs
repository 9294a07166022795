//! LZNT1, the codec of NTFS "compressed" attribute flag: a compression unit is a sequence
//! of 4 KiB chunks, each stored raw or as LZ77 tokens with a position-dependent split
//! between offset and length bits.

const CHUNK: usize = 4096;

/// Decompresses `input` into `out` (whose length is the unit size and which the caller
/// zero-fills): output past the end of the compressed data, or past the end of a chunk
/// that decodes short, stays zero. Returns where the last chunk's output ends.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut ip = 0usize;
    let mut op = 0usize;
    while ip + 2 <= input.len() && op < out.len() {
        let header = u16::from_le_bytes([input[ip], input[ip + 1]]);
        if header == 0 {
            break;
        }
        let size = (header & 0x0FFF) as usize + 1;
        let compressed = header & 0x8000 != 0;
        ip += 2;
        let chunk = input
            .get(ip..ip + size)
            .ok_or_else(|| format!("chunk at {} runs past the input", ip - 2))?;
        ip += size;
        let chunk_out_end = (op + CHUNK).min(out.len());
        if compressed {
            decompress_chunk(chunk, out, op, chunk_out_end)?;
        } else {
            let n = size.min(chunk_out_end - op);
            out[op..op + n].copy_from_slice(&chunk[..n]);
        }
        // Every chunk stands for a full 4 KiB of output; one that decodes short is
        // followed by zeros (which the caller's buffer already holds), as in ntfs-3g.
        op = chunk_out_end;
    }
    Ok(op)
}

fn decompress_chunk(c: &[u8], out: &mut [u8], start: usize, end: usize) -> Result<(), String> {
    let mut ip = 0usize;
    let mut op = start;
    while ip < c.len() && op < end {
        let flags = c[ip];
        ip += 1;
        for bit in 0..8 {
            if ip >= c.len() || op >= end {
                break;
            }
            if flags & (1 << bit) == 0 {
                out[op] = c[ip];
                op += 1;
                ip += 1;
                continue;
            }
            let token =
                u16::from_le_bytes([c[ip], *c.get(ip + 1).ok_or("back-reference truncated")?]);
            ip += 2;
            // The longer the chunk output so far, the more bits the offset needs.
            let pos = op - start;
            let mut offset_bits = 4u32;
            while pos > (1usize << offset_bits) && offset_bits < 12 {
                offset_bits += 1;
            }
            let length_bits = 16 - offset_bits;
            let offset = (token >> length_bits) as usize + 1;
            let length = (token & ((1u16 << length_bits) - 1)) as usize + 3;
            if offset > pos {
                return Err(format!(
                    "back-reference offset {offset} before chunk start (at {pos})"
                ));
            }
            for _ in 0..length {
                if op >= end {
                    break;
                }
                out[op] = out[op - offset];
                op += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // "abcabcabcabc" compressed: literals a,b,c then a match (offset 3, length 9).
        // flags: bits 0-2 literal, bit 3 match. pos=3 -> 4 offset bits, 12 length bits.
        let token: u16 = ((3 - 1) << 12) | (9 - 3);
        let mut chunk = vec![0b0000_1000u8, b'a', b'b', b'c'];
        chunk.extend_from_slice(&token.to_le_bytes());
        let header = 0xB000u16 | (chunk.len() as u16 - 1);
        let mut input = header.to_le_bytes().to_vec();
        input.extend_from_slice(&chunk);
        let mut out = vec![0u8; 16];
        assert_eq!(decompress(&input, &mut out).unwrap(), 16);
        assert_eq!(&out, b"abcabcabcabc\0\0\0\0");
        // A short first chunk is padded to 4 KiB before the second chunk's output.
        let mut two = input.clone();
        two.extend_from_slice(&input);
        let mut out = vec![0u8; 8192];
        decompress(&two, &mut out).unwrap();
        assert_eq!(&out[..12], b"abcabcabcabc");
        assert!(out[12..4096].iter().all(|&b| b == 0));
        assert_eq!(&out[4096..4108], b"abcabcabcabc");
    }

    #[test]
    fn bad_offset_is_error() {
        let token: u16 = (5 - 1) << 12;
        let mut chunk = vec![0b0000_0010u8, b'a'];
        chunk.extend_from_slice(&token.to_le_bytes());
        let header = 0xB000u16 | (chunk.len() as u16 - 1);
        let mut input = header.to_le_bytes().to_vec();
        input.extend_from_slice(&chunk);
        let mut out = vec![0u8; 16];
        assert!(decompress(&input, &mut out).is_err());
    }
}
