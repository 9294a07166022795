//! The answer to a request of several ranges (multipart/byteranges): its content type
//! and each part's Content-Range over arbitrary server answers. Parts found must lie
//! inside the body and be as long as their Content-Range says; never a panic, and no
//! more parts than asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmsnapfs::net::http::byteranges::{boundary, content_range, parts};

fuzz_target!(|data: &[u8]| {
    let [most, split, rest @ ..] = data else {
        return;
    };
    let (head, body) = rest.split_at((*split as usize).min(rest.len()));
    let head = String::from_utf8_lossy(head);
    let _ = content_range(&head);
    let b = boundary(&head).unwrap_or("B");
    let most = *most as usize % 20;
    if let Some(found) = parts(body, b, most) {
        assert!(found.len() <= most);
        for (_, r) in found {
            assert!(r.start <= r.end && r.end <= body.len());
        }
    }
});
