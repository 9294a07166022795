//! Snapshots: create (quiesced per policy, with the fallback the policy allows), read the
//! snapshot tree and the snapshot's own config, remove exactly one snapshot.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::client::Client;
use super::errors::{Result, VsError};
use super::soap::{escape, Element, Moref};
use super::task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiesce {
    Required,
    Preferred,
    Off,
}

impl Quiesce {
    pub fn parse(s: &str) -> Result<Quiesce> {
        match s {
            "required" => Ok(Quiesce::Required),
            "preferred" => Ok(Quiesce::Preferred),
            "off" => Ok(Quiesce::Off),
            _ => Err(VsError::Config(format!(
                "quiesce={s}: expected required, preferred or off"
            ))),
        }
    }
}

/// One node of a VM's snapshot tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub snapshot: Moref,
    pub name: String,
    pub quiesced: bool,
    pub create_time: String,
}

/// The result of a successful create.
#[derive(Debug, Clone)]
pub struct Created {
    pub node: Node,
    pub consistency: String,
    pub fallbacks: Vec<String>,
}

/// Faults that mean "the guest could not be quiesced", after which `preferred` tries
/// again without quiescing.
fn is_quiesce_fault(kind: &str) -> bool {
    matches!(
        kind,
        "ApplicationQuiesceFault"
            | "FilesystemQuiesceFault"
            | "ToolsUnavailable"
            | "ToolsUnavailableFault"
            | "QuiesceDatastoreIOForHAFailed"
            | "InvalidPowerState"
    )
}

/// Minutes a guest may take to quiesce before the server gives up: CreateSnapshotEx_Task's
/// `VirtualMachineGuestQuiesceSpec.timeout`, which vSphere takes in minutes, from 5 to 240.
const QUIESCE_TIMEOUT_MIN: u32 = 15;

/// Whether to ask with CreateSnapshotEx_Task: vSphere 8 deprecates CreateSnapshot_Task
/// in its favour. (Its quiesce spec types date from API 6.5; before 8 the old call is
/// not deprecated, and is what servers are asked.)
fn use_snapshot_ex(c: &Client) -> bool {
    let major: u32 =
        c.sc.api_version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
    major >= 8 && !c.snapshot_ex_missing.load(Ordering::Relaxed)
}

fn create_once(
    c: &Client,
    vm: &Moref,
    name: &str,
    description: &str,
    quiesce: bool,
) -> Result<Moref> {
    // Both methods take name, description, memory in this order; then CreateSnapshotEx_Task
    // an optional quiesceSpec (quiescing iff present, bounded by its timeout) where
    // CreateSnapshot_Task has a required quiesce flag.
    let head = format!(
        "<name>{}</name><description>{}</description><memory>false</memory>",
        escape(name),
        escape(description)
    );
    let mut method = "CreateSnapshotEx_Task";
    let mut task = None;
    if use_snapshot_ex(c) {
        let spec = if quiesce {
            format!(
                "<quiesceSpec xsi:type=\"VirtualMachineGuestQuiesceSpec\">\
                 <timeout>{QUIESCE_TIMEOUT_MIN}</timeout></quiesceSpec>"
            )
        } else {
            String::new()
        };
        match c.call(method, vm, &format!("{head}{spec}")) {
            // A server (or a proxy in front of it) that reports API 8 without the method.
            Err(VsError::Fault { kind, .. }) if kind == "MethodNotFound" => {
                if !c.snapshot_ex_missing.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "{}: API {} without CreateSnapshotEx_Task; using CreateSnapshot_Task",
                        c.server,
                        c.sc.api_version
                    );
                }
            }
            r => task = Some(r?),
        }
    }
    let task = match task {
        Some(t) => t,
        None => {
            method = "CreateSnapshot_Task";
            c.call(method, vm, &format!("{head}<quiesce>{quiesce}</quiesce>"))?
        }
    };
    let task = task
        .moref_of("returnval")
        .ok_or_else(|| c.protocol(method, "no task returned".into()))?;
    let result = task::wait(c, &task, &format!("snapshot {name}"))?;
    result
        .as_ref()
        .and_then(Moref::from_element)
        .ok_or_else(|| c.protocol(method, "task returned no snapshot".into()))
}

