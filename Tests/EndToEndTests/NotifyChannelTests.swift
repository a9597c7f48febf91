import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// `channel.set` through the real service: file targets confined to their directory, webhooks to
/// the allow-list, and robot keys kept out of every read and event while deliveries still use them.
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

    @Test func robotKeysAreUsedButNeverShown() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await DeliveryTests.Receiver(directory: dir)
        defer { receiver.stop() }
        let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
        // The peers the rhythm asks every round: with them down, each round waits for their timeouts.
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.notifyWebhookAllow = ["127.0.0.1/32"]
        }
        let office = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        let secret = "abcdef0123456789abcdef"
        let target = "http://127.0.0.1:\(receiver.port)/cgi-bin/webhook/send?key=\(secret)&debug=1"
        let reply = try await office.call(
            NotifyTypes.channelSet,
            ChannelSetRequest(channel: Channel(name: "办公室群", kind: .wecom, target: target, kinds: [.monthlyDispatch])),
            as: ListReply<Channel>.self)
        let masked = "http://127.0.0.1:\(receiver.port)/cgi-bin/webhook/send?key=***&debug=1"
        #expect(reply.items.map(\.target) == [masked])
        let listed = try await office.call(NotifyTypes.channelList, Empty(), as: ListReply<Channel>.self)
        #expect(listed.items.map(\.target) == [masked])

        // Sent back as read, with a change: the key stays, and still shows masked.
        var edited = listed.items[0]
        edited.minSeverity = .info
        _ = try await office.call(NotifyTypes.channelSet, ChannelSetRequest(channel: edited), as: ListReply<Channel>.self)
        // The mask is not a key: a new channel cannot be given one.
        var copy = edited
        copy.name = "另一个群"
        #expect(await refusal(office, copy)?.field == "body.channel.target")

        let events = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "notify", after: 0, limit: 1000), as: EventsSinceReply<AnyEvent>.self)
        let updates = events.events.filter { $0.type == NotifyTypes.channelUpdated }
        #expect(updates.count == 2)
        for update in updates {
            let body = String(decoding: try WireCoding.encode(update.body), as: UTF8.self)
            #expect(!body.contains(secret) && body.contains("key=***"), "\(body)")
        }

        // A new month's dispatch notice goes out through the real URL.
        clock.set(Timestamp.parse("2026-12-02T09:00:00+08:00")!)
        #expect(await TestSupport.eventually { (try? receiver.lines().count) ?? 0 >= 1 })
        let request = try #require(try receiver.lines().first)
        #expect(request["path"]?.stringValue == "/cgi-bin/webhook/send?key=\(secret)&debug=1")
        #expect(request["body"]?["msgtype"]?.stringValue == "markdown")
        // The attempt is recorded once the webhook's answer is back, a moment after the receiver has the request.
        var deliveries = ListReply<DeliveryAttempt>(items: [])
        let recorded = await TestSupport.eventually {
            deliveries =
                (try? await office.call(NotifyTypes.deliveryList, DeliveryListRequest(), as: ListReply<DeliveryAttempt>.self))
                ?? ListReply(items: [])
            return deliveries.items.contains { $0.ok }
        }
        #expect(recorded)
        #expect(!String(decoding: try WireCoding.encode(deliveries.items), as: UTF8.self).contains(secret))
        await office.close()
        try await notify.stop()
        try await ingest.stop()
        try await registry.stop()
    }
}
