//! `-o` options. Everything `mount(8)`, fstab and autofs may hand us is accepted here so
//! that `mount -t fuse.vmsnapfs` works with stock option sets; unknown options are an
//! error rather than silently ignored, because a typo in `pre_backup` must not go unseen.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MountOptions {
    pub uid: u32,
    pub gid: u32,
    pub umask: u16,
    pub allow_other: bool,
    pub allow_root: bool,
    pub pre_backup: Option<PathBuf>,
    pub post_backup: Option<PathBuf>,
    pub idle_release: Option<Duration>,
    pub streams_windows: bool,
    pub case_insensitive: bool,
    pub cache_bytes: u64,
    /// Disk images bypass the kernel's page cache (see README "direct_io").
    pub direct_io: bool,
    pub threads: usize,
    pub foreground: bool,
    pub log_file: Option<PathBuf>,
    /// Options meant for a remote source (quiesce=, credentials=, …), passed through.
    pub source_opts: Vec<(String, Option<String>)>,
    /// Set by the mount itself (not an option): snapshot sources record it in their
    /// journal and snapshot descriptions.
    pub mountpoint: Option<PathBuf>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            umask: 0o022,
            allow_other: false,
            allow_root: false,
            pre_backup: None,
            post_backup: None,
            idle_release: None,
            streams_windows: false,
            case_insensitive: false,
            cache_bytes: crate::cache::DEFAULT_CAPACITY,
            direct_io: false,
            threads: 8,
            foreground: false,
            log_file: None,
            source_opts: Vec::new(),
            mountpoint: None,
        }
    }
}

/// Options mount(8)/fstab/autofs pass that mean nothing to a read-only FUSE view.
const IGNORED: &[&str] = &[
    "ro",
    "rw",
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "_netdev",
    "nofail",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "diratime",
    "nodiratime",
    "async",
    "sync",
    "silent",
    "loud",
    "lazytime",
    "nolazytime",
    "bg",
    "fg",
];

/// Remote-source options (the vSphere source reads them from `source_opts`).
const SOURCE_KEYS: &[&str] = crate::source::vsphere::settings::KEYS;

impl MountOptions {
    /// Applies a comma-separated `-o` list; may be called once per `-o`.
    pub fn apply(&mut self, list: &str) -> Result<(), String> {
        for opt in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, val) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let need = |v: Option<&str>| -> Result<String, String> {
                v.map(str::to_owned)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("option {key} needs a value ({key}=…)"))
            };
            let num = |v: Option<&str>| -> Result<u64, String> {
                need(v)?
                    .parse::<u64>()
                    .map_err(|_| format!("option {key}: not a number"))
            };
            match key {
                "uid" => self.uid = num(val)? as u32,
                "gid" => self.gid = num(val)? as u32,
                "umask" => {
                    self.umask = u16::from_str_radix(&need(val)?, 8)
                        .ok()
                        .filter(|m| *m <= 0o777)
                        .ok_or("option umask: expected an octal mask like 022")?
                }
                "allow_other" => self.allow_other = true,
                "allow_root" => self.allow_root = true,
                "pre_backup" => self.pre_backup = Some(need(val)?.into()),
                "post_backup" => self.post_backup = Some(need(val)?.into()),
                "idle_release" => {
                    let s = num(val)?;
                    self.idle_release = (s > 0).then(|| Duration::from_secs(s));
                }
                "streams" => match need(val)?.as_str() {
                    "windows" => self.streams_windows = true,
                    "xattr" => self.streams_windows = false,
                    other => return Err(format!("option streams: unknown value {other}")),
                },
                "case_insensitive" => self.case_insensitive = true,
                "cache_size" => self.cache_bytes = num(val)? << 20,
                "direct_io" => self.direct_io = true,
                "threads" => self.threads = (num(val)? as usize).clamp(1, 64),
                "foreground" => self.foreground = true,
                // Absolute now: the background server runs from "/".
                "log" => {
                    let p = PathBuf::from(need(val)?);
                    self.log_file = Some(match std::env::current_dir() {
                        Ok(cwd) if p.is_relative() => cwd.join(p),
                        _ => p,
                    });
                }
                "fsname" | "subtype" => {}
                k if SOURCE_KEYS.contains(&k) => self
                    .source_opts
                    .push((k.to_owned(), val.map(str::to_owned))),
                k if IGNORED.contains(&k) || k.starts_with("x-") || k.starts_with("comment=") => {}
                _ => return Err(format!("unknown option: {opt}")),
            }
        }
        Ok(())
    }

    pub fn file_mode(&self) -> u16 {
        0o444 & !self.umask
    }

    pub fn dir_mode(&self) -> u16 {
        0o555 & !self.umask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_style_lists_parse() {
        let mut o = MountOptions::default();
        o.apply("ro,noauto,_netdev,x-systemd.automount,uid=1000,gid=100,umask=027")
            .unwrap();
        o.apply("allow_other,idle_release=30,pre_backup=/bin/true")
            .unwrap();
        assert!(!o.direct_io);
        o.apply("direct_io").unwrap();
        assert!(o.direct_io);
        assert_eq!((o.uid, o.gid), (1000, 100));
        assert_eq!(o.file_mode(), 0o440);
        assert_eq!(o.dir_mode(), 0o550);
        assert!(o.allow_other);
        assert_eq!(o.idle_release, Some(Duration::from_secs(30)));
        assert!(o.apply("pre_bakup=/x").is_err());
        assert!(o.apply("umask=999").is_err());
    }
}
