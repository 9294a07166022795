//! Reading straight from the ESXi host that runs the VM, with a service ticket from
//! vCenter per request (`-o direct_host`): a file that host holds locked is served only
//! by it, and the data then does not pass through vCenter. Any failure falls back to the
//! vCenter path for the rest of the mount.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::net::http::Pool;
use crate::net::tls;
use crate::sync::Relock;

use super::super::client::Client;
use super::super::soap::escape;

pub struct HostRoute {
    /// The host's inventory name (address), as vCenter knows it.
    pub host: String,
    /// `https` (or `http`, as the vCenter URL says).
    pub scheme: String,
    pub insecure: bool,
    broken: AtomicBool,
    /// Connection pools per pinned host thumbprint.
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

impl HostRoute {
    pub fn new(host: String, scheme: String, insecure: bool) -> HostRoute {
        HostRoute {
            host,
            scheme,
            insecure,
            broken: AtomicBool::new(false),
            pools: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    pub(super) fn fail(&self, why: &str) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "reading from host {} directly failed ({why}); reading through vCenter",
                self.host
            );
        }
    }

    fn pool(&self, c: &Client, thumbprint: Option<String>) -> Result<Arc<Pool>, String> {
        if self.scheme != "https" {
            return Ok(c.data.clone());
        }
        let key = thumbprint.clone().unwrap_or_default();
        let mut pools = self.pools.lock().relock();
        if let Some(p) = pools.get(&key) {
            return Ok(p.clone());
        }
        let trust = match thumbprint {
            Some(t) => tls::Trust::Pinned(t),
            None if self.insecure => tls::Trust::Any,
            None => return Err("the ticket names no host certificate thumbprint".into()),
        };
        let p = Arc::new(Pool::new(Some(
            trust.client_config().map_err(|e| e.to_string())?.config,
        )));
        pools.insert(key, p.clone());
        Ok(p)
    }

    /// Where a request for `path` on datastore `ds` of this host goes, and the cookie
    /// that carries a fresh ticket for it.
    pub(super) fn target(
        &self,
        c: &Client,
        method: &str,
        ds: &str,
        path: &str,
    ) -> Result<(Arc<Pool>, reqwest::Url, String), String> {
        let mut url = reqwest::Url::parse(&format!("{}://{}/", self.scheme, self.host))
            .map_err(|e| e.to_string())?;
        url.path_segments_mut()
            .map_err(|_| "host URL cannot take a path".to_owned())?
            .clear()
            .push("folder")
            .extend(path.split('/'));
        // An ESXi host has one datacenter, so no dcPath.
        url.query_pairs_mut().append_pair("dsName", ds);
        let kind = if method == "HEAD" {
            "httpHead"
        } else {
            "httpGet"
        };
        let spec = format!(
            "<spec xsi:type=\"SessionManagerHttpServiceRequestSpec\"><method>{kind}</method>\
             <url>{}</url></spec>",
            escape(url.as_str())
        );
        let r = c
            .call("AcquireGenericServiceTicket", &c.sc.session_manager, &spec)
            .map_err(|e| e.to_string())?;
        let ticket = r.child("returnval").ok_or("no ticket returned")?;
        let id = ticket.text_of("id").ok_or("ticket without id")?;
        if let Some(h) = ticket
            .text_of("hostName")
            .filter(|h| !h.is_empty() && *h != "localhost.localdomain")
        {
            // The host's own idea of its name; keep the port only if it gives one.
            let (name, port) = match h.rsplit_once(':') {
                Some((n, p)) => match p.parse::<u16>() {
                    Ok(p) => (n, Some(p)),
                    Err(_) => (h, None),
                },
                None => (h, None),
            };
            url.set_host(Some(name)).map_err(|e| e.to_string())?;
            if port.is_some() {
                let _ = url.set_port(port);
            }
        }
        let pin = ticket.text_of("sslThumbprint").and_then(tls::normalize_any);
        Ok((self.pool(c, pin)?, url, format!("vmware_cgi_ticket={id}")))
    }
}
