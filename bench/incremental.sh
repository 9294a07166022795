#!/usr/bin/env bash
# Incremental backup benchmark (issue "Incremental backups", Benchmark), in one run:
# a 1 GiB disk full of data, then a snapshot link with 1 % of it rewritten in 64 KiB
# pieces; copying the changes through disks/since/<id>/disk0-flat.vmdk with a
# SEEK_DATA-aware copier (cp --sparse=always) against a full read of the same disk
# (dd bs=1M of disks/disk0-flat.vmdk), several rounds in turns, best and median, and
# the ratio; fresh mounts each time. Two modes: cold (the VM's files evicted from the page cache
# before each read: the datastore's disk decides) and warm (the VM's files in the page cache,
# as on a backup host reading a cached array or NFS: our CPU per byte decides).
# Then the same through the vSphere source against govmomi's simulator (tests/vcsim,
# which answers QueryChangedDiskAreas from what it serves): the changes' copy against a
# full read, and the datastore requests (HTTP Range GETs, counted in the mount's debug
# log) and QueryChangedDiskAreas calls each costs. Skipped, and said so, without go.
# usage: bench/incremental.sh [DISK_MIB] [CHANGED_PERCENT] [ROUNDS]  (1024 1 3)
set -euo pipefail
cd "$(dirname "$0")/.."
DISK_MIB=${1:-1024}
PCT=${2:-1}
ROUNDS=${3:-3}
. bench/common.sh
need qemu-img qemu-io fusermount3 python3 cp dd taskset
scratch incr
mkdir -p "$W/vm"
# Cold: the VM's files evicted from the page cache (as on a datastore nobody has read
# lately), and nothing else: dropping every cache would also evict cp's and vmsnapfs's
# own code, and loading those back from disk (10-20 ms here) is no part of a copy that
# a running backup agent makes.
drop() {
  sync
  python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$W"/vm/*.vmdk
}
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

# Each round also copies the changes with our daemon and cp both held on CPU 0
# (taskset), a diagnostic beside the headline: a SEEK_DATA-aware copy is a chain of
# small synchronous requests (SEEK_DATA, SEEK_HOLE, read per extent), and when the
# kernel wakes our thread on the other CPU, each costs waking an idle CPU (tens of
# microseconds on this virtual machine) where a switch on one CPU costs a few.
run_mode() {  # $1 = cold|warm
  full=(); incr=(); pinned=()
  for r in $(seq "$ROUNDS"); do
    taskset -c 0 "$BIN" mount "$W/vm" "$M"; prep "$1"; t0=$(now)
    taskset -c 0 cp --sparse=always "$M/disks/since/$ID/disk0-flat.vmdk" "$W/changes.img"
    pinned+=("$(python3 -c "print($(now) - $t0)")")
    umount_vm; rm -f "$W/changes.img"
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
python3 - "$DISK_MIB" "$PIECES" "$CHANGED" "${full[*]}" "${incr[*]}" "$1" "${pinned[*]}" <<'PY'
import statistics, sys
mib, pieces, changed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
full = [float(x) for x in sys.argv[4].split()]
incr = [float(x) for x in sys.argv[5].split()]
pinned = [float(x) for x in sys.argv[7].split()]
print(f"{sys.argv[6]}: disk {mib} MiB, {pieces} pieces of 64 KiB rewritten, {changed / 2**20:.1f} MiB listed as changed")
for name, v in (("full read (dd bs=1M)", full), ("changes (cp --sparse=always since/)", incr)):
    print(f"{name:38} best {min(v):7.3f} s  median {statistics.median(v):7.3f} s  ({mib / min(v):7.0f} MiB/s of disk)")
print(f"ratio full/changes: best {min(full) / min(incr):.1f}x  median {statistics.median(full) / statistics.median(incr):.1f}x  (goal >= 30x)")
print(f"  diagnostic, daemon and cp on one CPU: changes best {min(pinned):.3f} s  median {statistics.median(pinned):.3f} s,"
      f" {min(full) / min(pinned):.1f}x / {statistics.median(full) / statistics.median(pinned):.1f}x the full read")
PY
}
run_mode cold
run_mode warm
# The copier's own cost: cp --sparse=always of a local sparse file with the same data
# extents (the view's changes.json), in the page cache, into the same folder as the
# view's copies, so no FUSE at all: what the same copy costs with a source that answers
# every SEEK_DATA and read in the kernel. Its ratio to the warm full read is the most any
# view could reach with this copier on this machine.
mount_vm
python3 - "$M/disks/since/$ID/disk0.changes.json" "$W/local-changes.img" "$DISK_MIB" <<'PY'
import json, os, sys
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, int(sys.argv[3]) << 20)
for e in json.load(open(sys.argv[1])):
    os.pwrite(fd, os.urandom(e["length"]), e["start"])
