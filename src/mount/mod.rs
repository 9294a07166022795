//! `vmsnapfs mount`: open the source, mount, return once the mount is live (or stay in
//! the foreground with `-f`), serve, and on unmount/SIGTERM/SIGINT thaw every VM before
//! exiting 0.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, SessionACL};

use crate::fuse::splice;

use crate::fuse::VmFs;
use crate::vm::{Ctx, VmSlot};

pub mod cli;
mod error;
mod kernel;
pub mod options;
mod signals;
pub mod umount;

pub use error::Error;
use options::MountOptions;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Mounts SOURCE at MOUNTPOINT. In the background mode the calling process exits with
/// the outcome of the mount; this function then only returns in the serving child.
pub fn run(source: &str, mountpoint: &Path, opts: MountOptions) -> Result<()> {
    let mountpoint = std::fs::canonicalize(mountpoint).map_err(|e| Error::Path {
        what: "mountpoint",
        path: mountpoint.to_path_buf(),
        source: e,
    })?;
    // Resolve a relative source before a daemon's chdir("/") could change its meaning.
    let source = if source.contains("://") {
        source.to_owned()
    } else {
        std::fs::canonicalize(source)
            .map_err(|e| Error::Path {
                what: "source",
                path: source.into(),
                source: e,
            })?
            .to_string_lossy()
            .into_owned()
    };
    if opts.process.foreground {
        return serve(&source, &mountpoint, opts, None);
    }
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::System("pipe", e.into()))?;
    // SAFETY: no threads exist yet (the source is opened in the child), so the child may
    // run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::System("fork", e.into()))? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            match msg.strip_prefix("OK") {
                Some(_) => std::process::exit(0),
                None if msg.is_empty() => Err(Error::ServerGone),
                None => Err(Error::FromServer(msg.trim_start_matches("ERR ").to_owned())),
            }
        }
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let _ = std::env::set_current_dir("/");
            serve(&source, &mountpoint, opts, Some(wr))
        }
    }
}

fn report(pipe: &mut Option<OwnedFd>, msg: &str) {
    if let Some(fd) = pipe.take() {
        let _ = std::fs::File::from(fd).write_all(msg.as_bytes());
    }
}

fn serve(
    source: &str,
    mountpoint: &Path,
    opts: MountOptions,
    mut pipe: Option<OwnedFd>,
) -> Result<()> {
    match start(source, mountpoint, opts, pipe.is_some()) {
        Ok(mounted) => {
            if pipe.is_some() {
                detach_stdio(mounted.log_file.as_deref());
                // Only now, with the mount live: under autofs the mount must be made from
                // automount's process group, or the kernel takes our own lookup of the
                // mountpoint for a new trigger and waits on automount, which waits on us.
                let _ = nix::unistd::setsid();
            }
            report(&mut pipe, "OK");
            // Logged only now, so a background server's log line lands in its log.
            tracing::info!(
                "{source} mounted at {} ({} VMs)",
                mountpoint.display(),
                mounted.vms.len()
            );
            mounted.serve()
        }
        Err(e) => {
            if pipe.is_some() {
                report(&mut pipe, &format!("ERR {e}"));
                std::process::exit(1);
            }
            Err(e)
        }
    }
}

struct Mounted {
    session: fuser::Session<VmFs>,
    mountpoint: PathBuf,
    idle_release: Option<Duration>,
    ctx: Arc<Ctx>,
    vms: Vec<Arc<VmSlot>>,
    log_file: Option<PathBuf>,
    /// Mounted by us with mount(2) (root), rather than by fuser through fusermount3.
    direct: bool,
}

