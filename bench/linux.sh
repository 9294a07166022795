#!/usr/bin/env bash
# Linux guest benchmarks, all in one run on one VMDK (issue "Linux guests"):
#   one monolithicSparse disk, GPT: p1 ext4 and p2 XFS, each holding the same 1 GiB file
#   and 100 000 small files in 100 folders, made by mke2fs -d and mkfs.xfs -p;
#   1. sequential read of the 1 GiB file and 2. find + stat of every small file:
#      ext4 through vmsnapfs vs fuse2fs -o ro on the raw image (the kernel-free peer);
#      XFS through vmsnapfs vs the kernel's XFS on a read-only loop device (Sleuth Kit,
#      the kernel-free reader the issue names, reads no XFS before 4.12).
# Fresh mounts for every measurement and caches dropped before each (needs root).
# usage: bench/linux.sh [FILES] [BIG_MIB]   (defaults 100000 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-100000}
BIG_MIB=${2:-1024}
for t in mke2fs mkfs.xfs fuse2fs sgdisk sfdisk qemu-img losetup fusermount3 python3; do
  command -v "$t" >/dev/null || { echo "bench: $t missing (apt-get install e2fsprogs fuse2fs xfsprogs gdisk qemu-utils)" >&2; exit 1; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p vmsnapfs
BIN=$CARGO_TARGET_DIR/release/vmsnapfs
W=${BENCH_DIR:-$(mktemp -d /var/tmp/vmsnapfs-linux-bench.XXXXXX)}
M=$W/mnt; L=""
mkdir -p "$M"
cleanup() {
  fusermount3 -u -q "$M" 2>/dev/null || umount "$M" 2>/dev/null || true
  [ -n "$L" ] && losetup -d "$L" 2>/dev/null || true
  if [ -z "${BENCH_DIR:-}" ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
MiB=$((1024 * 1024))
part_mib=$((BIG_MIB + 1024))

raw=$W/disk.raw
if [ ! -f "$W/vm/vm.vmdk" ]; then
  echo "building ext4 and XFS volumes: ${BIG_MIB} MiB file + $FILES small files each…"
  src=$W/src
  mkdir -p "$src/tree"
  head -c $((BIG_MIB * MiB)) /dev/urandom >"$src/big.bin"
  python3 - "$src" "$FILES" "$W/xfs.proto" <<'PY'
import os, sys
root, n, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for d in range(100):
    os.makedirs(f"{root}/tree/d{d:03}", exist_ok=True)
for i in range(n):
    with open(f"{root}/tree/d{i % 100:03}/f{i:06}.txt", "w") as f:
        f.write("x" * (i % 300))
# The same tree as an mkfs.xfs protofile.
with open(proto, "w") as p:
    p.write("/dev/null\n0 0\nd--755 0 0\n")
    p.write(f"big.bin ---644 0 0 {root}/big.bin\n")
    p.write("tree d--755 0 0\n")
    for d in range(100):
        p.write(f"d{d:03} d--755 0 0\n")
        for i in range(d, n, 100):
            p.write(f"f{i:06}.txt ---644 0 0 {root}/tree/d{d:03}/f{i:06}.txt\n")
        p.write("$\n")
    p.write("$\n$\n")
PY
  mke2fs -q -F -t ext4 -L BENCH -d "$src" "$W/ext4.img" "${part_mib}M"
  truncate -s "${part_mib}M" "$W/xfs.img"
  mkfs.xfs -q -f -L BENCH -p "$W/xfs.proto" "$W/xfs.img"
  rm -rf "$src"
  truncate -s $(((2 * part_mib + 2) * MiB)) "$raw"
  sgdisk -o -n "1:2048:+${part_mib}M" -t 1:8300 -n "2:0:+${part_mib}M" -t 2:8300 "$raw" >/dev/null
  read -r s1 s2 < <(sfdisk -J "$raw" | python3 -c 'import json,sys
p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[0]["start"], p[1]["start"])')
  dd if="$W/ext4.img" of="$raw" bs=512 seek="$s1" conv=notrunc,sparse status=none
  dd if="$W/xfs.img" of="$raw" bs=512 seek="$s2" conv=notrunc,sparse status=none
  mkdir -p "$W/vm"
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$raw" "$W/vm/vm.vmdk"
  rm -f "$raw"
fi

timed() { # command… ; prints seconds
  drop
  local t0 t1
  t0=$(now); "$@" >/dev/null; t1=$(now)
  secs "$t0" "$t1"
}

ours() { # volume -> "read find" seconds
  local r f
  "$BIN" mount "$W/vm" "$M"
  r=$(timed cat "$M/volumes/$1/big.bin")
  "$BIN" umount "$M"
  "$BIN" mount "$W/vm" "$M"
  f=$(timed find "$M/volumes/$1/tree" -printf '%s %T@\n')
  "$BIN" umount "$M"
  echo "$r $f"
}

drop # also waits out the write-back of a freshly built image
read -r ext_read ext_find < <(ours disk0p1)
read -r xfs_read xfs_find < <(ours disk0p2)

# fuse2fs on the ext4 image's own file (the same bytes, no VMDK in the way).
fuse2fs "$W/ext4.img" "$M" -o ro >/dev/null
f2_read=$(timed cat "$M/big.bin")
fusermount3 -u "$M"
fuse2fs "$W/ext4.img" "$M" -o ro >/dev/null
f2_find=$(timed find "$M/tree" -printf '%s %T@\n')
fusermount3 -u "$M"

# The kernel's XFS, read-only and without log recovery, on a loop device of the image.
k_read=nan k_find=nan
if grep -qw xfs /proc/filesystems && L=$(losetup -r -f --show "$W/xfs.img" 2>/dev/null); then
  mount -t xfs -o ro,norecovery "$L" "$M"
  k_read=$(timed cat "$M/big.bin")
  umount "$M"
  mount -t xfs -o ro,norecovery "$L" "$M"
  k_find=$(timed find "$M/tree" -printf '%s %T@\n')
  umount "$M"
  losetup -d "$L"; L=""
else
  echo "kernel XFS not available here: XFS peer not measured"
fi

python3 - "$BIG_MIB" "$FILES" "$ext_read" "$ext_find" "$f2_read" "$f2_find" \
  "$xfs_read" "$xfs_find" "$k_read" "$k_find" <<'PY'
import sys
mib, files = int(sys.argv[1]), sys.argv[2]
er, ef, fr, ff, xr, xf, kr, kf = map(float, sys.argv[3:])
print(f"ext4: sequential read of a {mib} MiB file")
print(f"  vmsnapfs           {er:7.2f} s  {mib/er:8.1f} MiB/s")
print(f"  fuse2fs -o ro      {fr:7.2f} s  {mib/fr:8.1f} MiB/s   ratio {fr/er:5.2f}x (target >= 1.5)")
print(f"ext4: find + stat of {files} files")
print(f"  vmsnapfs {ef:.2f} s, fuse2fs {ff:.2f} s: {ef/ff:.2f}x of fuse2fs's time (target <= 0.25)")
print(f"XFS: sequential read of a {mib} MiB file")
print(f"  vmsnapfs           {xr:7.2f} s  {mib/xr:8.1f} MiB/s")
if kr == kr:
    print(f"  kernel xfs (loop)  {kr:7.2f} s  {mib/kr:8.1f} MiB/s   ratio {kr/xr:5.2f}x")
    print(f"XFS: find + stat of {files} files")
    print(f"  vmsnapfs {xf:.2f} s, kernel xfs {kf:.2f} s: {xf/kf:.2f}x of the kernel's time")
else:
    print(f"XFS: find + stat of {files} files: vmsnapfs {xf:.2f} s")
PY
