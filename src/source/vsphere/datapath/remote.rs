//! One remote file read by Range requests, and the retries that turn a flaky server into
//! a slow read or, past the read deadline, an error, never a hang.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::http::byteranges::{self, PartError, PartReader};
use crate::net::http::{Pool, Response};

use super::super::client::Client;
use super::super::errors::VsError;
use super::host_route::HostRoute;
use super::several::{Ask, Several};

/// How long a read keeps retrying before it fails with EIO: a backup must see an error,
/// never a hang, when the server is gone. Read from the environment once: every read
/// asks, and the environment's lock is no thing to take per megabyte.
fn read_deadline() -> Duration {
    static DEADLINE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *DEADLINE.get_or_init(|| {
        std::env::var("VMSNAPFS_READ_DEADLINE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(30))
    })
}

/// One remote file, read by Range requests. Its size is fixed at open: a frozen chain
/// file does not change while the snapshot exists.
pub struct Remote {
    client: Arc<Client>,
    url: reqwest::Url,
    /// `[ds] path`, for messages.
    name: String,
    size: u64,
    ds: String,
    path: String,
    route: Option<Arc<HostRoute>>,
    /// Whether the server answers several ranges in one request.
    several: Several,
}

/// Ranges asked in one request at most: a short header, a body of a batch's size.
const MAX_RANGES: usize = 16;
/// Bytes a multipart answer may carry besides the ranges, per part (its boundary and
/// headers; Go's server writes about 120).
const PART_OVERHEAD: u64 = 1024;

impl Remote {
    pub fn open(
        client: Arc<Client>,
        dc: &str,
        ds: &str,
        path: &str,
        route: Option<Arc<HostRoute>>,
    ) -> io::Result<Remote> {
        let mut url = reqwest::Url::parse(&client.cfg.base)
            .map_err(|e| io::Error::other(format!("{}: {e}", client.cfg.base)))?;
        url.path_segments_mut()
            .map_err(|_| io::Error::other("base URL cannot take a path"))?
            .push("folder")
            .extend(path.split('/'));
        url.query_pairs_mut()
            .append_pair("dcPath", dc)
            .append_pair("dsName", ds);
        let mut f = Remote {
            client,
            url,
            name: format!("[{ds}] {path}"),
            size: 0,
            ds: ds.to_owned(),
            path: path.to_owned(),
            route,
            several: Several::new(),
        };
        f.size = f.retrying(|f, t| f.fetch_size(t))?;
        Ok(f)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// `[ds] path`, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn status_error(&self, code: u16) -> Attempt {
        match code {
            404 => Attempt::Fatal(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not found on the datastore", self.name),
            )),
            401 => Attempt::Relogin,
            // ESXi answers a read of a file another host holds locked this way.
            403 | 409 | 423 => Attempt::Fatal(io::Error::other(
                VsError::FileLocked {
                    file: self.name.clone(),
                    status: code,
                }
                .to_string(),
            )),
            500..=599 => Attempt::Retry(format!("HTTP {code}")),
            _ => Attempt::Fatal(io::Error::other(format!("{}: HTTP {code}", self.name))),
        }
    }

    /// Where a request for this file goes: to the VM's host with a fresh service ticket
    /// when that route works, else through vCenter with the session cookie.
    fn target(&self, method: &str) -> Target {
        if let Some(route) = self.route.as_ref().filter(|r| r.usable()) {
            match route.target(&self.client, method, &self.ds, &self.path) {
                Ok((pool, url, cookie)) => {
                    return Target {
                        pool,
                        url,
                        cookie: Some(cookie),
                        direct: true,
                    }
                }
                Err(why) => route.fail(&why),
            }
        }
        Target {
            pool: self.client.data.clone(),
            url: self.url.clone(),
            cookie: self.client.cookie_header(),
            direct: false,
        }
    }

    /// Sends a request; an HTTP error status comes back as a response, for the caller
    /// to judge. A failure on the direct-to-host route, by network or by status, marks
    /// that route failed (later requests go through vCenter) and is retried.
    fn send<T>(
        &self,
        t: &Target,
        method: &str,
        range: Option<&str>,
        budget: Duration,
    ) -> Result<Response, Attempt<T>> {
        let fail_route = |why: &str| {
            if let Some(r) = self.route.as_ref().filter(|_| t.direct) {
                r.fail(why);
            }
        };
        let mut headers = Vec::new();
        if let Some(r) = range {
            headers.push(("Range", r));
        }
        if let Some(c) = &t.cookie {
            headers.push(("Cookie", c.as_str()));
        }
        match t
            .pool
            .send(method, &t.url, &headers, Instant::now() + budget)
        {
            Ok(r) if t.direct && !(200..300).contains(&r.status()) => {
                fail_route(&format!("HTTP {}", r.status()));
                Err(Attempt::Retry(format!("host answered HTTP {}", r.status())))
            }
            Ok(r) => Ok(r),
            Err(e) => {
                fail_route(&e.to_string());
                Err(Attempt::Retry(format!("{}: {e}", self.client.server)))
            }
        }
    }

    fn fetch_size(&self, budget: Duration) -> Attempt<u64> {
        let t = self.target("HEAD");
        let resp = match self.send(&t, "HEAD", None, budget) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        if !(200..300).contains(&resp.status()) {
            return self.status_error(resp.status()).map_never();
        }
        if let Some(len) = resp.content_length() {
            return Attempt::Done(len);
        }
        // No length on HEAD: ask for one byte and read the total from Content-Range.
        let t = self.target("GET");
        let resp = match self.send(&t, "GET", Some("bytes=0-0"), budget) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        if resp.status() != 206 {
            return self.status_error(resp.status()).map_never();
        }
        resp.header("Content-Range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse().ok())
            .map(Attempt::Done)
            .unwrap_or_else(|| {
                Attempt::Fatal(io::Error::other(format!("{}: size unknown", self.name)))
            })
    }

    /// Asks for the `len` bytes at `offset` in one Range request and checks the answer:
    /// its body, read by the caller, starts with exactly those bytes.
    pub(super) fn range(&self, offset: u64, len: u64, budget: Duration) -> Attempt<Response> {
        let end = offset + len - 1;
        let t = self.target("GET");
        let range = format!("bytes={offset}-{end}");
        let resp = match self.send(&t, "GET", Some(&range), budget) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        match resp.status() {
            206 => {
                let start = resp
                    .header("Content-Range")
                    .and_then(byteranges::content_range)
                    .map(|(first, _)| first);
                if start != Some(offset) {
                    return Attempt::Fatal(io::Error::other(format!(
                        "{}: server answered a different range than asked",
                        self.name
                    )));
                }
                let sent = resp.content_length();
                if sent.is_some_and(|n| n != len) {
                    return Attempt::Fatal(io::Error::other(format!(
                        "{}: server sent {} bytes for a {len}-byte range",
                        self.name,
                        sent.unwrap_or(0)
                    )));
                }
            }
            // Whole file despite the Range header: fine if we asked from the start; only
            // the part asked for is read.
            200 if offset == 0 => {}
            s if (200..300).contains(&s) => {
                return Attempt::Fatal(io::Error::other(format!(
                    "{}: server ignores Range requests (HTTP {s})",
                    self.name
                )))
            }
            s => return self.status_error(s).map_never(),
        }
        Attempt::Done(resp)
    }

    /// `buf.len()` bytes at `offset`, asked for exactly (one Range request, retried up to
    /// the read deadline).
    pub(super) fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.retrying(|r, t| r.fetch(offset, buf, t))
    }

    /// `buf.len()` bytes at `offset` in one Range request, read by this thread straight
    /// into `buf`.
    pub(super) fn fetch(&self, offset: u64, buf: &mut [u8], budget: Duration) -> Attempt {
        match self.range(offset, buf.len() as u64, budget) {
            Attempt::Done(resp) => match resp.read_exact_body(buf) {
                Ok(()) => Attempt::Done(()),
                Err(e) => Attempt::Retry(format!("reading body: {e}")),
            },
            other => other.without_value(),
        }
    }

    /// Each buffer's bytes from its offset, asked for in one request of several ranges
    /// (a `multipart/byteranges` answer) while the server answers those; one request
    /// each for what an answer left out, and from the first server that answers with
    /// the whole file or only one of the ranges.
    pub(super) fn fetch_ranges(&self, parts: &mut [(u64, &mut [u8])], budget: Duration) -> Attempt {
        let n = parts.len();
        let mut done: Vec<bool> = parts.iter().map(|(_, b)| b.is_empty()).collect();
        let mut lo = 0;
        while lo < n {
            // Waiting on another caller's question takes at most half this read's time,
            // so a stalled question leaves room to ask one range a request.
            let Some(ask) = self.several.ask(budget / 2) else {
                break;
            };
            let hi = (lo + MAX_RANGES).min(n);
            match self.multi_range(ask, &mut parts[lo..hi], &mut done[lo..hi], budget) {
                Attempt::Done(()) => {}
                other => return other,
            }
            lo = hi;
        }
        for ((offset, buf), done) in parts.iter_mut().zip(done) {
            if !done {
                match self.fetch(*offset, buf, budget) {
                    Attempt::Done(()) => {}
                    other => return other,
                }
            }
        }
        Attempt::Done(())
    }

    /// One request for all of `parts`; marks in `done` those the answer filled.
    fn multi_range(
        &self,
        ask: Ask<'_>,
        parts: &mut [(u64, &mut [u8])],
        done: &mut [bool],
        budget: Duration,
    ) -> Attempt {
        let spans: Vec<String> = parts
            .iter()
            .zip(done.iter())
            .filter(|(_, &d)| !d)
            .map(|((o, b), _)| format!("{o}-{}", o + b.len() as u64 - 1))
            .collect();
        // One range is no question of whether the server answers several.
        if spans.len() < 2 {
            return Attempt::Done(());
        }
        let wanted: u64 = parts.iter().map(|(_, b)| b.len() as u64).sum();
        let t = self.target("GET");
        let range = format!("bytes={}", spans.join(","));
        let mut resp = match self.send(&t, "GET", Some(&range), budget) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        let status = resp.status();
        // A server that refuses the header itself (rather than the file) gets one
        // range a request, as one that ignores it.
        if matches!(status, 400 | 416) {
            self.no_multi(&format!("HTTP {status}"));
            return Attempt::Done(());
        }
        if !(200..300).contains(&status) {
            return self.status_error(status).map_never();
        }
        let multipart = resp
            .header("Content-Type")
            .and_then(byteranges::boundary)
            .map(str::to_owned);
        let single = resp
            .header("Content-Range")
            .and_then(byteranges::content_range);
        let len = resp.content_length();
        let fits = len.is_some_and(|n| n <= wanted + PART_OVERHEAD * parts.len() as u64);
        if status != 206 || (multipart.is_none() && single.is_none()) || !fits {
            // The whole file, or an answer of unknown size: not read (its connection is
            // dropped with it), and never asked this way again.
            self.no_multi(&format!("HTTP {status}, {len:?} bytes"));
            return Attempt::Done(());
        }
        let len = len.unwrap_or(0);
        let Some(b) = multipart else {
            // One range back for several asked: what it covers is used, the rest asked
            // one by one, from now on too.
            self.no_multi("one range answered");
            let mut body = vec![0u8; len as usize];
            if let Err(e) = resp.read_exact_body(&mut body) {
                return Attempt::Retry(format!("reading body: {e}"));
            }
            if let Some((first, _)) = single.filter(|(f, l)| l - f + 1 == len) {
                fill_covered(parts, done, first, &body);
            }
            return Attempt::Done(());
        };
        // Each part straight into the buffer asked for it; a part that is not one of
        // them (a server may join neighbouring ranges, RFC 9110) into a buffer of its
        // own, then into those it covers.
        let mut reader = PartReader::new(|buf: &mut [u8]| resp.read_part(buf), len, &b);
        let mut seen = 0;
        let mut read_all = || -> Result<(), PartError> {
            while let Some((first, n)) = reader.next_part()? {
                seen += 1;
                if seen > spans.len() {
                    return Err(PartError::Malformed("more parts than ranges asked for"));
                }
                let exact = parts
                    .iter()
                    .zip(done.iter())
                    .position(|((o, buf), d)| !d && *o == first && buf.len() as u64 == n);
                if let Some(k) = exact {
                    reader.data(parts[k].1)?;
                    done[k] = true;
                } else {
                    // At most the body's length: next_part checked it.
                    let mut own = vec![0u8; n as usize];
                    reader.data(&mut own)?;
                    fill_covered(parts, done, first, &own);
                }
            }
            Ok(())
        };
        match read_all() {
            Ok(()) => {
                ask.works();
                Attempt::Done(())
            }
            Err(PartError::Io(e)) => Attempt::Retry(format!("reading body: {e}")),
            Err(PartError::Malformed(why)) => {
                self.no_multi(&format!("a malformed multipart answer: {why}"));
                Attempt::Done(())
            }
        }
    }

    fn no_multi(&self, why: &str) {
        if self.several.refuse() {
            tracing::info!(
                "{}: the server does not answer several ranges in one request ({why}); one request per range",
                self.name
            );
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the read deadline passes. `op`
    /// gets the time left, which bounds each request: a server that accepts and then
    /// never answers cannot stretch the deadline.
    pub(super) fn retrying<T>(
        &self,
        mut op: impl FnMut(&Self, Duration) -> Attempt<T>,
    ) -> io::Result<T> {
        let deadline = Instant::now() + read_deadline();
        let mut delay = Duration::from_millis(100);
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            let why = match op(self, left) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Relogin => {
                    let stale = self.client.cookie();
                    match self.client.relogin(stale) {
                        Ok(()) => "session expired; logged in again".to_owned(),
                        Err(e) => e.to_string(),
                    }
                }
                Attempt::Retry(why) => why,
            };
            if Instant::now() + delay > deadline {
                return Err(io::Error::other(format!(
                    "{}: giving up after {:?}: {why}",
                    self.name,
                    read_deadline()
                )));
            }
            tracing::warn!("{}: {why}; retrying in {delay:?}", self.name);
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// Where one request goes, and with which credentials.
struct Target {
    pool: Arc<Pool>,
    url: reqwest::Url,
    cookie: Option<String>,
    direct: bool,
}

pub(super) enum Attempt<T = ()> {
    Done(T),
    Retry(String),
    Relogin,
    Fatal(io::Error),
}

impl<V> Attempt<V> {
    /// The same outcome for a caller that wants no value from it.
    pub(super) fn without_value(self) -> Attempt {
        match self {
            Attempt::Done(_) => Attempt::Done(()),
            Attempt::Retry(w) => Attempt::Retry(w),
            Attempt::Relogin => Attempt::Relogin,
            Attempt::Fatal(e) => Attempt::Fatal(e),
        }
    }
}

impl Attempt<()> {
    fn map_never<T>(self) -> Attempt<T> {
        match self {
            Attempt::Done(()) => Attempt::Retry("unexpected success".into()),
            Attempt::Retry(w) => Attempt::Retry(w),
            Attempt::Relogin => Attempt::Relogin,
            Attempt::Fatal(e) => Attempt::Fatal(e),
        }
    }
}

/// Copies `data`, the file's bytes from `first` on, into each buffer not yet done that
/// it covers whole, and marks those done.
fn fill_covered(parts: &mut [(u64, &mut [u8])], done: &mut [bool], first: u64, data: &[u8]) {
    let end = first + data.len() as u64;
    for ((offset, buf), done) in parts.iter_mut().zip(done.iter_mut()) {
        if !*done && *offset >= first && *offset + buf.len() as u64 <= end {
            let from = (*offset - first) as usize;
            buf.copy_from_slice(&data[from..from + buf.len()]);
            *done = true;
        }
    }
}
