#!/usr/bin/env python3
"""Counts what a `swift test` run did, from its output, and prints one plain line at the end:
`N passed, N failed, N skipped` (a test that failed because a requirement was missing under
KILN_REQUIRE_ALL=1 counts as failed; XCTest's summary lines are added when there are any)."""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TEST = re.compile(r"^\S*\s*Test (?!case |run )(.+?) (passed after|failed after|skipped|recorded an issue)")
XCTEST = re.compile(r"Executed (\d+) tests?, with (\d+) failures?")


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "-"
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8", errors="replace").read()
    passed, failed, skipped = 0, 0, 0
    issues, ended = set(), set()
    skipped_names = []
    xc_run, xc_failed = 0, 0
    for raw in text.splitlines():
        line = ANSI.sub("", raw).strip()
        match = TEST.match(line)
        if match:
            name, what = match.groups()
            if what == "passed after":
                passed += 1
                ended.add(name)
            elif what == "failed after":
                failed += 1
                ended.add(name)
            elif what == "skipped":
                skipped += 1
                skipped_names.append(line.split("Test ", 1)[1])
            else:
                issues.add(name)
            continue
        xc = XCTEST.search(line)
        if xc and "Selected tests" not in line:
            xc_run, xc_failed = max(xc_run, int(xc.group(1))), max(xc_failed, int(xc.group(2)))
    # A test stopped by a failing trait (a missing requirement) records an issue and never ends.
    failed += len(issues - ended)
    passed += xc_run - xc_failed
    failed += xc_failed
    for name in skipped_names:
        print(f"skipped: {name}")
    print(f"tests: {passed + failed} ran, {skipped} skipped")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
