#!/usr/bin/env bash
# Linux guest benchmarks, all in one run on one VMDK (issue "Linux guests"):
#   one monolithicSparse disk, GPT: p1 ext4 and p2 XFS, each holding the same 1 GiB file
#   and 100 000 small files in 100 folders, made by mke2fs -d and mkfs.xfs -p;
#   1. sequential read of the 1 GiB file and 2. find + stat of every small file:
#      ext4 through vmsnapfs vs fuse2fs -o ro on the raw image (the kernel-free peer);
#      XFS through vmsnapfs vs the kernel's XFS on a read-only loop device (Sleuth Kit,
#      the kernel-free reader the issue names, reads no XFS before 4.12).
# Fresh mounts for every measurement and caches dropped before each (needs root).
# --warm measures with the backing images in the page cache instead (see
# bench/linux_warm.sh): our CPU per byte and per file against fuse2fs and the kernel's.
# --backed (implies --warm): memory touched and freed before each measurement (bench/backed.sh).
# usage: bench/linux.sh [--warm] [--backed] [FILES] [BIG_MIB] [ROUNDS]   (defaults 100000 1024 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/backed.sh
warm_flags "$@"; set -- "${REST[@]}"
FILES=${1:-100000}
BIG_MIB=${2:-1024}
ROUNDS=${3:-3}
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
# mkfs.xfs -p (6.1) writes a file bigger than an AG straight over the next AG's header:
# two AGs, each larger than the big file.
xfs_mib=$((2 * BIG_MIB + 1024))

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
  truncate -s "${xfs_mib}M" "$W/xfs.img"
  mkfs.xfs -q -f -d agcount=2 -L BENCH -p "$W/xfs.proto" "$W/xfs.img"
  rm -rf "$src"
  truncate -s $(((part_mib + xfs_mib + 2) * MiB)) "$raw"
  sgdisk -o -n "1:2048:+${part_mib}M" -t 1:8300 -n "2:0:+${xfs_mib}M" -t 2:8300 "$raw" >/dev/null
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
have_kernel_xfs=0
grep -qw xfs /proc/filesystems && have_kernel_xfs=1
peer() { # image kind(ext4|xfs) -> "read find" seconds through fuse2fs or the kernel
  local r f
  if [ "$2" = ext4 ]; then
    fuse2fs "$1" "$M" -o ro >/dev/null
    r=$(timed cat "$M/big.bin"); fusermount3 -u "$M"
    fuse2fs "$1" "$M" -o ro >/dev/null
    f=$(timed find "$M/tree" -printf '%s %T@\n'); fusermount3 -u "$M"
  else
    L=$(losetup -r -f --show "$1")
    mount -t xfs -o ro,norecovery "$L" "$M"
    r=$(timed cat "$M/big.bin"); umount "$M"
    mount -t xfs -o ro,norecovery "$L" "$M"
    f=$(timed find "$M/tree" -printf '%s %T@\n'); umount "$M"
    losetup -d "$L"; L=""
  fi
  echo "$r $f"
}

if [ "$WARM" = 1 ]; then
  PREFAULT_MIB=${PREFAULT_MIB:-$((2 * BIG_MIB + 512))}
  . bench/linux_warm.sh
  exit 0
fi

# In turns, so a slow patch of the VM's disk hurts both sides alike.
results=()
for round in $(seq "$ROUNDS"); do
  results+=("ours-ext4 $(ours disk0p1)")
  results+=("fuse2fs $(peer "$W/ext4.img" ext4)")
  results+=("ours-xfs $(ours disk0p2)")
  [ "$have_kernel_xfs" = 1 ] && results+=("kernel-xfs $(peer "$W/xfs.img" xfs)")
  echo "round $round done"
done
[ "$have_kernel_xfs" = 1 ] || echo "kernel XFS not available here: XFS peer not measured"

printf '%s\n' "${results[@]}" >"$W/results.txt"
python3 - "$BIG_MIB" "$FILES" "$W/results.txt" <<'PY'
import statistics, sys
mib, files = int(sys.argv[1]), sys.argv[2]
r, f = {}, {}
for line in open(sys.argv[3]):
    k, a, b = line.split()
    r.setdefault(k, []).append(float(a))
    f.setdefault(k, []).append(float(b))
def show(k, what):
    v = what[k]
    return min(v), statistics.median(v)
n = len(r["ours-ext4"])
print(f"{n} rounds; best / median")
for fs, peer, label in (("ext4", "fuse2fs", "fuse2fs -o ro"), ("xfs", "kernel-xfs", "kernel xfs (loop)")):
    ours = f"ours-{fs}"
    ob, om = show(ours, r)
    print(f"{fs}: sequential read of a {mib} MiB file")
    print(f"  vmsnapfs           {ob:6.2f} / {om:6.2f} s  {mib/ob:7.1f} / {mib/om:7.1f} MiB/s")
    if peer in r:
        pb, pm = show(peer, r)
        tgt = " (target >= 1.5)" if fs == "ext4" else ""
        print(f"  {label:18} {pb:6.2f} / {pm:6.2f} s  {mib/pb:7.1f} / {mib/pm:7.1f} MiB/s"
              f"  vmsnapfs {pb/ob:.2f}x / {pm/om:.2f}x faster{tgt}")
    ob, om = show(ours, f)
    print(f"{fs}: find + stat of {files} files")
    if peer in f:
        pb, pm = show(peer, f)
        tgt = " (target <= 0.25)" if fs == "ext4" else ""
        print(f"  vmsnapfs {ob:.2f} / {om:.2f} s, {label} {pb:.2f} / {pm:.2f} s:"
              f" {ob/pb:.2f}x / {om/pm:.2f}x of its time{tgt}")
    else:
        print(f"  vmsnapfs {ob:.2f} / {om:.2f} s")
PY
