//! What the SOURCE URL and the vSphere `-o` options say. `OPTIONS` is the one list of
//! those options: the mount accepts exactly `KEYS` for this source, and `parse` applies
//! each by the same table, so a key cannot be accepted and then not understood.

use std::collections::HashMap;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use crate::net::tls;

use super::cbt::CbtPolicy;
use super::client::{self, ConnectConfig};
use super::credentials::{self, Credentials};
use super::errors::{Result, VsError};
use super::journal;
use super::snapshot::Quiesce;

/// Everything the vSphere options and the SOURCE URL say.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connect: ConnectConfig,
    /// The URL as given, without user info: names the source in status.json.
    pub url: String,
    pub inventory_path: String,
    pub quiesce: Quiesce,
    pub datastore_map: HashMap<String, PathBuf>,
    pub state_dir: PathBuf,
    /// Through a vCenter, read disks from the VM's host with service tickets.
    pub direct_host: bool,
    /// Whether a freeze may switch changed block tracking on (`-o cbt=enable`).
    pub cbt: CbtPolicy,
}

/// What the options set; defaults for the rest are filled in before they are applied.
struct Given {
    creds: Option<Credentials>,
    thumbprint: Option<String>,
    insecure: bool,
    quiesce: Quiesce,
    datastore_map: HashMap<String, PathBuf>,
    state_dir: PathBuf,
    direct_host: bool,
    cbt: CbtPolicy,
}

/// Applies option `key` with its value (None for a bare `key`).
type Apply = fn(&mut Given, &str, Option<&str>) -> Result<()>;

const OPTIONS: [(&str, Apply); 8] = [
    ("quiesce", |g, k, v| {
        g.quiesce = Quiesce::parse(need(k, v)?)?;
        Ok(())
    }),
    ("credentials", |g, k, v| {
        g.creds = Some(credentials::from_file(&PathBuf::from(need(k, v)?))?);
        Ok(())
    }),
    ("thumbprint", |g, k, v| {
        g.thumbprint =
            Some(tls::parse_thumbprint(need(k, v)?).map_err(|e| VsError::Config(e.to_string()))?);
        Ok(())
    }),
    ("insecure", |g, _, _| {
        g.insecure = true;
        Ok(())
    }),
    ("datastore_map", |g, k, v| {
        let v = need(k, v)?;
        let (ds, path) = v.split_once(':').ok_or_else(|| {
            VsError::Config(format!("datastore_map={v}: expected DATASTORE:PATH"))
        })?;
        g.datastore_map.insert(ds.to_owned(), PathBuf::from(path));
        Ok(())
    }),
    ("state_dir", |g, k, v| {
        g.state_dir = PathBuf::from(need(k, v)?);
        Ok(())
    }),
    ("direct_host", |g, _, _| {
        g.direct_host = true;
        Ok(())
    }),
    // Changed block tracking is the admin's to switch on: by default (keep) only what
    // the server already tracks is read; `enable` lets a freeze switch it on.
    ("cbt", |g, k, v| {
        g.cbt = CbtPolicy::parse(need(k, v)?)?;
        Ok(())
    }),
];

/// The vSphere source's option keys, as the mount's `-o` parser accepts them.
pub const KEYS: &[&str] = &{
    let mut keys = [""; OPTIONS.len()];
    let mut i = 0;
    while i < OPTIONS.len() {
        keys[i] = OPTIONS[i].0;
        i += 1;
    }
    keys
};

fn need<'v>(key: &str, value: Option<&'v str>) -> Result<&'v str> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| VsError::Config(format!("option {key} needs a value")))
}

