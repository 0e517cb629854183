#!/usr/bin/env bash
# kiln build against debos (fakemachine, the peer that also builds inside a VM) and vmdb2 (native,
# as root), all building the same minimal bootable Debian 12 image (ext4 root, the cloud kernel,
# GRUB, openssh-server: Benchmarks/build-minimal.yaml and Benchmarks/peers/), cold and warm
# cache, in one run. Prints a table, the ratios (time of kiln / time of the peer: below 1 means
# kiln is faster), kiln's own peak RSS and how long kiln's builder guest takes from its kernel's
# start to its job.
#
# Cold: empty caches (kiln: a fresh $KILN_CACHE, so it resolves, downloads every .deb, assembles
# its builder guest and configures the base; vmdb2: debootstrap; debos has no cache, so its one
# kind of run counts as cold and warm). Warm: kiln `--locked --offline` with that cache filled (a
# rebuild of the same lockfile, which needs no QEMU: see "Builds without QEMU" in docs/building.md);
# then kiln with another host name and a user with an SSH key (an edit that needs no QEMU either),
# and with one more `post` command (an edit that runs the builder guest);
# vmdb2 with its `--rootfs-tarball` cache.
#
# Usage: sudo Benchmarks/build.sh   (root: vmdb2 needs a loop device, debos runs as root)
# What it changes on the host and leaves so: it apt-get installs the missing peers and the tools it
# needs (see `need` below); with ARCH=aarch64 and vmdb2 it also mounts binfmt_misc at
# /proc/sys/fs/binfmt_misc if it is not mounted and registers qemu-user-static's qemu-aarch64
# interpreter there with the F (fix-binary) flag if it is not registered so (an entry without F is
# replaced): arm64 programs then run on the host through QEMU, in chroots too; and it loads vfat if
# the kernel lacks it and has it as a module (without it vmdb2's ESP is staged in tmpfs, no host
# change). It removes the loop devices and /dev/disk/by-uuid links it makes, and the images; the
# work dir stays.
# Knobs (environment):
#   KILN=path         kiln binary (default .build/release/kiln, built if missing)
#   WORK=dir          work directory (default mktemp -d; kept, printed first)
#   TOOLS="kiln debos vmdb2"   which tools to run
#   APPLIANCE=file    kiln's description (default Benchmarks/build-minimal.yaml, or
#                     Benchmarks/build-minimal-arm64.yaml with ARCH=aarch64)
#   ARCH=aarch64      the arm64 row: kiln builds inside its emulated arm64 builder guest; vmdb2
#                     builds Benchmarks/peers/vmdb2-bookworm-arm64.yaml natively, its arm64 programs
#                     run through qemu-user-static and binfmt_misc (set up as said above); debos is
#                     skipped and says why (default x86_64)
#   WARM_RUNS=n       warm runs per tool, median reported (default 1)
#   DEBOS_BACKEND=uml fakemachine backend (uml; qemu fails on hosts whose running kernel has no
#                     modules; "none" runs debos natively as --disable-fakemachine)
#   MIRROR=url        Debian archive for the peers (default: the host's apt sources, as kiln reads them)
#   BOOT=1            also boot every image under TCG and time it to the login prompt (default 0)
#   LIMIT=s           time limit of each single build (default 3600)
#   INSTALL=0         do not apt-get install missing peers
#   RELEASE=13        build Debian 13 (trixie) instead of 12 with every tool: kiln's description's
#                     os.version, debos's suite and vmdb2's debootstrap suite follow it
set -euo pipefail
# The whole script is one block, read before it runs: editing the file during a run cannot change it.
{
cd "$(dirname "$0")/.."
repo=$PWD
kiln=${KILN:-$repo/.build/release/kiln}
tools=${TOOLS:-kiln debos vmdb2}
arch=${ARCH:-x86_64}
case "$arch" in
    x86_64) appliance=${APPLIANCE:-$repo/Benchmarks/build-minimal.yaml} ;;
    aarch64) appliance=${APPLIANCE:-$repo/Benchmarks/build-minimal-arm64.yaml}
        # debos would run its arm64 programs through qemu-user inside fakemachine's own kernel (uml),
        # not the host's binfmt_misc set up below for vmdb2: not tried here, so not measured
        case " $tools " in *" debos "*)
            echo "build.sh: debos builds arm64 inside fakemachine's own (uml) kernel, whose binfmt_misc" \
                "this script does not set up (only the host's, for vmdb2): debos skipped for ARCH=aarch64" >&2
            tools=" ${tools/debos/} " ;;
        esac ;;
    *) echo "build.sh: ARCH must be x86_64 or aarch64, not $arch" >&2; exit 2 ;;
