#!/usr/bin/env bash
# Installs what kiln needs to build and what its tests use as judges, only where it is missing:
# Debian packages through apt, pykickstart (ksvalidator) from PyPI into .tools/venv.
# KILN_DEPS=build installs only what building kiln and running `kiln build` and `kiln test` need
# (the CI recipes in docs/ci use it): no test judges, no browser, no Python.
set -euo pipefail
cd "$(dirname "$0")/.."

# Swift cannot come from apt on Debian 12: check first, and say how to get it.
scripts/check-swift.sh

packages=(
  # C libraries kiln links
  libarchive-dev zlib1g-dev libyaml-dev libcrypt-dev pkg-config
  # the guest, images and their judges
  qemu-system-x86 qemu-utils ovmf ipxe-qemu xz-utils
  # arm64 images and lab hosts: qemu-system-aarch64 and AAVMF (UEFI for it)
  qemu-system-arm qemu-efi-aarch64
  # judges for the builder guest's cpio and ELF readers
  cpio binutils zstd
  # judge for the partition tables kiln describes and writes
  fdisk
  # judges for the FAT32 file systems kiln writes (fsck.fat; mcopy, mdir, mtype)
  dosfstools mtools
  # archive signatures; gnupg signs kiln's lab mirror, apt judges it
  gpgv debian-archive-keyring gnupg apt
  # PXE clients and network namespaces
  tftp-hpa atftp curl iproute2 nftables udhcpc
  # judges for install answers and exports
  debconf libvirt-clients libxml2-utils python3-venv
  # the lab's status page, opened as a person would (headless); kiln run's console, typed at in tmux
  chromium tmux
  # judge for the CI recipe's script (docs/ci)
  shellcheck
  # judge for the GRUB configuration kiln writes (grub-script-check)
  grub-common
  # benchmarks: GNU time for peak RSS
  time
)

if [ "${KILN_DEPS:-all}" = build ]; then
  packages=(
    libarchive-dev zlib1g-dev libyaml-dev libcrypt-dev pkg-config
    qemu-system-x86 qemu-utils ovmf xz-utils qemu-system-arm qemu-efi-aarch64
    gpgv debian-archive-keyring
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ "${KILN_DEPS:-all}" = build ] && exit 0

# pykickstart (ksvalidator) judges kickstarts; jsonschema and PyYAML judge `kiln schema`.
if [ ! -x .tools/venv/bin/ksvalidator ] || ! .tools/venv/bin/python -c 'import jsonschema, yaml' 2>/dev/null; then
  echo "install-deps: installing pykickstart, jsonschema and PyYAML into .tools/venv" >&2
  [ -x .tools/venv/bin/python ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q pykickstart jsonschema pyyaml
fi
