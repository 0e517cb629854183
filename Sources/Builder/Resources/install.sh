#!/bin/sh
# kiln: install the target onto $KILN_TARGET. Inputs are files in /job (see InstallJob).
set -eu
. /job/settings.sh
T=/target
DISK=$KILN_TARGET
OUTPUT_USED=0  # bytes of the output disk holding results (the configured base)
[ -n "$DISK" ] || { kiln-event error "no target disk"; exit 1; }
export E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" SOURCE_DATE_EPOCH

part() { # part N -> /dev/vda N, naming as the kernel does
    echo "$DISK$1"
}
fsdev() { # the device that holds partition N's file system: its LUKS container's, once opened
    name=$(awk -v n="$1" '$1 == n { print $2 }' /job/crypt)
    if [ -n "$name" ]; then echo "/dev/mapper/$name"; else part "$1"; fi
}
encrypted() { # whether partition N is a LUKS container
    awk -v n="$1" '$1 == n { found = 1 } END { exit !found }' /job/crypt
}
prewritten() { # whether kiln wrote partition N's file system from the cached base
    case " $PREWRITTEN " in *" $1 "*) return 0 ;; esac
    return 1
}
if [ -n "$PREWRITTEN" ]; then
    # Every time kiln wrote is at or before SOURCE_DATE_EPOCH: what changes here must be later,
    # so that find -newerct finds it (see ChangedTree)
    while [ "$(date +%s)" -le "$SOURCE_DATE_EPOCH" ]; do usleep 100000; done
fi

# kiln wrote the partition table, and the FAT file systems outside LUKS, on the host: the
# kernel read the table when it found the disk
tries=0
while [ ! -b "$(part 1)" ] && [ "$tries" -lt 100 ]; do usleep 20000; tries=$((tries + 1)); done
[ -b "$(part 1)" ] || { kiln-event error "the target disk $DISK has no partitions"; exit 1; }

# LUKS2 with a fixed key-derivation cost (argon2id, 4 passes over 256 MiB, 2 lanes) rather than
# one benchmarked here: under TCG a benchmark would pick the weakest cost, and a larger memory
# cost would not open in a small guest. Each passphrase comes as a key file, never on a command
# line; discards pass through while building, so that trimmed space stays sparse.
open_encrypted() {
    mkdir -p /run/cryptsetup
    while read -r number name id; do
        /kiln/bin/cryptsetup luksFormat --batch-mode --type luks2 --uuid "$id" --label "$name" \
            --pbkdf argon2id --pbkdf-memory 262144 --pbkdf-parallel 2 --pbkdf-force-iterations 4 \
            --key-file "/job/keys/$number" "$(part "$number")"
        /kiln/bin/cryptsetup open --allow-discards --key-file "/job/keys/$number" "$(part "$number")" "$name"
    done < /job/crypt
}
close_encrypted() {
    while read -r number name id; do
        /kiln/bin/cryptsetup close "$name"
    done < /job/crypt
}

make_filesystems() {
    while read -r number fs id label; do
        prewritten "$number" && continue  # kiln wrote it from the base
        dev=$(fsdev "$number")
        case "$fs" in
            ext4|ext3) /kiln/bin/mke2fs -q -F -t "$fs" -U "$id" -E "hash_seed=$id,lazy_itable_init=0,lazy_journal_init=0" -L "$label" "$dev" ;;
            xfs) /kiln/bin/mkfs.xfs -q -f -m "uuid=$id" -L "$(echo "$label" | cut -c1-12)" "$dev" ;;
            btrfs) /kiln/bin/mkfs.btrfs -q -f -U "$id" -L "$label" "$dev" > /dev/null ;;
            vfat) encrypted "$number" || continue  # kiln made it on the host
                /kiln/bin/mkfs.fat -F 32 -i "$id" -n "$(echo "$label" | tr a-z A-Z)" "$dev" > /dev/null 2>&1 ;;
            swap) : ;;  # made from the target's mkswap, which takes a UUID
        esac
    done < /job/filesystems
}
mount_target() {
    while read -r number fs mountpoint; do
        mkdir -p "$T$mountpoint"
        mount -t "$fs" "$(fsdev "$number")" "$T$mountpoint"
    done < /job/mounts
}
mount_system() {
    mkdir -p "$T/proc" "$T/sys" "$T/dev" "$T/run" "$T/tmp"
    mount -t proc proc "$T/proc"
    mount -t sysfs sysfs "$T/sys"
    mount -t devtmpfs devtmpfs "$T/dev"
    mkdir -p "$T/dev/pts" && mount -t devpts devpts "$T/dev/pts"
    mount -t tmpfs tmpfs "$T/run"
    chmod 1777 "$T/tmp"
    # grub-mkconfig writes root=UUID= only when udev's link exists; there is no udev here
    while read -r number fs id; do
        mkdir -p /dev/disk/by-uuid "$T/dev/disk/by-uuid"
        ln -sf "$(fsdev "$number")" "$T/dev/disk/by-uuid/$id"
    done < /job/uuids
}
# The configured base is a tar made and read by the builder's GNU tar, which keeps owners,
# modes, times, hard links, holes, ACLs and extended attributes (file capabilities): the tree
# it gives back is the tree it was made from.
base_extract() {
    /kiln/bin/tar -x -f "$1" -C "$T" --numeric-owner --same-owner --same-permissions --xattrs \
        --xattrs-include='*' --acls --read-full-records
}

