#!/usr/bin/env bash
# Mount benchmarks, all in one run on one VMDK (issue "The mount", Benchmarks):
#   1. sequential read of a 1 GiB guest file: vmsnapfs vs vmdkmount (libvmdk-utils) +
#      losetup + ntfs-3g -o ro, and vs ntfs-3g -o ro on a loop device of the raw image;
#   2. find + stat of every file (100 000 small files): vmsnapfs vs ntfs-3g on raw;
#   3. invocation -> first `ls` of a volume;
#   4. peak RSS of the vmsnapfs server while reading the 1 GiB file.
# Fresh mounts for every measurement and caches dropped before each (needs root).
#
# --warm measures with the backing images in the page cache instead (a backup host whose
# NFS or array cache is warm: our CPU per byte decides), in ROUNDS rounds taken in turns:
# the 1 GiB read against `dd` of as many cached bytes (the limit), ntfs-3g on a loop of the
# raw image and vmdkmount + ntfs-3g; the walk; `tar` of the small files; four readers of
# four different files at once against one reader of the four in a row; peak RSS.
# --backed (implies --warm) also touches and frees memory right before each measurement,
# as on a host whose memory its hypervisor does not take back (see bench/backed.sh).
# usage: bench/mount.sh [--warm] [--backed] [FILES] [BIG_MIB] [DISK_GIB] [ROUNDS]
#        (defaults 100000 1024 4 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/backed.sh
warm_flags "$@"; set -- "${REST[@]}"
FILES=${1:-100000}
BIG_MIB=${2:-1024}
DISK_GIB=${3:-4}
ROUNDS=${4:-3}
PAR_MIB=256 # each of the four files the parallel readers read
for t in mkntfs ntfs-3g sgdisk sfdisk qemu-img vmdkmount losetup fusermount3 python3 getfattr; do
  command -v "$t" >/dev/null || { echo "bench: $t missing (vmdkmount: apt-get install libvmdk-utils)" >&2; exit 1; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p vmsnapfs
BIN=$CARGO_TARGET_DIR/release/vmsnapfs
W=${BENCH_DIR:-$(mktemp -d /var/tmp/vmsnapfs-bench.XXXXXX)}
M=$W/mnt; V=$W/vmdkmount; L=""
mkdir -p "$M" "$V"
cleanup() {
  fusermount3 -u -q "$M" 2>/dev/null || true
  [ -n "$L" ] && losetup -d "$L" 2>/dev/null || true
  fusermount3 -u -q "$V" 2>/dev/null || true
  if [ -z "${BENCH_DIR:-}" ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

raw=$W/disk.raw
if [ ! -f "$W/vm/vm.vmdk" ]; then
  echo "building a ${DISK_GIB} GiB NTFS disk: ${BIG_MIB} MiB file + $FILES small files…"
  truncate -s "${DISK_GIB}G" "$raw"
  sgdisk -o -n 1:2048:0 -t 1:0700 "$raw" >/dev/null
  part=$W/part.img
  start=$((2048 * 512))
  size=$(( $(stat -c %s "$raw") - start - 34 * 512 ))
  truncate -s $((size / 4096 * 4096)) "$part"
  mkntfs -q -F -Q -L BENCH "$part" >/dev/null 2>&1
  ntfs-3g "$part" "$M"
  head -c $((BIG_MIB << 20)) /dev/urandom >"$M/big.bin"
  for i in 0 1 2 3; do head -c $((PAR_MIB << 20)) /dev/urandom >"$M/par$i.bin"; done
  python3 - "$M" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.makedirs(f"{root}/tree/d{d:03}", exist_ok=True)
for i in range(n):
    with open(f"{root}/tree/d{i % 100:03}/f{i:06}.txt", "w") as f:
        f.write("x" * (i % 300))
PY
  fusermount3 -u "$M"
  dd if="$part" of="$raw" bs=1M seek=$((start >> 20)) conv=notrunc,sparse status=none
  rm -f "$part"
  mkdir -p "$W/vm"
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$raw" "$W/vm/vm.vmdk"
fi

# Partition 1 as a loop device by offset (containers have no udev for loopNpM nodes).
read -r pstart psize < <(sfdisk -J "$raw" | python3 -c 'import json,sys
p=json.load(sys.stdin)["partitiontable"]["partitions"][0]; print(p["start"]*512, p["size"]*512)')
loop() { losetup -r -o "$pstart" --sizelimit "$psize" --show -f "$1"; }

if [ "$WARM" = 1 ]; then
  # Room for the biggest measurement's new page-cache pages: ntfs-3g's loop and FUSE
  # caches both hold the big file.
  PREFAULT_MIB=${PREFAULT_MIB:-$((2 * BIG_MIB + 512))}
  . bench/warm.sh
  exit 0
fi

timed() { # label command… ; prints seconds
  drop
  local t0 t1
  t0=$(now); "$@" >/dev/null; t1=$(now)
  secs "$t0" "$t1"
}

# --- vmsnapfs ---
drop # also waits out the write-back of a freshly built image
t0=$(now); "$BIN" mount "$W/vm" "$M"; ls "$M/volumes/disk0p1" >/dev/null; t1=$(now)
first_ls=$(secs "$t0" "$t1")
"$BIN" umount "$M"

"$BIN" mount "$W/vm" "$M"
pid=$(getfattr --only-values -n user.vmsnapfs.pid "$M")
ours_read=$(timed cat "$M/volumes/disk0p1/big.bin")
rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
"$BIN" umount "$M"
"$BIN" mount "$W/vm" "$M"
ours_find=$(timed find "$M/volumes/disk0p1/tree" -printf '%s %T@\n')
"$BIN" umount "$M"

# --- ntfs-3g on a loop device of the raw image ---
L=$(loop "$raw")
ntfs-3g -o ro "$L" "$M"
raw_read=$(timed cat "$M/big.bin")
fusermount3 -u "$M"
ntfs-3g -o ro "$L" "$M"
raw_find=$(timed find "$M/tree" -printf '%s %T@\n')
fusermount3 -u "$M"
losetup -d "$L"; L=""

# --- vmdkmount + losetup + ntfs-3g on the same VMDK ---
vmdkmount "$W/vm/vm.vmdk" "$V" >/dev/null
L=$(loop "$V/vmdk1")
ntfs-3g -o ro "$L" "$M"
stack_read=$(timed cat "$M/big.bin")
fusermount3 -u "$M"
losetup -d "$L"; L=""
fusermount3 -u "$V"

mib=$BIG_MIB
python3 - "$mib" "$ours_read" "$stack_read" "$raw_read" "$ours_find" "$raw_find" "$first_ls" "$rss" "$FILES" <<'PY'
import sys
mib, ours, stack, raw, of, rf, ls, rss, files = sys.argv[1:]
mib = int(mib); ours, stack, raw, of, rf, ls = map(float, (ours, stack, raw, of, rf, ls))
rss = int(rss) / 1024
print(f"sequential read of a {mib} MiB file:")
print(f"  vmsnapfs                      {ours:7.2f} s  {mib/ours:8.1f} MiB/s")
print(f"  vmdkmount+losetup+ntfs-3g     {stack:7.2f} s  {mib/stack:8.1f} MiB/s   ratio {stack/ours:5.2f}x (target >= 2)")
print(f"  ntfs-3g on loop of raw        {raw:7.2f} s  {mib/raw:8.1f} MiB/s   ratio {raw/ours:5.2f}x (target >= 1.5)")
print(f"find + stat of {files} files:")
print(f"  vmsnapfs {of:.2f} s, ntfs-3g on raw {rf:.2f} s: {of/rf:.2f}x of ntfs-3g's time (target <= 0.25)")
print(f"invocation -> first ls of a volume: {ls*1000:.0f} ms (target < 50)")
print(f"peak RSS while reading: {rss:.0f} MiB (target <= cache 256 + 64 MiB)")
PY
