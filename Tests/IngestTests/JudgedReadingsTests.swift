import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

/// Every reading of a batch is judged (issue #15): live readings raise and clear alerts, older ones
/// record historical findings, and silence follows the newest reading.
@Suite struct JudgedReadingsTests {
    /// October 2026 at 六一桥, one row an hour (744 rows of six parameters), 氨氮 at class IV from 08:00
    /// to 15:00 on the given days.
    static func october(classIVDays: Set<Int>) -> [SubmittedReading] {
        var readings: [SubmittedReading] = []
        for day in 1...31 {
            for hour in 0..<24 {
                let ts = String(format: "2026-10-%02dT%02d:00:00+08:00", day, hour)
                let nh3n = classIVDays.contains(day) && (8...15).contains(hour) ? 1.1 : 0.4
                readings += sample(at: ts, ["nh3n": nh3n])
            }
        }
        return readings
    }

    static func bodies(_ client: RPCClient, _ type: String) async throws -> [AlertBody] {
        try await events(client, type).map { try $0.body(as: AlertBody.self) }
    }

    /// A wrong value that raised a live alert is corrected by a revision of the same reading: the
    /// correction is judged live and clears it (it is the newest stored reading, not an older one).
    @Test func aRevisionOfTheNewestReadingClearsTheAlertItsWrongValueRaised() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 30)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-20T08:00:00+08:00", ["nh3n": 1.2])),
            as: ReadingSubmitReply.self)
        #expect(try await Self.bodies(client, IngestTypes.alertRaised).map(\.alert).contains("class_exceeded:liuyiqiao:nh3n"))
        var corrected = reading("nh3n", 0.4, at: "2026-11-20T08:00:00+08:00")
        corrected.flag = "revision"
        let reply = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [corrected]), as: ReadingSubmitReply.self)
        #expect(reply.accepted == 1)
        let cleared = try await Self.bodies(client, IngestTypes.alertCleared)
        #expect(cleared.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"], "\(cleared.map(\.alert))")
        #expect(try await Self.bodies(client, IngestTypes.alertRaised).allSatisfy { !$0.historical })
        await client.close()
        try await service.stop()
    }

    @Test func a744RowImportWithThreeClassIVDaysRecordsThreeFindingsAndSilenceChangesOnce() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-01T00:30:00+08:00"))
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        // The station last reported at the end of September: it is silent.
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-09-30T20:00:00+08:00")), as: ReadingSubmitReply.self)
        #expect(try await TestSupport.eventually { try await Self.bodies(client, IngestTypes.alertRaised).count == 1 })
        #expect(try await Self.bodies(client, IngestTypes.alertRaised).map(\.alert) == ["station_silent:liuyiqiao"])

        let rows = Self.october(classIVDays: [5, 12, 20])
        #expect(rows.count == 744 * 6)
        let reply = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: rows), as: ReadingSubmitReply.self)
        #expect(reply.accepted == rows.count && reply.rejected.isEmpty)
        // Let the silence check run many times over.
        try await Task.sleep(for: .milliseconds(600))

        let raised = try await Self.bodies(client, IngestTypes.alertRaised)
        let findings = raised.filter(\.historical)
        #expect(
            findings.map(\.alert) == [
                "class_exceeded:liuyiqiao:nh3n:2026-10-05", "class_exceeded:liuyiqiao:nh3n:2026-10-12",
                "class_exceeded:liuyiqiao:nh3n:2026-10-20",
            ], "\(findings.map(\.alert))")
        #expect(findings.allSatisfy { $0.severity == "alert" && $0.value == 1.1 && $0.limit == 1.0 && $0.station == "liuyiqiao" })
        #expect(findings.map { String($0.readingTs?.prefix(10) ?? "") } == ["2026-10-05", "2026-10-12", "2026-10-20"])
        #expect(raised.filter { !$0.historical }.map(\.alert) == ["station_silent:liuyiqiao"], "nothing live was exceeded")

        // Silence: raised once before, cleared once by the import, not raised again.
        let cleared = try await Self.bodies(client, IngestTypes.alertCleared)
        #expect(cleared.map(\.alert) == ["station_silent:liuyiqiao"])
        #expect(cleared.first?.readingTs == "2026-10-31T23:00:00+08:00")

        // Recorded and listed.
        let listed = try await client.call(
            IngestTypes.findingList, FindingListRequest(station: "liuyiqiao"), as: ListReply<Finding>.self
        ).items
        #expect(listed.map(\.day) == ["2026-10-05", "2026-10-12", "2026-10-20"])
        #expect(listed.allSatisfy { $0.readings == 8 && $0.kind == "class_exceeded" && $0.parameter == "nh3n" })
        #expect(listed.first?.firstTs == "2026-10-05T08:00:00+08:00" && listed.first?.lastTs == "2026-10-05T15:00:00+08:00")
        let october12 = try await client.call(
            IngestTypes.findingList, FindingListRequest(from: "2026-10-10", to: "2026-10-12"), as: ListReply<Finding>.self
        ).items
        #expect(october12.map(\.day) == ["2026-10-12"])

        // The same import again stores nothing and publishes nothing.
        let head = try await events(client, IngestTypes.alertRaised).count + (try await events(client, IngestTypes.alertCleared).count)
        let again = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: rows), as: ReadingSubmitReply.self)
        #expect(again.accepted == 0 && again.duplicates == rows.count)
        #expect(
            try await events(client, IngestTypes.alertRaised).count + (try await events(client, IngestTypes.alertCleared).count) == head)
        await client.close()
        try await service.stop()
    }

    @Test func liveReadingsRaiseAndClearInOrderAndABackfillPagesNobody() async throws {
        let clock = IngestServiceTests.clock()
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        // Two live samples in one batch: the first over class III, the second back: raised, then cleared.
        _ = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(
                readings: sample(at: "2026-11-20T09:00:00+08:00", ["nh3n": 1.2]) + sample(at: "2026-11-20T10:00:00+08:00")),
            as: ReadingSubmitReply.self)
        var raised = try await Self.bodies(client, IngestTypes.alertRaised)
        #expect(raised.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"] && raised.first?.historical == false)
        #expect(raised.first?.readingTs == "2026-11-20T09:00:00+08:00" && raised.first?.severity == "alert")
        var cleared = try await Self.bodies(client, IngestTypes.alertCleared)
        #expect(cleared.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"] && cleared.first?.readingTs == "2026-11-20T10:00:00+08:00")

        // Twelve hours (three intervals) later: silent.
        clock.set(date("2026-11-21T06:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await Self.bodies(client, IngestTypes.alertRaised).count == 2 })
        // A back-fill of ten days before: a finding, no live alert, and the station stays silent.
        _ = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(
                readings: sample(at: "2026-11-10T08:00:00+08:00", ["nh3n": 2.5]) + sample(at: "2026-11-10T12:00:00+08:00", ["nh3n": 1.8])),
            as: ReadingSubmitReply.self)
        // (The year's mean class may meanwhile be judged IV by the derived indicators: `mean_class_exceeded`.)
        raised = try await Self.bodies(client, IngestTypes.alertRaised).filter { $0.kind != "mean_class_exceeded" }
        #expect(
            raised.map(\.alert) == [
                "class_exceeded:liuyiqiao:nh3n", "station_silent:liuyiqiao", "class_exceeded:liuyiqiao:nh3n:2026-11-10",
            ])
        #expect(raised.last?.historical == true && raised.last?.severity == "critical" && raised.last?.value == 2.5)
        cleared = try await Self.bodies(client, IngestTypes.alertCleared)
        #expect(cleared.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"], "a back-fill does not end a silence")
        let finding = try await client.call(IngestTypes.findingList, FindingListRequest(), as: ListReply<Finding>.self).items
        #expect(finding.map(\.readings) == [2] && finding.first?.readingTs == "2026-11-10T08:00:00+08:00")
        // A live reading ends it, once.
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-21T05:00:00+08:00")), as: ReadingSubmitReply.self)
        try await Task.sleep(for: .milliseconds(300))
        cleared = try await Self.bodies(client, IngestTypes.alertCleared)
        #expect(cleared.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n", "station_silent:liuyiqiao"])
        // (The year's mean class may meanwhile be judged IV: `mean_class_exceeded`.)
        #expect(try await Self.bodies(client, IngestTypes.alertRaised).filter { $0.kind == "station_silent" }.count == 1)
        await client.close()
        try await service.stop()
    }
}