os.close(fd)
PY
umount_vm
local_cp=()
for r in $(seq "$ROUNDS"); do
  cat "$W/local-changes.img" >/dev/null; t0=$(now)
  cp --sparse=always "$W/local-changes.img" "$W/changes.img"
  local_cp+=("$(python3 -c "print($(now) - $t0)")"); rm -f "$W/changes.img"
done
rm -f "$W/local-changes.img"
python3 - "${local_cp[*]}" "${full[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
f = [float(x) for x in sys.argv[2].split()]
print(f"local sparse file, same extents (cp --sparse=always, no FUSE): best {min(c):.3f} s  median {statistics.median(c):.3f} s;"
      f" against the warm full read at most {min(f) / min(c):.1f}x / {statistics.median(f) / statistics.median(c):.1f}x")
PY
# The floor under any SEEK_DATA-aware copier of this view: per changed extent a
# SEEK_DATA and a SEEK_HOLE, each a round trip through the kernel to the serving process
# (the read is answered from the page cache when the extent was stored there ahead, a
# third round trip when not). One round trip is timed here (the median of 2000
# SEEK_DATAs, in a loop whose two processes the kernel may place on one CPU or on two:
# that alone moves it between about 10 and 60 us here), so each run says how far the
# warm ratio could go on this machine with every byte in memory.
mount_vm
python3 - "$M/disks/since/$ID/disk0-flat.vmdk" "$M/disks/since/$ID/disk0.changes.json" "${full[*]}" <<'PY'
import json, os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
rtt = []
for _ in range(2000):
    t = time.perf_counter(); os.lseek(fd, 0, os.SEEK_DATA); rtt.append(time.perf_counter() - t)
os.close(fd)
rtt = statistics.median(rtt)
extents = len(json.load(open(sys.argv[2])))
floor = 2 * extents * rtt
best = min(float(x) for x in sys.argv[3].split())
print(f"floor: one round trip {rtt * 1e6:.1f} us; {extents} extents x 2 = {floor * 1e3:.1f} ms, "
      f"so at most {best / floor:.0f}x against the warm full read's best")
PY
umount_vm

# --- vSphere: the simulator serves the same kind of disk, CBT on -------------------------
if ! command -v go >/dev/null; then
  echo "vsphere: skipped (go is not installed; scripts/test.sh installs it)"
  exit 0
fi
VCSIM=$CARGO_TARGET_DIR/vcsim
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$VCSIM" tests/vcsim/main.go
"$VCSIM" >"$W/sim.json" 2>/dev/null &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$W/sim.json" ] && break; sleep 0.1; done
read -r BASE CTL DS < <(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["url"][:-4], v["control"], v["datastores"]["LocalDS_0"])' "$W/sim.json")
VMDIR=$DS/DC0_H0_VM0
# The extent line follows a comment, as VMware writes it: qemu-img (10.0), through which
# the simulator records each snapshot's disk for its QueryChangedDiskAreas, reads an
# extent line after an empty line twice, and so would track a disk twice the size.
head -c $((DISK_MIB << 20)) /dev/urandom >"$VMDIR/disk1-flat.vmdk"
cat >"$VMDIR/disk1.vmdk" <<VMDK
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW $((DISK_MIB * 2048)) FLAT "disk1-flat.vmdk" 0

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
VMDK
printf 'username=vmsnapfs\npassword=secret\n' >"$W/cred"; chmod 600 "$W/cred"
URL=$BASE/DC0/vm/DC0_H0_VM0
vmount() { VMSNAPFS_LOG="info,vmsnapfs::net=debug" "$BIN" mount "$URL" "$M" \
  -o "credentials=$W/cred,state_dir=$W/state,log=$W/log,$1"; ls "$M/disks" >/dev/null; }
requests() { grep -c "http request:" "$W/log" || true; }
queries() { curl -s "$CTL/calls?method=QueryChangedDiskAreas" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
vmount cbt=enable; ID=$(field change_id); umount_vm
# Quoted once, here: a Python start inside the timed copy would cost more than the copy.
QID=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=' '))" "$ID")
# The same writes, straight into the flat extent (its bytes are the disk's): the
# simulator holds the file open, so qemu-io would not get its lock.
python3 - "$W/writes" "$VMDIR/disk1-flat.vmdk" <<'PY'
import os, sys
fd = os.open(sys.argv[2], os.O_WRONLY)
for line in open(sys.argv[1]):
    _, _, pat, off, _ = line.split()
    os.pwrite(fd, bytes([int(pat)]) * 65536, int(off))
