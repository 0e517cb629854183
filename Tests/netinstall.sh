#!/usr/bin/env bash
# The full network install, end to end (`make netinstall-test`; needs root):
#   1. `kiln serve --config lab.yaml --prepare` (online) fetches the boot loaders, Debian's netboot
#      installer and the lab mirror's packages into kiln's cache;
#   2. in a network namespace with a bridge (nothing leaves it), `kiln serve --config lab.yaml --offline`
#      serves DHCP, TFTP, HTTP and the signed mirror;
#   3. QEMU (TCG, SeaBIOS with iPXE, 2 GiB, a blank qcow2) boots from the network, and debian-installer
#      installs Appliances/debian12-minimal.yaml unattended from kiln's mirror only (Debian 12: the
#      archive has more of its installer's udebs than of 13's), then tells kiln it is done;
#   4. the same machine boots from the network again and kiln sends it to its disk (no reinstall loop);
#   5. `kiln test` boots the installed disk to its login prompt.
# Prints the time of each step. KILN names the kiln binary (default .build/release/kiln); WORK keeps
# the work folder (default: a new one under /tmp, removed on success).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
kiln=${KILN:-$repo/.build/release/kiln}
[ "$(id -u)" = 0 ] || { echo "netinstall: needs root (network namespace, tap device)" >&2; exit 2; }
[ -x "$kiln" ] || { echo "netinstall: no kiln binary at $kiln (make build)" >&2; exit 2; }

work=${WORK:-$(mktemp -d /tmp/kiln-netinstall.XXXXXX)}
mkdir -p "$work"
ns=kiln-netinstall-$$
mac=52:54:00:4b:69:01
kiln_pid=""
qemu_pid=""

cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  [ -n "$kiln_pid" ] && kill "$kiln_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

t0=$(date +%s)
step() { echo "netinstall: [$(( $(date +%s) - t0 ))s] $*" >&2; }

cat >"$work/lab.yaml" <<EOF
# One Debian host on an isolated bridge; kiln is its DHCP server and its only package archive.
address: 192.0.2.1
interface: br-lab
tftp: "0.0.0.0:69"
http: "0.0.0.0:80"
dhcp:
  mode: server
  range: 192.0.2.100-192.0.2.110
  router: 192.0.2.1
  dns: [192.0.2.1]
  lease_time: 3600
hosts:
  - mac: "$mac"
    name: lab-01
    description: $repo/Appliances/debian12-minimal.yaml
    address: 192.0.2.17
EOF

step "preparing boot files and the mirror's packages (online)"
"$kiln" serve --config "$work/lab.yaml" --prepare 2>&1 | tail -n 20 >&2
# lab.yaml.state keeps what --prepare published (the offline run reads it back) and no host is
# recorded as installed yet.
step "prepared"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br-lab type bridge
ip -n "$ns" addr add 192.0.2.1/24 dev br-lab
ip -n "$ns" tuntap add dev tap-lab mode tap
ip -n "$ns" link set tap-lab master br-lab
ip -n "$ns" link set tap-lab up
ip -n "$ns" link set br-lab up

ip netns exec "$ns" "$kiln" serve --config "$work/lab.yaml" --offline >"$work/kiln.log" 2>&1 &
kiln_pid=$!
for _ in $(seq 1 120); do
  grep -q "kiln: serving" "$work/kiln.log" && break
  kill -0 "$kiln_pid" 2>/dev/null || { cat "$work/kiln.log" >&2; exit 1; }
  sleep 1
done
grep -q "kiln: serving" "$work/kiln.log" || { echo "netinstall: kiln did not start" >&2; cat "$work/kiln.log" >&2; exit 1; }
step "kiln serving in namespace $ns"

qemu-img create -q -f qcow2 "$work/disk.qcow2" 8G
boot_from_network() {
  ip netns exec "$ns" qemu-system-x86_64 -accel tcg -m 2048 -display none -no-reboot \
    -serial "file:$1" -monitor none \
    -netdev tap,id=lab,ifname=tap-lab,script=no,downscript=no \
    -device "virtio-net-pci,netdev=lab,mac=$mac" \
    -drive "file=$work/disk.qcow2,if=virtio,format=qcow2" -boot n >"$work/qemu.log" 2>&1 &
  qemu_pid=$!
}

step "installing: QEMU boots from the network"
install_start=$(date +%s)
boot_from_network "$work/install-console.log"
# debian-installer powers the machine off or reboots at the end; -no-reboot turns both into an exit.
limit=${INSTALL_TIMEOUT:-5400}
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ $(( $(date +%s) - install_start )) -gt "$limit" ]; then
    echo "netinstall: the install took longer than ${limit}s" >&2
    tail -c 3000 "$work/install-console.log" >&2
    exit 1
  fi
  sleep 10
done
wait "$qemu_pid" || true
qemu_pid=""
install_seconds=$(( $(date +%s) - install_start ))
# iPXE's lease is not passed on: the installer's own DHCP client (vendor class "d-i") asked kiln again.
grep -q "vendor-class=d-i .*dhcp: lease 192.0.2.17 to $mac" "$work/kiln.log" \
  || echo "netinstall: no DHCP lease for the installer's own client in kiln's log" >&2
grep -q "finished installing" "$work/kiln.log" || {
  echo "netinstall: the installer never reported done" >&2
  tail -c 4000 "$work/install-console.log" >&2
  grep -E "http: (not|refused)" "$work/kiln.log" | tail -20 >&2
  exit 1
}
served=$(grep -c 'http: sent.*path=/debian/pool/' "$work/kiln.log" || true)
missing=$(grep -c 'http: not.*path=/debian/pool/' "$work/kiln.log" || true)
step "installed in ${install_seconds}s: $served packages served from kiln's mirror, $missing not found"

step "booting from the network again: kiln must send the host to its disk"
boot_from_network "$work/second-console.log"
for _ in $(seq 1 180); do
  grep -q "lab: $mac boots its local disk" "$work/kiln.log" && break
  sleep 1
done
kill "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
grep -q "lab: $mac boots its local disk" "$work/kiln.log" || { echo "netinstall: no local-disk boot" >&2; exit 1; }

step "kiln test: the installed disk boots to its login prompt"
test_start=$(date +%s)
"$kiln" test "$work/disk.qcow2" --timeout 900
test_seconds=$(( $(date +%s) - test_start ))

step "done: install ${install_seconds}s, first boot ${test_seconds}s, total $(( $(date +%s) - t0 ))s"
[ -n "${WORK:-}" ] || rm -rf "$work"
