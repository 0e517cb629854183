#!/usr/bin/env bash
# Image deploys: kiln's image serving against nginx, and one deploy from power-on to login under TCG.
#
#   sudo Benchmarks/deploy.sh                         # both parts
#   sudo PART=serve Benchmarks/deploy.sh              # image serving only
#   sudo PART=boot IMAGE=out/debian-minimal/debian-minimal.qcow2 Benchmarks/deploy.sh
#
# Part "serve": a 2 GiB raw image holding DATA_MIB (1024) MiB of random data, served on loopback by
# `kiln serve --config` (one lab host per client, each with its deploy token) and by nginx (Debian's
# package, sendfile on). Each client is one curl process that fetches every chunk of the deploy plan
# in order over one keep-alive connection: from kiln the agent's own URLs (`deploy/TOKEN/chunk/N`),
# from nginx the same byte ranges of the same file (`Range:`). 1, 10 and 50 clients at once; aggregate
# MB/s (bytes received by all clients / wall time), one run, and kiln's peak RSS (VmHWM).
# Part "boot": one SeaBIOS+iPXE machine with a blank 8 GiB disk on a bridge in a private network
# namespace, kiln as its DHCP server, deploying IMAGE (default: the default appliance built by
# `make demo`); the time of each step from the machine's power-on, read from kiln's log and the serial
# console as they appear.
# Needs root, curl, nginx (installed here if missing), qemu-system-x86 and ipxe-qemu; the work folder
# (printed first, kept) has the logs and results.tsv.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root (nginx, network namespace)" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PART="${PART:-all}"; DATA_MIB="${DATA_MIB:-1024}"; CLIENTS="${CLIENTS:-1 10 50}"
IMAGE="${IMAGE:-$REPO/out/debian-minimal/debian-minimal.qcow2}"

missing=()
for p in curl nginx-light qemu-system-x86 ipxe-qemu iproute2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

W="$(mktemp -d -t kiln-deploy-bench.XXXXXX)"; chmod 755 "$W"; cd "$W"
echo "work folder: $W" >&2
RES="$W/results.tsv"; : > "$RES"
rec() { printf '%s\t%s\n' "$1" "${*:2}" >> "$RES"; }
KILN="${KILN:-}"
if [ -z "$KILN" ]; then
  (cd "$REPO" && swift build -c release --product kiln >&2)
  KILN="$REPO/.build/release/kiln"
fi
rec load "$(cut -d' ' -f1-3 /proc/loadavg)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  [ -n "${NS:-}" ] && { ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null; sleep 0.3; ip netns del "$NS" 2>/dev/null || true; }
  return 0
}
trap cleanup EXIT

serve_part() {
  # The image: GPT, one ext4 partition over the whole disk, DATA_MIB MiB of random files in it.
  mkdir -p tree
  for i in $(seq 1 $((DATA_MIB / 64))); do head -c $((64 << 20)) /dev/urandom > "tree/data$i.bin"; done
  truncate -s 2G image.raw
  printf 'label: gpt\n,,L\n' | sfdisk -q image.raw
  read -r start sectors < <(partx -g -o START,SECTORS -n 1 image.raw)
  mke2fs -q -t ext4 -d tree -E offset=$((start * 512)) image.raw $((sectors / 2))k
  rm -rf tree
  local max=0 c port=18480
  for c in $CLIENTS; do [ "$c" -gt "$max" ] && max=$c; done
  {
    echo "address: 192.0.2.1"; echo "tftp: off"; echo "http: \"127.0.0.1:$port\""; echo "dhcp: {mode: off}"
    echo "hosts:"
    for i in $(seq 1 "$max"); do printf '  - {mac: "52:54:00:99:%02x:%02x", name: bench-%d, image: image.raw}\n' $((i / 256)) $((i % 256)) "$i"; done
  } > lab.yaml
  "$KILN" serve --config lab.yaml --prepare > prepare.log 2>&1
  cat > nginx.conf <<EOF
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 127.0.0.1:18481; root $W; }
}
EOF
  for c in $CLIENTS; do
    rm -rf lab.yaml.state
    "$KILN" serve --config lab.yaml > kiln-$c.log 2>&1 &
    local kiln=$!; PIDS+=("$kiln")
    until grep -qs "kiln: serving" kiln-$c.log; do sleep 0.1; done
    # Each client: its token from its iPXE script, its plan, then the chunk URLs (kiln) and ranges (nginx).
    for i in $(seq 1 "$c"); do
      mac=$(printf '52:54:00:99:%02x:%02x' $((i / 256)) $((i % 256)))
      url=$(curl -fsS "http://127.0.0.1:$port/ipxe/$mac" | tr ' ' '\n' | sed -n 's/^kiln.url=http:\/\/192.0.2.1:[0-9]*//p')
      curl -fsS "http://127.0.0.1:$port$url/plan" > plan-$i
      : > kiln-args-$i; : > nginx-args-$i
      while read -r _ index offset length _; do
        printf -- '-o /dev/null http://127.0.0.1:%s%s/chunk/%s\n' "$port" "$url" "$index" >> kiln-args-$i
        printf -- '-o /dev/null -r %s-%s http://127.0.0.1:18481/image.raw\n' "$offset" $((offset + length - 1)) >> nginx-args-$i
      done < <(grep '^chunk ' plan-$i)
    done
    bytes=$(awk '/^chunk /{s+=$4} END{print s}' plan-1)
    run_clients() { # $1: kiln|nginx
      local t0 t1 i
      t0=$(date +%s.%N)
      for i in $(seq 1 "$c"); do
        # one process, one connection: every transfer is its own `--next` group
        sed 's/$/ --next/' "$1-args-$i" | tr '\n' ' ' | sed 's/ --next $//' | xargs curl -fsS &
      done
      wait
      t1=$(date +%s.%N)
      echo "$t0 $t1" | awk -v b="$bytes" -v c="$c" '{printf "%.1f", b * c / ($2 - $1) / 1e6}'
    }
    kiln_mbs=$(run_clients kiln)
    rss=$(awk '/VmHWM/{print $2}' /proc/$kiln/status)
    kill "$kiln"; wait "$kiln" 2>/dev/null || true
    nginx -c "$W/nginx.conf"; sleep 0.5
    nginx_mbs=$(run_clients nginx)
    nginx -c "$W/nginx.conf" -s stop; sleep 0.5
    ratio=$(awk -v a="$kiln_mbs" -v b="$nginx_mbs" 'BEGIN{printf "%.2f", a / b}')
    rec "serve-$c" "kiln ${kiln_mbs} MB/s, nginx ${nginx_mbs} MB/s, ratio ${ratio}x, kiln peak RSS $((rss / 1024)) MiB"
    printf '%3d clients: kiln %8s MB/s  nginx %8s MB/s  kiln/nginx %5sx  kiln peak RSS %4d MiB\n' \
      "$c" "$kiln_mbs" "$nginx_mbs" "$ratio" $((rss / 1024))
  done
}