impl Settings {
    /// `source` is the SOURCE URL; `opts` the `-o` options meant for this source, as
    /// (key, value) pairs in the order given (a later one wins). Unknown keys are errors.
    pub fn parse(source: &str, opts: &[(String, Option<String>)]) -> Result<Settings> {
        let url = reqwest::Url::parse(source)
            .map_err(|e| VsError::Config(format!("{source}: not a URL: {e}")))?;
        if url.password().is_some() {
            return Err(VsError::Config(
                "a password in the URL would be visible to every user in ps; \
                 put it in a credentials file (-o credentials=FILE)"
                    .into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| VsError::Config(format!("{source}: no host")))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let base = format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or(""));
        let inventory_path = url
            .path_segments()
            .map(|s| {
                s.filter(|p| !p.is_empty())
                    .map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default();
        let mut g = Given {
            creds: None,
            thumbprint: None,
            insecure: credentials::env_insecure(),
            quiesce: Quiesce::Preferred,
            datastore_map: HashMap::new(),
            state_dir: PathBuf::from(journal::DEFAULT_DIR),
            direct_host: false,
            cbt: CbtPolicy::Keep,
        };
        for (k, v) in opts {
            let (_, apply) = OPTIONS
                .iter()
                .find(|(key, _)| key == k)
                .ok_or_else(|| VsError::Config(format!("unknown option {k}")))?;
            apply(&mut g, k, v.as_deref())?;
        }
        let creds =
            match g.creds.or_else(credentials::from_env) {
                Some(c) => c,
                None => return Err(VsError::Credentials(
                    "none given: use -o credentials=FILE (username=/password= lines, mode 600) \
                     or GOVC_USERNAME/GOVC_PASSWORD"
                        .into(),
                )),
            };
        let mut shown = url.clone();
        let _ = shown.set_username("");
        Ok(Settings {
            connect: ConnectConfig {
                base,
                host,
                port,
                creds,
                thumbprint: g.thumbprint,
                insecure: g.insecure,
                soap_timeout: client::soap_timeout(),
            },
            url: shown.to_string(),
            inventory_path,
            quiesce: g.quiesce,
            datastore_map: g.datastore_map,
            state_dir: g.state_dir,
            direct_host: g.direct_host,
            cbt: g.cbt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn every_key_is_understood_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::write(&creds, "username=u\npassword=p\n").unwrap();
        std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let creds = creds.to_str().unwrap();
        let thumb = "ab".repeat(32);
        let values = |k: &str| match k {
            "quiesce" => Some("preferred"),
            "credentials" => Some(creds),
            "thumbprint" => Some(thumb.as_str()),
            "datastore_map" => Some("ds1:/mnt/ds1"),
            "state_dir" => Some("/tmp/x"),
            "cbt" => Some("enable"),
            _ => None,
        };
        let url = "https://vc.example/DC%200/vm/My%2FVM";
        for k in KEYS {
            let s = Settings::parse(url, &opts(&[("credentials", Some(creds)), (k, values(k))]));
            assert!(s.is_ok(), "{k}: {:?}", s.err());
        }
        let s = Settings::parse(
            url,
            &opts(&[
                ("credentials", Some(creds)),
                ("direct_host", None),
                ("datastore_map", Some("ds1:/mnt/ds1")),
                ("state_dir", Some("/tmp/x")),
            ]),
        )
        .unwrap();
        assert_eq!(s.inventory_path, "DC 0/vm/My/VM");
        assert!(s.direct_host);
        assert_eq!(s.cbt, CbtPolicy::Keep, "cbt defaults to keep");
        let cbt = |v: &str| {
            Settings::parse(
                url,
                &opts(&[("credentials", Some(creds)), ("cbt", Some(v))]),
            )
            .map(|s| s.cbt)
        };
        assert_eq!(cbt("enable").unwrap(), CbtPolicy::Enable);
        assert_eq!(cbt("keep").unwrap(), CbtPolicy::Keep);
        assert!(cbt("on")
            .unwrap_err()
            .to_string()
            .contains("enable or keep"));
        assert_eq!(s.datastore_map["ds1"], PathBuf::from("/mnt/ds1"));
        assert_eq!(s.state_dir, PathBuf::from("/tmp/x"));
        let unknown = Settings::parse(url, &opts(&[("credentails", Some(creds))]));
        assert!(unknown.unwrap_err().to_string().contains("unknown option"));
        assert!(Settings::parse(url, &opts(&[("state_dir", None)])).is_err());
    }
}
