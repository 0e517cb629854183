#!/usr/bin/env bash
# Checks for the Swift 6 toolchain kiln is built with ($SWIFT, default `swift` on the PATH) and says
# what to install when it is missing or too old. Debian 12 has no Swift 6 package: the toolchain is
# the tarball for Debian 12 from swift.org.
set -uo pipefail
swift_cmd="${SWIFT:-swift}"

explain() {
  cat >&2 <<MSG
check-swift: $1
check-swift: kiln needs a Swift 6 toolchain (6.0 or newer; kiln is tested with 6.3.1).
check-swift: Download the toolchain for Debian 12 (x86_64) from swift.org's install page, then:
check-swift:     sudo mkdir -p /opt/swift
check-swift:     sudo tar -xzf swift-6.3.1-RELEASE-debian12.tar.gz -C /opt/swift --strip-components=1
check-swift:     export PATH=/opt/swift/usr/bin:\$PATH    # or: make SWIFT=/opt/swift/usr/bin/swift ...
check-swift: The toolchain also needs: apt-get install binutils git gnupg2 libc6-dev libcurl4-openssl-dev
check-swift:     libedit2 libgcc-12-dev libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev
check-swift:     libz3-dev pkg-config tzdata unzip zlib1g-dev
MSG
  exit 1
}

if ! command -v "$swift_cmd" >/dev/null 2>&1; then
  explain "'$swift_cmd' is not on the PATH ($PATH)"
fi
version_text=$("$swift_cmd" --version 2>&1) || explain "'$swift_cmd --version' failed: $version_text"
version=$(printf '%s\n' "$version_text" | sed -n 's/.*Swift version \([0-9][0-9.]*\).*/\1/p' | head -n 1)
major=${version%%.*}
if [ -z "$version" ] || [ "$major" -lt 6 ]; then
  explain "'$swift_cmd' is Swift ${version:-of an unknown version}, too old"
fi
echo "check-swift: Swift $version at $(command -v "$swift_cmd")" >&2
