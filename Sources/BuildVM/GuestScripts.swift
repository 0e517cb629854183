/// The shell scripts of the builder guest, run by busybox's `sh`.
///
/// The guest speaks to the host in lines `KILN:<seq>:<event>:<payload>` on the serial console,
/// `seq` counting from 1 without gaps, the payload a text or a record of `name=value` fields (see
/// `GuestMessage`). Kernel messages are turned down to
/// emergencies once `/init` runs, and a line whose number is not the next one is only a log line.
enum GuestScripts {
    /// The disk serial numbers that tell the guest which virtio disk is which (`/sys/block/vdX/serial`).
    static let targetSerial = "kiln-target"
    static let inputSerial = "kiln-input"
    /// A second writable disk, where a job writes file systems the host moves into the target.
    package static let fileSystemSerial = "kiln-fs"
    /// A writable disk the job may write results to, such as an archive of the configured base.
    static let outputSerial = "kiln-output"

    /// What the guest prints every 10 s while its job runs (sequence 0: never a protocol message).
    static let heartbeatLine = "KILN:0:alive:"

    /// Where the recipe's programs are linked by name. Debian's busybox runs its own applet for a
    /// bare command name even when PATH holds the real program, so jobs use these paths.
    static let programDirectory = "kiln/bin"

    /// What PID 1 of kiln's guests does first: the kernel's file systems, busybox's applets, a quiet
    /// console that takes all output.
    static let pidOneSetup = #"""
        /bin/busybox mount -t proc proc /proc
        /bin/busybox mount -t sysfs sysfs /sys
        /bin/busybox mount -t devtmpfs devtmpfs /dev
        /bin/busybox mount -t tmpfs tmpfs /run
        /bin/busybox mount -t tmpfs tmpfs /tmp
        /bin/busybox --install -s /bin
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp LC_ALL=C
        echo 1 > /proc/sys/kernel/printk
        exec </dev/null >/dev/console 2>&1
        """#

    /// `/init`: PID 1. Mounts what programs need, loads the modules listed in
    /// `/etc/kiln/modules`, unpacks the job (a newc cpio stream) from the input disk into `/job`,
    /// runs `/job/run.sh` with `KILN_TARGET`, `KILN_INPUT`, `KILN_FS` and `KILN_OUTPUT` naming the
    /// disks (empty when there is none), reports its exit status, and powers off.
    static let initScript = #"""
        #!/bin/busybox sh
        # kiln builder guest, PID 1. Never exits: the kernel would panic; it powers off instead.
        /bin/busybox mkdir -p /proc /sys /dev /tmp /run /job /target
        \#(pidOneSetup)

        uptime() { read -r up _ < /proc/uptime; echo "$up"; }
        finish() {
            sync
            # The last message must leave the serial line before the power goes, however slowly a
            # loaded host runs the guest: stty setting the console's own settings again waits for its
            # output to drain (tcsetattr with TCSADRAIN).
            stty -F /dev/console "$(stty -F /dev/console -g)" 2>/dev/null || usleep 500000
            poweroff -f
            sleep 60
        }
        fail() {
            kiln-event error "$*"
            finish
        }

        kiln-event init "uptime=$(uptime)"

        while read -r module; do
            [ -n "$module" ] || continue
            insmod "/$module" || fail "cannot load $module"
        done < /etc/kiln/modules
        kiln-event modules "uptime=$(uptime)"

        # virtio_blk probes its disks while insmod runs; the retries only cover a slow probe.
        find_disk() {
            tries=0
            while [ "$tries" -lt "$2" ]; do
                for dir in /sys/block/vd*; do
                    serial=
                    [ -r "$dir/serial" ] && read -r serial < "$dir/serial"
                    if [ "$serial" = "$1" ] && [ -b "/dev/${dir##*/}" ]; then
                        echo "/dev/${dir##*/}"
                        return 0
                    fi
                done
                usleep 20000
                tries=$((tries + 1))
            done
            return 1
        }
        KILN_INPUT=$(find_disk \#(inputSerial) 250) || fail "no input disk (virtio serial \#(inputSerial))"
        KILN_TARGET=$(find_disk \#(targetSerial) 1) || KILN_TARGET=
        KILN_FS=$(find_disk \#(fileSystemSerial) 1) || KILN_FS=
        KILN_OUTPUT=$(find_disk \#(outputSerial) 1) || KILN_OUTPUT=
        export KILN_INPUT KILN_TARGET KILN_FS KILN_OUTPUT

        cd /job || fail "no /job directory"
        cpio -i -d -m < "$KILN_INPUT" 2>/tmp/cpio.log || fail "cannot unpack the job from $KILN_INPUT: $(cat /tmp/cpio.log)"
        [ -f /job/run.sh ] || fail "the input disk holds no run.sh"
        kiln-event job "uptime=$(uptime)"

        # A heartbeat that the host's watchdog hears while a long step prints nothing: a loaded host
        # makes TCG slow, not the guest dead. The host keeps these lines out of its logs' tails.
        ( while sleep 10; do echo "\#(heartbeatLine)" > /dev/console; done ) &
        heartbeat=$!
        sh /job/run.sh
        status=$?
        kill "$heartbeat" 2>/dev/null
        kiln-event exit "status=$status"
        finish
        """#

    /// `/bin/kiln-extent NAME`: writes to standard output a file the host placed on the input disk
    /// after the cpio stream (see `InputDisk`), straight from the block device.
    static let extentScript = #"""
        #!/bin/sh
        # kiln-extent NAME: a file from the input disk, outside the cpio stream, to stdout.
        # Whole MiBs, then whole sectors, then single bytes: busybox's `head -c` copies a byte at a
        # time, which under TCG made writing a root file system tar take minutes.
        while read -r offset size name; do
            [ "$name" = "$1" ] || continue
            mib=1048576
            mibs=$((size / mib))
            sectors=$(((size % mib) / 512))
            bytes=$((size % 512))
            dd if="$KILN_INPUT" bs=$mib skip=$((offset / mib)) count=$mibs 2>/dev/null
            tail=$((offset + mibs * mib))
            [ "$sectors" -eq 0 ] || dd if="$KILN_INPUT" bs=512 skip=$((tail / 512)) count=$sectors 2>/dev/null
            tail=$((tail + sectors * 512))
            [ "$bytes" -eq 0 ] || dd if="$KILN_INPUT" bs=1 skip=$tail count=$bytes 2>/dev/null
            exit 0
        done < /job/kiln-extents
        echo "kiln-extent: no extent named $1" >&2
        exit 1
        """#

    /// `/bin/kiln-event EVENT [PAYLOAD...]`: one protocol line on the console. Job scripts call it
    /// too; the counter lives in `/run` so that every process shares it.
    static let eventScript = #"""
        #!/bin/sh
        # kiln-event EVENT [PAYLOAD...]: report to the host as KILN:<seq>:<event>:<payload>.
        event=$1
        shift
        seq=$(( $(cat /run/kiln.seq 2>/dev/null || echo 0) + 1 ))
        echo "$seq" > /run/kiln.seq
        payload=$(printf '%s' "$*" | tr '\n\r' '  ')
        # After a newline: a program's unfinished line (dpkg's "Creating SSH2 RSA key; ...") on the
        # console would otherwise hide the event from the host, which reads only lines that start with it.
        printf '\nKILN:%s:%s:%s\n' "$seq" "$event" "$payload" > /dev/console
        """#
}