if [ -s /job/crypt ]; then
    kiln-event step "encrypting with LUKS2: $(awk '{ print $2 }' /job/crypt | tr '\n' ' ')"
    open_encrypted
fi
kiln-event step "making file systems"
make_filesystems
kiln-event step "mounting"
mount_target

in_target() {
    chroot "$T" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true INITRD=No \
        SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"
}

if [ "$BASE" = use ] && [ -n "$PREWRITTEN" ]; then
    kiln-event info "the configured base of $PACKAGE_COUNT packages (cached) is on the disk already"
    mount_system
elif [ "$BASE" = use ]; then
    kiln-event step "writing the configured base of $PACKAGE_COUNT packages (cached)"
    kiln-extent base.tar | base_extract -
    mount_system
else
    if [ -n "$PREWRITTEN" ]; then
        kiln-event info "the $PACKAGE_COUNT unpacked packages are on the disk already"
    else
        kiln-event step "writing $PACKAGE_COUNT packages"
        # streamed from the input disk: the unpacked packages never sit in the guest's memory
        kiln-extent root.tar | tar -x -f - -C "$T"
    fi
    mount_system

    # No service starts while packages are configured.
    printf '#!/bin/sh\nexit 101\n' > "$T/usr/sbin/policy-rc.d"
    chmod 755 "$T/usr/sbin/policy-rc.d"
    # update-initramfs runs once, at the end, not once per trigger
    cp /job/initramfs-hold "$T/usr/sbin/kiln-update-initramfs-hold"
    chmod 755 "$T/usr/sbin/kiln-update-initramfs-hold"
    in_target dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
    ln -s kiln-update-initramfs-hold "$T/usr/sbin/update-initramfs"

    kiln-event step "running the packages' pre-install scripts"
    while read -r key; do
        pkg=${key%%:*}
        in_target env DPKG_MAINTSCRIPT_NAME=preinst DPKG_MAINTSCRIPT_PACKAGE="$pkg" DPKG_MAINTSCRIPT_ARCH="$ARCH" \
            DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 DPKG_ROOT= DPKG_ADMINDIR=/var/lib/dpkg \
            "/var/lib/dpkg/info/$key.preinst" install
    done < /job/preinst-order

    kiln-event step "configuring $PACKAGE_COUNT packages"
    # dpkg says on its status descriptor which package it configures: counted every 2 s. The
    # counter stops by itself (killed mid-event it could leave a gap in the events' numbers).
    : > /tmp/dpkg-status
    (
        while sleep 2 && [ ! -e /tmp/dpkg-done ]; do
            kiln-event progress "completed=$(grep -c '^processing: configure:' /tmp/dpkg-status) total=$PACKAGE_COUNT"
        done
    ) &
    counter=$!
    configured=0
    in_target dpkg --configure -a --force-unsafe-io --no-triggers --status-fd 3 3> /tmp/dpkg-status ||
        configured=$?
    touch /tmp/dpkg-done
    wait "$counter" || true
    [ "$configured" = 0 ] || exit "$configured"
    in_target dpkg --triggers-only -a --force-unsafe-io

    if [ "$BASE" = store ]; then
        kiln-event step "saving the configured base"
        umount "$T/dev/pts" "$T/dev" "$T/run" "$T/sys" "$T/proc"
        # lost+found belongs to each file system, and the ESP is filled later (grub-install)
        echo "lost+found" > /tmp/base-exclude
        while read -r number fs mountpoint; do
            [ "$fs" = vfat ] || continue
            [ -z "$(ls -A "$T$mountpoint")" ] || BASE=esp
            echo ".$mountpoint" >> /tmp/base-exclude
        done < /job/mounts
    fi
    if [ "$BASE" = store ]; then
        /kiln/bin/tar -c -f "$KILN_OUTPUT" -C "$T" --format=posix --pax-option=delete=atime,delete=ctime \
            --sort=name --numeric-owner --xattrs --xattrs-include='*' --acls --sparse \
            --exclude-from=/tmp/base-exclude --totals . 2> /tmp/base.log || { cat /tmp/base.log; exit 1; }
        size=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' /tmp/base.log)
        [ -n "$size" ] || { cat /tmp/base.log; exit 1; }
        kiln-event base "size=$size"
        OUTPUT_USED=$size
        if [ "$STOP_AFTER_BASE" = 1 ]; then
            # The host goes on from the base, in a run of its own (the disk here is dropped)
            sync
            kiln-event result "base saved"
            exit 0
        fi
    else
        # No base to lay the changes over: the file systems go back whole
        PREWRITTEN=
        if [ "$BASE" = esp ]; then kiln-event info "the configured base is not kept: packages wrote to the ESP"; fi
    fi
    [ -d "$T/proc/self" ] || mount_system