os.fsync(fd)
PY
: >"$W/vtimes"
for r in $(seq "$ROUNDS"); do
  cat "$VMDIR/disk1-flat.vmdk" >/dev/null        # the server's cache warm, as a datastore's
  vmount cbt=keep; n0=$(requests); t0=$(now)
  dd if="$M/disks/disk0-flat.vmdk" of=/dev/null bs=1M status=none
  echo "full $(python3 -c "print($(now) - $t0)") $(( $(requests) - n0 )) 0" >>"$W/vtimes"; umount_vm
  vmount cbt=keep; n0=$(requests); q0=$(queries); t0=$(now)
  stat "$M/disks/since/$QID" >/dev/null           # the lookup asks QueryChangedDiskAreas
  t1=$(now)
  cp --sparse=always "$M/disks/since/$QID/disk0-flat.vmdk" "$W/changes.img"
  echo "changes $(python3 -c "print($(now) - $t0)") $(( $(requests) - n0 )) $(( $(queries) - q0 ))" >>"$W/vtimes"
  echo "lookup $(python3 -c "print($t1 - $t0)") 0 0" >>"$W/vtimes"
  umount_vm; rm -f "$W/changes.img"
done
python3 - "$DISK_MIB" "$W/vtimes" <<'PY'
import statistics, sys
mib = int(sys.argv[1]); t = {}
for line in open(sys.argv[2]):
    k, secs, reqs, qcda = line.split()
    t.setdefault(k, []).append((float(secs), int(reqs), int(qcda)))
print(f"vsphere: disk {mib} MiB through the simulator, changes since the previous freeze")
for k, name in (("full", "full read (dd bs=1M)"), ("changes", "changes (cp --sparse=always since/)")):
    v = [x[0] for x in t[k]]
    print(f"{name:38} best {min(v):7.3f} s  median {statistics.median(v):7.3f} s  "
          f"datastore requests {statistics.median([x[1] for x in t[k]]):.0f}, "
          f"QueryChangedDiskAreas calls {statistics.median([x[2] for x in t[k]]):.0f}")
f, c = [x[0] for x in t["full"]], [x[0] for x in t["changes"]]
lk = [x[0] for x in t["lookup"]]
print(f"  of which the lookup of since/<id> (QueryChangedDiskAreas): median {statistics.median(lk) * 1e3:.1f} ms")
print(f"ratio full/changes: best {min(f) / min(c):.1f}x  median {statistics.median(f) / statistics.median(c):.1f}x  (goal >= 30x)")
PY
# What the simulator itself takes to serve the same changed bytes: a minimal client
# (Python, 8 keep-alive connections, no FUSE, no copy out) asks for the extents in
# groups of 8 neighbours per multi-range GET, as our batches do. The simulator's
# answers (Go's multipart writer) and its CPU on the two shared cores bound the ratio
# any client could reach here.
vmount cbt=keep; cp "$M/disks/since/$QID/disk0.changes.json" "$W/changes.json"; umount_vm
python3 - "$BASE/folder/DC0_H0_VM0/disk1-flat.vmdk?dcPath=DC0&dsName=LocalDS_0" "$W/changes.json" "$ROUNDS" "$W/vtimes" <<'PY'
import http.client, json, statistics, sys, threading, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
ext = json.load(open(sys.argv[2]))
groups = [",".join(f"{e['start']}-{e['start'] + e['length'] - 1}" for e in ext[i:i + 8])
          for i in range(0, len(ext), 8)]
def once():
    conns = [http.client.HTTPConnection(u.hostname, u.port) for _ in range(8)]
    for c in conns:
        c.connect()
    todo, lock, got = list(groups), threading.Lock(), [0]
    def run(c):
        while True:
            with lock:
                if not todo:
                    return
                g = todo.pop(0)
            c.request("GET", u.path + "?" + u.query, headers={"Range": "bytes=" + g})
            n = len(c.getresponse().read())
            with lock:
                got[0] += n
    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(c,)) for c in conns]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.perf_counter() - t0
    for c in conns:
        c.close()
    return took, got[0]
runs = [once() for _ in range(int(sys.argv[3]))]
v = [r[0] for r in runs]
full = [float(l.split()[1]) for l in open(sys.argv[4]) if l.startswith("full ")]
print(f"simulator alone: {len(groups)} multi-range GETs of {runs[0][1] / 2**20:.1f} MiB to a minimal client: "
      f"best {min(v) * 1e3:.1f} ms  median {statistics.median(v) * 1e3:.1f} ms, so even without FUSE or "
      f"the lookup at most {min(full) / min(v):.0f}x / {statistics.median(full) / statistics.median(v):.0f}x the full read")
PY
