#!/usr/bin/env bash
# TFTP download throughput and concurrency: kiln against tftpd-hpa, atftpd and dnsmasq, in one run, on the
# loopback of a private network namespace made here (port 69 is free there and no packet leaves it).
#
#   sudo Benchmarks/tftp.sh            # RUNS=3 SIZE_MIB=64 CONC=200 CONC_MIB=2 by default
#
# Same files and clients for every server: a SIZE_MIB random file fetched by tftp-hpa (512-byte blocks, it
# has no blksize option), atftp and curl at blksize 512, 1468 and 8192, and atftp with windowsize 16
# (RFC 7440; only kiln and atftpd have it). RUNS rounds, each server in turn, median per cell; wall time
# including the client's start; sha256 checked. Then CONC concurrent curl processes (blksize 1468) fetching a CONC_MIB file: total time, failures,
# and kiln's peak resident memory (VmHWM). Every server is configured to accept CONC transfers at once.
# Prints a table and kiln's ratio to the best peer; the work folder (kept) has results.tsv.
# Needs root, iproute2, tftp-hpa, atftp, curl, tftpd-hpa and dnsmasq-base (installed here if missing),
# and atftpd, whose package conflicts with tftpd-hpa: its binary is unpacked from `apt-get download`.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace, port 69)" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"; SIZE_MIB="${SIZE_MIB:-64}"; CONC="${CONC:-200}"; CONC_MIB="${CONC_MIB:-2}"

missing=()
for p in tftp-hpa atftp curl tftpd-hpa dnsmasq-base iproute2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

W="$(mktemp -d -t kiln-tftp-bench.XXXXXX)"; chmod 755 "$W"; cd "$W"
echo "work folder: $W" >&2
# What the clients receive goes to memory (tmpfs), so that the disk's writeback does not set the pace.
O="$(mktemp -d -p /dev/shm kiln-tftp-out.XXXXXX)"
RES="$W/results.tsv"; : > "$RES"
rec() { printf '%s\t%s\n' "$1" "${*:2}" >> "$RES"; }

KILN="${KILN:-}"
if [ -z "$KILN" ]; then
  (cd "$REPO" && swift build -c release --product kiln >&2)
  KILN="$REPO/.build/release/kiln"
fi
if [ -z "${ATFTPD:-}" ]; then
  (apt-get download -q atftpd > /dev/null 2>&1) && dpkg-deb -x atftpd_*.deb atftpd-pkg
  ATFTPD="$W/atftpd-pkg/usr/sbin/atftpd"
fi