fi

kiln-event step "configuring the system"
while read -r number fs id label; do
    [ "$fs" = swap ] && in_target mkswap -U "$id" -L "$label" "$(fsdev "$number")" > /dev/null
done < /job/filesystems
# kiln laid the description's files over a prewritten base on the host already
[ "$OVERLAID" = 1 ] || tar -x -f /job/overlay.tar -C "$T"
in_target sh /kiln/configure.sh
rm -rf "$T/kiln"

rm -f "$T/usr/sbin/update-initramfs"
in_target dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
rm -f "$T/usr/sbin/kiln-update-initramfs-hold"
install_grub() {
    if [ "$ARCH" = arm64 ]; then
        # arm64 boots with UEFI only; the removable path (EFI/BOOT/BOOTAA64.EFI) needs no NVRAM entry
        in_target grub-install --target=arm64-efi --efi-directory=/boot/efi --removable --no-nvram
        return
    fi
    if [ "$FIRMWARE" != uefi ]; then
        in_target grub-install --target=i386-pc --no-floppy "$DISK" || return 1
    fi
    if [ "$FIRMWARE" != bios ]; then
        in_target grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram || return 1
    fi
}
# The initramfs follows from the packages (the base's key) and from what this description adds
# that mkinitramfs reads: the host compares that (InitramfsInputs) with what the cached one was
# made from, and sends it when they agree: update-initramfs would write the same bytes.
if [ "$INITRAMFS" = cached ]; then
    kiln-event step "writing the cached initramfs and installing the boot loader"
    kiln-extent initramfs.tar | tar -x -f - -C "$T"
    # mkinitramfs works in a directory it makes and removes in /var/tmp, which changes that
    # directory's time: so does this, or the image would differ from one made anew there
    touch "$T/var/tmp"
    install_grub > /tmp/grub.log 2>&1 || { cat /tmp/grub.log; exit 1; }
else
    kiln-event step "making the initramfs and installing the boot loader"
    # zstd -3 instead of initramfs-tools' -9: under TCG that is over a minute less, for an
    # initramfs about 15% larger. Only this run's environment says so: the target's own
    # configuration, which its kernel upgrades use, stays Debian's. GRUB's install needs no
    # initramfs, so it runs on the guest's other CPU meanwhile; update-grub waits for both
    # (it lists the initramfs it finds).
    in_target env COMPRESSLEVEL=3 update-initramfs -c -k all > /tmp/initramfs.log 2>&1 &
    initramfs=$!
    if ! install_grub > /tmp/grub.log 2>&1; then
        wait "$initramfs" || true
        cat /tmp/grub.log
        exit 1
    fi
    wait "$initramfs" || { cat /tmp/initramfs.log; exit 1; }
    if [ -n "$KILN_OUTPUT" ]; then
        # kept beside the base, after it on the output disk (MiB-aligned)
        (cd "$T" && tar -c -f /tmp/initramfs.tar boot/initrd.img-*)
        offset=$(( (OUTPUT_USED + 1048575) / 1048576 ))
        dd if=/tmp/initramfs.tar of="$KILN_OUTPUT" bs=1048576 seek="$offset" conv=notrunc 2>/dev/null
        kiln-event initramfs "offset=$((offset * 1048576)) size=$(stat -c %s /tmp/initramfs.tar)"
        rm -f /tmp/initramfs.tar
    fi
