# The warm half of bench/linux.sh (sourced by it after the image is built: it uses its
# W, M, BIN, L, now, secs, ROUNDS, BIG_MIB, FILES and have_kernel_xfs).
#
# Every backing file is read into the page cache right before each measurement, and
# every mount is fresh, so what is measured is each stack's own work per byte and per
# file, not the VM's disk: ext4 and XFS through vmsnapfs (the default mount, splice=off,
# direct_io=all) against fuse2fs -o ro and the kernel's ext4 and XFS on read-only loop
# devices of the same file systems' images, and dd of as many cached bytes (the limit).

warm() { cat "$W/vm/vm.vmdk" "$W/ext4.img" "$W/xfs.img" >/dev/null; }
took() { # command… ; prints seconds
  local t0 t1
  backed # first: it takes seconds, in which the host may take back cached pages too
  warm
  t0=$(now); "$@" >/dev/null; t1=$(now)
  secs "$t0" "$t1"
}
walk() { find "$1/tree" -printf '%s %T@\n'; }
big() { cat "$1/big.bin"; }
have_kernel_ext4=0
grep -qw ext4 /proc/filesystems && have_kernel_ext4=1

ours() { # name volume command-on-dir [mount options]
  "$BIN" mount "$W/vm" "$M" ${4:+-o "$4"}
  echo "$1 $(took "$3" "$M/volumes/$2")" >>"$W/warm.txt"
  "$BIN" umount "$M"
}
kernel() { # name fs image command-on-dir
  L=$(losetup -r -f --show "$3")
  local opts=ro,norecovery
  [ "$2" = ext4 ] && opts=ro,noload
  if mount -t "$2" -o "$opts" "$L" "$M" 2>/dev/null; then
    echo "$1 $(took "$4" "$M")" >>"$W/warm.txt"
    umount "$M"
  fi
  losetup -d "$L"; L=""
}
fuse2() { # name command-on-dir
  fuse2fs "$W/ext4.img" "$M" -o ro >/dev/null
  echo "$1 $(took "$2" "$M")" >>"$W/warm.txt"
  fusermount3 -u "$M"
}

: >"$W/warm.txt"
for round in $(seq "$ROUNDS"); do
  echo "dd-read $(took dd if="$W/vm/vm.vmdk" of=/dev/null bs=1M count="$BIG_MIB" status=none)" >>"$W/warm.txt"
  for fs in ext4 xfs; do
    v=disk0p1; [ $fs = xfs ] && v=disk0p2
    ours "ours-$fs-read" $v big; ours "ours-$fs-nosplice-read" $v big splice=off
    ours "ours-$fs-dio-read" $v big direct_io=all
    ours "ours-$fs-walk" $v walk
  done
  fuse2 fuse2fs-read big; fuse2 fuse2fs-walk walk
  [ "$have_kernel_ext4" = 1 ] && { kernel kernel-ext4-read ext4 "$W/ext4.img" big; kernel kernel-ext4-walk ext4 "$W/ext4.img" walk; }
  [ "$have_kernel_xfs" = 1 ] && { kernel kernel-xfs-read xfs "$W/xfs.img" big; kernel kernel-xfs-walk xfs "$W/xfs.img" walk; }
  echo "round $round done"
done

python3 - "$W/warm.txt" "$BIG_MIB" "$FILES" <<'PY'
import os, statistics, sys
path, mib, files = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = {}
for line in open(path):
    k, v = line.split()
    t.setdefault(k, []).append(float(v))
b = {k: min(v) for k, v in t.items()}
m = {k: statistics.median(v) for k, v in t.items()}
def pair(k):
    return f"{b[k]:6.3f} / {m[k]:6.3f} s  {mib/b[k]:6.0f} / {mib/m[k]:6.0f} MiB/s"
backed = ", memory touched and freed before each (--backed)" if os.environ.get("BACKED") == "1" else ""
print(f"warm page cache{backed}, {len(t['dd-read'])} rounds; best / median")
print(f"sequential read of a {mib} MiB file:")
print(f"  dd of {mib} MiB of the cached VMDK (limit)  {pair('dd-read')}")
for fs, peers in (("ext4", ("fuse2fs", "kernel-ext4")), ("xfs", ("kernel-xfs",))):
    o = f"ours-{fs}-read"
    for k, label in ((o, "vmsnapfs"), (f"ours-{fs}-nosplice-read", "vmsnapfs -o splice=off"),
                     (f"ours-{fs}-dio-read", "vmsnapfs -o direct_io=all")):
        print(f"  {fs} {label:26} {pair(k)}  {b['dd-read']/b[k]*100:3.0f}% / {m['dd-read']/m[k]*100:3.0f}% of the limit")
    for p in peers:
        k = f"{p}-read"
        if k in b:
            print(f"  {fs} {p:26} {pair(k)}  vmsnapfs {b[k]/b[o]:.2f}x / {m[k]/m[o]:.2f}x as fast")
        else:
            print(f"  {fs} {p}: not measured (this kernel cannot mount it from a loop device)")
print(f"find + stat of {files} files:")
for fs, peers in (("ext4", ("fuse2fs", "kernel-ext4")), ("xfs", ("kernel-xfs",))):
    o = f"ours-{fs}-walk"
    line = f"  {fs} vmsnapfs {b[o]:.3f} / {m[o]:.3f} s"
    for p in peers:
        k = f"{p}-walk"
        if k in b:
            line += f"; {p} {b[k]:.3f} / {m[k]:.3f} s ({b[o]/b[k]:.2f}x / {m[o]/m[k]:.2f}x of its time)"
    print(line)
PY
