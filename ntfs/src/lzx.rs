//! LZX, 32 KiB window, as used by WIM and WOF.

pub fn decompress(_input: &[u8], _out: &mut [u8]) -> Result<(), String> {
    Err("LZX not implemented".into())
}
