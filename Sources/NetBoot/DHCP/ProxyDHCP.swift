import Foundation

/// What to hand each kind of network-booting client.
package struct BootLoaders: Sendable, Equatable {
    /// For BIOS PXE (architecture 0): pxelinux from Debian's pxelinux package.
    package var bios: String
    /// For x86-64 UEFI (architectures 7 and 9): GRUB's network image from grub-efi-amd64-signed, or iPXE.
    package var uefi64: String
    /// For ARM64 UEFI (architecture 11): GRUB's network image from grub-efi-arm64-signed; nil when the
    /// lab has no arm64 hosts (such clients then get no boot file, as other architectures).
    package var uefiARM64: String?
    /// For iPXE (user class "iPXE"): the URL of the boot script, so iPXE chains to HTTP.
    package var ipxeScript: String?

    package init(
        bios: String = "pxelinux.0", uefi64: String = "grubnetx64.efi", uefiARM64: String? = nil,
        ipxeScript: String? = nil
    ) {
        self.bios = bios
        self.uefi64 = uefi64
        self.uefiARM64 = uefiARM64
        self.ipxeScript = ipxeScript
    }
}

/// Reading a client's DHCP request as a network boot request (PXE 2.1, RFC 4578, iPXE's user class).
package struct NetworkBootRequest: Sendable, Equatable {
    /// RFC 4578 section 2.1 architecture types kiln tells apart.
    package enum Architecture: Sendable, Equatable {
        case bios
        case uefiIA32
        case uefiX64
        case uefiARM64
        case other(UInt16)

        init(_ code: UInt16) {
            switch code {
            case 0: self = .bios
            case 6: self = .uefiIA32
            case 7, 9: self = .uefiX64
            case 11: self = .uefiARM64
            default: self = .other(code)
            }
        }
    }

    package var mac: MACAddress?
    package var architecture: Architecture
    package var isIPXE: Bool
    /// Option 97 as sent (type byte and UUID), echoed in replies as PXE asks.
    package var machineID: [UInt8]?

    /// Nil when the request is not from a network-booting client (no "PXEClient" vendor class, not iPXE).
    package init?(_ message: DHCPMessage) {
        let options = message.options
        let isIPXE = options.userClasses.contains("iPXE")
        guard options.vendorClass?.hasPrefix("PXEClient") == true || isIPXE else { return nil }
        self.mac = message.macAddress
        self.architecture = Architecture(options.clientArchitecture ?? 0)
        self.isIPXE = isIPXE
        self.machineID = options.first(.clientMachineID)
    }

    /// Why `bootFile` gave nothing: for the log, so that a lab admin sees what to change.
    package var unservedReason: String {
        switch architecture {
        case .uefiARM64:
            return "its firmware is ARM64 UEFI (option 93 = 11), and no host in the lab file has 'arch: aarch64'"
        case .other(let code):
            return "kiln has no boot loader for its firmware (option 93 = \(code))"
        default:
            return "kiln has no boot loader for its firmware"
        }
    }

    /// The file this client should load next, or nil when kiln has nothing for its architecture.
    package func bootFile(_ loaders: BootLoaders) -> String? {
        if isIPXE, let script = loaders.ipxeScript {
            // `{mac}` in the script's URL names this client, so that iPXE needs no chain step.
            return script.replacingOccurrences(of: "{mac}", with: mac.map { "\($0)" } ?? "")
        }
        switch architecture {
        case .bios: return loaders.bios
        case .uefiX64: return loaders.uefi64
        case .uefiARM64: return loaders.uefiARM64
        default: return nil
        }
    }
}

/// proxyDHCP (PXE 2.1 section 2.2.4): beside a DHCP server that gives addresses, answer only the
/// network-boot part: "PXEClient", the next server and the boot file, and no address.
package enum ProxyDHCP {
    /// The reply to a DISCOVER (an OFFER, on port 67) or a REQUEST (an ACK, on port 4011), or nil when
    /// the message is not a boot request kiln answers.
    package static func reply(to request: DHCPMessage, server: IPv4Address, loaders: BootLoaders) -> DHCPMessage? {
        guard request.op == DHCPMessage.bootRequest, let boot = NetworkBootRequest(request),
            let file = boot.bootFile(loaders)
        else { return nil }
        let type: DHCPMessageType
        switch request.options.messageType {
        case .discover: type = .offer
        case .request, .inform: type = .ack
        default: return nil
        }
        var options = DHCPOptions()
        options.messageType = type
        options.setAddress(.serverIdentifier, server)
        options.setString(.vendorClass, "PXEClient")
        if let id = boot.machineID { options[.clientMachineID] = id }
        // PXE vendor option 6, discovery control = 8: take the boot file from this reply, no boot server
        // discovery; then the end of the vendor options.
        options[.vendorSpecific] = [6, 1, 8, 255]
        options.setString(.tftpServerName, server.description)
        options.setString(.bootFileName, file)
        var reply = DHCPMessage(
            op: DHCPMessage.bootReply, transactionID: request.transactionID,
            clientHardware: request.clientHardware, options: options)
        reply.hardwareType = request.hardwareType
        reply.hardwareLength = request.hardwareLength
        reply.flags = request.flags
        reply.relayAddress = request.relayAddress
        reply.serverAddress = server
        reply.bootFile = file
        return reply
    }
}
