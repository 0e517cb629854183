#!/usr/bin/env bash
# make fuzz: builds kiln-fuzz with libFuzzer and AddressSanitizer (its own build folder, .build/fuzz)
# and runs each target for FUZZ_SECONDS (default 60: nine minutes in all; longer by hand), starting
# from the seed corpus in Tests/Fuzz/corpus/TARGET. Inputs that crash land in Tests/Fuzz/crashes/;
# each becomes a regression test (FuzzCorpusTests replays every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-disk tftp dhcp http description lab kickstart packages archive}
"$swift" build --scratch-path .build/fuzz --product kiln-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
binary=.build/fuzz/debug/kiln-fuzz
mkdir -p Tests/Fuzz/crashes
status=0
for target in $targets; do
    work=.build/fuzz/corpus/$target
    mkdir -p "$work"
    echo "kiln-fuzz: $target for ${seconds}s"
    if ! KILN_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="Tests/Fuzz/crashes/$target-" -print_final_stats=1 "$work" "Tests/Fuzz/corpus/$target"; then
        echo "kiln-fuzz: $target found a crash (see Tests/Fuzz/crashes/)"
        status=1
    fi
done
exit "$status"
