//! LZX as used by WIM and WOF: 32 KiB window, every chunk decoded independently (no state
//! carried between chunks), E8 call translation undone with the fixed "file size"
//! 12 000 000 that WIM uses.

const NUM_CHARS: usize = 256;
const NUM_OFFSET_SLOTS: usize = 30; // 32 KiB window
const MAIN_SYMS: usize = NUM_CHARS + 8 * NUM_OFFSET_SLOTS;
const LEN_SYMS: usize = 249;
const PRE_SYMS: usize = 20;
const ALIGNED_SYMS: usize = 8;
const MIN_MATCH: usize = 2;
const DEFAULT_BLOCK: usize = 32768;
const E8_FILE_SIZE: i32 = 12_000_000;

const BLOCK_VERBATIM: u32 = 1;
const BLOCK_ALIGNED: u32 = 2;
const BLOCK_UNCOMPRESSED: u32 = 3;

fn slot_base(slot: usize) -> u32 {
    // 0,1,2,3,4,6,8,12,16,24,... : two slots per power of two from slot 4 on.
    if slot < 4 {
        slot as u32
    } else {
        let extra = extra_bits(slot);
        (2 + (slot as u32 & 1)) << extra
    }
}

fn extra_bits(slot: usize) -> u32 {
    if slot < 4 {
        0
    } else {
        ((slot as u32) / 2 - 1).min(17)
    }
}

/// MSB-first reader over 16-bit little-endian words; reads past the end give zeros (the
/// caller checks it consumed no more than the input).
struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(input: &'a [u8]) -> Self {
        Bits {
            input,
            pos: 0,
            buf: 0,
            count: 0,
        }
    }

    fn ensure(&mut self, n: u32) {
        while self.count < n {
            let w = match self.input.get(self.pos..self.pos + 2) {
                Some(b) => u16::from_le_bytes([b[0], b[1]]) as u64,
                None => 0,
            };
            self.pos += 2;
            self.buf |= w << (48 - self.count);
            self.count += 16;
        }
    }

    fn peek(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        self.ensure(n);
        (self.buf >> (64 - n)) as u32
    }

    fn skip(&mut self, n: u32) {
        self.buf <<= n;
        self.count -= n;
    }

    fn read(&mut self, n: u32) -> u32 {
        let v = self.peek(n);
        if n > 0 {
            self.skip(n);
        }
        v
    }

    fn overrun(&self) -> bool {
        self.pos > self.input.len() + 4
    }
}

