//! The options the tree reads: who owns its files, how names and streams are shown, and
//! whether disk images bypass the page cache.

use crate::options::{Opt, OptionError};

#[derive(Debug, Clone)]
pub struct TreeOptions {
    pub uid: u32,
    pub gid: u32,
    pub umask: u16,
    pub streams_windows: bool,
    pub case_insensitive: bool,
    /// Disk images bypass the kernel's page cache (see README "direct_io").
    pub direct_io: bool,
}

impl Default for TreeOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            umask: 0o022,
            streams_windows: false,
            case_insensitive: false,
            direct_io: false,
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
            "streams" => match opt.value()? {
                "windows" => self.streams_windows = true,
                "xattr" => self.streams_windows = false,
                other => return Err(opt.bad(format!("unknown value {other}"))),
            },
            "case_insensitive" => self.case_insensitive = true,
            "direct_io" => self.direct_io = true,
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
