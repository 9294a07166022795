//! Removing journaled snapshots: at thaw, after a failed freeze, and for the snapshots
//! of processes that died (at the next mount, or `vmsnapfs snapshots cleanup`). Only a
//! snapshot with the journaled name at the journaled moref is ever removed.

use super::client::Client;
use super::errors::Result;
use super::journal::{self, Journal};
use super::snapshot;

/// Removes the snapshot a journal entry names (matching name and moref), then the
/// entry; on failure records why in the entry and returns None. Some(true) when a
/// snapshot was removed, Some(false) when none of ours was there any more.
pub fn remove_entry(c: &Client, j: &Journal, je: &mut journal::Entry) -> Option<bool> {
    let target = match &je.snapshot {
        Some(s) => Ok(Some(s.clone())),
        None => match snapshot::find(c, &je.vm, |n| n.name == je.snapshot_name) {
            Ok(n) => Ok(n.map(|n| n.snapshot)),
            // The VM itself is gone, and its snapshots with it.
            Err(e) if e.fault_kind() == Some("ManagedObjectNotFound") => Ok(None),
            Err(e) => Err(e),
        },
    };
    let result = target.and_then(|t| match t {
        // Only a snapshot with our name at that moref is ours.
        Some(s) => match snapshot::find(c, &je.vm, |n| n.snapshot == s) {
            Ok(Some(n)) if n.name == je.snapshot_name => {
                snapshot::remove(c, &s, &format!("{} snapshot {}", je.vm_name, n.name))
                    .map(|()| true)
            }
            Ok(Some(n)) => {
                tracing::warn!(
                    "{}: snapshot {} is named {:?}, not ours ({}); left alone",
                    je.vm_name,
                    s.value,
                    n.name,
                    je.snapshot_name
                );
                Ok(false)
            }
            Ok(None) => Ok(false),
            Err(e) if e.fault_kind() == Some("ManagedObjectNotFound") => Ok(false),
            Err(e) => Err(e),
        },
        None => Ok(false),
    });
    match result {
        Ok(removed) => {
            if let Err(e) = j.remove(je) {
                tracing::warn!("{e}");
            }
            Some(removed)
        }
        Err(e) => {
            tracing::error!(
                "{}: snapshot {} not removed: {e}; it stays in the journal (vmsnapfs snapshots list)",
                je.vm_name,
                je.snapshot_name
            );
            je.remove_error = Some(e.to_string());
            let _ = j.write(je);
            None
        }
    }
}

/// Removes the snapshots journaled by processes that are gone. Returns how many.
pub fn reap(c: &Client, j: &Journal) -> Result<usize> {
    let mut n = 0;
    for mut e in j.entries(&c.server, &c.sc.instance_uuid)? {
        if journal::owner_alive(&e) {
            continue;
        }
        tracing::info!(
            "{}: removing snapshot {} left by pid {} ({})",
            e.vm_name,
            e.snapshot_name,
            e.pid,
            if e.mountpoint.is_empty() {
                "unknown mountpoint"
            } else {
                &e.mountpoint
            }
        );
        if remove_entry(c, j, &mut e) == Some(true) {
            n += 1;
        }
    }
    Ok(n)
}
