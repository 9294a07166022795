#!/usr/bin/env bash
# Reads a >= 1 GiB frozen disk through the vSphere source (snapshot, then HTTP Range reads
# of the datastore's /folder interface, through the FUSE mount) and fetches the same flat
# extent with one `curl` GET from the same server, in one run against govmomi's vCenter
# simulator on 127.0.0.1; prints both throughputs and the ratio (target >= 0.8x curl).
# The server's page cache is warm for both; each figure is the best of three runs.
# usage: bench/vsphere.sh [SIZE_MIB]   (default 1024; needs root for FUSE, go, curl)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${VMSNAPFS_BIN:-}" ] || cargo build -q --release -p vmsnapfs
BIN=${VMSNAPFS_BIN:-$CARGO_TARGET_DIR/release/vmsnapfs}
VCSIM=$CARGO_TARGET_DIR/vcsim
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$VCSIM" tests/vcsim/main.go

W=$(mktemp -d)
MP=$W/mnt
mkdir -p "$MP"
SIM_PID=
cleanup() {
  mountpoint -q "$MP" && "$BIN" umount "$MP" >/dev/null 2>&1 || true
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

"$VCSIM" >"$W/sim.json" 2>/dev/null &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$W/sim.json" ] && break; sleep 0.1; done
read -r BASE DS < <(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["url"][:-4], v["datastores"]["LocalDS_0"])' "$W/sim.json")

# A monolithicFlat disk of incompressible data replaces VM0's disk.
VMDIR=$DS/DC0_H0_VM0
head -c $((SIZE_MIB << 20)) /dev/urandom >"$VMDIR/disk1-flat.vmdk"
cat >"$VMDIR/disk1.vmdk" <<VMDK
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

RW $((SIZE_MIB * 2048)) FLAT "disk1-flat.vmdk" 0

ddb.adapterType = "lsilogic"
VMDK

printf 'username=vmsnapfs\npassword=secret\n' >"$W/cred"
chmod 600 "$W/cred"
"$BIN" mount "$BASE/DC0/vm/DC0_H0_VM0" "$MP" -o "credentials=$W/cred,state_dir=$W/state,cache_size=64"
ls "$MP/disks" >/dev/null   # freeze (the snapshot) outside the timing

best() { sort -n | head -1; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

ours=$(for i in 1 2 3; do
  # Drop our kernel page cache of the mount so every run reads through the network path.
  echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
  cat "$VMDIR/disk1-flat.vmdk" >/dev/null   # keep the server's copy warm
  secs dd if="$MP/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
done | best)
curl_t=$(for i in 1 2 3; do
  secs curl -s -o /dev/null "$BASE/folder/DC0_H0_VM0/disk1-flat.vmdk?dcPath=DC0&dsName=LocalDS_0"
done | best)

python3 - "$SIZE_MIB" "$ours" "$curl_t" <<'PY'
import sys
mib, ours, curl = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"vmsnapfs (mount, HTTP Range): {mib / ours:8.1f} MiB/s  ({ours:.2f} s for {mib} MiB)")
print(f"curl (one GET of the extent):  {mib / curl:8.1f} MiB/s  ({curl:.2f} s)")
print(f"ratio: {curl / ours:.2f}x curl")
PY
