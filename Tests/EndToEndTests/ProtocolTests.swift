import DubanTesting
import Foundation
import Messaging
import Notifications
import Schema
import ServiceKit
import Testing

/// The protocol's guarantees, through real sockets, against a real service (notify) in process.
@Suite struct ProtocolTests {
    static func channel(_ name: String) -> ChannelSetRequest {
        ChannelSetRequest(channel: Channel(name: name, kind: .file, target: "duban-\(name).jsonl"))
    }

    @Test func everyMalformedRequestGetsOneReplyWithTheRightCode() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let cases: [(String, Data, ErrorCode)] = [
            ("garbage bytes", Data([0xFF, 0xFE, 0x00, 0x81, 0x13]), .badFrame),
            ("not JSON", Data("hello, 督办".utf8), .badFrame),
            ("a JSON array", Data("[1,2,3]".utf8), .badFrame),
            ("no id", Data(#"{"v":1,"type":"sys.ping","body":{}}"#.utf8), .badFrame),
            ("v: 2", Data(#"{"v":2,"id":"x","type":"sys.ping","body":{}}"#.utf8), .unsupportedVersion),
            ("unknown type", Data(#"{"v":1,"id":"x","type":"task.explode","body":{}}"#.utf8), .unknownType),
            (
                "missing field", Data(#"{"v":1,"id":"x","type":"channel.set","body":{"channel":{"name":"a","kind":"file"}}}"#.utf8),
                .invalidArgument
            ),
            (
                "bad value",
                Data(#"{"v":1,"id":"x","type":"channel.set","body":{"channel":{"name":"a","kind":"file","target":"/etc/passwd"}}}"#.utf8),
                .invalidArgument
            ),
            ("20 MiB frame", Data(repeating: UInt8(ascii: "a"), count: 20 * 1024 * 1024), .tooLarge),
        ]
        for (name, payload, code) in cases {
            let reply = try #require(try await client.sendUnmatched(frames: [Data(), payload], timeout: .seconds(10)), "\(name): no reply")
            let envelope = try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: reply)
            #expect(!envelope.ok, "\(name)")
            #expect(envelope.error?.code == code, "\(name): \(String(describing: envelope.error))")
            // And the service keeps serving.
            let ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
            #expect(ping.service == "notify")
        }
        // The missing field is named.
        let missing = try #require(
            try await client.send(
                payload: Data(#"{"v":1,"id":"m","type":"channel.set","body":{"channel":{"name":"a","kind":"file"}}}"#.utf8), id: "m",
                timeout: .seconds(5)))
        #expect(try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: missing).error?.field == "body.channel.target")
        // Two payload frames after the delimiter: one reply, bad_frame.
        let twoFrames = try #require(
            try await client.sendUnmatched(frames: [Data(), Data("{}".utf8), Data("{}".utf8)], timeout: .seconds(5)))
        #expect(try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: twoFrames).error?.code == .badFrame)
        await client.close()
        try await service.stop()
    }

    @Test func pipelinedRequestsEachGetExactlyOneReply() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<500 {
                group.addTask { try await client.call(SystemTypes.ping, Empty(), as: PingReply.self).instance }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(replies.count == 500)
        // A raw REQ-style request with a known id gets its own reply and no other.
        let reply = try #require(
            try await client.send(payload: Data(#"{"v":1,"id":"only-me","type":"sys.ping"}"#.utf8), id: "only-me", timeout: .seconds(5)))
        #expect(try JSONDecoder().decode(ReplyEnvelope<PingReply>.self, from: reply).re == "only-me")
        await client.close()
        try await service.stop()
    }

    @Test func aRetriedRequestWithTheSameKeyIsAppliedOnce() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let first = try await client.call(NotifyTypes.channelSet, Self.channel("office"), as: ListReply<Channel>.self, key: "k-1")
        let again = try await client.call(NotifyTypes.channelSet, Self.channel("office"), as: ListReply<Channel>.self, key: "k-1")
        #expect(first.items == again.items)
        var ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 1, "the second call changed nothing and published nothing")
        await #expect(throws: ErrorBody.self) {
            _ = try await client.call(NotifyTypes.channelSet, Self.channel("other"), as: ListReply<Channel>.self, key: "k-1")
        }
        do {
            _ = try await client.call(NotifyTypes.channelSet, Self.channel("other"), as: ListReply<Channel>.self, key: "k-1")
        } catch let error as ErrorBody {
            #expect(error.code == .conflict && error.field == "key")
        }
        // A refused request stores nothing under its key: fixing the body and retrying works.
        let bad = ChannelSetRequest(channel: Channel(name: "x", kind: .webhook, target: "not a url"))
        await #expect(throws: ErrorBody.self) {
            _ = try await client.call(NotifyTypes.channelSet, bad, as: ListReply<Channel>.self, key: "k-2")
        }
        ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 1)
        await client.close()
        try await service.stop()
    }

    @Test func lazyPirateRetriesReachAServerThatStartsLate() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let endpoints = TestSupport.freeEndpoints()
        let client = try await RPCClient.connect(to: endpoints.rpc, from: "test")
        async let reply = client.call(
            NotifyTypes.channelSet, Self.channel("late"), as: ListReply<Channel>.self, timeout: .milliseconds(400), retries: 10)
        try await Task.sleep(for: .milliseconds(900))
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: dir, endpoints: endpoints)
        #expect(try await reply.items.map(\.name) == ["late"])
        // However many attempts were queued, the change was applied once.
        try await Task.sleep(for: .milliseconds(500))
        let ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 1)
        await client.close()
        try await service.stop()
    }

    @Test func aLateSubscriberCatchesUpWithNoGapAndNoDuplicate() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        for index in 1...30 { _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self) }
        let subscriber = try await EventSubscriber.start(
            events: service.endpoints.events, rpc: service.endpoints.rpc, topics: ["notify."], from: .beginning,
            heartbeat: .milliseconds(200))
        let writer = Task {
            for index in 31...60 {
                _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self)
            }
        }
        var seqs: [Int] = []
        for await event in subscriber.events {
            seqs.append(event.seq)
            #expect(try event.body(as: ChannelUpdated.self).channel.name == "c\(event.seq)")
            if seqs.count == 60 { break }
        }
        try await writer.value
        #expect(seqs == Array(1...60))
        await subscriber.stop()
        await client.close()
        try await service.stop()
    }

    @Test func aSubscriberStartingNowSkipsHistoryButMissesNothingNew() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        for index in 1...5 { _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self) }
        let subscriber = try await EventSubscriber.start(
            events: service.endpoints.events, rpc: service.endpoints.rpc, from: .now, heartbeat: .milliseconds(200))
        try await Task.sleep(for: .milliseconds(300))
        for index in 6...8 { _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self) }
        var seqs: [Int] = []
        for await event in subscriber.events {
            seqs.append(event.seq)
            if seqs.count == 3 { break }
        }
        #expect(seqs == [6, 7, 8])
        #expect(subscriber.positions["notify"] == 8)
        await subscriber.stop()
        await client.close()
        try await service.stop()
    }

    @Test func eventsSinceValidatesItsArguments() async throws {
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        for (request, field) in [
            (EventsSinceRequest(stream: "notify", after: -1), "body.after"),
            (EventsSinceRequest(stream: "notify", after: 0, limit: 0), "body.limit"),
            (EventsSinceRequest(stream: "notify", after: 0, limit: 10_001), "body.limit"),
        ] {
            do {
                _ = try await client.call(SystemTypes.eventsSince, request, as: JSONValue.self)
                Issue.record("\(request) must be refused")
            } catch let error as ErrorBody {
                #expect(error.code == .invalidArgument && error.field == field)
            }
        }
        do {
            _ = try await client.call(SystemTypes.eventsSince, EventsSinceRequest(stream: "nope", after: 0), as: JSONValue.self)
            Issue.record("an unknown stream must be not_found")
        } catch let error as ErrorBody {
            #expect(error.code == .notFound)
        }
        let types = try await client.call(SystemTypes.types, Empty(), as: TypesReply.self)
        #expect(
            types.requests == [
                "audit.list", "audit.verify", "cause.list", "cause.report", "channel.list", "channel.set", "delivery.list", "events.since",
                "notice.ack", "notice.get",
                "notice.list",
                "report.generate", "silence.expire",
                "silence.list", "silence.set", "sys.ping", "sys.types",
            ])
        #expect(types.topics.contains(NotifyTypes.noticeIssued))
        await client.close()
        try await service.stop()
    }
}
