//! The vSphere source (`source.rs`): VMs of a vCenter or ESXi, frozen as snapshots
//! (`freeze.rs`, `frozen.rs`) whose disks are read over the datastore HTTP interface
//! (`datapath/`), each journaled (`journal.rs`) and removed at thaw or, once its process
//! is gone, by `reap.rs`.

pub mod cbt;
pub mod client;
pub mod credentials;
pub mod datapath;
pub mod errors;
mod freeze;
mod frozen;
pub mod inventory;
pub mod journal;
pub mod reap;
pub mod settings;
pub mod snapshot;
pub mod soap;
mod source;
pub mod task;
mod vmconfig;

pub use reap::{reap, remove_entry};
pub use settings::Settings;
pub use source::{connect, VsphereSource};