mkdir -p root; chmod 755 root
head -c $((SIZE_MIB << 20)) /dev/urandom > root/big.bin
head -c $((CONC_MIB << 20)) /dev/urandom > root/conc.bin
chmod 644 root/*
SUM=$(sha256sum < root/big.bin)
rec version:kiln "$("$KILN" --version)"
rec version:tftpd-hpa "$(dpkg-query -W -f='${Version}' tftpd-hpa)"
rec version:atftpd "$(ls atftpd_*.deb 2>/dev/null | sed 's/atftpd_\(.*\)_amd64.deb/\1/')"
rec version:dnsmasq "$(dpkg-query -W -f='${Version}' dnsmasq-base)"
rec version:curl "$(curl --version | head -1 | cut -d' ' -f1-2)"
rec cpu "$(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ //')"

NS="kilnbench$$"
ip netns add "$NS"
# On exit: end what runs in our namespace (only what this script started there), then remove it.
trap 'ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null; sleep 0.3; ip netns del "$NS" 2>/dev/null || true; rm -rf "$O"' EXIT
trap 'exit 130' INT TERM
ip netns exec "$NS" ip link set lo up
nx() { ip netns exec "$NS" "$@"; }

SPID=""
start_server() { # NAME
  case "$1" in
    kiln)      nx "$KILN" serve --tftp-root "$W/root" --tftp 127.0.0.1:69 --http off \
                 --max-transfers-per-client $((CONC + 56)) > "$W/kiln.log" 2>&1 & SPID=$! ;;
    # wildcard bind: in a namespace with only lo, `--address 127.0.0.1` makes in.tftpd exit 66
    tftpd-hpa) nx in.tftpd --foreground --secure "$W/root" & SPID=$! ;;
    atftpd)    nx "$ATFTPD" --daemon --no-fork --port 69 --maxthread $((CONC + 56)) \
                 --user nobody.nogroup --logfile /dev/null --no-multicast "$W/root" & SPID=$! ;;
    dnsmasq)   nx dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --enable-tftp \
                 --tftp-root="$W/root" --tftp-max=$((CONC + 56)) --listen-address=127.0.0.1 --bind-interfaces \
                 --pid-file="$W/dnsmasq.pid" --log-facility="$W/dnsmasq.log" & SPID=$! ;;
  esac
  for _ in $(seq 50); do nx ss -Hlun 'sport = :69' | grep -q . && return 0; sleep 0.1; done
  echo "server $1 did not start" >&2; exit 1
}
stop_server() { # the server and its forked children (in.tftpd's linger, holding port 69)
  kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true
  ip netns pids "$NS" | xargs -r kill 2>/dev/null || true
  for _ in $(seq 50); do nx ss -Hlun 'sport = :69' | grep -q . || return 0; sleep 0.1; done
  echo "port 69 still busy" >&2; exit 1
}

client() { # NAME FILE OUT
  local f="$2" o="$3" b w
  case "$1" in
    tftp-512)   nx tftp -m binary 127.0.0.1 -c get "$f" "$o" ;;
    curl-*)     b="${1#curl-}"; nx curl -sS -o "$o" --tftp-blksize "$b" "tftp://127.0.0.1/$f" ;;
    atftp-*-w*) b="${1#atftp-}"; w="${b#*-w}"; b="${b%-w*}"
                nx atftp --option "blksize $b" --option "windowsize $w" -g -r "$f" -l "$o" 127.0.0.1 69 ;;
    atftp-*)    b="${1#atftp-}"; nx atftp --option "blksize $b" -g -r "$f" -l "$o" 127.0.0.1 69 ;;
  esac
}
median() { sort -g | awk '{a[NR]=$1} END{ if(NR==0){print "NA"} else if(NR%2){print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }

SERVERS="${SERVERS:-kiln tftpd-hpa atftpd dnsmasq}"
CLIENTS="${CLIENTS:-tftp-512 atftp-512 atftp-1468 atftp-8192 curl-512 curl-1468 curl-8192 atftp-512-w16 atftp-1468-w16 atftp-8192-w16}"
declare -A MBS CONC_WALL CONC_OK WALLS BAD
# Rounds: every server runs every client once per round, so that load from elsewhere on the machine falls
# on all servers alike; the median over the rounds is reported.
for round in $(seq "$RUNS"); do
  for s in $SERVERS; do
    start_server "$s"
    for c in $CLIENTS; do
      [ -n "${BAD[$s,$c]:-}" ] && continue
      rm -f "$O/out.bin"; t0=$(date +%s.%N); bad=""
      timeout 120 bash -c "$(declare -f client nx); NS=$NS; client $c big.bin $O/out.bin" > cl.log 2>&1 \
        || bad="rc=$? $(grep -v 'wrong block' cl.log | head -c 120 | tr '\n' ' ')"
      t1=$(date +%s.%N)
      [ -z "$bad" ] && [ "$(sha256sum < "$O/out.bin" 2>/dev/null)" != "$SUM" ] && bad="checksum mismatch"
      if [ -n "$bad" ]; then BAD[$s,$c]="$bad"; rec "tftp:$s:$c" "FAIL $bad"; continue; fi
      WALLS[$s,$c]="${WALLS[$s,$c]:-} $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}')"
    done
    if [ "$round" = "$RUNS" ]; then
      # CONC separate client processes at once, in the last round
      rm -rf "$O/par"; mkdir "$O/par"; pids=()
      t0=$(date +%s.%N)
      for i in $(seq "$CONC"); do
        timeout 300 bash -c "$(declare -f client nx); NS=$NS; client curl-1468 conc.bin $O/par/$i" > /dev/null 2>&1 &
        pids+=($!)
      done
      wait "${pids[@]}" 2>/dev/null || true
      t1=$(date +%s.%N)
      ok=0; for f in "$O"/par/*; do cmp -s "$f" root/conc.bin && ok=$((ok + 1)); done
      CONC_WALL[$s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
      CONC_OK[$s]=$ok
      rss=""
      if [ "$s" = kiln ]; then
        # `ip netns exec` may stay as kiln's parent: find kiln itself among the namespace's processes
        kpid=$(for p in $(ip netns pids "$NS"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = kiln ] && echo "$p"; done | head -1)
        rss=$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$kpid/status")
        rec "tftp-concurrent:kiln:peak_rss_mib" "$rss"
      fi
      rec "tftp-concurrent:$s" "clients=$CONC file_mib=$CONC_MIB wall_s=${CONC_WALL[$s]} complete=$ok/$CONC"
      echo "$s: $CONC concurrent in ${CONC_WALL[$s]} s, $ok/$CONC complete${rss:+, peak RSS $rss MiB}" >&2
    fi
    stop_server
  done
  echo "round $round of $RUNS done" >&2
done
for s in $SERVERS; do
  for c in $CLIENTS; do
    if [ -n "${BAD[$s,$c]:-}" ]; then MBS[$s,$c]="FAIL"; continue; fi
    med=$(printf '%s\n' ${WALLS[$s,$c]} | median)
    MBS[$s,$c]=$(awk -v s="$med" -v b=$((SIZE_MIB << 20)) 'BEGIN{printf "%.1f", b/s/1e6}')
    rec "tftp:$s:$c" "median_s=$med runs=$(echo ${WALLS[$s,$c]} | tr ' ' ,) MB/s=${MBS[$s,$c]}"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a+0>0 && b+0>0) printf "%.2f", a/b; else print "-" }'; }
best_peer() { # CLIENT -> best MB/s among the peers
  local best=0 v
  for s in tftpd-hpa atftpd dnsmasq; do
    v="${MBS[$s,$1]:-FAIL}"; [ "$v" = FAIL ] && continue
    best=$(awk -v a="$best" -v b="$v" 'BEGIN{print (b>a)?b:a}')
  done
  echo "$best"
}
{
  echo
  echo "TFTP on loopback, ${SIZE_MIB} MiB file, median of $RUNS, MB/s (higher is better)"
  printf '%-16s %9s %9s %9s %9s %12s\n' client kiln tftpd-hpa atftpd dnsmasq kiln/best
  for c in $CLIENTS; do
    printf '%-16s %9s %9s %9s %9s %12s\n' "$c" "${MBS[kiln,$c]}" "${MBS[tftpd-hpa,$c]}" "${MBS[atftpd,$c]}" \
      "${MBS[dnsmasq,$c]}" "$(ratio "${MBS[kiln,$c]}" "$(best_peer "$c")")"
  done
  echo "(tftpd-hpa and dnsmasq ignore windowsize: their -w16 rows are windowsize 1)"
  for b in 512 1468 8192; do
    echo "windowsize 16 vs the best peer at windowsize 1, blksize $b: kiln $(ratio "${MBS[kiln,atftp-$b-w16]}" "$(best_peer "atftp-$b")")x"
  done
  echo
  echo "$CONC concurrent curl clients (blksize 1468), ${CONC_MIB} MiB each: wall seconds, complete"
  for s in $SERVERS; do printf '%-10s %8s s  %s/%s\n' "$s" "${CONC_WALL[$s]}" "${CONC_OK[$s]}" "$CONC"; done
  echo "kiln peak RSS: $(awk -F'\t' '$1=="tftp-concurrent:kiln:peak_rss_mib"{print $2}' "$RES") MiB"
} | tee "$W/summary.txt"