fn start(source: &str, mountpoint: &Path, opts: MountOptions, daemon: bool) -> Result<Mounted> {
    // Before any thread exists, so every thread inherits the mask and only the signal
    // thread ever sees SIGTERM/SIGINT/SIGHUP.
    signals::block();
    let _ = daemon;
    let src =
        crate::source::open(source, &opts.source_keys, Some(mountpoint)).map_err(Error::Source)?;
    let entries = src.list().map_err(Error::List)?;
    if entries.is_empty() {
        return Err(Error::NoVms(source.to_owned()));
    }
    let epoch = Instant::now();
    let single = src.single_vm();
    let vms: Vec<Arc<VmSlot>> = entries
        .into_iter()
        .map(|e| {
            let dir = if single {
                mountpoint.to_path_buf()
            } else {
                mountpoint.join(&e.name)
            };
            VmSlot::new(e, dir, epoch)
        })
        .collect();
    let ctx = Ctx::new(src, opts.lifecycle.clone(), Some(mountpoint.to_path_buf()));
    let mut fs = VmFs::new(ctx.clone(), vms.clone(), opts.tree.clone());
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(source.replace(',', "_")),
        MountOption::Subtype("vmsnapfs".into()),
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::DefaultPermissions,
    ];
    config.acl = if opts.process.allow_other {
        SessionACL::All
    } else if opts.process.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.process.threads);
    config.clone_fd = true;
    let notifier = fs.notifier.clone();
    let direct = nix::unistd::geteuid().is_root();
    let session = if direct {
        let fsname = source.replace(',', "_");
        // allow_root also needs the kernel to let others in; fuser then admits root only.
        let others = opts.process.allow_other || opts.process.allow_root;
        let at = mountpoint.to_path_buf();
        fs.after_init = Some(Box::new(move || kernel::raise_readahead_soon(at, 4 << 10)));
        let pipe = opts.tree.splice.then(splice::pipe_bytes).flatten();
        let max_read = pipe.map_or(1 << 20, splice::max_reply);
        // The kernel reports st_blksize as a power of two, rounding down.
        fs.read_size = 1 << max_read.ilog2();
        kernel::mount(&fsname, mountpoint, others, max_read).and_then(|fd| {
            // A spliced reply goes to the descriptor its request came from: one for all
            // threads, and ours a dup of it.
            if let Some(bytes) = pipe {
                fs.splice = Some(splice::Splicer::new(fd.try_clone()?, bytes));
                config.clone_fd = false;
            }
            fuser::Session::from_fd(fs, fd, config.acl, config.clone())
        })
    } else {
        fuser::Session::new(fs, mountpoint, &config)
    }
    .map_err(|e| Error::Mount {
        mountpoint: mountpoint.to_path_buf(),
        source: e,
    })?;
    let _ = notifier.set(session.notifier());
    Ok(Mounted {
        session,
        mountpoint: mountpoint.to_path_buf(),
        idle_release: opts.lifecycle.idle_release,
        ctx,
        vms,
        log_file: opts.process.log_file.clone(),
        direct,
    })
}

impl Mounted {
    fn serve(mut self) -> Result<()> {
        let unmounter = (!self.direct).then(|| self.session.unmount_callable());
        signals::spawn_handler(
            unmounter,
            self.mountpoint.clone(),
            self.ctx.clone(),
            self.vms.clone(),
        );
        if let Some(idle) = self.idle_release {
            let (ctx, vms) = (self.ctx.clone(), self.vms.clone());
            std::thread::Builder::new()
                .name("idle-release".into())
                .spawn(move || loop {
                    std::thread::sleep(
                        (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(5)),
                    );
                    for slot in &vms {
                        slot.release(&ctx, Some(idle));
                    }
                })
                .map_err(|e| Error::System("idle-release thread", e))?;
        }
        let result = self.session.run();
        crate::vm::thaw_all(&self.ctx, &self.vms);
        tracing::info!("unmounted {}", self.mountpoint.display());
        result.map_err(Error::Session)
    }
}

/// After the mount is live the daemon has no terminal: stdio goes to the log file
/// (`-o log=FILE`) or /dev/null.
fn detach_stdio(log: Option<&Path>) {
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null");
    let out = match log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p),
        None => std::fs::OpenOptions::new().write(true).open("/dev/null"),
    };
    if let (Ok(null), Ok(out)) = (null, out) {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&out);
        let _ = nix::unistd::dup2_stderr(&out);
        let _ = (null.as_raw_fd(), out.as_raw_fd());
    }
}
