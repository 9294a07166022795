//! The data path's HTTP response parsing (status line, headers, Content-Length and
//! chunked framing) over arbitrary server answers: errors, never a panic, a hang or an
//! allocation beyond the head limit and the body asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs::source::vsphere::http::parse_canned;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, answer)) = data.split_first() else {
        return;
    };
    let method = if sel & 1 == 0 { "GET" } else { "HEAD" };
    let want = (sel >> 1) as usize * 97;
    if let Ok((_, body)) = parse_canned(answer, method, want) {
        assert_eq!(body.len(), want);
    }
});
