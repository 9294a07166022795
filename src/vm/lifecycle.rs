//! Freeze/thaw of one VM, VCB style: pre_backup hook → freeze → (use) → thaw →
//! post_backup hook. Freezing happens on first access inside the VM's directory and
//! different VMs freeze in parallel; requests for a VM that is freezing wait for it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cache::BlockCache;
use crate::source::{Source, VmEntry};
use crate::sync::Relock;

use super::error::{Error, Result};
use super::frozen::FrozenVm;
use super::hooks::{self, Phase};
use super::options::LifecycleOptions;

const RETRY_FAILED: Duration = Duration::from_secs(10);

enum State {
    Thawed,
    Busy,
    Frozen(Arc<FrozenVm>),
    /// Why, and when: the next access after `RETRY_FAILED` tries again (a hook or a
    /// server may have recovered) instead of failing until the mount is remade.
    Failed(Arc<String>, Instant),
}

/// Shared context for hooks and freezing.
pub struct Ctx {
    pub source: Arc<dyn Source>,
    pub options: LifecycleOptions,
    /// Told to the hooks (VMSNAPFS_MOUNTPOINT); None for `inspect`.
    pub mountpoint: Option<PathBuf>,
    pub cache: Arc<BlockCache>,
}

impl Ctx {
    pub fn new(
        source: Arc<dyn Source>,
        options: LifecycleOptions,
        mountpoint: Option<PathBuf>,
    ) -> Arc<Ctx> {
        Arc::new(Ctx {
            cache: BlockCache::new(options.cache_bytes),
            source,
            options,
            mountpoint,
        })
    }
}

pub struct VmSlot {
    pub entry: VmEntry,
    /// The VM's directory below the mountpoint (the mountpoint itself for one VM).
    pub dir: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
    /// Operations in progress plus open file/dir handles: idle release waits for zero.
    busy: AtomicUsize,
    /// Milliseconds since `epoch` of the last use.
    last_used: AtomicU64,
    epoch: Instant,
}

/// Keeps a VM frozen while an operation or an open handle uses it.
pub struct Use {
    slot: Arc<VmSlot>,
    pub vm: Arc<FrozenVm>,
}

