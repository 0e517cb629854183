/// The deploy agent's shell scripts, run by busybox's `sh`.
///
/// The agent speaks to kiln over HTTP only, at `kiln.url` (`http://ADDR/deploy/TOKEN`):
/// - `GET plan`: text lines, `fail REASON` when kiln will not deploy, else `size BYTES`, `bytes BYTES`
///   (the data to send), `table gpt|mbr`, `grow N FS`, `root N FS`, `disk DEVICE`, `after
///   reboot|poweroff`, `name HOSTNAME`, `zero OFFSET LENGTH` for each range without data (zeroed on the
///   disk, never sent), then `chunk INDEX OFFSET LENGTH SHA256` for every piece of the image that holds
///   data;
/// - `GET chunk/INDEX`: that piece's bytes;
/// - `GET progress/BYTES`, `GET done`, `GET failed/REASON`: what it reports.
/// Its messages also go to the console as `kiln-agent: ...` lines.
package enum DeployAgentScripts {
    /// `/init`: PID 1 of the agent.
    package static let initScript = #"""
        #!/bin/busybox sh
        # kiln deploy agent, PID 1: writes this machine's disk from kiln serve, then reboots into it.
        /bin/busybox mkdir -p /proc /sys /dev /tmp /run /mnt
        \#(GuestScripts.pidOneSetup)

        say() { echo "kiln-agent: $*"; }
        arg() {
            for word in $(cat /proc/cmdline); do
                case "$word" in "$1="*) echo "${word#*=}"; return 0 ;; esac
            done
            return 1
        }
        URL=$(arg kiln.url)
        MAC=$(arg kiln.mac | tr 'A-F' 'a-f')
        DISK=$(arg kiln.disk)
        AFTER=reboot
        REPORTING=

        # Reports are best effort: a lost one is not worth failing the deploy for.
        report() {
            [ -n "$REPORTING" ] || return 0
            /kiln/bin/curl -fs -m 10 -o /dev/null "$URL/$1"
        }
        finish() {
            sync
            say "done; $AFTER in 2 s"
            sleep 2
            if [ "$AFTER" = poweroff ]; then poweroff -f; else reboot -f; fi
            sleep 60
        }
        fail() {
            say "failed: $*"
            reason=$(printf '%s' "$*" | tr -c 'A-Za-z0-9._,:/=+-' ' ' | sed 's/ /%20/g')
            report "failed/$reason"
            # A failed deploy leaves the machine off rather than booting whatever the disk holds.
            AFTER=poweroff
            finish
        }
        [ -n "$URL" ] || fail "no kiln.url on the kernel command line"

        while read -r module; do
            [ -n "$module" ] || continue
            insmod "/$module" 2>/dev/null || say "could not load $module"
        done < /etc/kiln/modules

        # The interface this machine booted from, by the MAC address kiln wrote on the command line.
        interface=
        tries=0
        while [ -z "$interface" ] && [ "$tries" -lt 100 ]; do
            for dir in /sys/class/net/*; do
                name=${dir##*/}
                [ "$name" = lo ] && continue
                address=$(cat "$dir/address" 2>/dev/null)
                if [ -z "$MAC" ] || [ "$address" = "$MAC" ]; then interface=$name; break; fi
            done
            [ -n "$interface" ] || { usleep 100000; tries=$((tries + 1)); }
        done
        [ -n "$interface" ] || fail "no network interface with address $MAC"
        ip link set lo up
        ip link set "$interface" up
        say "taking a DHCP lease on $interface ($MAC)"
        udhcpc -i "$interface" -s /kiln/udhcpc.script -q -f -n -t 20 -T 3 -V kiln-agent \
            || fail "no DHCP lease on $interface"
        REPORTING=1

        # The plan: kiln may still be reading the image, and may be restarting; wait for it.
        tries=0
        until /kiln/bin/curl -fsS -m 120 -o /tmp/plan "$URL/plan" 2>/tmp/curl.log; do
            [ $((tries % 10)) -eq 0 ] && say "waiting for the plan: $(tail -n 1 /tmp/curl.log)"
            tries=$((tries + 1))
            [ "$tries" -lt 150 ] || fail "no plan from $URL"
            sleep 2
        done
        reason=$(sed -n 's/^fail //p' /tmp/plan)
        [ -z "$reason" ] || { say "kiln refused: $reason"; AFTER=poweroff; finish; }
        value() { sed -n "s/^$1 //p" /tmp/plan | head -n 1; }
        SIZE=$(value size)
        TOTAL=$(value bytes)
        TABLE=$(value table)
        NAME=$(value name)
        [ -n "$(value after)" ] && AFTER=$(value after)
        [ -n "$DISK" ] || DISK=$(value disk)
        [ -n "$SIZE" ] || fail "the plan has no size"

        # The target: the lab's choice, else the first disk that is not removable and not a loop or CD.
        if [ -z "$DISK" ]; then
            tries=0
            while [ -z "$DISK" ] && [ "$tries" -lt 100 ]; do
                for dir in /sys/block/*; do
                    name=${dir##*/}
                    case "$name" in loop*|ram*|sr*|fd*|zram*|md*|dm-*|nbd*) continue ;; esac
                    [ "$(cat "$dir/removable" 2>/dev/null)" = 0 ] || continue
                    [ "$(cat "$dir/size" 2>/dev/null)" -gt 0 ] 2>/dev/null || continue
                    DISK=/dev/$name
                    break
                done
                [ -n "$DISK" ] || { usleep 100000; tries=$((tries + 1)); }
            done
        fi
        [ -b "$DISK" ] || fail "no disk to write (looked for ${DISK:-a fixed disk})"
        sectors=$(cat "/sys/block/${DISK##*/}/size" 2>/dev/null || echo 0)
        capacity=$((sectors * 512))
        [ "$capacity" -ge "$SIZE" ] || fail "$DISK holds $capacity bytes, smaller than the image's $SIZE bytes"
        say "writing $TOTAL bytes of a $SIZE-byte image to $DISK"
        report "progress/0"

        # The image's empty ranges are zeroed on the disk (a blank disk takes it as a no-op; one that held
        # data must not show it through the file systems' free space and tables).
        grep '^zero ' /tmp/plan > /tmp/zeros
        while read -r _ offset length; do
            /kiln/bin/blkdiscard -z -o "$offset" -l "$length" "$DISK" 2>/dev/null \
                || dd if=/dev/zero of="$DISK" bs=512 seek=$((offset / 512)) count=$((length / 512)) conv=notrunc \
                    2>/dev/null \
                || fail "cannot zero $DISK at $offset"
        done < /tmp/zeros

        # Each chunk is fetched whole, checked against its SHA-256, then written; one that fails is
        # fetched again, so a cut network or a restarted kiln costs at most one chunk.
        written=0
        last=$(date +%s)
        grep '^chunk ' /tmp/plan > /tmp/chunks
        while read -r _ index offset length sum; do
            tries=0
            while :; do
                if /kiln/bin/curl -fsS -m 120 -o /tmp/chunk "$URL/chunk/$index" 2>/tmp/curl.log; then
                    got=$(sha256sum /tmp/chunk)
                    [ "${got%% *}" = "$sum" ] && break
                    say "chunk $index: SHA-256 ${got%% *} is not $sum; fetching it again"
                else
                    say "chunk $index: $(tail -n 1 /tmp/curl.log); trying again"
                fi
                tries=$((tries + 1))
                [ "$tries" -lt 90 ] || fail "chunk $index (offset $offset) could not be fetched intact"
                sleep 2
            done
            if [ $((offset % 1048576)) -eq 0 ] && [ $((length % 1048576)) -eq 0 ]; then
                dd if=/tmp/chunk of="$DISK" bs=1048576 seek=$((offset / 1048576)) conv=notrunc 2>/tmp/dd.log
            else
                dd if=/tmp/chunk of="$DISK" bs=512 seek=$((offset / 512)) conv=notrunc 2>/tmp/dd.log
            fi || fail "cannot write $DISK at $offset: $(tail -n 1 /tmp/dd.log)"
            written=$((written + length))
            now=$(date +%s)
            if [ "$now" != "$last" ]; then
                report "progress/$written"
                last=$now
            fi
        done < /tmp/chunks
        rm -f /tmp/chunk
        sync
        report "progress/$written"
        say "image written; growing the last partition"

        part() {
            case "$DISK" in *[0-9]) echo "${DISK}p$1" ;; *) echo "$DISK$1" ;; esac
        }
        blockdev --rereadpt "$DISK" 2>/dev/null
        # The GPT's backup header moves to the disk's real end, then the last partition fills the disk.
        [ "$TABLE" = gpt ] && { /kiln/bin/sfdisk --relocate gpt-bak-std "$DISK" >/tmp/sfdisk.log 2>&1 \
            || fail "cannot move the GPT backup header: $(tail -n 1 /tmp/sfdisk.log)"; }
        # shellcheck disable=SC2046  # the plan's fields (number, file system), split on purpose
        set -- $(value grow)
        if [ -n "$1" ]; then
            number=$1
            fs=$2
            echo ", +" | /kiln/bin/sfdisk --no-reread --no-tell-kernel -N "$number" "$DISK" >/tmp/sfdisk.log 2>&1 \
                || fail "cannot grow partition $number: $(tail -n 1 /tmp/sfdisk.log)"
            blockdev --rereadpt "$DISK" || fail "the kernel did not take the new partition table"
            tries=0
            while [ ! -b "$(part "$number")" ] && [ "$tries" -lt 50 ]; do usleep 100000; tries=$((tries + 1)); done
            device=$(part "$number")
            case "$fs" in
                ext2|ext3|ext4)
                    /kiln/bin/e2fsck -f -p "$device" >/tmp/fsck.log 2>&1
                    [ $? -le 1 ] || fail "e2fsck $device: $(tail -n 1 /tmp/fsck.log)"
                    /kiln/bin/resize2fs "$device" >/tmp/resize.log 2>&1 \
                        || fail "resize2fs $device: $(tail -n 1 /tmp/resize.log)"
                    ;;
                xfs)
                    mount -t xfs "$device" /mnt && /kiln/bin/xfs_growfs /mnt >/tmp/resize.log 2>&1 \
                        || fail "xfs_growfs $device: $(tail -n 1 /tmp/resize.log)"
                    umount /mnt
                    ;;
                btrfs)
                    mount -t btrfs "$device" /mnt && /kiln/bin/btrfs filesystem resize max /mnt >/tmp/resize.log 2>&1 \
                        || fail "btrfs resize $device: $(tail -n 1 /tmp/resize.log)"
                    umount /mnt
                    ;;
            esac
            say "partition $number ($fs) fills $DISK"
        fi

        # The lab's name for the host; a machine id and SSH host keys of its own at first boot.
        # shellcheck disable=SC2046  # the plan's fields (number, file system), split on purpose
        set -- $(value root)
        if [ -n "$1" ] && [ -n "$NAME" ]; then
            device=$(part "$1")
            if mount -t "$2" "$device" /mnt 2>/tmp/mount.log; then
                echo "$NAME" > /mnt/etc/hostname
                if grep -q '^127\.0\.1\.1' /mnt/etc/hosts 2>/dev/null; then
                    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$NAME/" /mnt/etc/hosts
                else
                    printf '127.0.1.1\t%s\n' "$NAME" >> /mnt/etc/hosts
                fi
                : > /mnt/etc/machine-id
                rm -f /mnt/var/lib/dbus/machine-id /mnt/etc/ssh/ssh_host_*
                umount /mnt
                say "host name $NAME written to $device"
            else
                fail "cannot mount $device to write the host name: $(tail -n 1 /tmp/mount.log)"
            fi
        fi
        sync
        report "done"
        finish
        """#

    /// `/kiln/udhcpc.script`: busybox udhcpc's hook, which configures the lease it got.
    package static let dhcpScript = #"""
        #!/bin/sh
        # udhcpc hook: $1 is the event; the lease comes in the environment.
        # shellcheck disable=SC2154  # interface, ip, mask, router: set by udhcpc
        case "$1" in
            deconfig)
                ip addr flush dev "$interface"
                ;;
            bound|renew)
                ip addr flush dev "$interface"
                ip addr add "$ip/${mask:-24}" dev "$interface"
                for gateway in $router; do
                    ip route add default via "$gateway" dev "$interface" 2>/dev/null
                    break
                done
                echo "kiln-agent: lease $ip/${mask:-24} on $interface from ${serverid:-?}"
                ;;
        esac
        exit 0
        """#
}
