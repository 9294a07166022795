//! The data path's HTTP response parsing (status line, headers, Content-Length and
//! chunked framing) over arbitrary server answers: errors, never a panic, a hang or an
//! allocation beyond the head limit and the body asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs::net::http::parse_canned;

fuzz_target!(|data: &[u8]| {
    let [sel, cut, answer @ ..] = data else {
        return;
    };
    let method = if sel & 1 == 0 { "GET" } else { "HEAD" };
    let want = (sel >> 1) as usize * 97;
    // Read whole, or in two parts as a stream reads a long body.
    let split = *cut as usize * 13;
    if let Ok((_, body)) = parse_canned(answer, method, want, split) {
        assert_eq!(body.len(), want);
    }
});
