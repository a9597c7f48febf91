import DubanTesting
import Foundation
import Schema
import ServiceKit
import Testing

@testable import Notifications

/// What a channel may reach, without a service: addresses and networks, the allow-list, secrets in
/// targets, and the file channels' directory against links planted in it.
@Suite struct ChannelPolicyTests {
    @Test func addressesAreReadStrictlyAndPrivateOnesKnownInEverySpelling() throws {
        #expect(IPAddress("127.1") == nil, "inet_aton's shortcuts are names, resolved and checked, not addresses")
        #expect(IPAddress("0x7f000001") == nil)
        #expect(IPAddress("127.0.0.1")?.isRestricted == true)
        #expect(IPAddress("::ffff:127.0.0.1") == IPAddress("127.0.0.1"), "an IPv4-mapped address is the IPv4 address")
        #expect(IPAddress("64:ff9b::a00:1") == IPAddress("10.0.0.1"), "a NAT64 address is the IPv4 address it carries")
        for restricted in [
            "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::",
            "fc00::1", "fd12:3456::1", "fe80::1", "[::1]", "224.0.0.1",
        ] {
            #expect(IPAddress(restricted)?.isRestricted == true, "\(restricted)")
        }
        for open in ["8.8.8.8", "172.32.0.1", "101.226.1.1", "2400:da00::1"] {
            #expect(IPAddress(open)?.isRestricted == false, "\(open)")
        }
        #expect(CIDR("10.0.0.0/8")?.contains(IPAddress("10.200.0.1")!) == true)
        #expect(CIDR("10.0.0.0/8")?.contains(IPAddress("11.0.0.1")!) == false)
        #expect(CIDR("127.0.0.1")?.contains(IPAddress("127.0.0.1")!) == true, "a bare address is a /32")
        #expect(CIDR("127.0.0.1")?.contains(IPAddress("127.0.0.2")!) == false)
        #expect(CIDR("fd00::/8")?.contains(IPAddress("fd12::1")!) == true)
        #expect(CIDR("::ffff:10.0.0.0/104")?.contains(IPAddress("10.9.9.9")!) == true)
        #expect(CIDR("10.0.0.0/33") == nil && CIDR("10.0.0.0/x") == nil && CIDR("example.com/8") == nil)
    }

    @Test func theAllowListTakesNamesByNameAndAddressesByNetwork() throws {
        let robots = try WebhookAllowList(WebhookAllowList.defaultEntries)
        func target(_ url: String) throws -> WebhookTarget { try #require(WebhookTarget(url), "\(url)") }

        try robots.check(target("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"))
        try robots.check(target("https://OAPI.DingTalk.com./robot/send?access_token=abc"))
        #expect(throws: WebhookRefusal.hostNotAllowed("evil.example")) { try robots.check(target("https://evil.example/hook")) }
        #expect(throws: WebhookRefusal.self) { try robots.check(target("http://127.0.0.1:8080/hook")) }
        #expect(throws: WebhookRefusal.self) { try robots.check(target("http://[::1]:8080/hook")) }
        #expect(throws: WebhookRefusal.self) { try robots.check(target("http://8.8.8.8/hook")) }
        // A listed name that resolves to a private address is refused...
        let robot = try target("https://qyapi.weixin.qq.com/send")
        #expect(throws: WebhookRefusal.addressNotAllowed("qyapi.weixin.qq.com", IPAddress("10.0.0.7")!)) {
            try robots.check(robot, addresses: [IPAddress("101.226.1.1")!, IPAddress("10.0.0.7")!])
        }
        try robots.check(robot, addresses: [IPAddress("101.226.1.1")!])
        // ... unless a CIDR on the list covers that address.
        let inside = try WebhookAllowList(["qyapi.weixin.qq.com", "10.0.0.0/24", "127.0.0.1/32"])
        try inside.check(robot, addresses: [IPAddress("10.0.0.7")!])
        try inside.check(target("http://127.0.0.1:9000/hook"))
        #expect(throws: WebhookRefusal.self) { try inside.check(target("http://127.0.0.2:9000/hook")) }
        // A name not on the list is refused, whatever it resolves to.
        #expect(throws: WebhookRefusal.self) { try inside.check(target("http://hooks.internal/x")) }

        #expect(throws: ConfigurationError.self) { try WebhookAllowList(["10.0.0.0/40"]) }
        #expect(throws: ConfigurationError.self) { try WebhookAllowList(["http://example.com"]) }
        #expect(try WebhookAllowList([]).hosts.isEmpty, "an empty list allows nothing")
    }

    @Test func aTargetIsParsedAsTheHTTPClientParsesItAndPinnedToTheCheckedAddress() throws {
        #expect(WebhookTarget("http://qyapi.weixin.qq.com@127.0.0.1/hook") == nil, "credentials in the address are refused")
        #expect(WebhookTarget("http://user:pw@example.com/hook") == nil)
        #expect(WebhookTarget("ftp://example.com/hook") == nil && WebhookTarget("not a url") == nil)
        let named = try #require(WebhookTarget("http://hooks.example:8080/a/b?key=k#f"))
        #expect(named.host == "hooks.example" && named.port == 8080 && named.address == nil)
        #expect(named.pinned(to: IPAddress("203.0.113.5")!) == "http://203.0.113.5:8080/a/b?key=k#f")
        #expect(named.pinned(to: IPAddress("2001:db8::5")!) == "http://[2001:db8::5]:8080/a/b?key=k#f")
        #expect(named.authority == "hooks.example:8080")
        let literal = try #require(WebhookTarget("http://[::1]/hook"))
        #expect(literal.address == IPAddress("::1") && literal.port == 80 && literal.authority == "[::1]")
        #expect(WebhookTarget("https://oapi.dingtalk.com/robot/send")?.authority == "oapi.dingtalk.com")
    }

