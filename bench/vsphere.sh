#!/usr/bin/env bash
# Reads a >= 1 GiB frozen disk through the vSphere source (snapshot, then HTTP Range reads
# of the datastore's /folder interface, through the FUSE mount) and fetches the same flat
# extent with one `curl` GET from the same server, in one run against govmomi's vCenter
# simulator on 127.0.0.1; prints the throughputs and the ratios (target >= 0.8x curl).
# The disk is read twice over: through a default mount (the kernel's page cache between
# the reader and us) and through a `-o direct_io` mount (the mode for image-level
# readers: no page cache). The server's page cache is warm for all; they are measured in
# turns, five rounds, and the best and the median of each are compared. For reference it
# also reads the same file through a mount of a local folder (no network) with
# `passthrough=off`, so that it goes through the FUSE read path too: that path's own
# ceiling here. --backed touches and frees memory right before each read, as on a host
# whose hypervisor does not take free memory back (bench/backed.sh). --tls serves HTTPS,
# as every real ESXi host and vCenter does (the simulator's self-signed certificate:
# our mounts with `insecure`, curl with -k); both sides then decrypt every byte.
# usage: bench/vsphere.sh [--backed] [--tls] [SIZE_MIB]
#        (default 1024; needs root for FUSE, go, curl)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKED=0
TLS=0
while [ "${1:-}" = --backed ] || [ "${1:-}" = --tls ]; do
  [ "$1" = --backed ] && BACKED=1
  [ "$1" = --tls ] && TLS=1
  shift
done
SIM_ARGS=()
MOUNT_TLS=
CURL_TLS=()
if [ "$TLS" = 1 ]; then SIM_ARGS=(-tls); MOUNT_TLS=,insecure; CURL_TLS=(-k); fi
SIZE_MIB=${1:-1024}
PREFAULT_MIB=$((SIZE_MIB + 512))
. bench/backed.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "${VMSNAPFS_BIN:-}" ] || cargo build -q --release -p vmsnapfs
BIN=${VMSNAPFS_BIN:-$CARGO_TARGET_DIR/release/vmsnapfs}
VCSIM=$CARGO_TARGET_DIR/vcsim
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$VCSIM" tests/vcsim/main.go