esac
warm_runs=${WARM_RUNS:-1}
debos_backend=${DEBOS_BACKEND:-uml}
limit=${LIMIT:-3600}
release=${RELEASE:-12}
case "$release" in
    12) suite=bookworm ;;
    13) suite=trixie ;;
    *) echo "build.sh: RELEASE must be 12 or 13, not $release" >&2; exit 1 ;;
esac
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (vmdb2 needs a loop device)" >&2; exit 1; }
case " $tools " in *" kiln "*) [ -x "$kiln" ] || swift build -c release >&2 ;; esac
work=${WORK:-$(mktemp -d -t kiln-bench-build.XXXXXX)}
mkdir -p "$work"
echo "build.sh: work dir $work" >&2
results="$work/results.tsv"
: > "$results"
load_start=$(uptime)

# vmdb2's arm64 image has an ESP, which vmdb2 mounts (for its fstab and its `grub: uefi` step): on a
# kernel without vfat (no modules, as in some VMs) build.sh stages it in tmpfs (the vmdb2 section)
esp_stage=0
if [ "$arch" = aarch64 ] && [[ " $tools " == *" vmdb2 "* ]]; then
    grep -qw vfat /proc/filesystems || modprobe -q vfat 2>/dev/null || true
    grep -qw vfat /proc/filesystems || esp_stage=1
fi

# --- the peers and the tools this script needs, installed with apt-get when missing
need=(time qemu-utils)
# fakemachine binds systemd-resolved into its machine ("stat /lib/systemd/systemd-resolved" without it)
case " $tools " in *" debos "*) need+=(debos)
    [ "$debos_backend" = none ] || need+=(systemd-resolved)
    [ "$debos_backend" = uml ] && need+=(user-mode-linux libslirp-helper) ;; esac
case " $tools " in *" vmdb2 "*) need+=(vmdb2)
    # arm64: its programs through QEMU on the host (binfmt_misc, below); mkfs.vfat for the ESP
    [ "$arch" = aarch64 ] && need+=(qemu-user-static dosfstools)
    [ "$esp_stage" = 1 ] && need+=(mtools) ;; esac