fi
kiln-event step "writing GRUB's configuration"
# kiln wrote it from the kernels the packages install (GrubConfiguration): taken when /boot
# holds exactly those kernels, each with its initramfs; otherwise update-grub writes it
kernels_in_target() (
    cd "$T/boot" || exit 0
    for kernel in vmlinuz-*; do
        [ -f "$kernel" ] || continue
        release=${kernel#vmlinuz-}
        [ -f "initrd.img-$release" ] || release="$release (no initramfs)"
        printf '%s\n' "$release"
    done | LC_ALL=C sort
)
if [ -f /job/grub.cfg ] && [ "$(kernels_in_target)" = "$(cat /job/kernels)" ]; then
    mkdir -p "$T/boot/grub"
    cp /job/grub.cfg "$T/boot/grub/grub.cfg"
    chmod 444 "$T/boot/grub/grub.cfg"
else
    [ -f /job/grub.cfg ] && kiln-event info "update-grub writes GRUB's configuration: /boot holds $(kernels_in_target | tr '\n' ' ')"
    in_target update-grub > /tmp/grub.log 2>&1 || { cat /tmp/grub.log; exit 1; }
fi

if [ -s /job/post.list ]; then
    kiln-event step "running post commands"
    n=0
    while IFS= read -r name; do
        n=$((n + 1))
        kiln-event info "post $n: $(head -c 200 "/job/post/$name" | head -n 1)"
        cp "/job/post/$name" "$T/tmp/kiln-post"
        if ! in_target /bin/sh /tmp/kiln-post; then
            kiln-event error "post command $n failed: $(head -n 1 "/job/post/$name")"
            exit 1
        fi
        rm -f "$T/tmp/kiln-post"
    done < /job/post.list
fi

kiln-event step "cleaning up"
rm -f "$T/usr/sbin/policy-rc.d"
rm -rf "$T/var/cache/apt/"*.bin "$T/var/lib/apt/lists/"* "$T/var/cache/debconf/"*-old "$T/var/lib/dpkg/"*-old
rm -f "$T/etc/ssh/ssh_host_"*
: > "$T/etc/machine-id"
rm -f "$T/var/lib/dbus/machine-id" "$T/var/lib/systemd/random-seed"
# ldconfig's auxiliary cache records the libraries' inode numbers and change times: only a
# cache, and the one file that differed between two builds once the file systems were rewritten
rm -f "$T/var/cache/ldconfig/aux-cache"
find "$T/var/log" -type f -exec sh -c ': > "$1"' _ {} \;
rm -rf "$T/tmp/"* "$T/var/tmp/"*
rm -rf "$T/dev/disk"

umount "$T/dev/pts" "$T/dev" "$T/run" "$T/sys" "$T/proc"
# What changed on each file system kiln wrote from the base: every entry whose change time is
# past SOURCE_DATE_EPOCH (every time kiln wrote is at or before it, and the clock was past it
# before anything was touched), found by the target's GNU find from the inodes alone, in GNU
# tar's --sort=name order ("/" sorts first). GNU tar's own --newer opens every file to look,
# which costs a disk read per file under TCG.
# Each file system kiln wrote from the base goes back as its changes (see ChangedTree), read
# now, while what the guest wrote is in its page cache: through a bind mount, which shows the
# directories below other file systems' mounts as a tar of the whole tree would.
if [ -n "$PREWRITTEN" ]; then
    [ -n "$KILN_FS" ] || { kiln-event error "no file system disk (virtio serial kiln-fs)"; exit 1; }
    kiln-event step "sending the changes to the host"
    mkdir -p /kiln-bind
fi
while read -r number fs mountpoint; do
    prewritten "$number" || continue
    in_target sh -c 'cd "$1" && find . -xdev -newerct "@$2" -print0' changed "$mountpoint" \
        "$SOURCE_DATE_EPOCH.5" > /tmp/changed.found
    # The directories other file systems are mounted on, which find saw as those file systems'
    # roots: tar reads them below the mounts, as a whole tree's tar does
    while read -r parent dir; do
        if [ "$parent" = "$number" ]; then printf '%s\000' "$dir" >> /tmp/changed.found; fi
    done < /job/nested
    tr "/" "\001" < /tmp/changed.found | sort -z -u | tr "\001" "/" > "/tmp/changed.$number"
    found=$(tr -cd '\000' < "/tmp/changed.$number" | wc -c)
    if [ -s /tmp/changed.found ] && [ "$found" -eq 0 ]; then
        kiln-event error "cannot sort the changes of partition $number"
        exit 1
    fi
    kiln-event info "partition $number: $found entries changed over the base"
    mount -o bind "$T$mountpoint" /kiln-bind
    (cd /kiln-bind && find . -xdev -print0) > /tmp/tree.list
    tries=0
    while [ ! -b "$KILN_FS$number" ] && [ "$tries" -lt 100 ]; do usleep 20000; tries=$((tries + 1)); done
    /kiln/bin/tar -c -f "$KILN_FS$number" -C /kiln-bind --format=posix \
        --pax-option=delete=atime,delete=ctime --numeric-owner --xattrs --xattrs-include='*' --sparse \
        --no-recursion --null -T "/tmp/changed.$number" --totals 2> /tmp/tree.log ||
        { cat /tmp/tree.log; kiln-event error "cannot write partition $number's changes"; exit 1; }
    umount /kiln-bind
    size=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' /tmp/tree.log)
    [ -n "$size" ] || { cat /tmp/tree.log; exit 1; }
    # the list of every path after the tar, MiB-aligned
    offset=$(( (size + 1048575) / 1048576 ))
    dd if=/tmp/tree.list of="$KILN_FS$number" bs=1048576 seek="$offset" conv=notrunc 2>/dev/null
    kiln-event tree "partition=$number list_offset=$((offset * 1048576)) list_size=$(stat -c %s /tmp/tree.list)"
done < /job/mounts
kiln-event step "trimming free space"
sort -r -k3 /job/mounts | while read -r number fs mountpoint; do
    # plain ext file systems are written anew below; those in a LUKS container are not
    case "$fs" in ext4|ext3) encrypted "$number" || continue ;; esac
    fstrim "$T$mountpoint" 2>/dev/null || true
