//! XPRESS with Huffman coding (MS-XCA 2.2).

pub fn decompress(_input: &[u8], _out: &mut [u8]) -> Result<(), String> {
    Err("XPRESS not implemented".into())
}
