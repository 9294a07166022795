# The warm half of bench/mount.sh (sourced by it after the image is built: it uses its
# W, M, V, L, BIN, raw, loop, now, secs, ROUNDS, BIG_MIB, PAR_MIB and FILES).
#
# Every backing file is read into the page cache before each round, and every mount is
# fresh, so what is measured is each stack's own work per byte and per file, not the
# VM's disk. The peers read the raw image through a loop device (buffered: the loop
# reads its backing file through the page cache too).

# This VM's host pages out memory left untouched for some seconds (DAMON), the page
# cache too, so the images are read again right before every measurement.
warm() { cat "$raw" "$W/vm/vm.vmdk" >/dev/null; }
# Jiffies every core spent busy so far (user, nice, system, irq, softirq, steal).
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
took() { # command… ; prints seconds, leaves the busy jiffies it cost in $W/last-cpu
  local t0 t1 c0
  backed # first: it takes seconds, in which the host may take back cached pages too
  warm
  c0=$(busy); t0=$(now); "$@" >/dev/null; t1=$(now)
  echo $(( $(busy) - c0 )) >"$W/last-cpu"
  secs "$t0" "$t1"
}
par4() { # dir: four readers of four files at once
  local p=()
  for i in 0 1 2 3; do cat "$1/par$i.bin" >/dev/null & p+=($!); done
  wait "${p[@]}"
}
seq4() { cat "$1"/par0.bin "$1"/par1.bin "$1"/par2.bin "$1"/par3.bin; }
tarred() { tar -C "$1" -cf - tree | wc -c; }
walk() { find "$1/tree" -printf '%s %T@\n'; }

ours() { # kind command-on-dir [mount options] → seconds, one fresh mount
  local s
  "$BIN" mount "$W/vm" "$M" ${3:+-o "$3"}
  s=$(took "$2" "$M/volumes/disk0p1")
  hwm=$(( $(awk '/VmHWM/{print $2}' "/proc/$(getfattr --absolute-names --only-values -n user.vmsnapfs.pid "$M")/status") ))
  "$BIN" umount "$M"
  [ "$hwm" -gt "$peak_rss" ] && peak_rss=$hwm
  echo "ours-$1 $s" >>"$W/warm.txt"
  echo "cpu-ours-$1 $(cat "$W/last-cpu")" >>"$W/warm.txt"
}
ntfs3g() { # kind command-on-dir, ntfs-3g on a loop of the raw image
  L=$(loop "$raw")
  ntfs-3g -o ro "$L" "$M"
  echo "raw-$1 $(took "$2" "$M")" >>"$W/warm.txt"
  fusermount3 -u "$M"
  losetup -d "$L"; L=""
}
stack() { # vmdkmount + loop + ntfs-3g, the read only
  vmdkmount "$W/vm/vm.vmdk" "$V" >/dev/null
  L=$(loop "$V/vmdk1")
  ntfs-3g -o ro "$L" "$M"
  echo "stack-read $(took cat "$M/big.bin")" >>"$W/warm.txt"
  fusermount3 -u "$M"
  losetup -d "$L"; L=""
  fusermount3 -u "$V"
}
big() { cat "$1/big.bin"; }

: >"$W/warm.txt"
peak_rss=0
for round in $(seq "$ROUNDS"); do
  echo "dd-read $(took dd if="$W/vm/vm.vmdk" of=/dev/null bs=1M count="$BIG_MIB" status=none)" >>"$W/warm.txt"
  # What any reader through a page cache pays: the same bytes copied into freshly
  # allocated cache pages (a loop device's, new for each attach).
  L=$(loop "$raw")
  echo "fill-read $(took dd if="$L" of=/dev/null bs=1M count="$BIG_MIB" status=none)" >>"$W/warm.txt"
  losetup -d "$L"; L=""
  ours read big; ntfs3g read big; stack
  ours walk walk; ntfs3g walk walk
  ours tar tarred; ntfs3g tar tarred
  ours seq4 seq4; ours par4 par4
  ours nosplice-read big splice=off; ours nosplice-seq4 seq4 splice=off
  ours nosplice-par4 par4 splice=off
  ours dio-read big direct_io=all; ours dio-tar tarred direct_io=all
  ours dio-seq4 seq4 direct_io=all; ours dio-par4 par4 direct_io=all
  ours dio-nosplice-read big direct_io=all,splice=off
  ours dio-nosplice-seq4 seq4 direct_io=all,splice=off
  ours dio-nosplice-par4 par4 direct_io=all,splice=off
  ntfs3g seq4 seq4; ntfs3g par4 par4
  echo "round $round done"
done

python3 - "$W/warm.txt" "$BIG_MIB" "$PAR_MIB" "$FILES" "$peak_rss" <<'PY'
import os, statistics, sys
path, mib, par, files, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
t = {}
for line in open(path):
    k, v = line.split()
    t.setdefault(k, []).append(float(v))
b = {k: min(v) for k, v in t.items()}
m = {k: statistics.median(v) for k, v in t.items()}
def pair(k):
    return f"{b[k]:6.3f} / {m[k]:6.3f} s"
def rate(k, n):
    return f"{n/b[k]:7.0f} / {n/m[k]:7.0f} MiB/s"
