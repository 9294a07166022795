//! The data path's HTTP against a scripted server on loopback: framing, keep-alive
//! reuse, reconnects, and bounded waits.

use super::*;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Serves each request with `answer(request_head, n)` (n counts requests from 0); a
/// `None` answer closes the connection without a word. Returns the URL base and the
/// number of connections accepted.
fn server(
    answer: impl Fn(&str, usize) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let c = conns.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let (answer, requests) = (answer.clone(), requests.clone());
            std::thread::spawn(move || loop {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => return,
                    }
                }
                let n = requests.fetch_add(1, Ordering::SeqCst);
                match answer(&String::from_utf8_lossy(&head), n) {
                    Some(bytes) => {
                        if s.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            });
        }
    });
    (base, conns)
}

fn url(base: &str) -> reqwest::Url {
    reqwest::Url::parse(&format!("{base}/folder/vm/disk-flat.vmdk?dsName=ds1")).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/100\r\nContent-Length: {}\r\n\r\n",
        body.len().saturating_sub(1),
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

#[test]
fn range_requests_reuse_one_keep_alive_connection() {
    let (base, conns) = server(|head, _| {
        assert!(head.starts_with("GET /folder/vm/disk-flat.vmdk?dsName=ds1 HTTP/1.1\r\n"));
        assert!(head.contains("\r\nRange: bytes=0-4\r\n"), "{head}");
        assert!(
            head.contains("\r\nCookie: vmware_soap_session=abc\r\n"),
            "{head}"
        );
        Some(ok(b"hello"))
    });
    let pool = Arc::new(Pool::new(None));
    for _ in 0..3 {
        let h = [
            ("Range", "bytes=0-4"),
            ("Cookie", "vmware_soap_session=abc"),
        ];
        let r = pool.send("GET", &url(&base), &h, soon()).unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.header("content-range"), Some("bytes 0-4/100"));
        let mut buf = [0u8; 5];
        r.read_exact_body(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[test]
fn head_answers_free_the_connection_at_once() {
    let (base, conns) =
        server(|_, _| Some(b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n".to_vec()));
    let pool = Arc::new(Pool::new(None));
    for _ in 0..2 {
        let r = pool.send("HEAD", &url(&base), &[], soon()).unwrap();
        assert_eq!(r.content_length(), Some(123456));
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[test]
fn chunked_bodies_are_decoded_and_the_connection_kept() {
    let (base, conns) = server(|_, _| {
        Some(
            b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let pool = Arc::new(Pool::new(None));
    for _ in 0..2 {
        let r = pool.send("GET", &url(&base), &[], soon()).unwrap();
        let mut buf = [0u8; 13];
        r.read_exact_body(&mut buf).unwrap();
        assert_eq!(&buf, b"abc0123456789");
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[test]
fn connection_close_and_dropped_idle_connections_reconnect() {
    // Request 0 says close; request 1 is answered, then the server drops the idle
    // connection before request 2 arrives on it.
    let (base, conns) = server(|_, n| match n {
        0 => Some(
            b"HTTP/1.1 206 Partial Content\r\nConnection: close\r\nContent-Length: 2\r\n\r\nab"
                .to_vec(),
        ),
        2 => None,
        _ => Some(ok(b"cd")),
    });
    let pool = Arc::new(Pool::new(None));
    for want in [b"ab", b"cd", b"cd"] {
        let r = pool.send("GET", &url(&base), &[], soon()).unwrap();
        let mut buf = [0u8; 2];
        r.read_exact_body(&mut buf).unwrap();
        assert_eq!(&buf, want);
    }
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[test]
fn a_short_body_is_an_error_not_zeros() {
    let (base, _) = server(|_, _| {
        Some(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\nabc".to_vec())
    });
    let pool = Arc::new(Pool::new(None));
    let r = pool.send("GET", &url(&base), &[], soon()).unwrap();
    let mut buf = [0u8; 20];
    assert!(
        r.read_exact_body(&mut buf).is_err(),
        "more than the body asked"
    );
}

#[test]
fn a_server_that_never_answers_times_out_by_the_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let held = std::thread::spawn(move || l.accept().map(|(s, _)| s));
    let pool = Arc::new(Pool::new(None));
    let t = Instant::now();
    let e = pool
        .send(
            "GET",
            &url(&base),
            &[],
            Instant::now() + Duration::from_millis(300),
        )
        .err()
        .expect("an answer from a silent server");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(held);
}

#[test]
fn garbage_and_oversized_heads_are_refused() {
    let (base, _) = server(|_, n| {
        Some(if n == 0 {
            b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()
        } else {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            v.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
            v
        })
    });
    let pool = Arc::new(Pool::new(None));
    assert!(pool.send("GET", &url(&base), &[], soon()).is_err());
    assert!(pool.send("GET", &url(&base), &[], soon()).is_err());
    assert!(pool
        .send("GET", &url(&base), &[("Cookie", "a\r\nX: y")], soon())
        .is_err());
}

#[test]
fn canned_answers_parse_without_a_socket() {
    let ok =
        b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    assert_eq!(
        parse_canned(ok, "GET", 2, 0).unwrap(),
        (206, b"ab".to_vec())
    );
    assert_eq!(
        parse_canned(ok, "GET", 2, 1).unwrap(),
        (206, b"ab".to_vec())
    );
    assert_eq!(parse_canned(ok, "HEAD", 0, 0).unwrap().0, 206);
    // Cut inside the head, inside the body, or with a chunk size that overflows.
    assert!(parse_canned(b"HTTP/1.1 200 OK\r\nContent-Le", "GET", 1, 0).is_err());
    let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab";
    assert!(parse_canned(short, "GET", 9, 0).is_err());
    assert!(parse_canned(short, "GET", 9, 1).is_err());
    let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n";
    assert!(parse_canned(huge, "GET", 4, 0).is_err());
    assert!(parse_canned(huge, "GET", 4, 2).is_err());
}

#[test]
fn a_body_read_in_parts_keeps_its_connection_until_the_last_part() {
    let (base, conns) = server(|head, _| {
        Some(if head.contains("Range: bytes=0-9") {
            ok(b"0123456789")
        } else {
            b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
                .to_vec()
        })
    });
    let pool = Arc::new(Pool::new(None));
    let range = [("Range", "bytes=0-9")];
    let mut r = pool.send("GET", &url(&base), &range, soon()).unwrap();
    let mut got = Vec::new();
    for n in [4, 1, 5] {
        let mut part = vec![0u8; n];
        r.set_deadline(soon()).unwrap();
        r.read_part(&mut part).unwrap();
        got.extend(part);
    }
    assert_eq!(got, b"0123456789");
    let mut more = [0u8; 1];
    assert!(r.read_part(&mut more).is_err(), "read past the body");
    drop(r);
    // The whole body was read: the next request reuses the connection.
    let r = pool.send("GET", &url(&base), &range, soon()).unwrap();
    let mut buf = [0u8; 10];
    r.read_exact_body(&mut buf).unwrap();
    assert_eq!(conns.load(Ordering::SeqCst), 1);

    // Chunked: parts that cross chunk boundaries, and one past the end is an error.
    let mut r = pool.send("GET", &url(&base), &[], soon()).unwrap();
    let (mut a, mut b) = ([0u8; 2], [0u8; 5]);
    r.read_part(&mut a).unwrap();
    r.read_part(&mut b).unwrap();
    assert_eq!((&a, &b), (b"ab", b"cdefg"));
    assert!(r.read_part(&mut a).is_err(), "read past the last chunk");
}