/// Canonical Huffman code decoded one bit at a time (codes are at most 16 bits, symbols
/// few; simple beats fast here and cannot be fooled by a malformed table).
struct Huffman {
    counts: [u16; 17],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lens: &[u8]) -> Result<Huffman, String> {
        let mut counts = [0u16; 17];
        for &l in lens {
            if l > 16 {
                return Err(format!("code length {l}"));
            }
            counts[l as usize] += 1;
        }
        counts[0] = 0;
        let mut left: i32 = 1;
        for &c in counts.iter().skip(1) {
            left = left * 2 - c as i32;
            if left < 0 {
                return Err("over-subscribed Huffman code".into());
            }
        }
        let mut offs = [0u16; 17];
        for l in 1..16 {
            offs[l + 1] = offs[l] + counts[l];
        }
        let mut symbols = vec![0u16; lens.len()];
        for (s, &l) in lens.iter().enumerate() {
            if l != 0 {
                symbols[offs[l as usize] as usize] = s as u16;
                offs[l as usize] += 1;
            }
        }
        Ok(Huffman { counts, symbols })
    }

    fn decode(&self, bits: &mut Bits) -> Result<usize, String> {
        let mut code: i32 = 0;
        let mut first: i32 = 0;
        let mut index: i32 = 0;
        for len in 1..=16 {
            code |= bits.read(1) as i32;
            let count = self.counts[len] as i32;
            if code - count < first {
                return self
                    .symbols
                    .get((index + (code - first)) as usize)
                    .map(|&s| s as usize)
                    .ok_or_else(|| "corrupt Huffman table".to_string());
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err("invalid Huffman code in stream".into())
    }
}

fn read_lens(bits: &mut Bits, lens: &mut [u8]) -> Result<(), String> {
    let mut pre = [0u8; PRE_SYMS];
    for p in pre.iter_mut() {
        *p = bits.read(4) as u8;
    }
    let pre = Huffman::new(&pre)?;
    let mut i = 0;
    while i < lens.len() {
        let sym = pre.decode(bits)?;
        let (run, value) = match sym {
            0..=16 => (1, ((lens[i] as i32 - sym as i32 + 17) % 17) as u8),
            17 => (4 + bits.read(4) as usize, 0),
            18 => (20 + bits.read(5) as usize, 0),
            19 => {
                let run = 4 + bits.read(1) as usize;
                let s = pre.decode(bits)?;
                if s > 16 {
                    return Err("bad pretree symbol after 19".into());
                }
                (run, ((lens[i] as i32 - s as i32 + 17) % 17) as u8)
            }
            _ => return Err("bad pretree symbol".into()),
        };
        for _ in 0..run {
            if i >= lens.len() {
                break;
            }
            lens[i] = value;
            i += 1;
        }
        if bits.overrun() {
            return Err("code lengths run past the input".into());
        }
    }
    Ok(())
}

/// Decompresses `input` into exactly `out.len()` bytes (at most 32 KiB plus slack).
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut bits = Bits::new(input);
    let mut main_lens = [0u8; MAIN_SYMS];
    let mut len_lens = [0u8; LEN_SYMS];
    let mut recent = [1u32, 1, 1];
    let mut op = 0usize;
    let mut e8 = false;
    while op < out.len() {
        let block_type = bits.read(3);
        let block_size = if bits.read(1) == 1 {
            DEFAULT_BLOCK
        } else {
            bits.read(16) as usize
        };
        if block_size == 0 {
            return Err("empty LZX block".into());
        }
        let block_end = (op + block_size).min(out.len());
        match block_type {
            BLOCK_VERBATIM | BLOCK_ALIGNED => {
                let aligned = if block_type == BLOCK_ALIGNED {
                    let mut al = [0u8; ALIGNED_SYMS];
                    for a in al.iter_mut() {
                        *a = bits.read(3) as u8;
                    }
                    Some(Huffman::new(&al)?)
                } else {
                    None
                };
                read_lens(&mut bits, &mut main_lens[..NUM_CHARS])?;
                read_lens(&mut bits, &mut main_lens[NUM_CHARS..])?;
                read_lens(&mut bits, &mut len_lens)?;
                let main = Huffman::new(&main_lens)?;
                let lens_code = Huffman::new(&len_lens)?;
                e8 |= main_lens[0xE8] != 0;
                while op < block_end {
                    let sym = main.decode(&mut bits)?;
                    if sym < NUM_CHARS {
                        out[op] = sym as u8;
                        op += 1;
                        continue;
                    }
                    let s = sym - NUM_CHARS;
                    let slot = s >> 3;
                    let mut len = s & 7;
                    if len == 7 {
                        len += lens_code.decode(&mut bits)?;
                    }
                    len += MIN_MATCH;
                    let offset = if slot < 3 {
                        recent.swap(slot, 0);
                        recent[0]
                    } else {
                        let nb = extra_bits(slot);
                        let extra = match &aligned {
                            Some(al) if nb >= 3 => {
                                let hi = bits.read(nb - 3) << 3;
                                hi + al.decode(&mut bits)? as u32
                            }
                            _ => bits.read(nb),
                        };
                        let o = slot_base(slot) + extra - 2;
                        recent[2] = recent[1];
                        recent[1] = recent[0];
                        recent[0] = o;
                        o
                    };
                    let offset = offset as usize;
                    if offset == 0 || offset > op {
                        return Err(format!("match offset {offset} before output start ({op})"));
                    }
                    for _ in 0..len {
                        if op >= out.len() {
                            break;
                        }
                        out[op] = out[op - offset];
                        op += 1;
                    }
                    if bits.overrun() {
                        return Err("LZX stream runs past the input".into());
                    }
                }
            }
            BLOCK_UNCOMPRESSED => {
                // Align to 16 bits; an already aligned stream still skips a whole word.
                bits.ensure(1);
                let drop = bits.count % 16;
                bits.skip(if drop == 0 { 16.min(bits.count) } else { drop });
                // Whatever is still buffered is whole words not yet consumed.
                let mut pos = bits.pos - (bits.count / 8) as usize;
                for r in recent.iter_mut() {
                    let b = input
                        .get(pos..pos + 4)
                        .ok_or("uncompressed block header truncated")?;
                    *r = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    pos += 4;
                }
                if recent.contains(&0) {
                    return Err("zero repeat offset".into());
                }
                let n = block_end - op;
                let src = input
                    .get(pos..pos + n)
                    .ok_or("uncompressed block truncated")?;
                out[op..block_end].copy_from_slice(src);
                e8 = true;
                op = block_end;
                pos += n;
                if block_size % 2 == 1 {
                    pos += 1;
                }
                bits = Bits {
                    input,
                    pos,
                    buf: 0,
                    count: 0,
                };
            }
            t => return Err(format!("LZX block type {t}")),
        }
    }
    if e8 {
        undo_e8(out);
    }
    Ok(())
}

fn undo_e8(data: &mut [u8]) {
    if data.len() <= 10 {
        return;
    }
    let mut i = 0usize;
    while i < data.len() - 10 {
        if data[i] != 0xE8 {
            i += 1;
            continue;
        }
        let abs = i32::from_le_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]);
        let pos = i as i32;
        let rel = if abs >= 0 {
            (abs < E8_FILE_SIZE).then(|| abs - pos)
        } else {
            (abs >= -pos).then(|| abs + E8_FILE_SIZE)
        };
        if let Some(r) = rel {
            data[i + 1..i + 5].copy_from_slice(&r.to_le_bytes());
        }
        i += 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_table() {
        let bases: Vec<u32> = (0..12).map(slot_base).collect();
        assert_eq!(bases, [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]);
        assert_eq!(extra_bits(4), 1);
        assert_eq!(extra_bits(29), 13);
    }

    #[test]
    fn garbage_never_panics() {
        let mut out = vec![0u8; 32768];
        for (i, len) in [0usize, 1, 7, 100, 5000].into_iter().enumerate() {
            let input = crate::tests::garbage(len, 99 + i as u32);
            let _ = decompress(&input, &mut out);
        }
    }
}
