#!/usr/bin/env bash
# kiln's package resolution against apt's, on the same archive state, in one run.
#
# Resolves minbase (Essential + Priority: required + apt, as mmdebstrap's minbase) plus
# systemd-sysv linux-image-cloud-amd64 grub-pc openssh-server for amd64 from the host's apt sources:
#   kiln:  `kiln lock` on a description with those packages (kiln adds systemd-sysv, the cloud
#          kernel and grub-pc for BIOS firmware itself), cold (empty cache) and warm;
#   apt:   `apt-get update` into a private state directory, then `apt-get -s install
#          --no-install-recommends` of the same names on an empty dpkg status (warm: -s only).
# Prints both closures' sizes, the names only one side chose, the time ratios, and each side's peak
# RSS (GNU time %M: the largest process of the command's tree; for kiln lock that is kiln itself).
# Needs apt (any Debian host), GNU time (/usr/bin/time, package time) and a kiln build
# (`swift build -c release`, done here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-.build/release/kiln}
[ -x "$KILN" ] || swift build -c release >&2

work=$(mktemp -d)
echo "work dir: $work" >&2
mkdir -p "$work/apt/etc/apt/sources.list.d" "$work/apt/etc/apt/apt.conf.d" "$work/apt/etc/apt/preferences.d" \
  "$work/apt/state/lists/partial" "$work/apt/cache/archives/partial" "$work/kiln-cache"
cp /etc/apt/sources.list.d/*.sources "$work/apt/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$work/apt/etc/apt/"
: > "$work/apt/status"
apt_opts=(-o "Dir::Etc=$work/apt/etc/apt" -o "Dir::State=$work/apt/state" -o "Dir::State::status=$work/apt/status"
  -o "Dir::Cache=$work/apt/cache" -o "APT::Architecture=amd64" -o "APT::Architectures=amd64"
  -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1" -o "Acquire::Languages=none")

cat > "$work/appliance.yaml" <<'YAML'
name: resolve-bench
os:
  name: debian
  version: "12"
hardware:
  partitions:
    "/":
      size: 4GiB
  firmware: bios
packages:
  - openssh-server
YAML

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

t0=$(now)
KILN_CACHE="$work/kiln-cache" /usr/bin/time -f %M -o "$work/kiln-cold.rss" "$KILN" lock "$work/appliance.yaml" \
  -o "$work/cold.lock" >/dev/null 2>&1
t1=$(now)
KILN_CACHE="$work/kiln-cache" /usr/bin/time -f %M -o "$work/kiln-warm.rss" "$KILN" lock "$work/appliance.yaml" \
  -o "$work/warm.lock" >/dev/null 2>&1
t2=$(now)
kiln_cold=$(elapsed "$t0" "$t1"); kiln_warm=$(elapsed "$t1" "$t2")

t0=$(now)
/usr/bin/time -f %M -o "$work/apt-update.rss" apt-get "${apt_opts[@]}" -q update >/dev/null
t1=$(now)
# The base set, from apt's own lists: every Essential: yes or Priority: required package, and apt.
base=$(/usr/lib/apt/apt-helper cat-file "$work"/apt/state/lists/*_Packages* | awk -v RS= '
  /(^|\n)Essential: yes/ || /(^|\n)Priority: required/ { if (match($0, /^Package: [^\n]+/)) print substr($0, 10, RLENGTH - 9) }' \
  | sort -u)
/usr/bin/time -f %M -o "$work/apt-install.rss" apt-get "${apt_opts[@]}" -s install --no-install-recommends $base apt systemd-sysv linux-image-cloud-amd64 grub-pc \
  openssh-server > "$work/apt.out"
t2=$(now)
apt_cold=$(elapsed "$t0" "$t2"); apt_warm=$(elapsed "$t1" "$t2")

grep '^Inst ' "$work/apt.out" | awk '{print $2 "=" substr($3, 2)}' | sort > "$work/apt.names"
python3 - "$work/warm.lock" > "$work/kiln.names" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["packages"]:
    print(f'{p["name"]}={p["version"]}')
PY
sort -o "$work/kiln.names" "$work/kiln.names"

echo "closure: kiln $(wc -l < "$work/kiln.names") packages, apt $(wc -l < "$work/apt.names") packages"
echo "only kiln chose: $(comm -23 "$work/kiln.names" "$work/apt.names" | tr '\n' ' ')"
echo "only apt chose:  $(comm -13 "$work/kiln.names" "$work/apt.names" | tr '\n' ' ')"
cmp -s "$work/cold.lock" "$work/warm.lock" && echo "cold and warm lockfiles: identical" || echo "cold and warm lockfiles: DIFFER"
printf 'cold (fetch indexes + resolve): kiln %.2f s, apt %.2f s, kiln/apt %.2f\n' "$kiln_cold" "$apt_cold" \
  "$(echo "$kiln_cold / $apt_cold" | bc -l)"
printf 'warm (cached indexes, resolve): kiln %.2f s, apt %.2f s, kiln/apt %.2f\n' "$kiln_warm" "$apt_warm" \
  "$(echo "$kiln_warm / $apt_warm" | bc -l)"
# Peak RSS in MiB; apt's cold figure is the larger of `update` and the simulated install.
mib() { echo $(( $(tail -1 "$work/$1.rss") / 1024 )); }
apt_update=$(mib apt-update); apt_install=$(mib apt-install)
echo "peak RSS, cold: kiln $(mib kiln-cold) MiB, apt $(( apt_update > apt_install ? apt_update : apt_install )) MiB" \
  "(update $apt_update, install $apt_install)"
echo "peak RSS, warm: kiln $(mib kiln-warm) MiB, apt $apt_install MiB"
