#!/usr/bin/env bash
# kiln convert against qemu-img convert, every output format, on the same 4 GiB raw image holding
# about 1 GiB of data, in one run. Prints wall times, the speed ratio (qemu-img time / kiln time:
# above 1 means kiln is faster), the CPU ratio (qemu-img's user+system seconds / kiln's: the speed
# ratio a machine with a core free for each of kiln's threads would show, for work that is CPU-bound
# on one thread in qemu-img), output sizes, the size ratio, and both tools' peak RSS.
#
# On a shared machine the wall ratio follows the others' load: Linux's autogroup scheduling gives a
# session (kiln's or qemu-img's) one share of the CPU however many threads it runs, so under load
# kiln's compression workers share what one qemu-img thread would get.
#
# Usage: Benchmarks/convert.sh [KILN]   (default: .build/release/kiln, built if missing)
# Knobs: WORK=dir (default mktemp -d), RUNS=n (median of n, default 3), IMAGE=existing.raw,
#        ONLY=regex (run only the targets whose name matches, e.g. ONLY='qcow2|vdi')
set -euo pipefail
cd "$(dirname "$0")/.."
kiln=${1:-.build/release/kiln}
[ -x "$kiln" ] || swift build -c release >&2
command -v qemu-img >/dev/null || { echo "convert.sh: needs qemu-img (qemu-utils)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "convert.sh: needs GNU time (Debian package time)" >&2; exit 1; }
runs=${RUNS:-3}
work=${WORK:-$(mktemp -d)}
echo "convert.sh: work dir $work" >&2
image=${IMAGE:-$work/source.raw}
[ -f "$image" ] || Benchmarks/convert-make-image.sh "$image"

# name | qemu-img arguments | kiln arguments | output extension
targets=(
  "qcow2|-O qcow2|--format qcow2|qcow2"
  "qcow2 compressed|-c -O qcow2|--format qcow2 --compress|qcow2"
  "vmdk monolithicSparse|-O vmdk|--format vmdk|vmdk"
  "vmdk streamOptimized|-O vmdk -o subformat=streamOptimized|--format vmdk --subformat streamOptimized|vmdk"
  "vhd dynamic|-O vpc|--format vhd|vhd"
  "vhd fixed|-O vpc -o subformat=fixed,force_size=on|--format vhd --subformat fixed|vhd"
  "vhdx|-O vhdx|--format vhdx|vhdx"
  "vdi|-O vdi|--format vdi|vdi"
)

# Runs a command $runs times; prints "median_wall_seconds median_cpu_seconds max_rss_kib". Each run
# starts after a sync, so that neither tool pays for writing back the other's output (the disk is
# shared).
measure() {
  local walls=() cpus=() rss=0 wall user sys maxrss
  for _ in $(seq "$runs"); do
    rm -f "$out"
    sync
    read -r wall user sys maxrss < <(/usr/bin/time -f "%e %U %S %M" "$@" 2>&1 >/dev/null | tail -1)
    walls+=("$wall")
    cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')")
    [ "$maxrss" -gt "$rss" ] && rss=$maxrss
  done
  median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
  printf '%s %s %s\n' "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "$rss"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

cat "$image" >/dev/null  # page cache warm for both tools
ratio() { awk -v q="$1" -v k="$2" 'BEGIN { print (k > 0 ? q / k : 0) }'; }
printf '%-24s %9s %9s %7s %8s %8s %6s %10s %10s %7s %9s %9s\n' target qemu-img_s kiln_s speed qemu_cpu kiln_cpu cpu \
  qemu_MiB kiln_MiB size qemu_RSS kiln_RSS
for t in "${targets[@]}"; do
  IFS='|' read -r name qargs kargs ext <<<"$t"
  [[ -z "${ONLY:-}" || "$name" =~ $ONLY ]] || continue
  out="$work/out.$ext"
  # shellcheck disable=SC2086
  read -r qwall qcpu qrss < <(measure qemu-img convert -f raw $qargs "$image" "$out")
  qsize=$(du -B1 "$out" | cut -f1)
  # shellcheck disable=SC2086
  read -r kwall kcpu krss < <(measure "$kiln" convert "$image" "$out" $kargs)
  ksize=$(du -B1 "$out" | cut -f1)
  rm -f "$out"
  printf '%-24s %9.2f %9.2f %6.2fx %8.2f %8.2f %5.2fx %10s %10s %7.3f %7dMi %7dMi\n' "$name" "$qwall" "$kwall" \
    "$(ratio "$qwall" "$kwall")" "$qcpu" "$kcpu" "$(ratio "$qcpu" "$kcpu")" "$(mib "$qsize")" "$(mib "$ksize")" \
    "$(ratio "$ksize" "$qsize")" $((qrss >> 10)) $((krss >> 10))
done
echo "sizes are allocated bytes (du); speed = qemu-img wall / kiln wall; cpu = qemu-img user+sys / kiln's;" \
  "size = kiln / qemu-img; median of $runs runs" >&2
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
