#!/usr/bin/env bash
# The whole test suite, installing what it needs first (README's second command).
# .ci/run calls exactly this script, so a missing install step shows up in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests build images with, and the independent readers they check us against.
PKGS=(
  ntfs-3g sleuthkit dosfstools mtools exfatprogs exfat-fuse fdisk gdisk
  qemu-utils fuse3 attr wimtools rsync tar bzip2 xxd python3 gcc pkg-config autofs mount
  lvm2  # lvm/tests: pvcreate, vgcreate, lvcreate build the volume groups, lvs/pvs/vgs are the oracle
  util-linux  # fincore: what of a file the page cache holds (direct_io test)
  e2fsprogs xfsprogs  # Linux guest volumes: mke2fs/debugfs/e2fsck, mkfs.xfs/xfs_db
  acl  # setfacl: POSIX ACLs in the linuxvm fixture
  # tests/vsphere.rs builds govmomi's vCenter simulator (tests/vcsim) with these.
  golang-go golang-github-vmware-govmomi-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a stable Rust toolchain (https://rustup.rs), then run this again" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== layers"
python3 scripts/check_layers.py src
echo "== cargo test"
# Tests that cannot run here (no autofs in the kernel, no ../shared/testdata) append a
# line to this log (tests/common `skipped`); they are listed after the run, so a green
# suite never hides one.
VMSNAPFS_SKIP_LOG="$(mktemp /tmp/vmsnapfs-skipped.XXXXXX)"
export VMSNAPFS_SKIP_LOG
trap 'rm -f "$VMSNAPFS_SKIP_LOG"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee /tmp/vmsnapfs-test.log || status=$?
if [ -s "$VMSNAPFS_SKIP_LOG" ]; then
  echo "== skipped tests ($(sort -u "$VMSNAPFS_SKIP_LOG" | wc -l))" | tee -a /tmp/vmsnapfs-test.log
  sort -u "$VMSNAPFS_SKIP_LOG" | tee -a /tmp/vmsnapfs-test.log
fi
exit "$status"
