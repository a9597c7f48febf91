import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// Sizes bounded: a text field past its limit is refused naming it, a refusal never echoes what
/// it refuses, and replies are capped in bytes with a way to read on.
@Suite(.serialized) struct LimitsTests {
    static func start() async throws -> InProcessService {
        try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(),
            clock: ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00")))
    }

    static func decode(_ reply: Data) throws -> ReplyEnvelope<JSONValue> {
        try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: reply)
    }

    @Test func aTextFieldPastItsLimitIsRefusedByName() async throws {
        let service = try await Self.start()
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区生态环境局")
        let long = String(repeating: "推", count: TextLimits.defaultCharacters + 1)
        let refused = try await refusal(
            client, RegistryTypes.progressReport,
            ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: 10, summary: long))
        #expect(refused.code == .invalidArgument)
        #expect(refused.field == "body.summary")
        #expect(refused.message.count < 200)
        // At the limit it is taken.
        let fits = String(repeating: "推", count: TextLimits.defaultCharacters)
        _ = try await client.call(
            RegistryTypes.progressReport, ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: 10, summary: fits))
        await client.close()
        try await service.stop()
    }

    @Test func refusalsDoNotEchoWhatTheyRefuse() async throws {
        let service = try await Self.start()
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let huge = String(repeating: "x", count: 15 << 20)
        for payload in [
            #"{"v":1,"id":"a","type":"\#(huge)","body":{}}"#, #"{"v":1,"id":"\#(huge)","type":"sys.ping","body":{}}"#,
            #"{"v":1,"id":"b","type":"task.explode\#(String(repeating: "y", count: 5_000))","body":{}}"#,
        ] {
            let reply = try #require(try await client.sendUnmatched(frames: [Data(), Data(payload.utf8)], timeout: .seconds(20)))
            #expect(reply.count < 2_000, "a reply of \(reply.count) bytes")
            #expect(try Self.decode(reply).ok == false)
        }
        await client.close()
        try await service.stop()
    }

    @Test func eventsSinceIsCappedInBytesAndReadsOnToTheHead() async throws {
        let service = try await Self.start()
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区生态环境局")
        // 600 reports of 9,000 characters: about 16 MB of events, more than one reply may carry.
        let summary = String(repeating: "整", count: 9_000)
        for round in 0..<600 {
            _ = try await client.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: Double(round % 100), summary: summary))
        }
        let head = try await client.call(SystemTypes.ping, Empty()).streams["registry"] ?? 0
        var after = 0
        var pages = 0
        while after < head {
            let raw = try await client.callRaw(SystemTypes.eventsSince, EventsSinceRequest(stream: "registry", after: after, limit: 10_000))
            #expect(raw.count < ReplyLimits.bytes + 64 * 1024, "a page of \(raw.count) bytes")
            let page = try JSONDecoder().decode(ReplyEnvelope<EventsSinceReply<AnyEvent>>.self, from: raw).result()
            #expect(!page.events.isEmpty)
            #expect(page.events.first?.seq == after + 1, "contiguous")
            after = page.events.last?.seq ?? after
            pages += 1
        }
        #expect(after == head)
        #expect(pages >= 4)
        await client.close()
        try await service.stop()
    }

    @Test func aLongListComesAPageAtATimeWithACursor() throws {
        let items = (0..<2_500).map { "item \($0)" }
        let reply = ListReply(items: items)
        var cursor: String?
        var read: [String] = []
        repeat {
            let page = try JSONDecoder().decode(
                ListReply<String>.self, from: try reply.encodePage(cursor: cursor, maxItems: 1_000, maxBytes: 1 << 20))
            #expect(page.items.count <= 1_000)
            read += page.items
            cursor = page.next
        } while cursor != nil
        #expect(read == items)
        // Bytes too: one item always goes.
        let big = ListReply(items: [String(repeating: "a", count: 2_000), "b", "c"])
        let first = try JSONDecoder().decode(ListReply<String>.self, from: try big.encodePage(cursor: nil, maxItems: 10, maxBytes: 1_000))
        #expect(first.items.count == 1 && first.next != nil)
        #expect(throws: ErrorBody.self) { try reply.encodePage(cursor: "garbage", maxItems: 10, maxBytes: 1_000) }
    }

    /// Items that leave the list between pages (cases moved to another state) shift nothing:
    /// the next page starts after the last item the reader got.
    @Test func aKeyedListReadsOnAfterTheLastItemSeenWhenEarlierItemsLeave() throws {
        let notices = (0..<30).map { number in
            Notice(
                id: "TZ-\(1000 + number)", kind: .overdue, severity: .warning, units: ["区生态环境局"], title: "t", text: "x",
                refs: NoticeRefs(), issuedAt: "2026-11-20T10:00:00+08:00", acknowledged: false, ackBy: nil, ackComment: nil, state: .open,
                dedupKey: "k\(number)", repeats: 0, resolvedAt: nil)
        }
        let first = try JSONDecoder().decode(
            ListReply<Notice>.self, from: try ListReply(items: notices).encodePage(cursor: nil, maxItems: 10, maxBytes: 1 << 20))
        #expect(first.items.last?.id == "TZ-1009")
        // Five of the first page leave the list before the next page is asked for.
        let fewer = Array(notices[0..<2] + notices[7...])
        let second = try JSONDecoder().decode(
            ListReply<Notice>.self, from: try ListReply(items: fewer).encodePage(cursor: first.next, maxItems: 10, maxBytes: 1 << 20))
        #expect(second.items.first?.id == "TZ-1010", "no item skipped")
    }

    @Test func aValueThatDoesNotFitIsInvalidArgumentWithItsRequestID() async throws {
        let service = try await Self.start()
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        for (payload, field) in [
            (#"{"v":1,"id":"n6","type":"events.since","body":{"stream":"registry","after":0,"limit":2.5}}"#, "body"),
            (#"{"v":1,"id":"n6","type":"events.since","body":{"stream":"registry","after":1180591620717411303424}}"#, "body"),
            (#"{"v":1,"id":"n6","type":"task.list","body":{"cursor":123}}"#, "body.cursor"),
            (#"{"v":1,"id":"n6","type":"unit.list","body":{"cursor":{"a":1}}}"#, "body.cursor"),
        ] {
            let reply = try #require(try await client.send(payload: Data(payload.utf8), id: "n6", timeout: .seconds(5)), "\(payload)")
            let envelope = try Self.decode(reply)
            #expect(envelope.re == "n6", "\(payload)")
            #expect(
                envelope.error?.code == .invalidArgument && envelope.error?.field == field,
                "\(payload): \(String(describing: envelope.error))")
        }
        await client.close()
        try await service.stop()
    }
}