impl Drop for Use {
    fn drop(&mut self) {
        self.slot.touch();
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl VmSlot {
    pub fn new(entry: VmEntry, dir: PathBuf, epoch: Instant) -> Arc<Self> {
        Arc::new(Self {
            entry,
            dir,
            state: Mutex::new(State::Thawed),
            changed: Condvar::new(),
            busy: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
            epoch,
        })
    }

    /// Returns the frozen VM, freezing it first if needed.
    pub fn use_frozen(self: &Arc<Self>, ctx: &Ctx) -> Result<Use> {
        let mut st = self.state.lock().relock();
        loop {
            match &*st {
                State::Frozen(vm) => {
                    // Counted under the lock so idle release never thaws under a reader.
                    self.busy.fetch_add(1, Ordering::AcqRel);
                    self.touch();
                    return Ok(Use {
                        slot: self.clone(),
                        vm: vm.clone(),
                    });
                }
                State::Failed(why, at) if at.elapsed() < RETRY_FAILED => {
                    return Err(Error::Failed {
                        vm: self.entry.name.clone(),
                        why: why.to_string(),
                    })
                }
                State::Failed(..) => *st = State::Thawed,
                State::Busy => {
                    st = self.changed.wait(st).relock();
                }
                State::Thawed => {
                    *st = State::Busy;
                    drop(st);
                    let result = self.freeze(ctx);
                    st = self.state.lock().relock();
                    *st = match result {
                        Ok(vm) => State::Frozen(Arc::new(vm)),
                        Err(e) => {
                            tracing::error!("{e}");
                            // The first caller gets the whole error; later ones, until
                            // the retry, get its words.
                            *st = State::Failed(Arc::new(failure(&e)), Instant::now());
                            self.changed.notify_all();
                            return Err(e);
                        }
                    };
                    self.changed.notify_all();
                }
            }
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_used.store(ms, Ordering::Release);
    }

    fn freeze(&self, ctx: &Ctx) -> Result<FrozenVm> {
        let t = Instant::now();
        if let Some(script) = &ctx.options.pre_backup {
            hooks::run(script, Phase::PreBackup, &self.hook_env(ctx)).map_err(|source| {
                Error::Hook {
                    vm: self.entry.name.clone(),
                    phase: Phase::PreBackup.name(),
                    source,
                }
            })?;
        }
        match ctx.source.freeze(&self.entry) {
            Ok(frozen) => {
                let vm = FrozenVm::build(frozen, &ctx.cache);
                tracing::info!(
                    "{}: frozen in {:?} ({} disks, {} volumes)",
                    self.entry.name,
                    t.elapsed(),
                    vm.disks.len(),
                    vm.mounted_volumes().count()
                );
                Ok(vm)
            }
            Err(source) => {
                // The admin's post_backup undoes what pre_backup did, even on failure.
                self.post_backup(ctx);
                Err(Error::Freeze {
                    vm: self.entry.name.clone(),
                    source,
                })
            }
        }
    }

    /// Thaws if frozen and idle for `idle` (or unconditionally when `idle` is None and
    /// `force`); returns whether it thawed.
    pub fn release(&self, ctx: &Ctx, idle: Option<Duration>) -> bool {
        let mut st = self.state.lock().relock();
        let State::Frozen(vm) = &*st else {
            return false;
        };
        if let Some(idle) = idle {
            let last = Duration::from_millis(self.last_used.load(Ordering::Acquire));
            if self.busy.load(Ordering::Acquire) != 0 || self.epoch.elapsed() < last + idle {
                return false;
            }
        }
        let vm = vm.clone();
        *st = State::Busy;
        drop(st);
        if let Err(e) = ctx.source.thaw(&self.entry, &vm.frozen) {
            tracing::error!("{}: thaw failed: {e}", self.entry.name);
        }
        self.post_backup(ctx);
        tracing::info!("{}: thawed", self.entry.name);
        let mut st = self.state.lock().relock();
        *st = State::Thawed;
        self.changed.notify_all();
        true
    }

    /// Thaws regardless of users: the mount is going away.
    pub fn thaw_final(&self, ctx: &Ctx) {
        // Wait for a freeze in progress so its snapshot is not left behind.
        let mut st = self.state.lock().relock();
        while matches!(*st, State::Busy) {
            st = self.changed.wait(st).relock();
        }
        drop(st);
        self.release(ctx, None);
    }

    pub fn is_frozen(&self) -> bool {
        matches!(*self.state.lock().relock(), State::Frozen(_))
    }
}

impl VmSlot {
    fn hook_env<'a>(&'a self, ctx: &'a Ctx) -> hooks::HookEnv<'a> {
        hooks::HookEnv {
            vm: &self.entry.name,
            vm_id: &self.entry.id,
            source: ctx.source.describe(),
            vm_dir: &self.dir,
            mountpoint: ctx.mountpoint.as_deref(),
        }
    }

    fn post_backup(&self, ctx: &Ctx) {
        if let Some(script) = &ctx.options.post_backup {
            if let Err(e) = hooks::run(script, Phase::PostBackup, &self.hook_env(ctx)) {
                tracing::error!("{}: post_backup hook failed: {e}", self.entry.name);
            }
        }
    }
}

/// What later callers are told of a failed freeze until it is retried: the error
/// without the VM's name, which `Error::Failed` adds back.
fn failure(e: &Error) -> String {
    match e {
        Error::Freeze { source, .. } => format!("freeze failed: {source}"),
        Error::Hook { phase, source, .. } => format!("{phase} hook failed: {source}"),
        other => other.to_string(),
    }
}

/// Thaws every VM in parallel: each may be a snapshot removal on a remote server.
pub fn thaw_all(ctx: &Ctx, vms: &[Arc<VmSlot>]) {
    std::thread::scope(|s| {
        for slot in vms {
            s.spawn(move || slot.thaw_final(ctx));
        }
    });
}
