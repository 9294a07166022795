#!/usr/bin/env bash
# Image-level reads of a flat disk (the datastore's own -flat.vmdk, as on an NFS datastore
# or a local VM folder) with the image in the page cache, in one run, in turns, fresh
# mounts, best and median of ROUNDS:
#   - dd of the flat extent file itself (the limit: one copy out of cached pages);
#   - vmsnapfs's default mount, where the open is passed through to that file (the kernel
#     reads it with no request to us);
#   - vmsnapfs -o passthrough=off (every read a FUSE request, spliced from the file's pages)
#     and -o passthrough=off,direct_io (no FUSE page cache).
# (vmdkmount, the FUSE peer of the other benchmarks, refuses flat disks: "Unsupported
# disk type"; the file itself is what a flat disk's reader is measured against.)
# Each reader is dd with bs=1M and bs=64k; the bytes read are checked against the file.
# usage: bench/passthrough.sh [MIB] [ROUNDS]   (defaults 1024 5; root)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
ROUNDS=${2:-5}
. bench/common.sh
need qemu-img fusermount3 python3 getfattr
scratch pt
mkdir -p "$W/vms/flatvm"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

vm=$W/vms/flatvm
head -c $((MIB << 20)) /dev/urandom >"$W/disk.raw"
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat "$W/disk.raw" "$vm/disk.vmdk"
rm "$W/disk.raw"
flat=$vm/disk-flat.vmdk
printf 'config.version = "8"\nvirtualHW.version = "19"\ndisplayName = "flatvm"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "disk.vmdk"\n' >"$vm/flatvm.vmx"
want=$(sha256sum "$flat" | cut -d' ' -f1)

# This VM's host pages out memory left untouched for a while, the page cache too: the
# image is read again right before every measurement.
warm() { cat "$flat" >/dev/null; }
took() { # file bs → seconds
  local t0 t1
  warm
  t0=$(now); dd if="$1" of=/dev/null bs="$2" status=none; t1=$(now)
  secs "$t0" "$t1"
}
ours() { # name bs [options]
  "$BIN" mount "$W/vms" "$M" ${3:+-o "$3"}
  local img=$M/flatvm/disks/disk0-flat.vmdk s n
  s=$(took "$img" "$2")
  n=$(getfattr --absolute-names --only-values -n user.vmsnapfs.passthrough "$M")
  [ "$(sha256sum <"$img" | cut -d' ' -f1)" = "$want" ] || { echo "$1: bytes differ from the flat file" >&2; exit 1; }
  "$BIN" umount "$M"
  echo "$1-$2 $s $n" >>"$W/t.txt"
}
: >"$W/t.txt"
for round in $(seq "$ROUNDS"); do
  for bs in 1M 64k; do
    echo "dd-$bs $(took "$flat" "$bs") 0" >>"$W/t.txt"
    ours pt "$bs"
    ours nopt "$bs" passthrough=off
    ours dio "$bs" passthrough=off,direct_io
  done
  echo "round $round done"
done

python3 - "$W/t.txt" "$MIB" <<'PY'
import statistics, sys
path, mib = sys.argv[1], int(sys.argv[2])
t, opened = {}, {}
for line in open(path):
    k, v, n = line.split()
    t.setdefault(k, []).append(float(v))
    opened[k] = max(opened.get(k, 0), int(n))
print(f"{mib} MiB flat disk image in the page cache, {len(t['dd-1M'])} rounds; best / median")
for bs in ("1M", "64k"):
    d = t[f"dd-{bs}"]
    lb, lm = min(d), statistics.median(d)
    print(f"dd bs={bs}:")
    for k, name in (("dd", "the flat file itself (limit)"), ("pt", "vmsnapfs (passthrough)"),
                    ("nopt", "vmsnapfs -o passthrough=off"), ("dio", "... passthrough=off,direct_io")):
        v = t[f"{k}-{bs}"]
        b, m = min(v), statistics.median(v)
        extra = "" if k == "dd" else f"  {lb/b*100:4.0f}% / {lm/m*100:4.0f}% of the limit"
        if k == "pt":
            extra += f", {opened[f'pt-{bs}']} open(s) passed through"
        print(f"  {name:34} {b:6.3f} / {m:6.3f} s  {mib/b:7.0f} / {mib/m:7.0f} MiB/s{extra}")
    for k in ("nopt", "dio"):
        v, p = t[f"{k}-{bs}"], t[f"pt-{bs}"]
        print(f"  passthrough against {k}: {min(v)/min(p):.2f}x / {statistics.median(v)/statistics.median(p):.2f}x as fast")
PY
