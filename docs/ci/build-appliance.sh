#!/usr/bin/env bash
# The steps a CI job runs to build and check one appliance with kiln, the same on every CI service:
# the GitHub Actions workflow and the GitLab CI file beside this script call it, after restoring
# $KILN_CACHE from their cache keyed by the lockfile.
#
#   docs/ci/build-appliance.sh DESCRIPTION [OUTPUT_DIR]
#
# - KVM when the runner has a usable /dev/kvm, TCG otherwise: kiln's `--accel auto` decides and
#   remembers the answer in $KILN_CACHE; the log says which it used.
# - With DESCRIPTION.lock committed, the build is `--locked` (the same packages every run, and the
#   cache key the workflow uses); without one, kiln resolves and writes it, and the job keeps it
#   with the outputs so that it can be committed.
# - The image is booted to its login prompt (`kiln test`), under SeaBIOS and, when the description
#   boots UEFI too, under OVMF.
# - `--json` events go to OUTPUT_DIR/events.jsonl for the CI's own reporting; the human-readable
#   progress goes to the job's log.
# Settings, all optional: KILN (the kiln binary; default kiln on the PATH), KILN_FORMAT (the
# outputs, as `kiln build --format`; qcow2 must be among them, it is what boots), KILN_FIRMWARE
# (default "bios uefi"), KILN_TEST_TIMEOUT (seconds per boot, default 600: TCG on a busy runner).
set -euo pipefail

description=${1:?usage: build-appliance.sh DESCRIPTION [OUTPUT_DIR]}
name=$(basename "${description%.*}")
output=${2:-out/$name}
kiln=${KILN:-kiln}
firmware=${KILN_FIRMWARE:-bios uefi}
timeout=${KILN_TEST_TIMEOUT:-600}

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    echo "build-appliance: /dev/kvm is usable by $(id -un); kiln tries KVM first"
else
    echo "build-appliance: no usable /dev/kvm; kiln builds under TCG (software emulation, slower)"
fi

options=()
if [ -f "$description.lock" ]; then
    options+=(--locked)
fi
if [ -n "${KILN_FORMAT:-}" ]; then
    options+=(--format "$KILN_FORMAT")
fi
locked=$([ -f "$description.lock" ] && echo yes || echo no)

events=$(mktemp)
trap 'rm -f "$events"' EXIT
status=0
"$kiln" build "$description" -o "$output" "${options[@]}" --json > "$events" || status=$?
mkdir -p "$output"
mv "$events" "$output/events.jsonl"
trap - EXIT
if [ "$status" -ne 0 ]; then
    grep '"event" *: *"error"' "$output/events.jsonl" >&2 || true
    echo "build-appliance: kiln build failed (exit $status); see $output/build.log" >&2
    exit "$status"
fi
if [ "$locked" = no ] && [ -f "$description.lock" ]; then
    cp "$description.lock" "$output/"
    echo "build-appliance: wrote $description.lock; commit it for locked, cached builds"
fi

image="$output/$name.qcow2"
for one in $firmware; do
    "$kiln" test "$image" --firmware "$one" --timeout "$timeout"
done
echo "build-appliance: $image boots ($firmware)"
