#![forbid(unsafe_code)]
//! Placeholder until this crate's issue is worked.
