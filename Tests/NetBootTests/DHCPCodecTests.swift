import KilnTestSupport
import Logging
import NIOCore
import Testing

@testable import NetBoot

@Suite("DHCP messages and proxyDHCP")
struct DHCPCodecTests {
    /// A DISCOVER as PXE firmware sends it, written byte by byte from RFC 2131 section 2.
    private func pxeDiscover(architecture: UInt16, userClass: [UInt8]? = nil) -> [UInt8] {
        var bytes: [UInt8] = [1, 1, 6, 0, 0xDE, 0xAD, 0xBE, 0xEF, 0, 4, 0x80, 0]
        bytes += [UInt8](repeating: 0, count: 16)  // ciaddr yiaddr siaddr giaddr
        bytes += [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] + [UInt8](repeating: 0, count: 10)
        bytes += [UInt8](repeating: 0, count: 64 + 128)
        bytes += [99, 130, 83, 99]
        bytes += [53, 1, 1]
        let vendor = Array("PXEClient:Arch:00007:UNDI:003016".utf8)
        bytes += [60, UInt8(vendor.count)] + vendor
        bytes += [93, 2, UInt8(architecture >> 8), UInt8(architecture & 0xFF)]
        bytes += [97, 17, 0] + Array(1...16)
        if let userClass { bytes += [77, UInt8(userClass.count)] + userClass }
        bytes += [55, 4, 1, 3, 43, 60, 255]
        return bytes
    }

    @Test func decodesAPXEDiscover() throws {
        let message = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: 7)))
        #expect(message.transactionID == 0xDEAD_BEEF)
        #expect(message.flags == 0x8000)
        #expect(message.seconds == 4)
        #expect(message.macAddress?.description == "52:54:00:12:34:56")
        #expect(message.macAddress?.pxelinuxName == "01-52-54-00-12-34-56")
        #expect(message.options.messageType == .discover)
        #expect(message.options.clientArchitecture == 7)
        let boot = try #require(NetworkBootRequest(message))
        #expect(boot.architecture == .uefiX64)
        #expect(!boot.isIPXE)
    }

    @Test func architectureChoosesTheBootLoader() throws {
        let loaders = BootLoaders(
            bios: "pxelinux.0", uefi64: "grubnetx64.efi", ipxeScript: "http://192.0.2.1/boot.ipxe")
        let server = try #require(IPv4Address("192.0.2.1"))
        for (arch, file) in [(UInt16(0), "pxelinux.0"), (7, "grubnetx64.efi"), (9, "grubnetx64.efi")] {
            let request = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: arch)))
            let reply = try #require(ProxyDHCP.reply(to: request, server: server, loaders: loaders))
            #expect(reply.bootFile == file)
            // What the firmware reads back from the wire.
            let decoded = try DHCPMessage.decode(reply.encoded())
            #expect(decoded.op == 2 && decoded.transactionID == 0xDEAD_BEEF)
            #expect(decoded.options.messageType == .offer)
            #expect(decoded.yourAddress == .zero, "proxyDHCP gives no address")
            #expect(decoded.serverAddress == server)
            #expect(decoded.bootFile == file)
            #expect(decoded.options.vendorClass == "PXEClient")
            #expect(decoded.options.first(.clientMachineID) == [0] + Array(1...16))
            #expect(decoded.options.address(.serverIdentifier) == server)
            #expect(decoded.macAddress == request.macAddress)
        }
        // iPXE: its user class (with or without the RFC 3004 length byte) chains it to the HTTP script.
        for userClass in [Array("iPXE".utf8), [4] + Array("iPXE".utf8)] {
            let ipxe = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: 0, userClass: userClass)))
            #expect(
                ProxyDHCP.reply(to: ipxe, server: server, loaders: loaders)?.bootFile == "http://192.0.2.1/boot.ipxe")
        }
        // ARM64 UEFI: nothing configured for it, no answer, and the log says what to change.
        let arm = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: 11)))
        #expect(ProxyDHCP.reply(to: arm, server: server, loaders: loaders) == nil)
        #expect(try #require(NetworkBootRequest(arm)).unservedReason.contains("'arch: aarch64'"))
    }

    /// A lab with arm64 hosts: option 93 = 11 gets arm64 GRUB, the others what they got before.
    @Test func arm64UEFIGetsArm64GRUB() throws {
        let loaders = BootLoaders(bios: "pxelinux.0", uefi64: "grubnetx64.efi", uefiARM64: "grubnetaa64.efi")
        let server = try #require(IPv4Address("192.0.2.1"))
        for (arch, file) in [(UInt16(11), "grubnetaa64.efi"), (7, "grubnetx64.efi"), (0, "pxelinux.0")] {
            let request = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: arch)))
            #expect(try #require(NetworkBootRequest(request)).bootFile(loaders) == file)
            let reply = try #require(ProxyDHCP.reply(to: request, server: server, loaders: loaders))
            #expect(try DHCPMessage.decode(reply.encoded()).bootFile == file)
        }
        // ARM 32-bit UEFI (10) and ARM64 UEFI HTTP boot (19) stay unanswered.
        for arch: UInt16 in [10, 19] {
            let request = try DHCPMessage.decode(ByteBuffer(bytes: pxeDiscover(architecture: arch)))
            #expect(ProxyDHCP.reply(to: request, server: server, loaders: loaders) == nil)
        }
    }

    @Test func ordinaryClientsGetNoProxyAnswer() throws {
        var message = DHCPMessage(
            op: 1, transactionID: 1, clientHardware: [1, 2, 3, 4, 5, 6] + Array(repeating: 0, count: 10))
        message.options.messageType = .discover
        let decoded = try DHCPMessage.decode(message.encoded())
        #expect(decoded == message)
        #expect(ProxyDHCP.reply(to: decoded, server: IPv4Address(1), loaders: BootLoaders()) == nil)
    }

    @Test func longOptionsAreSplitAndJoined() throws {
        var message = DHCPMessage(op: 1, transactionID: 1, clientHardware: [1, 2, 3, 4, 5, 6])
        let long = (0..<600).map { UInt8($0 % 251) }
        message.options[.vendorSpecific] = long
        let decoded = try DHCPMessage.decode(message.encoded())
        #expect(decoded.options.first(.vendorSpecific) == long)
    }

    @Test func malformedMessagesAreRejected() {
        let good = pxeDiscover(architecture: 0)
        var badCookie = good
        badCookie[236] = 0
        var badOp = good
        badOp[0] = 3
        let truncated = Array(good.prefix(250)) + [60, 200, 1, 2]
        for bytes in [[], Array(good.prefix(239)), badCookie, badOp, truncated] {
            #expect(throws: NetBootError.self) { try DHCPMessage.decode(ByteBuffer(bytes: bytes)) }
        }
    }

    @Test func addresses() {
        #expect(IPv4Address("192.0.2.17")?.value == 0xC000_0211)
        #expect(IPv4Address("192.0.2") == nil && IPv4Address("256.0.0.1") == nil)
        #expect(MACAddress("52-54-00-AB-cd-EF")?.description == "52:54:00:ab:cd:ef")
        #expect(MACAddress("52:54:00:ab:cd") == nil)
    }
}

