import DubanTesting
import Foundation
import Messaging
import Notifications
import Schema
import ServiceKit
import Testing

/// `channel.set` through the real service: file targets confined to their directory, webhooks to
/// the allow-list.
@Suite(.serialized) struct NotifyChannelTests {
    func refusal(_ client: RPCClient, _ channel: Channel) async -> ErrorBody? {
        do {
            _ = try await client.call(NotifyTypes.channelSet, ChannelSetRequest(channel: channel), as: ListReply<Channel>.self)
            return nil
        } catch {
            return error as? ErrorBody
        }
    }

    @Test func fileTargetsStayInTheirDirectoryAndWebhooksReachOnlyAllowedHosts() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let outside = try TestSupport.temporaryDirectory()
        // The allow-list names `localhost` but no network: a name is not enough to reach loopback.
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir) { $0.notifyWebhookAllow = ["localhost"] }
        let office = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        let channels = "\(dir)/channels"
        #expect(FileManager.default.fileExists(atPath: channels), "the default directory is made at start")
        try FileManager.default.createSymbolicLink(atPath: "\(channels)/out", withDestinationPath: outside)

        for target in ["/etc/passwd", "../notify.jsonl", "eco/../../notify.jsonl", "out/notices.jsonl"] {
            let error = await refusal(office, Channel(name: "文件", kind: .file, target: target))
            #expect(error?.code == .invalidArgument && error?.field == "body.channel.target", "\(target): \(String(describing: error))")
            #expect(error?.message.contains("notify.fileChannelDir") == true, "the message names the rule: \(String(describing: error))")
        }
        let stored = try await office.call(
            NotifyTypes.channelSet, ChannelSetRequest(channel: Channel(name: "文件", kind: .file, target: "eco/notices.jsonl")),
            as: ListReply<Channel>.self)
        #expect(stored.items.map(\.target) == ["eco/notices.jsonl"])
        #expect(!FileManager.default.fileExists(atPath: "\(channels)/eco"), "nothing is made until a delivery")

        for target in [
            "http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:9/hook",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "http://qyapi.weixin.qq.com@127.0.0.1/hook",
        ] {
            let error = await refusal(office, Channel(name: "机器人", kind: .wecom, target: target))
            #expect(error?.code == .invalidArgument && error?.field == "body.channel.target", "\(target): \(String(describing: error))")
        }
        #expect(
            await refusal(office, Channel(name: "机器人", kind: .webhook, target: "http://localhost:9/hook"))?.message.contains("回环") == true,
            "a listed name resolving to loopback is refused for its address")
        let ping = try await office.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 1, "refusals change nothing and publish nothing")
        await office.close()
        try await notify.stop()
    }
}
