//! The frozen VM as data, below the FUSE tree and the mount: what a freeze yields (the
//! rewritten config, disk images with descriptors, the guest volumes on them, status),
//! and the lifecycle around it (hooks, freeze on first use, holds, idle release, thaw).
//! Nothing here knows FUSE; `fuse` translates calls onto it and `mount` wires it up.

mod ahead;
pub use ahead::Sink;
pub mod changes;
pub mod descriptor;
pub mod error;
pub mod frozen;
pub mod hooks;
pub mod lifecycle;
pub mod lvm;
pub mod options;
pub mod scan;
mod since;
pub mod status;
pub mod volume;

pub use error::Error;
pub use frozen::{DiskView, FrozenVm};
pub use lifecycle::{thaw_all, Ctx, Use, VmSlot};
pub use options::LifecycleOptions;
pub use volume::{LvInfo, VolumeView};
