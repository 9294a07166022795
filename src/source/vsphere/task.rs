//! Waiting for a vSphere task: poll `info` with a growing interval, report progress
//! (visible with -f), and turn a task error into a typed fault.

use std::time::{Duration, Instant};

use super::client::Client;
use super::errors::{Result, VsError};
use super::soap::{fault_kind, Element, Moref};

/// A snapshot with quiescing can take minutes on a busy guest; beyond this something is
/// stuck and the user is better served by an error than by a hung `ls`.
const TASK_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Waits for `task`; returns its result element (e.g. the new snapshot's moref).
pub fn wait(c: &Client, task: &Moref, what: &str) -> Result<Option<Element>> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last_progress = None;
    loop {
        let props = c.properties(task, &["info"])?;
        let info = props
            .get("info")
            .ok_or_else(|| c.protocol(what, format!("task {} has no info", task.value)))?;
        match info.text_of("state").unwrap_or("") {
            "success" => return Ok(info.child("result").cloned()),
            "error" => {
                let err = info.child("error");
                let kind = err
                    .and_then(|e| e.child("fault"))
                    .map(fault_kind)
                    .unwrap_or_else(|| "unknown fault".into());
                let message = err
                    .and_then(|e| e.text_of("localizedMessage"))
                    .filter(|m| !m.is_empty())
                    .unwrap_or(&kind)
                    .to_owned();
                return Err(VsError::Task {
                    what: what.to_owned(),
                    kind,
                    message,
                });
            }
            _ => {
                let progress = info.text_of("progress").map(str::to_owned);
                if progress.is_some() && progress != last_progress {
                    tracing::info!("{what}: {}%", progress.as_deref().unwrap_or("0"));
                    last_progress = progress;
                }
            }
        }
        if start.elapsed() > TASK_LIMIT {
            return Err(VsError::Task {
                what: what.to_owned(),
                kind: "Timeout".into(),
                message: format!("task {} still running after {TASK_LIMIT:?}", task.value),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 3 / 2).min(Duration::from_secs(2));
    }
}
