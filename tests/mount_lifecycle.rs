//! Freeze/thaw lifecycle and mount UX through real mounts: hooks, freeze only on access
//! inside a VM directory, thaw on umount / fusermount3 -u / SIGTERM / SIGINT / idle
//! release, mount -t fuse.vmsnapfs, an fstab entry, errors before the mount.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A hook that logs "<phase> <vm>" and fails pre_backup for VMs named in `fail_vm`.
fn hook(fail_vm: &str) -> (PathBuf, PathBuf) {
    let dir = scratch("hook");
    let log = dir.join("log");
    let script = dir.join("hook.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$VMSNAPFS_PHASE $VMSNAPFS_VM\" >>{log}\n\
             [ \"$VMSNAPFS_PHASE\" = pre_backup ] && [ \"$VMSNAPFS_VM\" = \"{fail_vm}\" ] && \
             {{ echo 'cannot quiesce the app' >&2; exit 3; }}\nexit 0\n",
            log = log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn log_lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hook_opts(script: &Path) -> String {
    format!("pre_backup={s},post_backup={s}", s = script.display())
}

fn serving_pid(mp: &Path) -> i32 {
    let out = run(Command::new("getfattr")
        .args(["--only-values", "-n", "user.vmsnapfs.pid"])
        .arg(mp));
    out.trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn listing_the_root_never_freezes_and_umount_thaws_what_was_frozen() {
    let (script, log) = hook("");
    let m = Mount::new(fixtures(), &[&hook_opts(&script)]);
    run(Command::new("ls").arg("-l").arg(&m.mp));
    for e in fs::read_dir(&m.mp).unwrap() {
        fs::metadata(e.unwrap().path()).unwrap();
    }
    assert_eq!(
        log_lines(&log),
        Vec::<String>::new(),
        "stat must not freeze"
    );
    assert!(fs::read_dir(m.mp.join("dosvm")).unwrap().count() > 0);
    assert_eq!(log_lines(&log), ["pre_backup dosvm"]);
    fs::read(m.mp.join("dosvm/volumes/disk0/AUTOEXEC.BAT")).unwrap();
    assert_eq!(log_lines(&log), ["pre_backup dosvm"], "frozen once");
    let pid = serving_pid(&m.mp);
    m.umount();
    assert!(!alive(pid), "umount returns after the server exits");
    assert_eq!(log_lines(&log), ["pre_backup dosvm", "post_backup dosvm"]);
}

#[test]
fn a_failing_pre_backup_fails_only_that_vm_with_eio() {
    let (script, log) = hook("winvm");
    let m = Mount::new(fixtures(), &[&hook_opts(&script)]);
    let err = fs::read_dir(m.mp.join("winvm")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(fs::read_dir(m.mp.join("dosvm")).is_ok());
    m.umount();
    let lines = log_lines(&log);
    assert!(lines.contains(&"pre_backup winvm".to_owned()), "{lines:?}");
    assert!(lines.contains(&"post_backup dosvm".to_owned()), "{lines:?}");
}

#[test]
fn a_failed_freeze_is_retried_after_ten_seconds() {
    let dir = scratch("retry");
    let flag = dir.join("failed-once");
    let script = dir.join("hook.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ -e {f} ] && exit 0\ntouch {f}\necho 'not yet' >&2\nexit 1\n",
            f = flag.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::new(fixtures(), &[&format!("pre_backup={}", script.display())]);
    let vm = m.mp.join("dosvm");
    assert_eq!(
        fs::read_dir(&vm).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    // Still failed right away (no hook storm), then retried.
    assert!(fs::read_dir(&vm).is_err());
    std::thread::sleep(Duration::from_millis(10_500));
    assert!(fs::read_dir(&vm).is_ok());
    m.umount();
}

#[test]
fn fusermount_and_umount_and_sigterm_all_thaw_and_end_the_server() {
    for how in ["fusermount3", "umount", "SIGTERM"] {
        let (script, log) = hook("");
        let m = Mount::new(fixtures(), &[&hook_opts(&script)]);
        fs::read_dir(m.mp.join("dosvm")).unwrap();
        let pid = serving_pid(&m.mp);
        match how {
            "fusermount3" => {
                run(Command::new("fusermount3").arg("-u").arg(&m.mp));
            }
            "umount" => {
                run(Command::new("umount").arg(&m.mp));
            }
            _ => {
                run(Command::new("kill").arg("-TERM").arg(pid.to_string()));
            }
        }
        wait_until(
            &format!("{how}: server exit"),
            Duration::from_secs(20),
            || !alive(pid),
        );
        assert!(!is_mounted(&m.mp), "{how}");
        assert_eq!(
            log_lines(&log),
            ["pre_backup dosvm", "post_backup dosvm"],
            "{how}"
        );
    }
}

#[test]
fn foreground_mode_serves_until_sigint_and_exits_zero() {
    let (script, log) = hook("");
    let mp = scratch("fg");
    let child = Command::new(bin())
        .arg("mount")
        .arg("-f")
        .arg(fixtures())
        .arg(&mp)
        .arg("-o")
        .arg(hook_opts(&script))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("foreground mount", Duration::from_secs(20), || {
        is_mounted(&mp)
    });
    fs::read_dir(mp.join("winvm/volumes")).unwrap();
    run(Command::new("kill").arg("-INT").arg(child.id().to_string()));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(!is_mounted(&mp));
    assert_eq!(log_lines(&log), ["pre_backup winvm", "post_backup winvm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("thawed"),
        "foreground logs to stderr: {stderr}"
    );
}

#[test]
fn idle_release_thaws_and_the_next_access_freezes_again() {
    let (script, log) = hook("");
    let m = Mount::new(fixtures(), &[&hook_opts(&script), "idle_release=1"]);
    fs::read_dir(m.mp.join("dosvm")).unwrap();
    // An open handle keeps the VM frozen however long it stays open.
    let f = fs::File::open(m.mp.join("dosvm/dosvm.vmx")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(log_lines(&log), ["pre_backup dosvm"]);
    drop(f);
    wait_until("idle release", Duration::from_secs(10), || {
        log_lines(&log).len() == 2
    });
    assert_eq!(log_lines(&log)[1], "post_backup dosvm");
    assert!(m.mp.join("dosvm/volumes/disk0/AUTOEXEC.BAT").is_file());
    assert_eq!(log_lines(&log).len(), 3, "re-frozen on the next access");
    m.umount();
    assert_eq!(log_lines(&log).len(), 4);
}

/// mount(8) runs helpers with a fixed PATH (/usr/local/bin:…), so `-t fuse.vmsnapfs`
/// needs the binary there, as an installed vmsnapfs would be. The link is removed again
/// unless it was there before.
struct Installed {
    created: bool,
    _held: std::sync::MutexGuard<'static, ()>,
}

/// Tests of one binary run in parallel; each holds this while it needs the link, so one
/// test's cleanup never removes it from under another.
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Installed {
    fn new() -> Installed {
        let guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
        let link = Path::new("/usr/local/bin/vmsnapfs");
        let ours = fs::read_link(link)
            .map(|t| t == Path::new(bin()))
            .unwrap_or(false);
        if ours {
            return Installed {
                created: false,
                _held: guard,
            };
        }
        if link.exists() || fs::symlink_metadata(link).is_ok() {
            let _ = fs::remove_file(link);
        }
        std::os::unix::fs::symlink(bin(), link).unwrap();
        Installed {
            created: true,
            _held: guard,
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_file("/usr/local/bin/vmsnapfs");
        }
    }
}

#[test]
fn mount_t_fuse_vmsnapfs_and_an_fstab_entry_work() {
    require("mount.fuse3");
    let _installed = Installed::new();
    let mp = scratch("mount-t");
    run(Command::new("mount")
        .args(["-t", "fuse.vmsnapfs"])
        .arg(fixtures())
        .arg(&mp)
        .args(["-o", "ro,allow_other,uid=0"]));
    assert!(is_mounted(&mp));
    assert!(mp.join("dosvm/volumes/disk0/AUTOEXEC.BAT").is_file());
    let pid = serving_pid(&mp);
    run(Command::new("umount").arg(&mp));
    wait_until("server exit", Duration::from_secs(20), || !alive(pid));

    // The legacy form mount.fuse(8) also accepts: -t fuse PROGRAM#SOURCE.
    let mp1 = scratch("mount-hash");
    run(Command::new("mount")
        .args(["-t", "fuse"])
        .arg(format!("{}#{}", bin(), fixtures().display()))
        .arg(&mp1));
    assert!(mp1.join("winvm/winvm.vmx").is_file());
    run(Command::new(bin()).arg("umount").arg(&mp1));

    let fstab = scratch("fstab").join("fstab");
    let mp2 = scratch("fstab-mnt");
    fs::write(
        &fstab,
        format!(
            "# test fstab\n{} {} fuse.vmsnapfs ro,noauto,_netdev,comment=nightly,x-systemd.device-timeout=30,idle_release=60 0 0\n",
            fixtures().join("dosvm").display(),
            mp2.display()
        ),
    )
    .unwrap();
    run(Command::new("mount").arg("--fstab").arg(&fstab).arg(&mp2));
    // SOURCE is one VM: the mountpoint is that VM's folder.
    assert!(mp2.join("dosvm.vmx").is_file());
    assert!(mp2.join("disks/disk0-flat.vmdk").is_file());
    run(Command::new(bin()).arg("umount").arg(&mp2));
    assert!(!is_mounted(&mp2));
}

#[test]
fn two_mounts_of_one_source_side_by_side() {
    let a = Mount::new(fixtures(), &[]);
    let b = Mount::new(fixtures(), &[]);
    let f = "winvm/volumes/disk0p1/Users/Public/Documents/big.bin";
    assert_eq!(sha256_file(&a.mp.join(f)), sha256_file(&b.mp.join(f)));
    a.umount();
    assert_eq!(fs::read(b.mp.join(f)).unwrap().len(), 3_000_000);
    b.umount();
}

#[test]
fn errors_before_the_mount_is_live_go_to_stderr_with_failure() {
    let mp = scratch("err");
    let cases: [(&[&str], &str); 4] = [
        (&["mount", "/nonexistent/vms"], "/nonexistent/vms"),
        (
            &["mount", "-o", "pre_bakup=/bin/true", "SRC"],
            "unknown option",
        ),
        (&["mount", "-o", "umask=999", "SRC"], "umask"),
        (&["mount", "/etc/hostname"], "not a .vmdk"),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(bin());
        for a in args {
            if *a == "SRC" {
                cmd.arg(fixtures());
            } else {
                cmd.arg(a);
            }
        }
        let out = cmd.arg(&mp).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!is_mounted(&mp));
    }
    let out = Command::new(bin())
        .arg("mount")
        .arg(fixtures())
        .arg("/nonexistent/mountpoint")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// VMs freeze in parallel, and a VM that is slow to freeze stalls nobody else.
#[test]
fn vms_freeze_in_parallel_and_a_slow_one_stalls_no_other() {
    let dir = scratch("slow");
    let script = dir.join("hook.sh");
    fs::write(
        &script,
        "#!/bin/sh\n[ \"$VMSNAPFS_PHASE\" = pre_backup ] && [ \"$VMSNAPFS_VM\" != dosvm ] && sleep 3\nexit 0\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::new(fixtures(), &[&format!("pre_backup={}", script.display())]);
    fs::read_dir(m.mp.join("dosvm")).unwrap();
    let start = std::time::Instant::now();
    let slow: Vec<_> = ["winvm", "sub-monolithicFlat", "sub-streamOptimized"]
        .into_iter()
        .map(|vm| {
            let p = m.mp.join(vm);
            std::thread::spawn(move || fs::read_dir(p).unwrap().count())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // While three VMs are freezing, the frozen one answers at once.
    let t = std::time::Instant::now();
    let data = fs::read(m.mp.join("dosvm/volumes/disk0/DOCS/BIG.BIN")).unwrap();
    assert_eq!(data.len(), 700_000);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    for s in slow {
        assert!(s.join().unwrap() > 0);
    }
    // Three 3 s hooks in parallel, not 9 s in a row.
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
    m.umount();
}

/// An automount daemon on a private master map, stopped (its autofs mount removed) on drop.
struct Automount {
    child: std::process::Child,
    root: PathBuf,
}

impl Drop for Automount {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        if is_mounted(&self.root) {
            let _ = Command::new("umount").arg("-l").arg(&self.root).status();
        }
    }
}

#[test]
fn autofs_mounts_on_access_and_its_expiry_thaws_and_ends_the_server() {
    use std::os::unix::process::CommandExt;
    require("automount");
    require("mount.fuse3");
    // A kernel built without autofs (some VM and container kernels) cannot host the
    // map at all; nothing a package install can change.
    let kernel_fs = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !kernel_fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("autofs"))
    {
        skipped("this kernel has no autofs file system (not in /proc/filesystems)");
        return;
    }
    let _installed = Installed::new();
    let dir = scratch("autofs");
    let root = dir.join("auto");
    fs::write(
        dir.join("auto.master"),
        format!(
            "{} {} --timeout=2\n",
            root.display(),
            dir.join("auto.vms").display()
        ),
    )
    .unwrap();
    fs::write(
        dir.join("auto.vms"),
        format!(
            "winvm -fstype=fuse.vmsnapfs,ro,allow_other :{}\n",
            fixtures().join("winvm").display()
        ),
    )
    .unwrap();
    // automount ignores lookups from its own process group, so it gets one of its own.
    let child = Command::new("automount")
        .args(["-f", "-d"])
        .arg(dir.join("auto.master"))
        .stdout(fs::File::create(dir.join("automount.log")).unwrap())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _automount = Automount {
        child,
        root: root.clone(),
    };
    wait_until("the autofs mount", Duration::from_secs(20), || {
        fs_type(&root).as_deref() == Some("autofs")
    });
    let vm = root.join("winvm");
    // The first lookup makes automount run mount -t fuse.vmsnapfs, which runs us.
    assert!(
        vm.join("winvm.vmx").is_file(),
        "{}",
        fs::read_to_string(dir.join("automount.log")).unwrap_or_default()
    );
    assert_eq!(fs_type(&vm).as_deref(), Some("fuse.vmsnapfs"));
    assert!(vm.join("volumes/disk0p1/Windows/System32").is_dir());
    let status = fs::read_to_string(vm.join("status.json")).unwrap();
    assert!(status.contains("\"winvm\""), "{status}");
    let pid = serving_pid(&vm);
    // Idle past --timeout: automount unmounts, which thaws and ends the server.
    wait_until(
        "autofs expiry to end the server",
        Duration::from_secs(60),
        || !alive(pid),
    );
    // Read mountinfo by name: resolving the path would trigger autofs all over again.
    let vm = vm.to_str().unwrap().to_owned();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(&vm)),
        "still mounted after expiry"
    );
}
