#!/usr/bin/env bash
# kiln's ext4 writer against mke2fs -d (the builder guest's reproducible rewrite today) on the same
# Debian root: a tar (a configured base from kiln's cache, or TAR=...) extracted to a folder for
# mke2fs -d and for the writer's addTree, and streamed through libarchive for the writer's tar path.
# Each tool writes a fresh sparse image of SIZE_MIB; prints wall seconds, user+system seconds and peak
# RSS (GNU time), the median of RUNS, and checks every image with e2fsck -fn.
#
# Usage: Benchmarks/ext4.sh [TAR]   (run as root so that the extracted tree keeps owners and devices;
#        WORK=dir with a tree/ already extracted reuses it)
# Knobs: WORK=dir (default mktemp -d), RUNS=n (default 3), SIZE_MIB (default 2048),
#        BENCH=path of kiln-ext4-bench (default .build/debug/kiln-ext4-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
tar=${1:-${TAR:-$(ls -S "$HOME"/.cache/kiln/base/*[0-9a-f].tar 2>/dev/null | head -1)}}
[ -f "$tar" ] || { echo "ext4.sh: no tar given and none in kiln's base cache" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "ext4.sh: needs GNU time (Debian package time)" >&2; exit 1; }
bench=${BENCH:-.build/debug/kiln-ext4-bench}
[ -x "$bench" ] || swift build --product kiln-ext4-bench >&2
runs=${RUNS:-3}
size=${SIZE_MIB:-2048}
work=${WORK:-$(mktemp -d)}
id=6a1e0f3c-2b7d-4c5e-9f10-1234567890ab
echo "ext4.sh: $tar ($(du -h "$tar" | cut -f1)), work dir $work" >&2
if [ ! -d "$work/tree" ]; then
  mkdir -p "$work/tree"
  tar -xpf "$tar" --xattrs --numeric-owner -C "$work/tree"
fi
echo "tree: $(du -sh "$work/tree" | cut -f1), $(find "$work/tree" | wc -l) entries" >&2

# name | command (IMAGE replaced)
tools=(
  "mke2fs -d|env E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -U $id -E hash_seed=$id,lazy_itable_init=0,lazy_journal_init=0 -d $work/tree IMAGE ${size}M"
  "kiln tree|$bench tree $work/tree IMAGE $size"
  "kiln tar|$bench tar $tar IMAGE $size"
)
printf '%-12s %8s %8s %10s\n' tool wall_s cpu_s peak_MiB
for tool in "${tools[@]}"; do
  name=${tool%%|*}
  command=${tool#*|}
  results=()
  for run in $(seq "$runs"); do
    image="$work/out.img"
    rm -f "$image"
    truncate -s "${size}M" "$image"
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" ${command//IMAGE/$image} >/dev/null
    read -r wall user system peak < "$work/time"
    results+=("$wall $(echo "$user + $system" | bc) $((peak / 1024))")
  done
  e2fsck -fn "$image" >/dev/null 2>&1 || echo "ext4.sh: e2fsck finds errors in $name's image" >&2
  median=$(printf '%s\n' "${results[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  read -r wall cpu peak <<< "$median"
  printf '%-12s %8s %8s %10s\n' "$name" "$wall" "$cpu" "$peak"
done
