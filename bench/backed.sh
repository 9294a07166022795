# Sourced by the warm benchmarks (bench/warm.sh, bench/linux_warm.sh, bench/vsphere.sh):
# `backed`, called before each timed command, just before the images are read into the
# page cache (touching memory takes seconds, in which the host may take cached pages
# back too).
#
# With --backed it touches and frees PREFAULT_MIB of anonymous memory first. This VM's
# host takes free guest memory back within seconds, so the first touch of a fresh page
# costs a fault in the host: a read of a freshly attached loop device of a cached 1 GiB
# file, which only fills new page-cache pages, took 2.3-2.5 s here once the host had the
# pages back, and 0.23-0.29 s right after as many pages had been touched and freed. Every
# reader through a page cache (ours, ntfs-3g's loop and FUSE caches, fuse2fs) pays that
# per new page, the dd limit (cached pages only) does not. On a backup host whose memory
# is its own (bare metal, reserved VM memory, or a full page cache recycling its pages)
# no reader pays it: --backed measures that host. Without --backed, `backed` does nothing.
# Leading --warm / --backed flags (--backed implies --warm): sets WARM and BACKED
# (exported, for the reports) and REST to the arguments after them.
warm_flags() {
  WARM=0; BACKED=0
  while [ "${1:-}" = --warm ] || [ "${1:-}" = --backed ]; do
    [ "$1" = --backed ] && BACKED=1
    WARM=1; shift
  done
  export BACKED
  REST=("$@")
}

backed() {
  [ "${BACKED:-0}" = 1 ] || return 0
  python3 -c 'import mmap, sys
n = int(sys.argv[1]) << 20
m = mmap.mmap(-1, n)
for i in range(0, n, 4096):
    m[i] = 1' "$PREFAULT_MIB"
}
