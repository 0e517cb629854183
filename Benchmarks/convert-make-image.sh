#!/usr/bin/env bash
# Makes the benchmark's source: a sparse 4 GiB raw ext4 image holding about 1 GiB of real files
# (shared libraries, documentation, executables from /usr), with mke2fs -d: no root, no mounts.
# Usage: convert-make-image.sh OUT.raw [DATA_MIB]
set -euo pipefail
out=$1
budget_mib=${2:-1024}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Copy whole directories from /usr until the budget is reached.
used=0
for dir in /usr/lib/x86_64-linux-gnu /usr/share /usr/bin /usr/lib /usr/libexec /usr/include; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' f; do
    [ "$used" -ge $((budget_mib << 20)) ] && break 2
    size=$(stat -c %s "$f")
    mkdir -p "$stage$(dirname "$f")"
    cp -a "$f" "$stage$f" 2>/dev/null || continue
    used=$((used + size))
  done < <(find "$dir" -xdev -type f -print0 2>/dev/null)
done

rm -f "$out"
truncate -s 4G "$out"
mke2fs -q -F -t ext4 -E root_owner=0:0 -d "$stage" "$out"
echo "convert-make-image: $out: 4 GiB raw, $((used >> 20)) MiB of files, $(($(du -k "$out" | cut -f1) >> 10)) MiB allocated" >&2
