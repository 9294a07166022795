//! The data path: chain files read as HTTP Range requests of the datastore browser
//! (`GET /folder/<path>?dcPath=&dsName=`) over the session's pooled keep-alive
//! connections, or straight from a locally mounted datastore (`-o datastore_map`).
//! No VDDK: every VMDK format is parsed by our own reader on top of these bytes.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use vmsnapfs_io::{check_bounds, FileSource, ReadAt};
use vmsnapfs_vmdk::Resolver;

use super::client::Client;
use super::errors::VsError;

/// `[datastore] folder/file.vmdk` split into its parts.
pub fn parse_ds_path(s: &str) -> Option<(String, String)> {
    let rest = s.trim().strip_prefix('[')?;
    let (ds, path) = rest.split_once(']')?;
    Some((ds.to_owned(), path.trim_start().to_owned()))
}

/// Removes `.` and `..` so the server sees a canonical path.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

/// How long a read keeps retrying before it fails with EIO: a backup must see an error,
/// never a hang, when the server is gone.
fn read_deadline() -> Duration {
    std::env::var("VMSNAPFS_READ_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// One remote file, read by Range requests. Its size is fixed at open: a frozen chain
/// file does not change while the snapshot exists.
struct Remote {
    client: Arc<Client>,
    url: reqwest::Url,
    /// `[ds] path`, for messages.
    name: String,
    size: u64,
    ds: String,
    path: String,
    route: Option<Arc<HostRoute>>,
}

/// Reading straight from the ESXi host that runs the VM, with a service ticket from
/// vCenter per request (`-o direct_host`): a file that host holds locked is served
/// only by it, and the data then does not pass through vCenter. Any failure falls back
/// to the vCenter path for the rest of the mount.
pub struct HostRoute {
    /// The host's inventory name (address), as vCenter knows it.
    pub host: String,
    /// `https` (or `http`, as the vCenter URL says).
    pub scheme: String,
    pub insecure: bool,
    broken: AtomicBool,
    /// HTTP clients per pinned host thumbprint.
    clients: Mutex<HashMap<String, reqwest::blocking::Client>>,
}

impl HostRoute {
    pub fn new(host: String, scheme: String, insecure: bool) -> HostRoute {
        HostRoute {
            host,
            scheme,
            insecure,
            broken: AtomicBool::new(false),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    fn fail(&self, why: &str) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "reading from host {} directly failed ({why}); reading through vCenter",
                self.host
            );
        }
    }

    fn http(
        &self,
        c: &Client,
        thumbprint: Option<String>,
    ) -> Result<reqwest::blocking::Client, String> {
        if self.scheme != "https" {
            return Ok(c.http().clone());
        }
        let key = thumbprint.clone().unwrap_or_default();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = clients.get(&key) {
            return Ok(h.clone());
        }
        let b = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true);
        let b = match thumbprint {
            Some(t) => {
                b.use_preconfigured_tls(Arc::new(super::tls::Pinned::new(Some(t))).client_config()?)
            }
            None if self.insecure => b.danger_accept_invalid_certs(true),
            None => return Err("the ticket names no host certificate thumbprint".into()),
        };
        let h = b.build().map_err(|e| e.to_string())?;
        clients.insert(key, h.clone());
        Ok(h)
    }
}

/// A remote file with sequential read-ahead: a read that continues the previous one
/// fetches a whole window, and the next window is fetched in the background while the
/// reader consumes this one, so the network and the reader overlap.
pub struct HttpFile {
    remote: Arc<Remote>,
    /// Windows fetched or being fetched, oldest first.
    windows: Mutex<VecDeque<Window>>,
    /// Where the last read ended: a read starting there is sequential.
    next: AtomicU64,
    /// Sequential windows in a row, which sizes the next one.
    streak: AtomicU32,
}

#[derive(Clone)]
struct Window {
    start: u64,
    len: usize,
    slot: Arc<Slot>,
}

/// A window's bytes, or why they could not be had, once its fetch ends.
#[derive(Default)]
struct Slot {
    data: Mutex<Option<Result<Arc<Vec<u8>>, String>>>,
    ready: Condvar,
}

