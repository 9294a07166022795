//! XPRESS with Huffman coding (MS-XCA 2.2), the codec of WOF XPRESS4K/8K/16K chunks.
//!
//! A block is a 256-byte table of 512 four-bit code lengths, then a bit stream read as
//! 16-bit little-endian words into a 32-bit window, with long match lengths stored as
//! plain bytes between the words. Every block produces up to 64 KiB.

const NUM_SYMBOLS: usize = 512;
const MAX_LEN: u32 = 15;
const BLOCK: usize = 65536;

/// Canonical Huffman decode table indexed by the next 15 bits: (symbol, length) packed.
struct Table {
    entries: Vec<u16>,
}

impl Table {
    fn build(lens: &[u8; NUM_SYMBOLS]) -> Result<Table, String> {
        let mut entries = vec![0u16; 1 << MAX_LEN];
        let mut next = 0usize;
        for len in 1..=MAX_LEN {
            for (sym, &l) in lens.iter().enumerate() {
                if l as u32 != len {
                    continue;
                }
                let span = 1usize << (MAX_LEN - len);
                if next + span > entries.len() {
                    return Err("over-subscribed Huffman code".into());
                }
                let v = ((sym as u16) << 4) | len as u16;
                entries[next..next + span].fill(v);
                next += span;
            }
        }
        if next == 0 {
            return Err("empty Huffman code".into());
        }
        Ok(Table { entries })
    }
}

struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    next_bits: u32,
    extra: i32,
}

impl Bits<'_> {
    fn word(&mut self) -> u32 {
        let w = match self.input.get(self.pos..self.pos + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as u32,
            None => 0,
        };
        self.pos += 2;
        w
    }

    fn consume(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.next_bits <<= n;
        self.extra -= n as i32;
        if self.extra < 0 {
            let w = self.word();
            self.next_bits |= w << (-self.extra) as u32;
            self.extra += 16;
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or("match length byte past the input")?;
        self.pos += 1;
        Ok(b)
    }
}

/// Decompresses `input` into exactly `out.len()` bytes.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut op = 0usize;
    let mut ip = 0usize;
    while op < out.len() {
        let table_bytes = input
            .get(ip..ip + 256)
            .ok_or("Huffman table past the input")?;
        let mut lens = [0u8; NUM_SYMBOLS];
        for (i, &b) in table_bytes.iter().enumerate() {
            lens[2 * i] = b & 0x0F;
            lens[2 * i + 1] = b >> 4;
        }
        let table = Table::build(&lens)?;
        let mut bits = Bits {
            input,
            pos: ip + 256,
            next_bits: 0,
            extra: 16,
        };
        bits.next_bits = (bits.word() << 16) | bits.word();
        let block_end = (op + BLOCK).min(out.len());
        while op < block_end {
            let e = table.entries[(bits.next_bits >> (32 - MAX_LEN)) as usize];
            let len = (e & 0x0F) as u32;
            if len == 0 {
                return Err("invalid Huffman code in stream".into());
            }
            let sym = (e >> 4) as usize;
            bits.consume(len);
            if sym < 256 {
                out[op] = sym as u8;
                op += 1;
                continue;
            }
            let s = sym - 256;
            let mut mlen = s & 0x0F;
            let off_bits = (s >> 4) as u32;
            if mlen == 15 {
                mlen = bits.byte()? as usize;
                if mlen == 255 {
                    let lo = bits.byte()? as usize;
                    let hi = bits.byte()? as usize;
                    mlen = lo | (hi << 8);
                    if mlen < 15 {
                        return Err("bad extended match length".into());
                    }
                    mlen -= 15;
                }
                mlen += 15;
            }
            mlen += 3;
            let offset = if off_bits == 0 {
                1
            } else {
                ((bits.next_bits >> (32 - off_bits)) as usize) + (1usize << off_bits)
            };
            bits.consume(off_bits);
            if offset > op {
                return Err(format!("match offset {offset} before output start ({op})"));
            }
            for _ in 0..mlen {
                if op >= out.len() {
                    break;
                }
                out[op] = out[op - offset];
                op += 1;
            }
        }
        // The next block's table starts where this block's bit stream ended; MS-XCA
        // leaves the two 16-bit words of the 32-bit window as already read.
        ip = bits.pos;
        if ip > input.len() {
            if op < out.len() {
                return Err("input ended before the output was complete".into());
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        let mut out = vec![0u8; 4096];
        for (i, len) in [0usize, 10, 256, 300, 4000].into_iter().enumerate() {
            let input = crate::tests::garbage(len, 12345 + i as u32);
            let _ = decompress(&input, &mut out);
        }
    }
}
