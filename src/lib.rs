//! vmsnapfs as a library: the pieces the `vmsnapfs` binary is made of, exposed so that
//! fuzz targets and benchmarks can drive the parsers directly.
//!
//! Layers, bottom-up (README "Architecture"): the leaf crates (io, vmdk, ntfs, fat);
//! `partition`, `detect`, `guestfs`, `cache`, `vmx`; `source` (local folders, vSphere);
//! `vm` (the frozen VM and its lifecycle); `fuse` (FUSE calls onto `vm`); `mount` (the
//! process); and the subcommands `inspect` and `snapshots`.

pub mod cache;
pub mod detect;
pub mod fuse;
pub mod guestfs;
pub mod inspect;
pub mod logging;
pub mod mount;
pub mod net;
pub mod options;
pub mod partition;
pub mod snapshots;
pub mod source;
pub mod sync;
pub mod time;
pub mod vm;
pub mod vmx;
