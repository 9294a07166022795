//! The data path: chain files read as HTTP Range requests of the datastore browser
//! (`GET /folder/<path>?dcPath=&dsName=`) over the session's pooled keep-alive
//! connections, or straight from a locally mounted datastore (`-o datastore_map`).
//! No VDDK: every VMDK format is parsed by our own reader on top of these bytes.
//!
//! Imports run one way, from the VMDK reader's side down to the wire:
//! `resolver` → `file` (read-ahead) → `stream` → `chunks` → `remote` → `host_route`, `several`.

mod chunks;
mod file;
mod host_route;
mod remote;
mod resolver;
mod several;
mod stream;

pub use host_route::HostRoute;
pub use resolver::{parse_ds_path, DsResolver};