[ "${BOOT:-0}" = 1 ] && need+=(qemu-system-x86)
[ "$arch" = aarch64 ] && need+=(qemu-system-arm qemu-efi-aarch64)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "${INSTALL:-1}" = 1 ] || { echo "build.sh: missing packages: ${missing[*]}" >&2; exit 1; }
    echo "build.sh: installing ${missing[*]}" >&2
    resolv_backup=""
    [ -e /etc/resolv.conf ] && { resolv_backup="$work/resolv.conf"; cp -aL /etc/resolv.conf "$resolv_backup"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" > "$work/apt.log" 2>&1 ||
        { tail -20 "$work/apt.log" >&2; exit 1; }
    # systemd-resolved, if something pulled it in, leaves /etc/resolv.conf a dangling link here
    if [ ! -e /etc/resolv.conf ]; then
        if [ -f /etc/.resolv.conf.systemd-resolved.bak ]; then cp /etc/.resolv.conf.systemd-resolved.bak /etc/resolv.conf.new
        elif [ -n "$resolv_backup" ]; then cp "$resolv_backup" /etc/resolv.conf.new; fi
        [ -f /etc/resolv.conf.new ] && { rm -f /etc/resolv.conf; mv /etc/resolv.conf.new /etc/resolv.conf; }
    fi
fi

# binfmt_misc for vmdb2's arm64 build: mount it if needed and register qemu-user-static's entry
# (/usr/lib/binfmt.d/qemu-aarch64.conf, flags OPF) unless one with the F flag is there already: F
# makes the kernel open the interpreter now, so debootstrap's and vmdb2's chroots need no copy of it.
# Done by hand because neither binfmt-support's update-binfmts (its postinst skips containers) nor
# systemd-binfmt runs on every host this script meets.
binfmt_aarch64() {
    local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf entry line
    entry=$dir/qemu-aarch64
    findmnt -n "$dir" > /dev/null || mount -t binfmt_misc binfmt_misc "$dir" ||
        { echo "build.sh: cannot mount binfmt_misc at $dir (vmdb2 needs it for ARCH=aarch64)" >&2; return 1; }
    if [ -e "$entry" ]; then
        if grep -q '^flags:.*F' "$entry"; then
            grep -q '^enabled' "$entry" || echo 1 > "$entry"
            return 0
        fi
        echo "build.sh: $entry has no F flag: registering it again with F" >&2
        echo -1 > "$entry"
    fi
    line=$(grep -m1 '^:qemu-aarch64:' "$conf") || { echo "build.sh: no qemu-aarch64 entry in $conf" >&2; return 1; }
    case "${line##*:}" in *F*) ;; *) line="${line}F" ;; esac
    printf '%s' "$line" > "$dir/register" || { echo "build.sh: registering qemu-aarch64 in $dir failed" >&2; return 1; }
    echo "build.sh: registered qemu-aarch64 in binfmt_misc: $(tr '\n' ' ' < "$entry")" >&2
}
[ "$arch" = aarch64 ] && [[ " $tools " == *" vmdb2 "* ]] && binfmt_aarch64

# The host's Debian archive: the first apt source that carries the suite itself (not -security
# or -updates), deb822 first, then one-line lists. kiln reads the same files on its own.
mirror_url() {
    [ -n "${MIRROR:-}" ] && { echo "$MIRROR"; return; }
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { uri = ""; suites = ""
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
                   if ($i ~ /^Suites:/) suites = " " $i " "
               }
               if (uri != "" && suites ~ / (bookworm|trixie) /) { print uri; exit } }' "$f"
    done | head -1 | grep . && return
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { u = $2; if ($2 ~ /^\[/) { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) { u = $(i + 1); break } }
                           for (i = 3; i <= NF; i++) if ($i == "bookworm" || $i == "trixie") { print u; exit } }' | head -1
}

