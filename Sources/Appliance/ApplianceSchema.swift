import Foundation
import KilnSupport

/// The JSON Schema (draft 2020-12) of the description format, for editors. It states the shapes
/// the loader accepts; the loader remains the judge (it also checks inheritance, variables and
/// files).
package enum ApplianceSchema {
    /// The schema as pretty-printed JSON with sorted keys.
    package static var json: String {
        let encoder = KilnJSON.encoder()
        let data = (try? encoder.encode(schema)) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private static func string(_ description: String, pattern: String? = nil) -> JSONValue {
        var object: JSONValue = ["type": "string", "description": .string(description)]
        if let pattern { object["pattern"] = .string(pattern) }
        return object
    }

    private static func strings(_ description: String, pattern: String? = nil) -> JSONValue {
        var item: JSONValue = ["type": "string"]
        if let pattern { item["pattern"] = .string(pattern) }
        return ["type": "array", "description": .string(description), "items": item]
    }

    private static func object(_ properties: JSONValue, required: [String] = [], _ description: String) -> JSONValue {
        var result: JSONValue = [
            "type": "object", "description": .string(description), "properties": properties,
            "additionalProperties": false,
        ]
        if !required.isEmpty { result["required"] = JSONValue(required) }
        return result
    }

    private static var size: JSONValue {
        [
            "description":
                "A number of GB as BoxGrinder reads it (1 GB = 1024 MiB), or text with a unit: 512MiB, 4GiB, 1TiB, or SI 500MB, 8GB",
            "oneOf": [
                ["type": "number", "exclusiveMinimum": 0],
                ["type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*(MiB|GiB|TiB|MB|GB|TB|M|G|T)?$"],
            ],
        ]
    }

    private static var text: JSONValue { ["type": ["string", "number"]] }

    private static var schema: JSONValue {
        let partition = object(
            [
                "size": size,
                "type": [
                    "enum": JSONValue(FilesystemType.allCases.map(\.rawValue)),
                    "description": "Filesystem (default ext4; swap for swap)",
                ],
                "options": string("Mount options, as fstab takes them", pattern: "^[A-Za-z0-9_=,.:/-]+$"),
                "passphrase": string("LUKS passphrase: the partition is encrypted (kept as text: installers need it)"),
                "grow": ["type": "boolean", "description": "Take the rest of the disk"],
            ], "One partition")
        let repo = object(
            [
                "name": string("Repository name", pattern: "^[A-Za-z0-9#][A-Za-z0-9._+#-]*$"),
                "baseurl": string("http, https, ftp or file URL"),
                "mirrorlist": string("Mirror list URL (RPM targets)"),
                "ephemeral": ["type": "boolean", "description": "Used only while installing"],
                "cost": ["type": "integer", "minimum": 0, "description": "Lower is preferred (kickstart --cost)"],
                "suite": string("Debian suite (default: the release's code name)"),
                "components": strings("Debian components (default main)"),
                "key": string("Keyring file (relative to the description) or URL"),
            ], required: ["name"], "A package repository")
        let user = object(
            [
                "name": string("Login name", pattern: "^[a-z_][a-z0-9_-]*$"),
                "groups": strings("Supplementary groups", pattern: "^[a-z_][a-z0-9_-]*$"),
                "password": string("Password as text: stored only as a SHA-512 crypt hash"),
                "password_hash": string("Crypt hash", pattern: "^\\$"),
                "ssh_keys": strings("OpenSSH public keys"),
                "sudo": [
                    "description": "true: passwordless sudo; password: sudo that asks for the user's password",
                    "oneOf": [["type": "boolean"], ["const": "password"]],
                ],
            ], required: ["name"], "An account")
        let interface = object(
            [
                "interface": string("Interface name, or default for the first NIC"),
                "dhcp": ["type": "boolean"],
                "address": string("IPv4 address with prefix length", pattern: "^[0-9.]+/[0-9]+$"),
                "gateway": string("IPv4 gateway"),
                "dns": strings("Name servers"),
            ], required: ["interface"], "A network interface (DHCP unless address is given)")
        let commandList: JSONValue = ["type": "array", "items": ["type": "string", "minLength": 1]]
        var postProperties: JSONValue = ["base": commandList]
        for platform in Platform.allCases { postProperties[platform.rawValue] = commandList }

        let properties: JSONValue = [
            "name": string("Appliance name", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$"),
            "summary": string("One line about the appliance"),
            "version": ["type": "integer", "minimum": 0, "default": 1],
            "release": ["type": "integer", "minimum": 0, "default": 0],
            "os": object(
                [
                    "name": ["enum": JSONValue(OSName.allCases.map(\.rawValue))],
                    "version": text,
                    "password": string("Root password as text: stored only as a SHA-512 crypt hash"),
                    "password_hash": string("Root password as a crypt hash", pattern: "^\\$"),
                    "locale": string("Default en_US.UTF-8"),
                    "timezone": string("Default Etc/UTC"),
                    "keyboard": string("Default us"),
                ], "The operating system (name and version are required once the parents are merged)"),
            "hardware": object(
                [
                    "cpus": ["type": "integer", "minimum": 1],
                    "memory": [
                        "description": "MiB, or text with a unit",
                        "oneOf": [["type": "integer", "minimum": 1], ["type": "string"]],
                    ],
                    "partitions": [
                        "description":
                            "Mount point (/, /boot, swap, ...) to partition; or installer: install answers leave partitioning to the installer",
                        // Keywords apply by type: a map of partitions, or the text "installer".
                        "type": ["object", "string"], "additionalProperties": partition, "pattern": "^installer$",
                    ],
                    "firmware": [
                        "enum": JSONValue(BootFirmware.allCases.map(\.rawValue)), "default": "hybrid",
                        "description": "hybrid (BIOS and UEFI) by default; aarch64 boots with uefi only",
                    ],
                    "arch": [
                        "enum": JSONValue(Architecture.allCases.map(\.rawValue)), "default": "x86_64",
                        "description": "The machine the image is for; #ARCH# and #BASE_ARCH# follow it",
                    ],
                    "disk_size": size,
                ], "Virtual hardware and the disk layout"),
            "packages": strings("Package names; @group and -exclusion for RPM targets"),
            "package_options": strings(
                "RPM targets: %packages options: excludedocs, nocore, exclude-weakdeps, ignoremissing, inst-langs=LANGS",
                pattern: "^(excludedocs|nocore|exclude-weakdeps|ignoremissing|inst-langs=[A-Za-z0-9_.,:@-]+)$"),
            "repos": ["type": "array", "items": repo],
            "default_repos": ["type": "boolean", "default": true],
            "appliances": strings("Parents, looked up beside this file"),
            "files": [
                "type": "object", "description": "Target directory to local paths or URLs",
                "additionalProperties": ["type": "array", "items": ["type": "string"]],
            ],
            "post": object(postProperties, "Shell commands run in the target, per platform"),
            "variables": [
                "type": "object", "description": "#NAME# placeholders; built in: OS_NAME, OS_VERSION, ARCH, BASE_ARCH",
                "additionalProperties": text,
            ],
            "hostname": string("Host name of the target"),
            "users": ["type": "array", "items": user],
            "services": object(
                ["enable": strings("Units to enable"), "disable": strings("Units to disable")], "systemd units"),
            "network": ["type": "array", "items": interface, "description": "Default: DHCP on the first interface"],
            "kernel_args": string("Extra kernel command line"),
            "console": [
                "description": "Serial console (default ttyS0,115200; ttyAMA0,115200 for aarch64); false turns it off",
                "oneOf": [["type": "string", "pattern": "^tty[A-Za-z0-9]+(,[0-9]+)?$"], ["const": false]],
            ],
            "selinux": [
                "enum": JSONValue(SELinuxMode.allCases.map(\.rawValue)),
                "description": "SELinux mode of RPM targets (default enforcing; BoxGrinder .appl files: permissive)",
            ],
            "firewall": object(
                [
                    "enabled": ["type": "boolean", "default": true],
                    "services": strings(
                        "firewalld services let in (default [ssh])", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$"),
                    "ports": strings("Ports let in", pattern: "^[0-9]+(-[0-9]+)?/(tcp|udp)$"),
                ],
                "Firewall of RPM targets (default on with ssh; BoxGrinder .appl files: off)"),
            "end": [
                "enum": JSONValue(EndAction.allCases.map(\.rawValue)),
                "description": "What the installer does when done (default reboot)",
            ],
            "test": object(
                [
                    "expect": string("What kiln test waits for on the serial console"),
                    "timeout": ["type": "integer", "minimum": 1],
                ], "kiln test settings"),
        ]
        var root = object(properties, required: ["name"], "A kiln appliance description")
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        root["$id"] = "https://kiln.example.org/schema/appliance.json"
        root["title"] = "kiln appliance description"
        return root
    }
}
