import DubanTesting
import Foundation
import GRDB
import IndicatorIngest
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import Notifications

/// 签收: a notice addressed to several units is acknowledged by each for itself, and keeps reminding
/// those that have not.
@Suite(.serialized) struct NoticeAckTests {
    @Test func eachUnitAcknowledgesForItselfAndOnlyTheOthersAreRemindedAgain() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
        }
        let forestry = "区自然资源和林业局"
        let ecology = "区生态环境局"
        let units = [forestry, ecology, officeUnit]
        func client(_ unit: String) async throws -> RPCClient { try await RPCClient.connect(to: notify.endpoints.rpc, from: unit) }
        let office = try await client(officeUnit)
        let ecologyClient = try await client(ecology)
        let forestryClient = try await client(forestry)
        let stranger = try await client("区城市管理局")
        // One file channel per unit of the water task: each unit's reminders are counted apart.
        _ = try await office.call(
            NotifyTypes.channelSet,
            ChannelSetRequest(channel: Channel(name: "水质预警", kind: .file, target: "breach.jsonl", units: units, kinds: [.indicatorBreach])),
            as: ListReply<Channel>.self)

        // An out-of-limit reading at 六一桥: one notice for the two lead units of 7.1 and the office.
        let ingestClient = try await RPCClient.connect(to: ingest.endpoints.rpc, from: "六一桥自动站")
        _ = try await ingestClient.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T08:00:00+08:00", value: 1.2)
            ]),
            as: ReadingSubmitReply.self)
        func breach() async throws -> Notice? {
            try await office.call(NotifyTypes.noticeList, NoticeListRequest(kind: .indicatorBreach), as: ListReply<Notice>.self).items.first
        }
        #expect(try await TestSupport.eventually { try await breach() != nil })
        let issued = try #require(try await breach())
        #expect(Set(issued.units) == Set(units) && Set(issued.pendingUnits) == Set(units) && issued.acks.isEmpty)
        func deliveries() async throws -> [String: Int] {
            let items = try await office.call(
                NotifyTypes.deliveryList, DeliveryListRequest(notice: issued.id), as: ListReply<DeliveryAttempt>.self
            ).items
            return items.filter(\.ok).reduce(into: [:]) { $0[$1.unit, default: 0] += 1 }
        }
        #expect(try await TestSupport.eventually { try await deliveries() == [forestry: 1, ecology: 1, officeUnit: 1] })

        // Another unit's notice: permission_denied, and nothing changes.
        let head = try await office.call(SystemTypes.ping, Empty(), as: PingReply.self).streams["notify"]
        do {
            _ = try await stranger.call(NotifyTypes.noticeAck, NoticeAckRequest(id: issued.id, comment: "代为签收"), as: Notice.self)
            Issue.record("a unit the notice is not addressed to must not acknowledge it")
        } catch let error as ErrorBody {
            #expect(error.code == .permissionDenied && error.field == "from")
        }
        #expect(try await office.call(NotifyTypes.noticeGet, NoticeGetRequest(id: issued.id), as: Notice.self).acks.isEmpty)
        #expect(try await office.call(SystemTypes.ping, Empty(), as: PingReply.self).streams["notify"] == head)

        // Two of the three acknowledge.
        let first = try await ecologyClient.call(
            NotifyTypes.noticeAck, NoticeAckRequest(id: issued.id, comment: "已组织排查排口"), as: Notice.self)
        #expect(first.state == .open && !first.acknowledged && first.ackBy == nil)
        #expect(first.acks.map(\.unit) == [ecology] && first.acks[0].comment == "已组织排查排口" && first.acks[0].by == ecology)
        let second = try await office.call(NotifyTypes.noticeAck, NoticeAckRequest(id: issued.id), as: Notice.self)
        #expect(second.acks.map(\.unit) == [ecology, officeUnit] && second.pendingUnits == [forestry] && second.state == .open)
        // Acknowledging again is not an error and changes nothing.
        let repeated = try await ecologyClient.call(NotifyTypes.noticeAck, NoticeAckRequest(id: issued.id, comment: "再报"), as: Notice.self)
        #expect(repeated == second)

        // The office sees who has not acknowledged; each unit finds what it still has to.
        let seen = try await office.call(NotifyTypes.noticeGet, NoticeGetRequest(id: issued.id), as: Notice.self)
        #expect(seen.pendingUnits == [forestry] && seen.acks.count == 2)
        func pending(_ unit: String) async throws -> [String] {
            try await office.call(NotifyTypes.noticeList, NoticeListRequest(pendingUnit: unit), as: ListReply<Notice>.self).items.map(\.id)
        }
        #expect(try await pending(forestry).contains(issued.id))
        #expect(try await !pending(ecology).contains(issued.id))

        // A day later, the repeat reminds only the unit that has not acknowledged.
        clock.set(Timestamp.parse("2026-11-21T11:00:00+08:00")!)
        #expect(try await TestSupport.eventually { try await deliveries()[forestry] == 2 })
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await deliveries() == [forestry: 2, ecology: 1, officeUnit: 1])
        #expect(try await office.call(NotifyTypes.noticeGet, NoticeGetRequest(id: issued.id), as: Notice.self).repeats == 1)

        // The last unit acknowledges: the notice is acknowledged, and reminds nobody any more.
        let last = try await forestryClient.call(NotifyTypes.noticeAck, NoticeAckRequest(id: issued.id, comment: "已知悉"), as: Notice.self)
        #expect(last.state == .acknowledged && last.acknowledged && last.pendingUnits.isEmpty)
        #expect(last.ackBy == forestry && last.ackComment == "已知悉" && last.acks.map(\.unit) == [ecology, officeUnit, forestry])
        #expect(try await !pending(forestry).contains(issued.id))
        clock.set(Timestamp.parse("2026-11-22T12:00:00+08:00")!)
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await deliveries() == [forestry: 2, ecology: 1, officeUnit: 1])

        // One event per acknowledgement, naming it.
        let events = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "notify", after: 0, limit: 1000), as: EventsSinceReply<AnyEvent>.self)
        let acks = try events.events.filter { $0.type == NotifyTypes.noticeAcknowledged }.map { try $0.body(as: NoticeAcknowledged.self) }
        #expect(acks.map(\.ack.unit) == [ecology, officeUnit, forestry])
        #expect(acks.last?.notice.state == .acknowledged && acks.first?.notice.state == .open)

        for client in [office, ecologyClient, forestryClient, stranger, ingestClient] { await client.close() }
        try await notify.stop()
        try await ingest.stop()
        try await registry.stop()
    }

    @Test func aNoticeAcknowledgedBeforeTheMigrationKeepsItsOneAcknowledgement() throws {
        let dir = try TestSupport.temporaryDirectory()
        let queue = try DatabaseQueue(path: "\(dir)/notify.sqlite")
        var migrator = DatabaseMigrator()
        NotifyService.migrations(&migrator)
        try migrator.migrate(queue, upTo: "notify-v4-sealed-digests")
        try queue.write { db in
            for (number, ackBy) in [(1, "区生态环境局"), (2, "某工具")] {
                let id = "TZ-20261120-0000\(number)"
                try db.execute(
                    sql: """
                        INSERT INTO notices (id, number, kind, severity, units, title, text, refs, dedup_key, state, issued_at,
                            ack_by, ack_comment, ack_at)
                        VALUES (?, ?, 'indicator_breach', 'warning', ?, 't', 'x', '{}', ?, 'acknowledged', '2026-11-20T02:00:00Z',
                            ?, '已知悉', '2026-11-20T03:00:00Z')
                        """,
                    arguments: [id, number, #"["区生态环境局","专项工作组办公室"]"#, "k\(number)", ackBy])
                for unit in ["区生态环境局", officeUnit] {
                    try db.execute(sql: "INSERT INTO notice_units (notice, unit) VALUES (?, ?)", arguments: [id, unit])
                }
            }
        }
        try migrator.migrate(queue)
        try queue.read { db in
            let unit = try #require(try NotifyStore.fetch(db, id: "TZ-20261120-00001"))
            #expect(unit.acks == [NoticeAck(unit: "区生态环境局", at: "2026-11-20T03:00:00Z", comment: "已知悉", by: "区生态环境局")])
            #expect(unit.state == .acknowledged && unit.acknowledged && unit.pendingUnits.isEmpty)
            // Acknowledged by someone who was not one of its units: no unit's acknowledgement to show.
            let other = try #require(try NotifyStore.fetch(db, id: "TZ-20261120-00002"))
            #expect(other.acks.isEmpty && other.pendingUnits.isEmpty && other.ackBy == "某工具")
        }
    }
}
