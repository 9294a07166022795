//! Network plumbing with no vSphere in it: an HTTP/1.1 client for bulk reads and the TLS
//! trust choices (system roots, a pinned thumbprint, none) that every connection to one
//! server shares.

pub mod http;
pub mod tls;