rec() { printf '%s\t%s\n' "$1" "${*:2}" | tee -a "$results" >&2; }
rec release "Debian $release ($suite)"
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
alloc_mib() { du -B1 -s "$1" | awk '{ printf "%.0f", $1 / 1048576 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }

# timed NAME CMD...: runs CMD under GNU time (wall, %M) and polls the peak RSS (VmHWM) of CMD's
# own process, which %M cannot give: wait4 reports the largest of a process and the children it
# waited for, and kiln's child is QEMU with the guest's memory. Writes NAME.time "wall maxrss_kb
# own_hwm_kb rc". Standard output goes to NAME.out, each line stamped with the time it arrived.
timed() {
    local name="$1" tpid cpid="" hwm=0 h rc=0 started
    shift
    started=$(date +%s.%N)
    timeout "$limit" /usr/bin/time -f '%e %M' -o "$work/$name.gnutime" "$@" \
        > >(while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$work/$name.out") \
        2> "$work/$name.err" &
    tpid=$!
    while kill -0 "$tpid" 2>/dev/null; do
        if [ -z "$cpid" ]; then
            # timeout's children: GNU time, and the process substitution that stamps the output
            cpid=$(pgrep -P "$(pgrep -x -P "$tpid" time | head -1)" 2>/dev/null | head -1 || true)
        fi
        if [ -n "$cpid" ]; then
            h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$cpid/status" 2>/dev/null || true)
            [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
        fi
        sleep 0.2
    done
    wait "$tpid" || rc=$?
    read -r wall rss < <(tail -1 "$work/$name.gnutime" | grep -E '^[0-9.]+ [0-9]+$' ||
        awk -v s="$started" 'BEGIN { "date +%s.%N" | getline n; printf "%.2f 0\n", n - s }')
    echo "$wall $rss $hwm $rc" > "$work/$name.time"
}

# boot NAME IMAGE: seconds from QEMU's start to the login prompt under TCG (SeaBIOS), or FAIL.
boot() {
    local log="$work/boot-$1.log" t0 now result=FAIL pid
    t0=$(date +%s.%N)
    if [ "$arch" = aarch64 ]; then
        cp /usr/share/AAVMF/AAVMF_VARS.fd "$work/boot-$1.vars"
        timeout 900 qemu-system-aarch64 -M virt -accel tcg,thread=multi -cpu max,pauth-impdef=on,sve=off,sme=off -m 1024 -nographic \
            -no-reboot -nic none -drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd \
            -drive if=pflash,format=raw,file="$work/boot-$1.vars" \
            -drive file="$2",format=raw,if=virtio,snapshot=on </dev/null > "$log" 2>&1 &
    else
        timeout 600 qemu-system-x86_64 -accel tcg -m 1024 -nographic -no-reboot -nic none \
            -drive file="$2",format=raw,if=virtio,snapshot=on </dev/null > "$log" 2>&1 &
    fi
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if grep -aq 'login:' "$log"; then now=$(date +%s.%N); result=$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f", b - a }'); break; fi
        grep -aqE 'Kernel panic|No bootable device|grub rescue>|\(initramfs\) ' "$log" && break
        sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$result"
}

rows=()
row() { # TOOL MODE NAME IMAGE: a table row from NAME.time
    local wall rss hwm rc booted=-
    read -r wall rss hwm rc < "$work/$3.time"
    [ "$rc" = 0 ] || { wall=FAIL; echo "--- $1 $2 failed (exit $rc), last lines of $work/$3.err:" >&2; tail -15 "$work/$3.err" >&2; }
    if [ "$rc" = 0 ] && [ "${BOOT:-0}" = 1 ] && [ -f "$4" ]; then booted=$(boot "$3" "$4"); fi
    local image=-
    [ -f "$4" ] && image=$(alloc_mib "$4")
    rows+=("$(printf '%-6s %-10s %8s %9s %9s %10s %8s' "$1" "$2" "$wall" "$(mib "$rss")" \
        "$([ "$hwm" -gt 0 ] && mib "$hwm" || echo -)" "$image" "$booted")")
    rec "$1:$2" "rc=$rc wall_s=$wall gnu_time_maxrss_mib=$(mib "$rss") own_peak_rss_mib=$(mib "$hwm") image_alloc_mib=$image boot_login_s=$booted"
}

mirror=$(mirror_url)
[ -n "$mirror" ] || { echo "build.sh: no Debian archive in the host's apt sources (set MIRROR=)" >&2; exit 1; }

# --- kiln
kiln_cold=NA kiln_warm=NA kiln_post=NA kiln_edit=NA
if [[ " $tools " == *" kiln "* ]]; then
    rec version:kiln "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    mkdir -p "$work/kiln"
    desc="$work/kiln/$(basename "$appliance")"
    sed -e "s/^\(  version: \)\"12\"/\1\"$release\"/" "$appliance" > "$desc"
    name=$(awk '/^name:/ { print $2; exit }' "$desc")
    export KILN_CACHE="$work/kiln-cache"
    rm -rf "$KILN_CACHE" "$desc.lock"
    # cold: resolve, download, assemble the builder guest, configure the base, build
    timed kiln-cold "$kiln" build "$desc" -o "$work/kiln/out-cold" --format raw --accel tcg --json
    row kiln cold kiln-cold "$work/kiln/out-cold/$name.raw"
    kiln_cold=$(cut -d' ' -f1 "$work/kiln-cold.time")
    rm -rf "$work/kiln/out-cold"
    for r in $(seq "$warm_runs"); do
        timed "kiln-warm$r" "$kiln" build "$desc" -o "$work/kiln/out-warm" --format raw --accel tcg --locked --offline --json
        row kiln warm "kiln-warm$r" "$work/kiln/out-warm/$name.raw"
        rm -rf "$work/kiln/out-warm"
        cut -d' ' -f1 "$work/kiln-warm$r.time" >> "$work/kiln-warm.walls"
    done
    kiln_warm=$(median < "$work/kiln-warm.walls")
    # a description edit as users make them between builds: another host name and a user with an
    # SSH key (nothing the target has to execute: kiln writes the image without QEMU)
    changed="$work/kiln/changed.yaml"
    { sed -e '/^hostname:/d' "$desc"; printf 'hostname: bench-changed\nusers:\n  - name: bench\n    ssh_keys:\n      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln0bench0key0000000000000000000000000000 bench@kiln"\n'; } > "$changed"
    grep -q '^users:' "$desc" && { echo "build.sh: $appliance has users already; the edit adds one" >&2; exit 1; }
    cp "$desc.lock" "$changed.lock"
    timed kiln-edit "$kiln" build "$changed" -o "$work/kiln/out-edit" --format raw --accel tcg --locked --offline --json
    row kiln user-edit kiln-edit "$work/kiln/out-edit/$name.raw"
    kiln_edit=$(cut -d' ' -f1 "$work/kiln-edit.time")
    rm -rf "$work/kiln/out-edit"
    # a description edit: one more post command, same packages and lockfile
    edited="$work/kiln/edited.yaml"
    { cat "$desc"; printf 'post:\n  base:\n    - "echo benchmark-edit > /etc/kiln-benchmark"\n'; } > "$edited"
    grep -q '^post:' "$desc" && { echo "build.sh: $appliance has a post section already; the edit needs none" >&2; exit 1; }
    cp "$desc.lock" "$edited.lock"
    timed kiln-post "$kiln" build "$edited" -o "$work/kiln/out-post" --format raw --accel tcg --locked --offline --json
    row kiln post-edit kiln-post "$work/kiln/out-post/$name.raw"
    kiln_post=$(cut -d' ' -f1 "$work/kiln-post.time")
    rm -rf "$work/kiln/out-post"
    unset KILN_CACHE
fi

# --- debos
debos_wall=NA
if [[ " $tools " == *" debos "* ]]; then
    rec version:debos "$(dpkg-query -W -f='${Version}' debos)"
    mkdir -p "$work/debos" "$work/debos/shim"
    sed -e "s/^\(    suite: \)bookworm/\1$suite/" "$repo/Benchmarks/peers/debos-bookworm.yaml" > "$work/debos/recipe.yaml"
    path="$PATH"
    made_dev_disk=""
    if [ "$debos_backend" = none ]; then
        backend=(--disable-fakemachine)
        # no udevd on such hosts: debos' `udevadm trigger --settle` would wait forever
        # shellcheck disable=SC2016 # the shim's own $1 and $@, not this script's
        printf '#!/bin/sh\ncase "$1" in trigger|settle) exit 0 ;; esac\nexec /usr/bin/udevadm "$@"\n' > "$work/debos/shim/udevadm"
        chmod +x "$work/debos/shim/udevadm"
        [ -S /run/udev/control ] || path="$work/debos/shim:$PATH"
        [ -d /dev/disk ] || { mkdir -p /dev/disk/by-uuid; made_dev_disk=1; }
    else
        backend=(--fakemachine-backend="$debos_backend")
    fi
    for r in $(seq "$warm_runs"); do
        rm -f "$work/debos/debos.img"
        (cd "$work/debos" && PATH="$path" timed "debos$r" debos "${backend[@]}" -t mirror:"$mirror" -t image:debos.img recipe.yaml)
        find /dev/disk/by-uuid -maxdepth 1 -xtype l -lname '/dev/loop*' -delete 2>/dev/null || true
        losetup -j "$work/debos/debos.img" -O NAME --noheadings 2>/dev/null | xargs -r -n1 losetup -d || true
        row debos "$debos_backend" "debos$r" "$work/debos/debos.img"
        cut -d' ' -f1 "$work/debos$r.time" >> "$work/debos.walls"
    done
    [ -z "$made_dev_disk" ] || rmdir /dev/disk/by-uuid /dev/disk 2>/dev/null || true
    debos_wall=$(median < "$work/debos.walls")
    rm -f "$work/debos/debos.img"
fi

# --- vmdb2
vmdb2_cold=NA vmdb2_warm=NA
if [[ " $tools " == *" vmdb2 "* ]]; then
    rec version:vmdb2 "$(dpkg-query -W -f='${Version}' vmdb2)"
    mkdir -p "$work/vmdb2"
    # arm64: an ESP of 255 MiB before the 2 GiB root, as kiln lays it out
    case "$arch" in
        x86_64) vmdb2_spec=vmdb2-bookworm.yaml vmdb2_size=2G ;;
        aarch64) vmdb2_spec=vmdb2-bookworm-arm64.yaml vmdb2_size=2304M ;;
    esac
    sed -e "s|@MIRROR@|$mirror|" -e "s/debootstrap: bookworm/debootstrap: $suite/" \
        "$repo/Benchmarks/peers/$vmdb2_spec" > "$work/vmdb2/spec.yaml"
    rm -f "$work/vmdb2/rootfs.tar.gz"
    path="$PATH"
    if [ "$esp_stage" = 1 ]; then
        # This kernel cannot mount the ESP (no vfat). vmdb2 gets mount and umount in front of the
        # real ones in its PATH: `mount DEV DIR` of a FAT device mounts a tmpfs named DEV at DIR (a
        # bind of it if DEV is staged already), filled from the FAT with mtools; `umount DIR` of its
        # last such mount first copies the tree into the FAT. grub-install finds the ESP by that name
        # in /proc/self/mountinfo and checks the FAT with its own reader. Other mounts pass through.
        mkdir -p "$work/vmdb2/shim"
        cat > "$work/vmdb2/shim/esp-stage" <<'SHIM'
#!/bin/sh
set -eu
real=/usr/bin/${0##*/}
export MTOOLS_SKIP_CHECK=1
fat() { [ -b "$1" ] && [ "$(blkid -o value -s TYPE "$1" 2>/dev/null)" = vfat ]; }
staged_at() { # DEV: the mount points of the tmpfs mounts named DEV
    awk -v s="$1" '{ for (i = 7; i < NF; i++) if ($i == "-") break
                     if ($(i + 1) == "tmpfs" && $(i + 2) == s) print $5 }' /proc/self/mountinfo
}
case "${0##*/}" in
mount)
    if [ $# = 2 ] && fat "$1"; then
        first=$(staged_at "$1" | head -1)
        [ -z "$first" ] || exec "$real" --bind "$first" "$2"
        "$real" -t tmpfs -o mode=0755 "$1" "$2"
        if mdir -b -i "$1" ::/ 2>/dev/null | grep -q .; then mcopy -s -n -i "$1" '::/*' "$2/"; fi
        exit 0
    fi ;;
umount)
    if [ $# = 1 ] && [ -d "$1" ]; then
        dir=$(readlink -f "$1")
        dev=$(awk -v d="$dir" '$5 == d { for (i = 7; i < NF; i++) if ($i == "-") break; t = $(i + 1); s = $(i + 2) }
                               END { if (t == "tmpfs") print s }' /proc/self/mountinfo)
        if [ -n "$dev" ] && fat "$dev" && [ "$(staged_at "$dev" | wc -l)" = 1 ] && [ -n "$(ls -A "$dir")" ]; then
            (cd "$dir" && mcopy -s -o -D o -i "$dev" ./* ::/)
        fi
    fi ;;
esac
exec "$real" "$@"
SHIM
        chmod +x "$work/vmdb2/shim/esp-stage"
        ln -sf esp-stage "$work/vmdb2/shim/mount"
        ln -sf esp-stage "$work/vmdb2/shim/umount"
        path="$work/vmdb2/shim:$PATH"
        rec note:vmdb2 "no vfat in this kernel: the ESP staged in tmpfs and written with mtools"
    fi
    vmdb2_run() { # NAME
        local img="$work/vmdb2/$1.img" dev
        rm -f "$img"
        truncate -s "$vmdb2_size" "$img"
        dev=$(losetup -P -f --show "$img")
        PATH="$path" timed "$1" vmdb2 --output "$dev" --rootfs-tarball "$work/vmdb2/rootfs.tar.gz" \
            --log "$work/vmdb2/$1.log" "$work/vmdb2/spec.yaml"
        sync
        losetup -d "$dev"
        find /dev/disk/by-uuid -maxdepth 1 -lname "${dev}p*" -delete 2>/dev/null || true
        rmdir /dev/disk/by-uuid /dev/disk 2>/dev/null || true
    }
    vmdb2_run vmdb2-cold
    row vmdb2 cold vmdb2-cold "$work/vmdb2/vmdb2-cold.img"
    vmdb2_cold=$(cut -d' ' -f1 "$work/vmdb2-cold.time")
    rm -f "$work/vmdb2/vmdb2-cold.img"
    for r in $(seq "$warm_runs"); do
        vmdb2_run "vmdb2-warm$r"
        row vmdb2 warm "vmdb2-warm$r" "$work/vmdb2/vmdb2-warm$r.img"
        rm -f "$work/vmdb2/vmdb2-warm$r.img"
        cut -d' ' -f1 "$work/vmdb2-warm$r.time" >> "$work/vmdb2-warm.walls"
    done
    vmdb2_warm=$(median < "$work/vmdb2-warm.walls")
fi

# --- the table
echo
echo "load at start: $load_start"
echo "load at end:   $(uptime)"
echo
printf '%-6s %-10s %8s %9s %9s %10s %8s\n' tool mode wall_s rss_MiB own_MiB image_MiB login_s
printf '%s\n' "${rows[@]}"
echo "(rss_MiB: GNU time %M, the largest process of the tree (for kiln: QEMU with the guest's"
echo " memory); own_MiB: peak RSS of the tool's own process (VmHWM, sampled every 0.2 s);"
echo " image_MiB: allocated size of the raw image)"
echo
echo "ratios (kiln's time / the peer's; below 1: kiln is faster):"
printf '  kiln warm / debos-%s:        %s\n' "$debos_backend" "$(ratio "$kiln_warm" "$debos_wall")"
printf '  kiln cold / debos-%s:        %s\n' "$debos_backend" "$(ratio "$kiln_cold" "$debos_wall")"
printf '  kiln post-edit / debos-%s:   %s\n' "$debos_backend" "$(ratio "$kiln_post" "$debos_wall")"
printf '  kiln warm / vmdb2 warm:       %s\n' "$(ratio "$kiln_warm" "$vmdb2_warm")"
printf '  kiln user-edit / vmdb2 warm:  %s\n' "$(ratio "$kiln_edit" "$vmdb2_warm")"
printf '  kiln cold / vmdb2 cold:       %s\n' "$(ratio "$kiln_cold" "$vmdb2_cold")"
if [[ " $tools " == *" kiln "* ]]; then
    echo
    for f in "$work"/kiln-*.out; do
        n=$(basename "$f" .out)
        boot_line=$(grep -ao 'runs /init after [0-9.]* s (kernel: [0-9.]* s)' "$f" | head -1 || true)
        job_line=$(grep -ao 'starts its job [0-9.]* s after its kernel started' "$f" | head -1 || true)
        base_line=$(grep -ao '"message":"[^"]*configured base[^"]*"' "$f" | head -1 | sed 's/"message":"//; s/"$//' || true)
        printf '%s: builder guest %s; %s%s\n' "$n" "${boot_line:-?}" "${job_line:-?}" "${base_line:+; $base_line}"
    done
    echo
    echo "kiln's steps in the last warm run (s, from the JSON events' arrival):"
    awk '{ t = $1; $1 = ""; if (match($0, /"event":"step"/)) {
             if (prev != "") printf "  %7.1f  %s\n", t - pt, prev
             m = $0; sub(/.*"message":"/, "", m); sub(/".*/, "", m); prev = m; pt = t }
           last = t }
         END { if (prev != "") printf "  %7.1f  %s\n", last - pt, prev }' "$work/kiln-warm$warm_runs.out"
fi
echo
echo "results: $results"
exit
}