impl Slot {
    fn wait(&self) -> Result<Arc<Vec<u8>>, String> {
        let mut g = self.data.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = &*g {
                return r.clone();
            }
            g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn set(&self, r: Result<Arc<Vec<u8>>, String>) {
        *self.data.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.ready.notify_all();
    }
}

/// Sequential reads (a backup copying an image or a big file) fetch this much per
/// request: per-request latency then costs little next to the transfer itself.
const WINDOW: usize = 8 << 20;
const WINDOWS: usize = 4;
const AHEAD: usize = 2;

impl HttpFile {
    pub fn open(
        client: Arc<Client>,
        dc: &str,
        ds: &str,
        path: &str,
        route: Option<Arc<HostRoute>>,
    ) -> io::Result<HttpFile> {
        Ok(HttpFile {
            remote: Arc::new(Remote::open(client, dc, ds, path, route)?),
            windows: Mutex::new(VecDeque::new()),
            next: AtomicU64::new(u64::MAX),
            streak: AtomicU32::new(0),
        })
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, VecDeque<Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The window size now: it grows from 1 MiB to WINDOW while reads stay sequential,
    /// so a short sequential run (two adjacent grains) does not fetch 8 MiB.
    fn window_len(&self) -> usize {
        (WINDOW >> 3) << self.streak.load(Ordering::Relaxed).min(3)
    }

    /// Registers a window being fetched at `start`, dropping the oldest beyond the
    /// limit; None if one starts there already.
    fn register(&self, start: u64) -> Option<Window> {
        let size = self.remote.size;
        if start >= size {
            return None;
        }
        let mut w = self.windows();
        if w.iter().any(|x| x.start == start) {
            return None;
        }
        let win = Window {
            start,
            len: (size - start).min(self.window_len() as u64) as usize,
            slot: Arc::default(),
        };
        if w.len() >= WINDOWS {
            w.pop_front();
        }
        w.push_back(win.clone());
        Some(win)
    }

    fn forget(&self, start: u64) {
        self.windows().retain(|x| x.start != start);
    }

    /// Fetches the window at `pos` in the background unless one starts there already;
    /// returns where that window ends.
    fn prefetch(&self, pos: u64) -> Option<u64> {
        let Some(win) = self.register(pos) else {
            return self
                .windows()
                .iter()
                .find(|x| x.start == pos)
                .map(|x| x.start + x.len as u64);
        };
        let _ = self
            .streak
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((s + 1).min(3))
            });
        let end = win.start + win.len as u64;
        let remote = self.remote.clone();
        let spawned = std::thread::Builder::new()
            .name("vsphere-readahead".into())
            .spawn(move || {
                let mut data = vec![0u8; win.len];
                let r = remote.retrying(|r, t| r.fetch(win.start, &mut data, t));
                win.slot
                    .set(r.map(|()| Arc::new(data)).map_err(|e| e.to_string()));
            });
        if spawned.is_err() {
            self.forget(pos);
            return None;
        }
        Some(end)
    }
}

