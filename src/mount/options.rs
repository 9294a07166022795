//! `-o` options. Everything `mount(8)`, fstab and autofs may hand us is accepted here so
//! that `mount -t fuse.vmsnapfs` works with stock option sets; unknown options are an
//! error rather than silently ignored, because a typo in `pre_backup` must not go unseen.
//!
//! Each layer owns its keys: the tree's (`fuse::TreeOptions`), the lifecycle's
//! (`vm::LifecycleOptions`), the process's (here) and the source's (declared by each
//! source, passed through to it). This file only splits the list and asks each in turn.

use std::path::PathBuf;

use crate::fuse::TreeOptions;
use crate::options::{Opt, OptionError};
use crate::vm::LifecycleOptions;

/// What the serving process itself reads: who may enter, how many threads serve, and
/// where it runs and logs.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    pub allow_other: bool,
    pub allow_root: bool,
    pub threads: usize,
    pub foreground: bool,
    pub log_file: Option<PathBuf>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            allow_other: false,
            allow_root: false,
            threads: 8,
            foreground: false,
            log_file: None,
        }
    }
}

impl ProcessOptions {
    fn apply(&mut self, opt: Opt) -> Result<bool, OptionError> {
        match opt.key {
            "allow_other" => self.allow_other = true,
            "allow_root" => self.allow_root = true,
            "threads" => self.threads = usize::try_from(opt.number()?.clamp(1, 64)).unwrap_or(8),
            "foreground" => self.foreground = true,
            // Absolute now: the background server runs from "/".
            "log" => {
                let p = PathBuf::from(opt.value()?);
                self.log_file = Some(match std::env::current_dir() {
                    Ok(cwd) if p.is_relative() => cwd.join(p),
                    _ => p,
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Debug, Clone, Default)]
pub struct MountOptions {
    pub tree: TreeOptions,
    pub lifecycle: LifecycleOptions,
    pub process: ProcessOptions,
    /// Keys a source declared as its own (quiesce=, credentials=, …), passed through.
    pub source_keys: Vec<(String, Option<String>)>,
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
    // mount.fuse3 sets these from the fstab line itself.
    "fsname",
    "subtype",
    // fstab's free-text note (util-linux and systemd leave it to the helper).
    "comment",
];

impl MountOptions {
    /// Applies a comma-separated `-o` list; may be called once per `-o`.
    pub fn apply(&mut self, list: &str) -> Result<(), OptionError> {
        for opt in Opt::list(list) {
            if self.tree.apply(opt)? || self.lifecycle.apply(opt)? || self.process.apply(opt)? {
                continue;
            }
            if crate::source::accepts(opt.key) {
                self.source_keys
                    .push((opt.key.to_owned(), opt.value.map(str::to_owned)));
                continue;
            }
            // x-systemd.*, x-gvfs-*, …: settings for other programs, by convention.
            if IGNORED.contains(&opt.key) || opt.key.starts_with("x-") {
                continue;
            }
            return Err(OptionError::Unknown(opt.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuse::DirectIo;
    use std::time::Duration;

    #[test]
    fn fstab_style_lists_parse() {
        let mut o = MountOptions::default();
        o.apply("ro,noauto,_netdev,x-systemd.automount,uid=1000,gid=100,umask=027")
            .unwrap();
        o.apply("allow_other,idle_release=30,pre_backup=/bin/true")
            .unwrap();
        assert_eq!(o.tree.direct_io, DirectIo::Off);
        o.apply("direct_io").unwrap();
        assert_eq!(o.tree.direct_io, DirectIo::Images);
        o.apply("direct_io=all").unwrap();
        assert_eq!(o.tree.direct_io, DirectIo::All);
        assert!(o.apply("direct_io=some").is_err());
        assert_eq!((o.tree.uid, o.tree.gid), (1000, 100));
        assert_eq!(o.tree.file_mode(), 0o440);
        assert_eq!(o.tree.dir_mode(), 0o550);
        assert!(o.process.allow_other);
        assert_eq!(o.lifecycle.idle_release, Some(Duration::from_secs(30)));
        assert!(o.apply("pre_bakup=/x").is_err());
        assert!(o.apply("umask=999").is_err());
    }

    #[test]
    fn comments_and_other_programs_settings_are_accepted() {
        let mut o = MountOptions::default();
        o.apply("comment=x-gvfs-show,comment=nightly backup,x-systemd.idle-timeout=60")
            .unwrap();
        o.apply("comment").unwrap();
        assert_eq!(
            o.apply("commentary=1"),
            Err(OptionError::Unknown("commentary=1".into()))
        );
    }

    #[test]
    fn source_keys_pass_through_in_order() {
        let mut o = MountOptions::default();
        o.apply("quiesce=require,insecure,uid=5").unwrap();
        assert_eq!(
            o.source_keys,
            [
                ("quiesce".to_owned(), Some("require".to_owned())),
                ("insecure".to_owned(), None)
            ]
        );
        assert_eq!(o.tree.uid, 5);
        assert_eq!(
            o.apply("cache_size"),
            Err(OptionError::NeedsValue("cache_size".into()))
        );
        assert_eq!(
            o.apply("threads=x"),
            Err(OptionError::NotANumber("threads".into()))
        );
    }
}
