//! vmsnapfs as a library: the pieces the `vmsnapfs` binary is made of, exposed so that
//! fuzz targets and benchmarks can drive the parsers directly.

pub mod cache;
pub mod detect;
pub mod fuse;
pub mod guestfs;
pub mod inspect;
pub mod local;
pub mod mount;
pub mod net;
pub mod partition;
pub mod snapshots;
pub mod source;
pub mod vmx;