done
sort -r -k3 /job/mounts | while read -r number fs mountpoint; do
    umount "$T$mountpoint"
done
close_encrypted

# The kernel's ext4 places blocks and stamps inodes as timing has it, so each plain ext file
# system is written anew from its finished tree onto the same partition of the kiln-fs disk:
# an ext4 one by the host (its tree goes there as a tar, sorted, with owners, modes, holes and
# extended attributes: `tree N`), an ext3 one, or any without the builder's tar, here by
# mke2fs -d (sorted, fixed UUID and hash seed, its own times from E2FSPROGS_FAKE_TIME).
# An encrypted file system stays as the kernel wrote it (its container is random anyway); a
# prewritten one's changes went back above.
to_send=
while read -r number fs _ _; do
    case "$fs" in ext4|ext3) ;; *) continue ;; esac
    encrypted "$number" || prewritten "$number" || to_send="$to_send $number "
done < /job/filesystems
if [ -n "$to_send" ]; then
    kiln-event step "sending the file systems' trees to the host"
    FSDISK=$KILN_FS
    [ -n "$FSDISK" ] || { kiln-event error "no file system disk (virtio serial kiln-fs)"; exit 1; }
    mkdir -p /kiln-source
fi
while read -r number fs id label; do
    case "$to_send" in *" $number "*) ;; *) continue ;; esac
    tries=0
    while [ ! -b "$FSDISK$number" ] && [ "$tries" -lt 100 ]; do usleep 20000; tries=$((tries + 1)); done
    mount -t "$fs" -o ro "$(part "$number")" /kiln-source
    used=$(df -k /kiln-source | awk 'NR == 2 { print $3 }')
    read -r _ _ _ _ _ _ before _ < "/sys/block/${FSDISK##*/}/stat"
    if [ "$fs" = ext4 ] && [ -x /kiln/bin/tar ]; then
        /kiln/bin/tar -c -f "$FSDISK$number" -C /kiln-source --format=posix \
            --pax-option=delete=atime,delete=ctime --sort=name --numeric-owner --xattrs \
            --xattrs-include='*' --sparse . 2> /tmp/tree.log &
    else
        /kiln/bin/mke2fs -q -F -t "$fs" -U "$id" -E "hash_seed=$id,lazy_itable_init=0,lazy_journal_init=0" \
            -L "$label" -d /kiln-source "$FSDISK$number" 2> /tmp/tree.log &
    fi
    pid=$!
    # Both are silent: the KiB written so far (sectors, field 7 of the disk's stat) show progress
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        read -r _ _ _ _ _ _ written _ < "/sys/block/${FSDISK##*/}/stat"
        done_kib=$(((written - before) / 2))
        if [ "$done_kib" -gt "$used" ]; then done_kib=$used; fi
        kiln-event progress "completed=$done_kib total=$used"
    done
    wait "$pid" || { cat /tmp/tree.log; kiln-event error "cannot write partition $number's tree"; exit 1; }
    if [ "$fs" = ext4 ] && [ -x /kiln/bin/tar ]; then
        kiln-event tree "partition=$number"
    fi
    umount /kiln-source
done < /job/filesystems
sync
kiln-event result "installed"
