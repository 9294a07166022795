//! SIGTERM/SIGINT/SIGHUP end the mount the same way `umount` does: unmount, let the
//! session finish, thaw every VM, exit 0. Signals are blocked in every thread and taken
//! synchronously by one thread, so no work happens in a signal handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::vm::{Ctx, VmSlot};

fn set() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGTERM);
    s.add(Signal::SIGINT);
    s.add(Signal::SIGHUP);
    s
}

pub fn block() {
    if let Err(e) = set().thread_block() {
        tracing::warn!("cannot block signals: {e}");
    }
}

pub fn spawn_handler(
    unmounter: Option<fuser::SessionUnmounter>,
    mountpoint: PathBuf,
    ctx: Arc<Ctx>,
    vms: Vec<Arc<VmSlot>>,
) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(sig) = set().wait() else { return };
            tracing::info!("{sig:?}: unmounting {}", mountpoint.display());
            let result = match unmounter {
                Some(mut u) => u.unmount(),
                None => super::kernel::unmount(&mountpoint),
            };
            if let Err(e) = result {
                // Busy (a backup still has files open): detach the mount so no new
                // access can start, then end anyway; the readers get errors, not a hang.
                tracing::warn!("unmount: {e}; detaching");
                let _ = nix::mount::umount2(&mountpoint, nix::mount::MntFlags::MNT_DETACH);
            }
            // Normally the session ends now and the main thread thaws and exits; if open
            // handles keep the connection alive, thaw here and leave.
            std::thread::sleep(Duration::from_secs(5));
            crate::vm::thaw_all(&ctx, &vms);
            tracing::info!("exiting with the mount still referenced by open files");
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        tracing::warn!("no signal thread: {e}");
    }
}
