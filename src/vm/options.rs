//! The options the freeze/thaw lifecycle reads: the admin's hooks, idle release, and the
//! size of the block cache the frozen disks are read through.

use std::path::PathBuf;
use std::time::Duration;

use crate::options::{Opt, OptionError};

#[derive(Debug, Clone)]
pub struct LifecycleOptions {
    pub pre_backup: Option<PathBuf>,
    pub post_backup: Option<PathBuf>,
    pub idle_release: Option<Duration>,
    pub cache_bytes: u64,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        Self {
            pre_backup: None,
            post_backup: None,
            idle_release: None,
            cache_bytes: crate::cache::DEFAULT_CAPACITY,
        }
    }
}

impl LifecycleOptions {
    /// Takes `opt` if it is one of ours: Ok(false) when it is not.
    pub fn apply(&mut self, opt: Opt) -> Result<bool, OptionError> {
        match opt.key {
            "pre_backup" => self.pre_backup = Some(opt.value()?.into()),
            "post_backup" => self.post_backup = Some(opt.value()?.into()),
            "idle_release" => {
                let s = opt.number()?;
                self.idle_release = (s > 0).then(|| Duration::from_secs(s));
            }
            "cache_size" => {
                let mib = opt.number()?;
                self.cache_bytes = mib
                    .checked_mul(1 << 20)
                    .ok_or_else(|| opt.bad("larger than any machine's memory"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