backed = ", memory touched and freed before each (--backed)" if os.environ.get("BACKED") == "1" else ""
print(f"warm page cache{backed}, {len(t['ours-read'])} rounds; best / median")
print(f"sequential read of a {mib} MiB file:")
print(f"  dd of {mib} MiB of the cached VMDK (limit) {pair('dd-read')}  {rate('dd-read', mib)}")
print(f"  dd of {mib} MiB of a fresh loop device of the raw image (page-cache fill) {pair('fill-read')}  {rate('fill-read', mib)}")
print(f"  vmsnapfs                     {pair('ours-read')}  {rate('ours-read', mib)}"
      f"  {b['dd-read']/b['ours-read']*100:4.0f}% / {m['dd-read']/m['ours-read']*100:4.0f}% of the limit (target >= 40%),"
      f" {b['fill-read']/b['ours-read']*100:4.0f}% / {m['fill-read']/m['ours-read']*100:4.0f}% of the fill")
print(f"  vmsnapfs -o splice=off       {pair('ours-nosplice-read')}  {rate('ours-nosplice-read', mib)}"
      f"  {b['dd-read']/b['ours-nosplice-read']*100:4.0f}% / {m['dd-read']/m['ours-nosplice-read']*100:4.0f}% of the limit;"
      f" splicing makes the default {b['ours-nosplice-read']/b['ours-read']:.2f}x / {m['ours-nosplice-read']/m['ours-read']:.2f}x as fast")
print(f"  vmsnapfs -o direct_io=all    {pair('ours-dio-read')}  {rate('ours-dio-read', mib)}"
      f"  {b['dd-read']/b['ours-dio-read']*100:4.0f}% / {m['dd-read']/m['ours-dio-read']*100:4.0f}% of the limit,"
      f" {b['raw-read']/b['ours-dio-read']:.2f}x / {m['raw-read']/m['ours-dio-read']:.2f}x ntfs-3g's speed")
print(f"  ... direct_io=all,splice=off {pair('ours-dio-nosplice-read')}  {rate('ours-dio-nosplice-read', mib)}"
      f"  {b['dd-read']/b['ours-dio-nosplice-read']*100:4.0f}% / {m['dd-read']/m['ours-dio-nosplice-read']*100:4.0f}% of the limit;"
      f" splicing makes direct_io=all {b['ours-dio-nosplice-read']/b['ours-dio-read']:.2f}x / {m['ours-dio-nosplice-read']/m['ours-dio-read']:.2f}x as fast")
print(f"  ntfs-3g on loop of raw       {pair('raw-read')}  {rate('raw-read', mib)}"
      f"  vmsnapfs {b['raw-read']/b['ours-read']:.2f}x / {m['raw-read']/m['ours-read']:.2f}x faster (target >= 1.5)")
print(f"  vmdkmount+loop+ntfs-3g       {pair('stack-read')}  {rate('stack-read', mib)}"
      f"  vmsnapfs {b['stack-read']/b['ours-read']:.2f}x / {m['stack-read']/m['ours-read']:.2f}x faster")
print(f"find + stat of {files} files:")
print(f"  vmsnapfs {pair('ours-walk')}, ntfs-3g {pair('raw-walk')}:"
      f" {b['ours-walk']/b['raw-walk']:.2f}x / {m['ours-walk']/m['raw-walk']:.2f}x of its time (target <= 0.25)")
print(f"tar -cf - of the {files} files | wc -c:")
print(f"  vmsnapfs {pair('ours-tar')}, ntfs-3g {pair('raw-tar')}:"
      f" {b['raw-tar']/b['ours-tar']:.2f}x / {m['raw-tar']/m['ours-tar']:.2f}x faster (target >= 2)")
print(f"  vmsnapfs -o direct_io=all {pair('ours-dio-tar')}:"
      f" {b['raw-tar']/b['ours-dio-tar']:.2f}x / {m['raw-tar']/m['ours-dio-tar']:.2f}x faster than ntfs-3g")
print(f"four {par} MiB files, one reader in a row against four readers at once:")
for who, name in (("ours", "vmsnapfs"), ("ours-nosplice", "splice=off"), ("ours-dio", "direct_io=all"), ("ours-dio-nosplice", "dio,nosplice"), ("raw", "ntfs-3g")):
    s, p = f"{who}-seq4", f"{who}-par4"
    print(f"  {name:13} in a row {pair(s)}, at once {pair(p)}:"
          f" {b[s]/b[p]:.2f}x / {m[s]/m[p]:.2f}x" + (" (target >= 1.5)" if who == "ours" else "")
          + f", {par*4/b[p]:.0f} / {par*4/m[p]:.0f} MiB/s at once")
# What two cores allow: four readers at once cannot finish before the CPU time they
# take is spread over every core. Both runs' CPU time is counted: at once it is what
# bounds the time if the cores are all busy, and in a row it shows how much a single
# reader leaves idle.
tick, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count()
for who, name in (("ours", "vmsnapfs"), ("ours-dio", "direct_io=all")):
    s, p = (statistics.median(t[f"cpu-{who}-{k}"]) / tick for k in ("seq4", "par4"))
    print(f"  {name}: CPU in a row {s:.3f} s ({s / m[f'{who}-seq4']:.2f} of {cores} cores busy),"
          f" at once {p:.3f} s ({p / m[f'{who}-par4']:.2f} busy): at once cannot beat {p / cores:.3f} s,"
          f" {m[f'{who}-seq4'] * cores / p:.2f}x the reader in a row")
print(f"vmsnapfs peak RSS over all runs: {rss/1024:.0f} MiB (target <= cache 256 + 64 MiB)")
PY