W=$(mktemp -d)
MP=$W/mnt
DMP=$W/dmnt
LMP=$W/lmnt
mkdir -p "$MP" "$DMP" "$LMP"
SIM_PID=
cleanup() {
  for m in "$LMP" "$DMP" "$MP"; do
    mountpoint -q "$m" && "$BIN" umount "$m" >/dev/null 2>&1 || true
  done
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

"$VCSIM" "${SIM_ARGS[@]}" >"$W/sim.json" 2>/dev/null &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$W/sim.json" ] && break; sleep 0.1; done
read -r BASE DS < <(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["url"][:-4], v["datastores"]["LocalDS_0"])' "$W/sim.json")

# A monolithicFlat disk of incompressible data replaces VM0's disk (its extent line
# after a comment, as VMware writes it: qemu-img 10.0 reads one after an empty line twice).
VMDIR=$DS/DC0_H0_VM0
head -c $((SIZE_MIB << 20)) /dev/urandom >"$VMDIR/disk1-flat.vmdk"
cat >"$VMDIR/disk1.vmdk" <<VMDK
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW $((SIZE_MIB * 2048)) FLAT "disk1-flat.vmdk" 0

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
VMDK

printf 'username=vmsnapfs\npassword=secret\n' >"$W/cred"
chmod 600 "$W/cred"
"$BIN" mount "$BASE/DC0/vm/DC0_H0_VM0" "$MP" -o "credentials=$W/cred,state_dir=$W/state,cache_size=64$MOUNT_TLS"
ls "$MP/disks" >/dev/null   # freeze (the snapshot) outside the timing
"$BIN" mount "$BASE/DC0/vm/DC0_H0_VM0" "$DMP" \
  -o "credentials=$W/cred,state_dir=$W/dstate,cache_size=64,direct_io$MOUNT_TLS"
ls "$DMP/disks" >/dev/null

# The same flat file as a local VM folder, mounted too.
LOCAL=$W/local/vm0
mkdir -p "$LOCAL"
ln -s "$VMDIR/disk1-flat.vmdk" "$LOCAL/disk1-flat.vmdk"
cp "$VMDIR/disk1.vmdk" "$LOCAL/"
printf 'scsi0.present = "TRUE"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "disk1.vmdk"\n' >"$LOCAL/vm0.vmx"
"$BIN" mount "$W/local" "$LMP" -o cache_size=64,passthrough=off
ls "$LMP/vm0/disks" >/dev/null

# CPU time is measured beside each read's wall time: the reader's own (user + system, by
# /usr/bin/time: for dd that includes the kernel's page-cache fill and copy out), the
# serving daemon's and the simulator's (from /proc), in clock ticks. Per GiB these say
# what each byte costs each side, which the two shared cores' scheduling does not blur.
TCK=$(getconf CLK_TCK)
ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
daemon_of() { pgrep -f -- "$1" | head -1; }
# usage: measure LABEL DAEMON_PID CMD...: appends "LABEL wall reader daemon server" (s).
measure() {
  local label=$1 pid=$2 t0 t1 d0 d1 s0 s1; shift 2
  d0=$(ticks "$pid"); s0=$(ticks "$SIM_PID"); t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$W/cpu" "$@" >/dev/null
  t1=$(date +%s.%N); d1=$(ticks "$pid"); s1=$(ticks "$SIM_PID")
  read -r u sy <"$W/cpu"
  echo "$label $(echo "$t1 - $t0" | bc -l) $(echo "$u + $sy" | bc -l) $(echo "($d1 - $d0) / $TCK" | bc -l) $(echo "($s1 - $s0) / $TCK" | bc -l)" >>"$W/times"
}
# The server's copy warm right before each read (after `backed`, which takes seconds in
# which the host may take cached pages back).
prep() {
  backed
  cat "$VMDIR/disk1-flat.vmdk" >/dev/null
}
cold() {
  # Drop our kernel page cache of the mount so every run reads through the network path.
  echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
  prep
}
: >"$W/times"
OURS=$(daemon_of "state_dir=$W/state,")
DIRECT=$(daemon_of "state_dir=$W/dstate,")
LOCALD=$(daemon_of "mount $W/local ")
for _ in 1 2 3 4 5; do
  cold
  measure ours "$OURS" dd if="$MP/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
  prep
  measure direct "$DIRECT" dd if="$DMP/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
  prep
  measure curl "" curl -s "${CURL_TLS[@]}" -o /dev/null "$BASE/folder/DC0_H0_VM0/disk1-flat.vmdk?dcPath=DC0&dsName=LocalDS_0"
  cold
  measure local "$LOCALD" dd if="$LMP/vm0/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
done

python3 - "$SIZE_MIB" "$W/times" "$BACKED" "$TLS" <<'PY'
import statistics, sys
mib = int(sys.argv[1])
if sys.argv[3] == "1":
    print("memory touched and freed before each read (--backed)")
print("HTTPS (--tls)" if sys.argv[4] == "1" else "plain HTTP")
t, cpu = {}, {}
for line in open(sys.argv[2]):
    k, wall, reader, daemon, server = line.split()
    t.setdefault(k, []).append(float(wall))
    cpu.setdefault(k, []).append((float(reader), float(daemon), float(server)))
def show(label, k):
    best, med = min(t[k]), statistics.median(t[k])
    print(f"{label:34s} best {mib / best:7.1f} MiB/s  median {mib / med:7.1f} MiB/s")
    return best, med
ob, om = show("vmsnapfs (mount, HTTP Range):", "ours")
db, dm = show("vmsnapfs -o direct_io:", "direct")
cb, cm = show("curl (one GET of the extent):", "curl")
show("vmsnapfs, same file, local folder:", "local")
print(f"ratio, default mount: {cb / ob:.2f}x curl (best of 5), {cm / om:.2f}x curl (median of 5)")
print(f"ratio, -o direct_io:  {cb / db:.2f}x curl (best of 5), {cm / dm:.2f}x curl (median of 5)")
gib = mib / 1024
print("CPU per GiB read, median of 5 (core-seconds): reader + our daemon = client; the simulator")
for label, k in (("default mount", "ours"), ("-o direct_io", "direct"), ("curl", "curl"), ("local folder", "local")):
    r, d, sv = (statistics.median(x[i] for x in cpu[k]) / gib for i in range(3))
    print(f"  {label:16s} client {r + d:5.2f} (reader {r:5.2f}, daemon {d:5.2f})  simulator {sv:5.2f}")
PY