@Suite("proxyDHCP on a socket")
struct ProxyDHCPServerTests {
    /// A PXE client that already has an address asks the boot server port (4011 in a lab; a free port
    /// on loopback here) and gets the boot file back, unicast.
    @Test func bootServerRequestIsAnsweredWithTheBootFile() async throws {
        let server = try await ProxyDHCPServer.bind(
            host: "127.0.0.1", port: 0, serverAddress: try #require(IPv4Address("127.0.0.1")),
            loaders: BootLoaders(bios: "pxelinux.0", uefi64: "grubnetx64.efi"), logger: Logger(label: "test"))
        let port = try #require(server.localAddress.port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            var request = DHCPMessage(
                op: 1, transactionID: 0x1234_5678,
                clientHardware: [0x52, 0x54, 0, 1, 2, 3] + Array(repeating: 0, count: 10))
            request.options.messageType = .request
            request.options.setString(.vendorClass, "PXEClient:Arch:00000:UNDI:002001")
            request.options[.clientArchitecture] = [0, 0]
            let client = try RawUDP()
            // Not a boot request: no answer.
            var plain = request
            plain.options[.vendorClass] = nil
            client.send(Array(plain.encoded().readableBytesView), to: port)
            #expect(await client.receiveOffPool(timeout: .milliseconds(300)) == nil)
            client.send(Array(request.encoded().readableBytesView), to: port)
            let reply = try DHCPMessage.decode(
                ByteBuffer(bytes: try #require(await client.receiveOffPool(timeout: .seconds(10))).bytes))
            #expect(reply.transactionID == 0x1234_5678)
            #expect(reply.options.messageType == .ack)
            #expect(reply.bootFile == "pxelinux.0")
            #expect(reply.options.vendorClass == "PXEClient")
            group.cancelAll()
        }
    }
}
