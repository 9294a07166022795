//! The options the tree reads: who owns its files, how names and streams are shown, and
//! whether disk images bypass the page cache.

use fuser::{FileAttr, FileType};

use crate::guestfs::GuestOwner;
use crate::options::{Opt, OptionError};

/// Whose uid, gid and mode guest files show (`-o owners=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Owners {
    /// The mount's `uid`, `gid` and `umask` for every file.
    #[default]
    Mount,
    /// The owner and mode the guest recorded where there is one (NTFS: WSL's $LXUID,
    /// $LXGID, $LXMOD); the mount's for everything else, field by field.
    Guest,
}

impl Owners {
    pub fn apply(self, a: &mut FileAttr, owner: &GuestOwner) {
        if self != Owners::Guest {
            return;
        }
        if let Some(uid) = owner.uid {
            a.uid = uid;
        }
        if let Some(gid) = owner.gid {
            a.gid = gid;
        }
        if let Some(mode) = owner.mode.filter(|_| a.kind != FileType::Symlink) {
            a.perm = mode & 0o7777;
        }
    }
}

#[derive(Debug, Clone)]
pub struct TreeOptions {
    pub uid: u32,
    pub gid: u32,
    pub umask: u16,
    pub owners: Owners,
    pub streams_windows: bool,
    pub case_insensitive: bool,
    /// What bypasses the kernel's page cache (see README "direct_io").
    pub direct_io: DirectIo,
    /// Reply to big reads by splicing the image file's pages (root mounts; README).
    pub splice: bool,
    /// Open flat disk images in passthrough to their file (root mounts, Linux 6.9+).
    pub passthrough: bool,
}

/// `direct_io` (disk images) or `direct_io=all` (guest files and streams too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectIo {
    Off,
    Images,
    All,
}

impl Default for TreeOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            umask: 0o022,
            owners: Owners::Mount,
            streams_windows: false,
            case_insensitive: false,
            direct_io: DirectIo::Off,
            splice: true,
            passthrough: true,
        }
    }
}

impl TreeOptions {
    /// Takes `opt` if it is one of ours: Ok(false) when it is not.
    pub fn apply(&mut self, opt: Opt) -> Result<bool, OptionError> {
        let id = |opt: Opt| -> Result<u32, OptionError> {
            u32::try_from(opt.number()?).map_err(|_| opt.bad("larger than any user id"))
        };
        match opt.key {
            "uid" => self.uid = id(opt)?,
            "gid" => self.gid = id(opt)?,
            "umask" => {
                self.umask = u16::from_str_radix(opt.value()?, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| opt.bad("expected an octal mask like 022"))?
            }
            "owners" => {
                self.owners = match opt.value()? {
                    "mount" => Owners::Mount,
                    "guest" => Owners::Guest,
                    other => return Err(opt.bad(format!("unknown value {other}"))),
                }
            }
            "streams" => match opt.value()? {
                "windows" => self.streams_windows = true,
                "xattr" => self.streams_windows = false,
                other => return Err(opt.bad(format!("unknown value {other}"))),
            },
            "case_insensitive" => self.case_insensitive = true,
            "direct_io" => {
                self.direct_io = match opt.value {
                    None | Some("images") => DirectIo::Images,
                    Some("all") => DirectIo::All,
                    Some("off") => DirectIo::Off,
                    Some(other) => {
                        return Err(opt.bad(format!("unknown value {other} (images, all or off)")))
                    }
                }
            }
            "splice" => self.splice = on_off(opt)?,
            "passthrough" => self.passthrough = on_off(opt)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn file_mode(&self) -> u16 {
        0o444 & !self.umask
    }

    pub fn dir_mode(&self) -> u16 {
        0o555 & !self.umask
    }
}

/// `key`, `key=on` or `key=off`.
fn on_off(opt: Opt) -> Result<bool, OptionError> {
    match opt.value {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(opt.bad(format!("unknown value {other} (on or off)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &str) -> Result<TreeOptions, OptionError> {
        let mut t = TreeOptions::default();
        for opt in Opt::list(list) {
            assert!(t.apply(opt)?, "{} is a tree option", opt.key);
        }
        Ok(t)
    }

    fn attr(kind: FileType) -> FileAttr {
        FileAttr {
            ino: fuser::INodeNo(2),
            size: 0,
            blocks: 0,
            atime: std::time::UNIX_EPOCH,
            mtime: std::time::UNIX_EPOCH,
            ctime: std::time::UNIX_EPOCH,
            crtime: std::time::UNIX_EPOCH,
            kind,
            perm: 0o444,
            nlink: 1,
            uid: 7,
            gid: 8,
            rdev: 0,
            blksize: 512,
            flags: 0,
        }
    }

    #[test]
    fn splice_and_passthrough_are_on_unless_off() {
        let t = parse("").unwrap();
        assert!(t.splice && t.passthrough);
        let t = parse("passthrough=off,splice=off").unwrap();
        assert!(!t.splice && !t.passthrough);
        let t = parse("passthrough=off,passthrough,splice=on").unwrap();
        assert!(t.splice && t.passthrough);
        assert!(parse("passthrough=yes").is_err());
    }

    #[test]
    fn owners_guest_or_mount() {
        assert_eq!(parse("").unwrap().owners, Owners::Mount);
        assert_eq!(parse("owners=guest").unwrap().owners, Owners::Guest);
        assert_eq!(
            parse("owners=guest,owners=mount").unwrap().owners,
            Owners::Mount
        );
        assert!(parse("owners=root").is_err());
        assert!(parse("owners").is_err());

        let wsl = GuestOwner {
            uid: Some(1000),
            gid: Some(1001),
            mode: Some(0o640),
        };
        let mut a = attr(FileType::RegularFile);
        Owners::Mount.apply(&mut a, &wsl);
        assert_eq!((a.uid, a.gid, a.perm), (7, 8, 0o444));
        Owners::Guest.apply(&mut a, &wsl);
        assert_eq!((a.uid, a.gid, a.perm), (1000, 1001, 0o640));
        // Fields the guest did not record keep the mount's; links keep 0777.
        let mut a = attr(FileType::Symlink);
        a.perm = 0o777;
        let uid_only = GuestOwner {
            uid: Some(0),
            mode: Some(0o600),
            ..Default::default()
        };
        Owners::Guest.apply(&mut a, &uid_only);
        assert_eq!((a.uid, a.gid, a.perm), (0, 8, 0o777));
    }
}