/// Creates our snapshot of `vm` following the quiesce policy.
pub fn create(
    c: &Client,
    vm: &Moref,
    vm_name: &str,
    name: &str,
    description: &str,
    policy: Quiesce,
    tools: &str,
) -> Result<Created> {
    let mut fallbacks = Vec::new();
    let tools_running = tools == "guestToolsRunning";
    let mut why_not = None;
    let want_quiesce = match policy {
        Quiesce::Off => {
            why_not = Some("quiescing disabled (-o quiesce=off)".to_owned());
            false
        }
        _ if tools_running => true,
        Quiesce::Required => return Err(VsError::ToolsNotRunning(vm_name.to_owned())),
        Quiesce::Preferred => {
            why_not = Some(format!(
                "VMware Tools not running ({})",
                if tools.is_empty() { "unknown" } else { tools }
            ));
            fallbacks.push("snapshot taken without quiescing: VMware Tools not running".into());
            false
        }
    };
    let snap = match create_once(c, vm, name, description, want_quiesce) {
        Ok(s) => s,
        Err(e) if want_quiesce && e.fault_kind().is_some_and(is_quiesce_fault) => {
            let reason = e.to_string();
            if policy == Quiesce::Required {
                return Err(VsError::QuiesceFailed {
                    vm: vm_name.to_owned(),
                    reason,
                });
            }
            tracing::warn!("{vm_name}: quiescing failed ({reason}); retrying without");
            fallbacks.push(format!("retried without quiescing after: {reason}"));
            why_not = Some(format!("quiescing failed: {reason}"));
            create_once(c, vm, name, description, false)?
        }
        // vSphere answers TooManySnapshotLevels ("Exceeded the maximum number of permitted
        // snapshots") when the VM's chain is at its limit (32).
        Err(e)
            if e.fault_kind() == Some("TooManySnapshotLevels")
                || e.to_string()
                    .contains("maximum number of permitted snapshots") =>
        {
            return Err(VsError::SnapshotLimit(vm_name.to_owned()))
        }
        Err(e) => return Err(e),
    };
    let node = find(c, vm, |n| n.snapshot == snap)?.unwrap_or(Node {
        snapshot: snap,
        name: name.to_owned(),
        quiesced: false,
        create_time: String::new(),
    });
    let consistency = if node.quiesced {
        "application-consistent: the guest was quiesced by VMware Tools".to_owned()
    } else {
        format!(
            "crash-consistent: {}",
            why_not.unwrap_or_else(|| "the server did not quiesce the guest".into())
        )
    };
    Ok(Created {
        node,
        consistency,
        fallbacks,
    })
}

/// Every snapshot of `vm`, flattened.
pub fn tree(c: &Client, vm: &Moref) -> Result<Vec<Node>> {
    let props = c.properties(vm, &["snapshot.rootSnapshotList"])?;
    Ok(props
        .get("snapshot.rootSnapshotList")
        .map(nodes)
        .unwrap_or_default())
}

/// The nodes of a `snapshot.rootSnapshotList` value, flattened.
pub fn nodes(list: &Element) -> Vec<Node> {
    let mut out = Vec::new();
    walk(list, &mut out);
    out
}

fn walk(list: &Element, out: &mut Vec<Node>) {
    for n in &list.children {
        if let Some(snapshot) = n.moref_of("snapshot") {
            out.push(Node {
                snapshot,
                name: n.text_of("name").unwrap_or("").to_owned(),
                quiesced: n.text_of("quiesced") == Some("true"),
                create_time: n.text_of("createTime").unwrap_or("").to_owned(),
            });
        }
        for child in n.children_named("childSnapshotList") {
            walk(
                &Element {
                    children: vec![child.clone()],
                    ..Element::default()
                },
                out,
            );
        }
    }
}

pub fn find(c: &Client, vm: &Moref, pred: impl Fn(&Node) -> bool) -> Result<Option<Node>> {
    Ok(tree(c, vm)?.into_iter().find(|n| pred(n)))
}

/// The snapshot's own config (VirtualMachineConfigInfo): the disks as frozen.
pub fn config(c: &Client, snap: &Moref) -> Result<Element> {
    c.properties(snap, &["config"])?
        .remove("config")
        .ok_or_else(|| c.protocol("snapshot config", format!("{} has no config", snap.value)))
}

/// RemoveSnapshot_Task(removeChildren=false, consolidate=true), retried with backoff:
/// a busy host (another task on the VM) is the usual transient failure.
pub fn remove(c: &Client, snap: &Moref, what: &str) -> Result<()> {
    let mut delay = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = c
            .call(
                "RemoveSnapshot_Task",
                snap,
                "<removeChildren>false</removeChildren><consolidate>true</consolidate>",
            )
            .and_then(|t| {
                let t = t
                    .moref_of("returnval")
                    .ok_or_else(|| c.protocol("RemoveSnapshot_Task", "no task".into()))?;
                task::wait(c, &t, &format!("removing {what}")).map(|_| ())
            });
        match r {
            Ok(()) => return Ok(()),
            // Already gone (removed by hand, or the VM was deleted): nothing to do.
            Err(e) if e.fault_kind() == Some("ManagedObjectNotFound") => return Ok(()),
            Err(e) if attempt >= remove_attempts() => return Err(e),
            Err(e) => {
                tracing::warn!("removing {what}: {e}; retrying in {delay:?}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn remove_attempts() -> u32 {
    std::env::var("VMSNAPFS_REMOVE_ATTEMPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}