impl Remote {
    fn open(
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
        };
        f.size = f.retrying(|f, t| f.fetch_size(t))?;
        Ok(f)
    }

    fn status_error(&self, status: StatusCode) -> Attempt {
        let code = status.as_u16();
        match status {
            StatusCode::NOT_FOUND => Attempt::Fatal(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not found on the datastore", self.name),
            )),
            StatusCode::UNAUTHORIZED => Attempt::Relogin,
            // ESXi answers a read of a file another host holds locked this way.
            StatusCode::FORBIDDEN | StatusCode::CONFLICT | StatusCode::LOCKED => {
                Attempt::Fatal(io::Error::other(
                    VsError::FileLocked {
                        file: self.name.clone(),
                        status: code,
                    }
                    .to_string(),
                ))
            }
            s if s.is_server_error() => Attempt::Retry(format!("HTTP {code}")),
            _ => Attempt::Fatal(io::Error::other(format!("{}: HTTP {code}", self.name))),
        }
    }

    /// A request for this file: to the VM's host with a fresh service ticket when that
    /// route works, else through vCenter with the session cookie. Returns whether it
    /// goes to the host.
    fn request(&self, method: reqwest::Method) -> (reqwest::blocking::RequestBuilder, bool) {
        if let Some(route) = self.route.as_ref().filter(|r| r.usable()) {
            match self.direct(route, method.clone()) {
                Ok(r) => return (r, true),
                Err(why) => route.fail(&why),
            }
        }
        (
            self.client
                .with_session(self.client.http().request(method, self.url.clone())),
            false,
        )
    }

    fn direct(
        &self,
        route: &HostRoute,
        method: reqwest::Method,
    ) -> Result<reqwest::blocking::RequestBuilder, String> {
        let mut url = reqwest::Url::parse(&format!("{}://{}/", route.scheme, route.host))
            .map_err(|e| e.to_string())?;
        url.path_segments_mut()
            .map_err(|_| "host URL cannot take a path".to_owned())?
            .clear()
            .push("folder")
            .extend(self.path.split('/'));
        // An ESXi host has one datacenter, so no dcPath.
        url.query_pairs_mut().append_pair("dsName", &self.ds);
        let kind = if method == reqwest::Method::HEAD {
            "httpHead"
        } else {
            "httpGet"
        };
        let spec = format!(
            "<spec xsi:type=\"SessionManagerHttpServiceRequestSpec\"><method>{kind}</method>\
             <url>{}</url></spec>",
            super::soap::escape(url.as_str())
        );
        let r = self
            .client
            .call(
                "AcquireGenericServiceTicket",
                &self.client.sc.session_manager,
                &spec,
            )
            .map_err(|e| e.to_string())?;
        let ticket = r.child("returnval").ok_or("no ticket returned")?;
        let id = ticket.text_of("id").ok_or("ticket without id")?;
        if let Some(h) = ticket
            .text_of("hostName")
            .filter(|h| !h.is_empty() && *h != "localhost.localdomain")
        {
            // The host's own idea of its name; keep the port only if it gives one.
            let (name, port) = match h.rsplit_once(':') {
                Some((n, p)) if p.parse::<u16>().is_ok() => (n, Some(p.parse::<u16>().unwrap())),
                _ => (h, None),
            };
            url.set_host(Some(name)).map_err(|e| e.to_string())?;
            if port.is_some() {
                let _ = url.set_port(port);
            }
        }
        let pin = ticket
            .text_of("sslThumbprint")
            .and_then(super::tls::normalize_any);
        let http = route.http(&self.client, pin)?;
        Ok(http
            .request(method, url)
            .header(reqwest::header::COOKIE, format!("vmware_cgi_ticket={id}")))
    }

    /// Sends a request. A failure on the direct-to-host route, by network or by status,
    /// marks that route failed (later requests go through vCenter) and is retried.
    fn send<T>(
        &self,
        req: reqwest::blocking::RequestBuilder,
        direct: bool,
    ) -> Result<reqwest::blocking::Response, Attempt<T>> {
        let fail_route = |why: &str| {
            if let Some(r) = self.route.as_ref().filter(|_| direct) {
                r.fail(why);
            }
        };
        let resp = req.send().map_err(|e| {
            fail_route(&e.to_string());
            Attempt::Retry(self.client.net_error(e).to_string())
        })?;
        if direct && !resp.status().is_success() {
            fail_route(&format!("HTTP {}", resp.status()));
            return Err(Attempt::Retry(format!(
                "host answered HTTP {}",
                resp.status()
            )));
        }
        Ok(resp)
    }

    fn fetch_size(&self, budget: Duration) -> Attempt<u64> {
        let (req, direct) = self.request(reqwest::Method::HEAD);
        let resp = match self.send(req.timeout(budget), direct) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        if !resp.status().is_success() {
            return self.status_error(resp.status()).map_never();
        }
        let len = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if let Some(len) = len {
            return Attempt::Done(len);
        }
        // No length on HEAD: ask for one byte and read the total from Content-Range.
        let req = self
            .request(reqwest::Method::GET)
            .0
            .header(RANGE, "bytes=0-0")
            .timeout(budget);
        match req.send() {
            Ok(r) if r.status() == StatusCode::PARTIAL_CONTENT => r
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.parse().ok())
                .map(Attempt::Done)
                .unwrap_or_else(|| {
                    Attempt::Fatal(io::Error::other(format!("{}: size unknown", self.name)))
                }),
            Ok(r) => self.status_error(r.status()).map_never(),
            Err(e) => Attempt::Retry(self.client.net_error(e).to_string()),
        }
    }

    fn fetch(&self, offset: u64, buf: &mut [u8], budget: Duration) -> Attempt {
        let end = offset + buf.len() as u64 - 1;
        let (req, direct) = self.request(reqwest::Method::GET);
        let req = req
            .header(RANGE, format!("bytes={offset}-{end}"))
            .timeout(budget);
        let mut resp = match self.send(req, direct) {
            Ok(r) => r,
            Err(retry) => return retry,
        };
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Attempt::Fatal(io::Error::other(format!(
                        "{}: server answered a different range than asked",
                        self.name
                    )));
                }
            }
            // Whole file despite the Range header: fine if we asked from the start.
            StatusCode::OK if offset == 0 => {}
            s if s.is_success() => {
                return Attempt::Fatal(io::Error::other(format!(
                    "{}: server ignores Range requests (HTTP {s})",
                    self.name
                )))
            }
            s => return self.status_error(s),
        }
        match resp.read_exact(buf) {
            Ok(()) => Attempt::Done(()),
            Err(e) => Attempt::Retry(format!("reading body: {e}")),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the read deadline passes. `op`
    /// gets the time left, which bounds each request: a server that accepts and then
    /// never answers cannot stretch the deadline.
    fn retrying<T>(&self, mut op: impl FnMut(&Self, Duration) -> Attempt<T>) -> io::Result<T> {
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

enum Attempt<T = ()> {
    Done(T),
    Retry(String),
    Relogin,
    Fatal(io::Error),
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

impl ReadAt for HttpFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let size = self.remote.size;
        check_bounds(offset, buf.len(), size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let covering = self
            .windows()
            .iter()
            .find(|w| offset >= w.start && end <= w.start + w.len as u64)
            .cloned();
        let win = match covering {
            Some(w) => w,
            None => {
                let sequential = self.next.load(Ordering::Relaxed) == offset;
                if !sequential {
                    self.streak.store(0, Ordering::Relaxed);
                }
                let win = if sequential && buf.len() < self.window_len() {
                    self.register(offset)
                } else {
                    None
                };
                // Random access, a read as big as a window, or a window at this offset
                // registered meanwhile by another reader that does not cover this read.
                let Some(w) = win else {
                    self.next.store(end, Ordering::Relaxed);
                    return self.remote.retrying(|r, t| r.fetch(offset, buf, t));
                };
                let mut data = vec![0u8; w.len];
                let r = self.remote.retrying(|r, t| r.fetch(w.start, &mut data, t));
                w.slot
                    .set(r.map(|()| Arc::new(data)).map_err(|e| e.to_string()));
                w
            }
        };
        match win.slot.wait() {
            Ok(data) => {
                let at = (offset - win.start) as usize;
                buf.copy_from_slice(&data[at..at + buf.len()]);
                self.next.store(end, Ordering::Relaxed);
                // Windows ahead: two transfers in flight hide one's latency.
                let mut pos = win.start + win.len as u64;
                for _ in 0..AHEAD {
                    match self.prefetch(pos) {
                        Some(next) => pos = next,
                        None => break,
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.forget(win.start);
                Err(io::Error::other(e))
            }
        }
    }

    fn size(&self) -> u64 {
        self.remote.size
    }
}

/// Resolves chain-file names to datastore files. Names arrive as `[ds] path` (the head,
/// and parents joined to it by the VMDK reader), or as absolute ESXi hints
/// (`/vmfs/volumes/<ds>/…`), which are mapped by datastore name or, failing that, by the
/// file's name among the snapshot's known backing files.
pub struct DsResolver {
    pub client: Arc<Client>,
    /// Datastore name → datacenter name (the dcPath query parameter).
    pub dc_of: HashMap<String, String>,
    /// Datastore name → local folder where it is mounted (datastore_map).
    pub local: HashMap<String, PathBuf>,
    /// File name → `[ds] path`, from the snapshot's backing chain.
    pub known: HashMap<String, String>,
    /// The head's `[ds] folder`, for names that are neither.
    pub home: (String, String),
    /// Read from the VM's host directly (`-o direct_host` through a vCenter).
    pub route: Option<Arc<HostRoute>>,
}

impl DsResolver {
    fn locate(&self, name: &str) -> (String, String) {
        if let Some((ds, path)) = parse_ds_path(name) {
            // Parent hints joined by the reader keep the `[ds] ` prefix of the head.
            return (ds, normalize(&path));
        }
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if let Some(rest) = name.strip_prefix("/vmfs/volumes/") {
            if let Some((ds, path)) = rest.split_once('/') {
                if self.dc_of.contains_key(ds) || self.local.contains_key(ds) {
                    return (ds.to_owned(), normalize(path));
                }
            }
        }
        if let Some((ds, path)) = self.known.get(base).and_then(|p| parse_ds_path(p)) {
            return (ds, normalize(&path));
        }
        let (ds, dir) = &self.home;
        (ds.clone(), normalize(&format!("{dir}/{base}")))
    }
}

impl Resolver for DsResolver {
    fn open(&self, name: &str) -> io::Result<Arc<dyn ReadAt>> {
        let (ds, path) = self.locate(name);
        if let Some(root) = self.local.get(&ds) {
            return Ok(Arc::new(FileSource::open(&root.join(&path))?));
        }
        let dc = self.dc_of.get(&ds).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name}: datastore {ds} is not in any datacenter the server lists"),
            )
        })?;
        Ok(Arc::new(HttpFile::open(
            self.client.clone(),
            dc,
            &ds,
            &path,
            self.route.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_paths() {
        assert_eq!(
            parse_ds_path("[LocalDS_0] vm/disk.vmdk"),
            Some(("LocalDS_0".into(), "vm/disk.vmdk".into()))
        );
        assert_eq!(parse_ds_path("disk.vmdk"), None);
        assert_eq!(normalize("a/./b/../c.vmdk"), "a/c.vmdk");
    }
}