boot_part() {
  [ -f "$IMAGE" ] || { echo "no image $IMAGE (run make demo, or give IMAGE=)" >&2; exit 1; }
  cp "$IMAGE" "$W/golden.${IMAGE##*.}"
  [ -f "$(dirname "$IMAGE")/manifest.json" ] && sed "s/$(basename "$IMAGE")/golden.${IMAGE##*.}/" \
    "$(dirname "$IMAGE")/manifest.json" > "$W/manifest.json"
  cat > boot-lab.yaml <<EOF
address: 192.0.2.1
interface: br-lab
tftp: ":69"
http: ":80"
dhcp: {mode: server, range: 192.0.2.100-192.0.2.110, router: 192.0.2.1}
hosts:
  - {mac: "52:54:00:98:00:01", name: bench-host, image: golden.${IMAGE##*.}}
EOF
  "$KILN" serve --config boot-lab.yaml --prepare > boot-prepare.log 2>&1
  NS="kilndeploybench$$"
  ip netns add "$NS"
  n() { ip netns exec "$NS" "$@"; }
  n ip link set lo up; n ip link add br-lab type bridge; n ip addr add 192.0.2.1/24 dev br-lab
  n ip link set br-lab up; n ip tuntap add dev tap0 mode tap; n ip link set tap0 master br-lab; n ip link set tap0 up
  n "$KILN" serve --config boot-lab.yaml --offline > boot-kiln.log 2>&1 &
  PIDS+=($!)
  until grep -q "kiln: serving" boot-kiln.log; do sleep 0.1; done
  qemu-img create -q -f qcow2 disk.qcow2 8G
  local t0 now; t0=$(date +%s.%N)
  n qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -serial file:console.log \
    -netdev tap,id=lab,ifname=tap0,script=no,downscript=no \
    -device virtio-net-pci,netdev=lab,mac=52:54:00:98:00:01,bootindex=1 \
    -drive file=disk.qcow2,if=none,id=disk,format=qcow2 -device virtio-blk-pci,drive=disk,bootindex=2 &
  PIDS+=($!)
  declare -A seen=()
  steps=(
    "agent kernel and initramfs sent|boot-kiln.log|path=/agent/initrd.img status=200"
    "agent up, plan fetched (firmware + agent boot)|boot-kiln.log|deploy installing"
    "image written (transfer)|console.log|kiln-agent: image written"
    "partition and file system grown|console.log|fills /dev/"
    "deploy reported done|boot-kiln.log|deploy installed"
    "second network boot sent to the disk|boot-kiln.log|boots its local disk"
    "login prompt on its own disk (first boot)|console.log|bench-host login:"
  )
  while [ ${#seen[@]} -lt ${#steps[@]} ]; do
    now=$(date +%s.%N)
    for step in "${steps[@]}"; do
      IFS='|' read -r name file pattern <<< "$step"
      [ -n "${seen[$name]:-}" ] && continue
      if grep -aq -- "$pattern" "$file" 2>/dev/null; then
        seen[$name]=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.1f", b - a}')
        printf '%7s s  %s\n' "${seen[$name]}" "$name"
        rec "boot" "${seen[$name]} s: $name"
      fi
    done
    awk -v a="$t0" -v b="$now" 'BEGIN{exit !(b - a > 1800)}' && { echo "gave up after 1800 s" >&2; break; }
    sleep 0.5
  done
  rec boot-load "$(cut -d' ' -f1-3 /proc/loadavg)"
}

case "$PART" in
  serve) serve_part ;;
  boot) boot_part ;;
  *) serve_part; boot_part ;;
esac
echo "results: $RES" >&2
