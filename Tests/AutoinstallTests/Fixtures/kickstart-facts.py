"""Prints what pykickstart reads from a kickstart, as JSON, for kiln's import tests.

Usage: kickstart-facts.py KICKSTART VERSION
An %include of a file that does not exist is dropped first (kiln warns about it and reads on).
"""
import json
import os
import sys

from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion


def main():
    path, version = sys.argv[1], sys.argv[2]
    folder = os.path.dirname(os.path.abspath(path))
    lines = []
    with open(path) as source:
        for line in source:
            words = line.split()
            if len(words) == 2 and words[0] == "%include":
                target = words[1] if words[1].startswith("/") else os.path.join(folder, words[1])
                if not os.path.exists(target):
                    continue
                line = "%include " + target + "\n"
            lines.append(line)
    handler = makeVersion(version)
    parser = KickstartParser(handler)
    parser.readKickstartFromString("".join(lines))
    firewall = handler.firewall
    services = sorted(set(getattr(firewall, "services", []) or []))
    facts = {
        "packages": sorted(handler.packages.packageList),
        "groups": sorted(group.name for group in handler.packages.groupList),
        "environment": handler.packages.environment or "",
        "url": getattr(handler.url, "url", None) or getattr(handler.url, "mirrorlist", None) or "",
        "exclusions": sorted(handler.packages.excludedList)
        # pykickstart keeps the space of "-@ group" (not of "@ group"); dnf does not.
        + sorted("@" + group.name.strip() for group in handler.packages.excludedGroupList),
        "users": sorted((user.name, ",".join(user.groups)) for user in handler.user.userList),
        "services": [sorted(handler.services.enabled), sorted(handler.services.disabled)],
        "firewall": [bool(firewall.enabled), services, sorted(firewall.ports)],
        "selinux": handler.selinux.selinux,
        # Partitions kiln adds for the firmware are left out.
        "partitions": sorted(
            (part.mountpoint, part.size, part.fstype or "", bool(part.grow))
            for part in handler.partition.partitions
            if part.mountpoint not in ("biosboot", "/boot/efi") and part.fstype != "biosboot"
        ),
        "repos": sorted((repo.name, repo.baseurl or "", repo.mirrorlist or "") for repo in handler.repo.repoList),
        "end": handler.reboot.action,
        "post": [script.script.strip() for script in handler.scripts if script.type == 1 and script.inChroot],
    }
    json.dump(facts, sys.stdout, sort_keys=True)


main()