    @Test func secretsInATargetAreMaskedAndABodySentBackWithTheMaskKeepsThem() throws {
        let wecom = Channel(name: "办公室群", kind: .wecom, target: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123&debug=1")
        #expect(ChannelSecrets.redacted(wecom).target == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***&debug=1")
        #expect(
            ChannelSecrets.redact("https://oapi.dingtalk.com/robot/send?access_token=t0k&timestamp=1700000000000&sign=c2ln&Secret=s")
                == "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1700000000000&sign=***&Secret=***")
        #expect(ChannelSecrets.redact("https://example.com/hook") == "https://example.com/hook")
        let file = Channel(name: "f", kind: .file, target: "key=abc.jsonl")
        #expect(ChannelSecrets.redacted(file) == file)

        // Sent back as read, with another unit: the stored key stays.
        var edited = ChannelSecrets.redacted(wecom)
        edited.units = ["区生态环境局"]
        let restored = try ChannelSecrets.restoring(edited, from: wecom)
        #expect(restored.target == wecom.target && restored.units == ["区生态环境局"])
        // The mask is never stored: not for a new channel, not for another address.
        #expect(throws: ErrorBody.self) { try ChannelSecrets.restoring(edited, from: nil) }
        var moved = edited
        moved.target = "https://evil.example/cgi-bin/webhook/send?key=***"
        #expect(throws: ErrorBody.self) { try ChannelSecrets.restoring(moved, from: wecom) }
    }

    @Test func fileTargetsStayInsideTheDirectoryThroughLinksPlantedAtAnyTime() throws {
        let root = try TestSupport.temporaryDirectory()
        let outside = try TestSupport.temporaryDirectory()
        let files = FileChannelDirectory(path: "\(root)/channels")
        try files.prepare()
        let manager = FileManager.default

        try files.validate("notices.jsonl")
        try files.validate("./eco/2026/notices.jsonl")
        for bad in ["/etc/passwd", "../notices.jsonl", "eco/../../notices.jsonl", "", "eco/", "..", "."] {
            #expect(throws: FileChannelDirectory.Refusal.notRelative, "\(bad)") { try files.validate(bad) }
        }
        // A link out of the directory, as a directory or as the file itself.
        try manager.createSymbolicLink(atPath: "\(root)/channels/out", withDestinationPath: outside)
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.validate("out/notices.jsonl") }
        try manager.createSymbolicLink(atPath: "\(root)/channels/passwd.jsonl", withDestinationPath: "\(outside)/passwd")
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.validate("passwd.jsonl") }
        // A link that stays inside is fine.
        try manager.createDirectory(atPath: "\(root)/channels/real", withIntermediateDirectories: false)
        try manager.createSymbolicLink(atPath: "\(root)/channels/alias", withDestinationPath: "\(root)/channels/real")
        try files.validate("alias/notices.jsonl")
        try files.append(Data("one\n".utf8), to: "alias/notices.jsonl")
        #expect(try String(contentsOfFile: "\(root)/channels/real/notices.jsonl", encoding: .utf8) == "one\n")

        // Valid when set; then the directory is swapped for a link out: nothing is written outside.
        try files.append(Data("first\n".utf8), to: "eco/2026/notices.jsonl")
        #expect(try String(contentsOfFile: "\(root)/channels/eco/2026/notices.jsonl", encoding: .utf8) == "first\n")
        try manager.removeItem(atPath: "\(root)/channels/eco")
        try manager.createSymbolicLink(atPath: "\(root)/channels/eco", withDestinationPath: outside)
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.append(Data("second\n".utf8), to: "eco/2026/notices.jsonl") }
        #expect(!manager.fileExists(atPath: "\(outside)/2026"), "no directory was made outside")
        // The file itself replaced by a link out.
        try files.append(Data("x\n".utf8), to: "plain.jsonl")
        try manager.removeItem(atPath: "\(root)/channels/plain.jsonl")
        try manager.createSymbolicLink(atPath: "\(root)/channels/plain.jsonl", withDestinationPath: "\(outside)/plain.jsonl")
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.append(Data("y\n".utf8), to: "plain.jsonl") }
        #expect(!manager.fileExists(atPath: "\(outside)/plain.jsonl"))
        // A FIFO is not waited on, and not written.
        #expect(mkfifo("\(root)/channels/pipe.jsonl", 0o600) == 0)
        #expect(throws: FileChannelDirectory.Refusal.self) { try files.append(Data("z\n".utf8), to: "pipe.jsonl") }
        #expect(try manager.contentsOfDirectory(atPath: outside).isEmpty)
    }
}
