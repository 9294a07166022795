#!/usr/bin/env bash
# Incremental backup benchmark (issue "Incremental backups", Benchmark), in one run:
# a 1 GiB disk full of data, then a snapshot link with 1 % of it rewritten in 64 KiB
# pieces; copying the changes through disks/since/<id>/disk0-flat.vmdk with a
# SEEK_DATA-aware copier (cp --sparse=always) against a full read of the same disk
# (dd bs=1M of disks/disk0-flat.vmdk), several rounds in turns, best and median, and
# the ratio; fresh mounts each time. Two modes: cold (caches dropped before each read,
# needs root: the datastore's disk decides) and warm (the VM's files in the page cache,
# as on a backup host reading a cached array or NFS: our CPU per byte decides).
# usage: bench/incremental.sh [DISK_MIB] [CHANGED_PERCENT] [ROUNDS]  (1024 1 3)
set -euo pipefail
cd "$(dirname "$0")/.."
DISK_MIB=${1:-1024}
PCT=${2:-1}
ROUNDS=${3:-3}
for t in qemu-img qemu-io fusermount3 python3 cp dd; do
  command -v "$t" >/dev/null || { echo "bench: $t missing" >&2; exit 1; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p vmsnapfs
BIN=$CARGO_TARGET_DIR/release/vmsnapfs
W=$(mktemp -d /var/tmp/vmsnapfs-incr.XXXXXX)
M=$W/mnt
mkdir -p "$M" "$W/vm"
cleanup() { fusermount3 -u -q "$M" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
mount_vm() { "$BIN" mount "$W/vm" "$M"; }
umount_vm() { "$BIN" umount "$M"; }
field() { python3 -c "import json,sys; print(json.load(open('$M/status.json'))['disks'][0]['$1'])"; }

echo "building a ${DISK_MIB} MiB disk of random data, then ${PCT} % rewritten in a new link…"
head -c $((DISK_MIB << 20)) /dev/urandom >"$W/full.raw"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/full.raw" "$W/vm/base.vmdk"
rm -f "$W/full.raw"
mount_vm; ID=$(field change_id); umount_vm
qemu-img create -q -f vmdk -b base.vmdk -F vmdk "$W/vm/base-000001.vmdk"
python3 - "$DISK_MIB" "$PCT" >"$W/writes" <<'PY'
import random, sys
mib, pct = int(sys.argv[1]), float(sys.argv[2])
pieces = int(mib * 16 * pct / 100)          # 64 KiB pieces
random.seed(7)
for off in sorted(random.sample(range(mib * 16), pieces)):
    print(f"write -P {off % 251} {off * 65536} 64k")
PY
args=(); while read -r l; do args+=(-c "$l"); done <"$W/writes"
qemu-io -f vmdk "${args[@]}" "$W/vm/base-000001.vmdk" >/dev/null
PIECES=$(wc -l <"$W/writes")

run_mode() {  # $1 = cold|warm
  full=(); incr=()
  for r in $(seq "$ROUNDS"); do
    mount_vm; prep "$1"; t0=$(now)
    dd if="$M/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
    full+=("$(python3 -c "print($(now) - $t0)")"); umount_vm
    mount_vm; prep "$1"; t0=$(now)
    cp --sparse=always "$M/disks/since/$ID/disk0-flat.vmdk" "$W/changes.img"
    incr+=("$(python3 -c "print($(now) - $t0)")")
    CHANGED=$(python3 -c "import json; print(sum(e['length'] for e in json.load(open('$M/disks/since/$ID/disk0.changes.json'))))")
    umount_vm; rm -f "$W/changes.img"
  done
  report "$1"
}
prep() { if [ "$1" = cold ]; then drop; else cat "$W"/vm/*.vmdk >/dev/null; fi; }
report() {
python3 - "$DISK_MIB" "$PIECES" "$CHANGED" "${full[*]}" "${incr[*]}" "$1" <<'PY'
import statistics, sys
mib, pieces, changed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
full = [float(x) for x in sys.argv[4].split()]
incr = [float(x) for x in sys.argv[5].split()]
print(f"{sys.argv[6]}: disk {mib} MiB, {pieces} pieces of 64 KiB rewritten, {changed / 2**20:.1f} MiB listed as changed")
for name, v in (("full read (dd bs=1M)", full), ("changes (cp --sparse=always since/)", incr)):
    print(f"{name:38} best {min(v):7.3f} s  median {statistics.median(v):7.3f} s  ({mib / min(v):7.0f} MiB/s of disk)")
print(f"ratio full/changes: best {min(full) / min(incr):.1f}x  median {statistics.median(full) / statistics.median(incr):.1f}x  (goal >= 30x)")
PY
}
run_mode cold
run_mode warm
