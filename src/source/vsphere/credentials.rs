//! Where the user name and password come from: a credentials file (`username=` and
//! `password=` lines, as mount.cifs reads them) that must not be readable by others, or
//! govc's environment variables. Never the command line, where `ps` shows it to everyone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::errors::{Result, VsError};

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

/// Reads a credentials file, refusing one that group or others could read or write.
pub fn from_file(path: &Path) -> Result<Credentials> {
    let err = |m: String| VsError::Credentials(format!("{}: {m}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o177 != 0 {
        return Err(err(format!(
            "mode {mode:04o} lets others see the password; chmod 600 it"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let (mut user, mut pass) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("username" | "user", v)) => user = Some(v.trim().to_owned()),
            Some(("password" | "pass", v)) => pass = Some(v.to_owned()),
            Some(("domain", _)) => {}
            _ => {
                return Err(err(format!(
                    "unexpected line {line:?} (expected username=… or password=…)"
                )))
            }
        }
    }
    match (user, pass) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(Credentials { username, password })
        }
        _ => Err(err("needs both username= and password= lines".into())),
    }
}

/// govc's variables: GOVC_USERNAME/GOVC_PASSWORD, else the user info of GOVC_URL.
pub fn from_env() -> Option<Credentials> {
    let user = std::env::var("GOVC_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let pass = std::env::var("GOVC_PASSWORD").ok();
    if let (Some(username), Some(password)) = (user, pass) {
        return Some(Credentials { username, password });
    }
    let url = reqwest::Url::parse(&std::env::var("GOVC_URL").ok()?).ok()?;
    let password = url.password()?;
    (!url.username().is_empty()).then(|| Credentials {
        username: decoded(url.username()),
        password: decoded(password),
    })
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// GOVC_INSECURE=1/true, as govc reads it.
pub fn env_insecure() -> bool {
    std::env::var("GOVC_INSECURE")
        .map(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_mode_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vc.cred");
        std::fs::write(&p, "# vc\nusername=admin@vsphere.local\npassword=a=b c\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        let c = from_file(&p).unwrap();
        assert_eq!(c.username, "admin@vsphere.local");
        assert_eq!(c.password, "a=b c");
    }
}
