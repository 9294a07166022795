//! The admin's hook scripts around a freeze (VCB's pre-backup and post-backup steps): run
//! with the VM's name, id, source and folder in the environment, stdin closed, their
//! stderr logged.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// What a hook is told about the VM, as environment variables.
pub struct HookEnv<'a> {
    pub vm: &'a str,
    pub vm_id: &'a str,
    pub source: String,
    pub vm_dir: &'a Path,
    pub mountpoint: Option<&'a Path>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreBackup,
    PostBackup,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::PreBackup => "pre_backup",
            Phase::PostBackup => "post_backup",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{script}: {source}")]
    Spawn {
        script: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} exited with {status}{}", last_line.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
    Exit {
        script: String,
        status: ExitStatus,
        /// The last line it wrote to stderr: usually the reason.
        last_line: Option<String>,
    },
}

pub fn run(script: &Path, phase: Phase, env: &HookEnv) -> Result<(), HookError> {
    let phase = phase.name();
    tracing::info!("{}: running {phase} {}", env.vm, script.display());
    let mut cmd = Command::new(script);
    cmd.env("VMSNAPFS_PHASE", phase)
        .env("VMSNAPFS_VM", env.vm)
        .env("VMSNAPFS_VM_ID", env.vm_id)
        .env("VMSNAPFS_SOURCE", &env.source)
        .env("VMSNAPFS_VM_DIR", env.vm_dir)
        .stdin(Stdio::null());
    if let Some(m) = env.mountpoint {
        cmd.env("VMSNAPFS_MOUNTPOINT", m);
    }
    let out = cmd.output().map_err(|source| HookError::Spawn {
        script: script.display().to_string(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        tracing::info!("{} {phase}: {}", env.vm, stderr.trim());
    }
    if out.status.success() {
        return Ok(());
    }
    Err(HookError::Exit {
        script: script.display().to_string(),
        status: out.status,
        last_line: stderr.lines().last().map(str::to_owned),
    })
}
