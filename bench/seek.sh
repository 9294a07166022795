#!/usr/bin/env bash
# SEEK_DATA/SEEK_HOLE over files of many extents: what a SEEK_DATA-aware copier (cp
# --sparse=always, dd conv=sparse, backup agents) asks once or twice per extent. Walked
# extent by extent with lseek, ROUNDS rounds in turns, best and median, and the ratio:
#   - a monolithicSparse disk whose 64 KiB grains alternate data and zeros (EXTENTS data
#     extents), through vmsnapfs's disks/disk0-flat.vmdk, against qemu-img's sparse raw
#     conversion of it on this machine's file system (the kernel's own SEEK_DATA);
#   - a sparse guest file of as many 64 KiB extents in an ext4 volume (mke2fs -d, disk 1),
#     through vmsnapfs's volumes/, against the file it was made from.
# usage: bench/seek.sh [EXTENTS] [ROUNDS]   (defaults 32768 3; root)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTENTS=${1:-32768}
ROUNDS=${2:-3}
. bench/common.sh
scratch seek
mkdir -p "$W/vms/skvm"

python3 - "$W/alt.raw" "$EXTENTS" <<'PY'
import os, sys
data = os.urandom(65536)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(data)
        f.seek(65536, os.SEEK_CUR)
    f.truncate()
PY
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/alt.raw" "$W/vms/skvm/d.vmdk"
qemu-img convert -f vmdk -O raw "$W/vms/skvm/d.vmdk" "$W/peer.raw"   # sparse on this fs
mkdir "$W/fs"; mv "$W/alt.raw" "$W/fs/sparse.bin"
mke2fs -q -t ext4 -d "$W/fs" "$W/fs.img" "$(( EXTENTS / 16 + 256 ))M"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/fs.img" "$W/vms/skvm/e.vmdk"
rm "$W/fs.img"
printf 'config.version = "8"\ndisplayName = "skvm"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "d.vmdk"\nscsi0:1.present = "TRUE"\nscsi0:1.fileName = "e.vmdk"\n' >"$W/vms/skvm/skvm.vmx"

walk() { # file → "extents seconds"
  python3 - "$1" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
n, pos, t = 0, 0, time.perf_counter()
while True:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    pos = os.lseek(fd, d, os.SEEK_HOLE)
    n += 1
print(n, time.perf_counter() - t)
PY
}
: >"$W/t.txt"
for _ in $(seq "$ROUNDS"); do
  "$BIN" mount "$W/vms" "$M"
  walk "$M/skvm/disks/disk0-flat.vmdk" >/dev/null   # the freeze and the allocation map, untimed
  echo "ours $(walk "$M/skvm/disks/disk0-flat.vmdk")" >>"$W/t.txt"
  echo "ours-guest $(walk "$M/skvm/volumes/disk1/sparse.bin")" >>"$W/t.txt"
  "$BIN" umount "$M"
  echo "peer $(walk "$W/peer.raw")" >>"$W/t.txt"
  echo "peer-guest $(walk "$W/fs/sparse.bin")" >>"$W/t.txt"
done
python3 - "$W/t.txt" <<'PY'
import statistics, sys
t, n = {}, {}
for line in open(sys.argv[1]):
    k, ext, secs = line.split()
    t.setdefault(k, []).append(float(secs)); n[k] = int(ext)
for ours, peer, what in (("ours", "peer", "disk image"), ("ours-guest", "peer-guest", "ext4 guest file")):
    assert n[ours] == n[peer], f"extents differ: {n}"
    print(f"{what}: {n[ours]} data extents, {2 * n[ours]} lseeks per walk, {len(t[ours])} rounds; best / median")
    for k, name in ((ours, "vmsnapfs"), (peer, "the local file")):
        b, m = min(t[k]), statistics.median(t[k])
        print(f"  {name:16} {b:7.3f} / {m:7.3f} s  {b / 2 / n[k] * 1e6:5.1f} / {m / 2 / n[k] * 1e6:5.1f} us per lseek")
    print(f"  vmsnapfs takes {min(t[ours]) / min(t[peer]):.1f}x / "
          f"{statistics.median(t[ours]) / statistics.median(t[peer]):.1f}x the local file's time")
PY
