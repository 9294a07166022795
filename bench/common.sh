# Sourced by the benchmarks that mount one folder of VMs (bench/seek.sh,
# bench/incremental.sh, bench/passthrough.sh): the tools they need, a release build, and a
# scratch folder whose mount point is unmounted and which is removed on exit.

# need TOOL...: stops with a message naming the first one missing.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "bench: $t missing" >&2; exit 1; }
  done
}

# scratch NAME: builds vmsnapfs (BIN), makes W under /var/tmp and the mount point
# M=$W/mnt, and cleans both up on exit.
scratch() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  cargo build -q --release -p vmsnapfs
  BIN=$CARGO_TARGET_DIR/release/vmsnapfs
  W=$(mktemp -d "/var/tmp/vmsnapfs-$1.XXXXXX")
  M=$W/mnt
  mkdir -p "$M"
  trap cleanup EXIT
}

cleanup() {
  fusermount3 -u -q "$M" 2>/dev/null || true
  rm -rf "$W"
}
