//! The vim25 SOAP session: version discovery, ServiceContent, Login and the session
//! cookie, transparent re-login, keep-alive, property retrieval, and the mapping of
//! transport failures (unreachable, untrusted certificate, wrong pin) to one-line errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};

use crate::net::{http, tls};
use crate::sync::Relock;

use super::credentials::Credentials;
use super::errors::{Result, VsError};
use super::soap::{self, escape, Element, Moref};

/// How to reach and trust one vCenter/ESXi.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// `https://host:port` (no path).
    pub base: String,
    pub host: String,
    pub port: u16,
    pub creds: Credentials,
    pub thumbprint: Option<String>,
    pub insecure: bool,
    /// How long one SOAP call may wait for its whole answer.
    pub soap_timeout: Duration,
}

/// `VMSNAPFS_SOAP_TIMEOUT_SECS` (default 30): a hung server (accepts, never answers)
/// fails a SOAP call after this long instead of stalling a freeze, a thaw or
/// `snapshots list`.
pub fn soap_timeout() -> Duration {
    std::env::var("VMSNAPFS_SOAP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// The morefs every later call starts from, all taken from RetrieveServiceContent.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    pub root_folder: Moref,
    pub property_collector: Moref,
    pub view_manager: Moref,
    pub session_manager: Moref,
    pub search_index: Moref,
    pub api_version: String,
    pub api_type: String,
    /// Identifies a vCenter however it is addressed (name, IP, proxy); empty on ESXi.
    pub instance_uuid: String,
}

/// One object's properties: path → the `<val>` element.
#[derive(Debug, Clone)]
pub struct ObjectContent {
    pub obj: Moref,
    pub props: HashMap<String, Element>,
}

pub struct Client {
    http: Http,
    /// The data path's pool (datastore reads), trusting what `http` trusts.
    pub data: Arc<http::Pool>,
    pub cfg: ConnectConfig,
    /// `host:port`: names the server in messages and in the journal.
    pub server: String,
    version: String,
    pub sc: ServiceContent,
    cookie: RwLock<Option<String>>,
    login_lock: Mutex<()>,
    pin_seen: Option<Arc<Mutex<Option<String>>>>,
    /// Set while the source holds snapshots: the keep-alive then keeps the session.
    pub active: std::sync::atomic::AtomicBool,
    /// Set once the server answered CreateSnapshotEx_Task with MethodNotFound.
    pub snapshot_ex_missing: std::sync::atomic::AtomicBool,
}

const SESSION_COOKIE: &str = "vmware_soap_session";

impl Client {
    /// Connects, discovers the API version, reads ServiceContent and logs in.
    pub fn connect(cfg: ConnectConfig) -> Result<Arc<Client>> {
        let server = format!("{}:{}", cfg.host, cfg.port);
        // The SOAP timeout is also the default for any other request; datastore reads
        // set their own per request (their retry budget).
        let mut builder = Http::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(cfg.soap_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .user_agent(concat!("vmsnapfs/", env!("CARGO_PKG_VERSION")));
        // One trust decision and one TLS configuration for SOAP and datastore reads.
        let mut pin_seen = None;
        let mut data_tls = None;
        if cfg.base.starts_with("https://") {
            let trust = match (&cfg.thumbprint, cfg.insecure) {
                (Some(t), _) => tls::Trust::Pinned(t.clone()),
                (None, true) => {
                    tracing::warn!(
                        "{server}: -o insecure: the server's certificate is NOT verified; \
                         anyone on the path can read the credentials"
                    );
                    tls::Trust::Any
                }
                (None, false) => tls::Trust::System,
            };
            let t = trust
                .client_config()
                .map_err(|e| VsError::Config(e.to_string()))?;
            builder = builder.use_preconfigured_tls((*t.config).clone());
            pin_seen = t.seen;
            data_tls = Some(t.config);
        }
        let http = builder
            .build()
            .map_err(|e| VsError::Config(format!("HTTP client: {e}")))?;
        let mut client = Client {
            http,
            data: Arc::new(http::Pool::new(data_tls)),
            cfg,
            server,
            version: String::new(),
            sc: ServiceContent {
                root_folder: Moref::new("Folder", "group-d1"),
                property_collector: Moref::new("PropertyCollector", "propertyCollector"),
                view_manager: Moref::new("ViewManager", "ViewManager"),
                session_manager: Moref::new("SessionManager", "SessionManager"),
                search_index: Moref::new("SearchIndex", "SearchIndex"),
                api_version: String::new(),
                api_type: String::new(),
                instance_uuid: String::new(),
            },
            cookie: RwLock::new(None),
            login_lock: Mutex::new(()),
            pin_seen,
            active: std::sync::atomic::AtomicBool::new(false),
            snapshot_ex_missing: std::sync::atomic::AtomicBool::new(false),
        };
        let version = match client.discover_version() {
            Ok(v) => Some(v),
            // Not reachable or not trusted: nothing else will work, say so now.
            Err(
                e @ (VsError::Unreachable { .. }
                | VsError::TlsUntrusted { .. }
                | VsError::ThumbprintMismatch { .. }),
            ) => return Err(e),
            Err(e) => {
                tracing::debug!("{e}; taking the API version from ServiceContent");
                None
            }
        };
        let version_known = version.is_some();
        client.version = version.unwrap_or_default();
        client.sc = client.retrieve_service_content()?;
        if !version_known {
            client.version = client.sc.api_version.clone();
        }
        tracing::debug!(
            "{}: {} API {} (SOAPAction urn:vim25/{})",
            client.server,
            client.sc.api_type,
            client.sc.api_version,
            client.version
        );
        client.login()?;
        let client = Arc::new(client);
        spawn_keepalive(Arc::downgrade(&client));
        Ok(client)
    }

    /// The newest vim25 version the server speaks, from /sdk/vimServiceVersions.xml.
    fn discover_version(&self) -> Result<String> {
        let url = format!("{}/sdk/vimServiceVersions.xml", self.cfg.base);
        let resp = self.send(self.http.get(&url).timeout(self.cfg.soap_timeout))?;
        if !resp.status().is_success() {
            return Err(VsError::Http {
                url,
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        let text = resp.text().map_err(|e| self.net_error(e))?;
        let root = soap::parse(&text).map_err(|d| self.protocol("vimServiceVersions.xml", d.0))?;
        let version = root
            .children_named("namespace")
            .find(|n| n.text_of("name") == Some("urn:vim25"))
            .and_then(|n| n.text_of("version"))
            .map(str::to_owned);
        version
            .ok_or_else(|| self.protocol("vimServiceVersions.xml", "no urn:vim25 version".into()))
    }

    fn retrieve_service_content(&self) -> Result<ServiceContent> {
        let si = Moref::new("ServiceInstance", "ServiceInstance");
        let r = self.call("RetrieveServiceContent", &si, "")?;
        let rv = r
            .child("returnval")
            .ok_or_else(|| self.protocol("RetrieveServiceContent", "no returnval".into()))?;
        let m = |name: &str| {
            rv.moref_of(name).ok_or_else(|| {
                self.protocol(
                    "RetrieveServiceContent",
                    format!("no {name} in ServiceContent"),
                )
            })
        };
        Ok(ServiceContent {
            root_folder: m("rootFolder")?,
            property_collector: m("propertyCollector")?,
            view_manager: m("viewManager")?,
            session_manager: m("sessionManager")?,
            search_index: m("searchIndex")?,
            api_version: rv.text_of("about/apiVersion").unwrap_or("").to_owned(),
            api_type: rv.text_of("about/apiType").unwrap_or("").to_owned(),
            instance_uuid: rv.text_of("about/instanceUuid").unwrap_or("").to_owned(),
        })
    }

    fn login(&self) -> Result<()> {
        let args = format!(
            "<userName>{}</userName><password>{}</password>",
            escape(&self.cfg.creds.username),
            escape(&self.cfg.creds.password)
        );
        *self.cookie.write().relock() = None;
        match self.call_once("Login", &self.sc.session_manager, &args) {
            Ok(_) => {
                tracing::debug!("{}: logged in as {}", self.server, self.cfg.creds.username);
                Ok(())
            }
            Err(VsError::Fault { kind, .. }) if kind == "InvalidLogin" => {
                Err(VsError::InvalidLogin {
                    server: self.server.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Logs in again unless another thread already did since `stale` was current.
    pub fn relogin(&self, stale: Option<String>) -> Result<()> {
        let _g = self.login_lock.lock().relock();
        // Another thread logged in meanwhile; a logout meanwhile (no cookie) is not that.
        let now = self.cookie();
        if now.is_some() && now != stale {
            return Ok(());
        }
        tracing::info!("{}: session expired; logging in again", self.server);
        self.login()
    }

    /// Logs in if logged out (after `logout` while the mount sat idle).
    pub fn ensure_session(&self) -> Result<()> {
        if self.cookie().is_none() {
            self.relogin(None)?;
        }
        Ok(())
    }

    pub fn logout(&self) {
        if self.cookie().is_some() {
            let _ = self.call_once("Logout", &self.sc.session_manager, "");
            *self.cookie.write().relock() = None;
        }
    }

    pub fn cookie(&self) -> Option<String> {
        self.cookie.read().relock().clone()
    }

    /// The `Cookie` header value that carries the session, while there is one.
    pub fn cookie_header(&self) -> Option<String> {
        self.cookie().map(|c| format!("{SESSION_COOKIE}={c}"))
    }

    /// Adds the session cookie to a request.
    pub fn with_session(&self, req: RequestBuilder) -> RequestBuilder {
        match self.cookie() {
            Some(c) => req.header(COOKIE, format!("{SESSION_COOKIE}={c}")),
            None => req,
        }
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Calls a method; on NotAuthenticated logs in again and retries once. Methods
    /// that only read are also retried, with backoff, when the connection fails (a
    /// dropped keep-alive connection, a server restarting); ones that change state
    /// (CreateSnapshot, RemoveSnapshot) are not, since the first call may have happened.
    /// Each attempt waits at most the SOAP timeout, and no retry starts once that much
    /// time has passed since the first: a hung server fails the call after one timeout,
    /// and no call takes more than twice it (plus a re-login).
    pub fn call(&self, method: &str, this: &Moref, args: &str) -> Result<Element> {
        let idempotent = matches!(
            method,
            "RetrievePropertiesEx"
                | "ContinueRetrievePropertiesEx"
                | "RetrieveServiceContent"
                | "FindByInventoryPath"
                | "DestroyView"
                | "QueryChangedDiskAreas"
        );
        let start = Instant::now();
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let before = self.cookie();
            let r = match self.call_once(method, this, args) {
                Err(VsError::Fault { kind, .. }) if kind == "NotAuthenticated" => {
                    self.relogin(before)?;
                    self.call_once(method, this, args)
                }
                r => r,
            };
            match r {
                Err(VsError::Unreachable { detail, .. })
                    if idempotent
                        && attempt < 4
                        && start.elapsed() + delay < self.cfg.soap_timeout =>
                {
                    tracing::warn!("{}: {method}: {detail}; retrying in {delay:?}", self.server);
                    std::thread::sleep(delay);
                    delay *= 3;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn call_once(&self, method: &str, this: &Moref, args: &str) -> Result<Element> {
        let body = soap::envelope(&format!(
            "<{method} xmlns=\"urn:vim25\">{}{args}</{method}>",
            this.xml("_this")
        ));
        let action = if self.version.is_empty() {
            "\"urn:vim25\"".to_owned()
        } else {
            format!("\"urn:vim25/{}\"", self.version)
        };
        let req = self
            .with_session(self.http.post(format!("{}/sdk", self.cfg.base)))
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .timeout(self.cfg.soap_timeout)
            .body(body);
        let resp = self.send(req)?;
        self.take_cookie(&resp);
        let status = resp.status();
        let text = resp.text().map_err(|e| self.net_error(e))?;
        let root = soap::parse(&text).map_err(|d| {
            if status.is_success() {
                self.protocol(method, d.0)
            } else {
                VsError::Http {
                    url: format!("{}/sdk", self.cfg.base),
                    status: status.as_u16(),
                    detail: format!(" answering {method}"),
                }
            }
        })?;
        match soap::response(&root).map_err(|d| self.protocol(method, d.0))? {
            Ok(el) => Ok(el),
            Err(f) => Err(VsError::Fault {
                method: method.to_owned(),
                kind: f.kind,
                message: f.message,
            }),
        }
    }

    fn take_cookie(&self, resp: &Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let first = v.split(';').next().unwrap_or("");
            if let Some(val) = first.trim().strip_prefix(&format!("{SESSION_COOKIE}=")) {
                *self.cookie.write().relock() = Some(val.to_owned());
            }
        }
    }

    /// Sends a request, mapping transport failures to what the user should do.
    pub fn send(&self, req: RequestBuilder) -> Result<Response> {
        req.send().map_err(|e| self.net_error(e))
    }

    pub fn net_error(&self, e: reqwest::Error) -> VsError {
        let mut chain = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            src = s.source();
        }
        if let (Some(seen), Some(want)) = (&self.pin_seen, &self.cfg.thumbprint) {
            if let Some(got) = seen.lock().relock().clone() {
                if got != *want {
                    return VsError::ThumbprintMismatch {
                        server: self.server.clone(),
                        expected: want.clone(),
                        got,
                    };
                }
            }
        }
        tracing::debug!("{}: {chain}", self.server);
        let lower = chain.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            if let Some(thumbprint) = tls::probe_thumbprint(&self.cfg.host, self.cfg.port) {
                let detail = if lower.contains("unknownissuer") {
                    "issuer unknown: self-signed or private CA".to_owned()
                } else if lower.contains("notvalidforname") {
                    "not valid for this host name".to_owned()
                } else {
                    "verification failed".to_owned()
                };
                return VsError::TlsUntrusted {
                    server: self.server.clone(),
                    detail,
                    thumbprint,
                };
            }
        }
        let detail = if e.is_timeout() {
            "timed out".to_owned()
        } else if lower.contains("connection refused") {
            "connection refused".to_owned()
        } else {
            chain
        };
        VsError::Unreachable {
            server: self.server.clone(),
            detail,
        }
    }

    pub fn protocol(&self, what: &str, detail: String) -> VsError {
        VsError::Protocol {
            server: self.server.clone(),
            what: what.to_owned(),
            detail,
        }
    }

    /// RetrievePropertiesEx (+ ContinueRetrievePropertiesEx while a token comes back).
    pub fn retrieve(
        &self,
        object_set: &str,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>> {
        let mut prop = format!("<propSet><type>{kind}</type>");
        for p in paths {
            prop.push_str(&format!("<pathSet>{}</pathSet>", escape(p)));
        }
        prop.push_str("</propSet>");
        let args = format!("<specSet>{prop}{object_set}</specSet><options/>");
        let pc = self.sc.property_collector.clone();
        let mut out = Vec::new();
        let mut r = self.call("RetrievePropertiesEx", &pc, &args)?;
        while let Some(rv) = r.child("returnval") {
            for o in rv.children_named("objects") {
                let Some(obj) = o.moref_of("obj") else {
                    continue;
                };
                let mut props = HashMap::new();
                for ps in o.children_named("propSet") {
                    if let (Some(name), Some(val)) = (ps.text_of("name"), ps.child("val")) {
                        props.insert(name.to_owned(), val.clone());
                    }
                }
                out.push(ObjectContent { obj, props });
            }
            match rv.text_of("token") {
                Some(token) if !token.is_empty() => {
                    let args = format!("<token>{}</token>", escape(token));
                    r = self.call("ContinueRetrievePropertiesEx", &pc, &args)?;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Properties of one object.
    pub fn properties(&self, obj: &Moref, paths: &[&str]) -> Result<HashMap<String, Element>> {
        let set = format!(
            "<objectSet>{}<skip>false</skip></objectSet>",
            obj.xml("obj")
        );
        Ok(self
            .retrieve(&set, &obj.kind, paths)?
            .into_iter()
            .next()
            .map(|o| o.props)
            .unwrap_or_default())
    }
}

/// Sessions expire after ~30 idle minutes; a long backup may read only from the block
/// cache for that long, then need the session for thaw. A light call keeps it alive
/// and logs in again if it lapsed anyway.
fn spawn_keepalive(client: Weak<Client>) {
    let period = std::env::var("VMSNAPFS_KEEPALIVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(600));
    let _ = std::thread::Builder::new()
        .name("vsphere-keepalive".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            let Some(c) = client.upgrade() else { return };
            let before = c.cookie();
            // Only while snapshots are held: an idle mount need not hold a session.
            if before.is_none() || !c.active.load(std::sync::atomic::Ordering::Relaxed) {
                continue;
            }
            match c.properties(&c.sc.session_manager, &["currentSession"]) {
                Ok(p) if p.contains_key("currentSession") => {}
                Ok(_) => {
                    if let Err(e) = c.relogin(before) {
                        tracing::warn!("{e}");
                    }
                }
                Err(e) => tracing::warn!("{}: keep-alive: {e}", c.server),
            }
        });
}

#[cfg(test)]
mod tests;
