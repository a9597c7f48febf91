import DubanTesting
import Formats
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

/// Quality marks (#17): below-detection readings kept with their limit, 维护/校准/停运 stored as flags;
/// imported by the CLI, returned by `readings.query`, judged as docs/ingest.md says.
@Suite struct QualityMarksTests {
    /// A long export as a station writes it: 0.01L, ND with a 检出限 column, <4, a 维护 row with an
    /// absurd value, a 校准 row without one, plain readings around them.
    static let export = """
        站点,项目,监测时间,监测值,单位,标记,检出限
        liuyiqiao,氨氮,2026-11-01 08:00,0.01L,mg/L,,
        liuyiqiao,总磷,2026-11-01 08:00,ND,mg/L,,0.01
        liuyiqiao,化学需氧量,2026-11-01 08:00,<4,mg/L,,
        liuyiqiao,氨氮,2026-11-01 12:00,500,mg/L,维护,
        liuyiqiao,总磷,2026-11-01 12:00,,mg/L,校准,
        liuyiqiao,氨氮,2026-11-01 16:00,0.4,mg/L,,
        liuyiqiao,氨氮,2026-11-02 08:00,<0.05,mg/L,,

        """

    /// Runs the `duban` CLI against one ingest service (its endpoints in a configuration file, no keys).
    static func duban(_ service: InProcessService, _ arguments: [String]) throws -> (output: String, ok: Bool) {
        let dir = try TestSupport.temporaryDirectory("duban-cli")
        let config = """
            {"ingest": {"rpc": "\(service.endpoints.rpc)", "events": "\(service.endpoints.events)"}, "keysDir": ""}
            """
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        let binary = (TestSupport.binDirectory as NSString).appendingPathComponent("duban")
        do {
            return (try TestSupport.run(binary, ["--config", "\(dir)/config.json"] + arguments), true)
        } catch let failure as TestFailure {
            return ("\(failure)", false)
        }
    }

    static func nh3nAlerts(_ client: RPCClient) async throws -> [AlertBody] {
        try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self) }.filter { $0.parameter == "nh3n" }
    }

    /// What both stores must answer for the export's readings.
    static func expectMarksComeBack(_ client: RPCClient) async throws {
        let daily = try await client.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(
                station: "liuyiqiao", parameters: ["nh3n", "tp", "cod"], from: "2026-11-01", to: "2026-11-02", every: .day))
        let nh3n = try #require(daily.series.first { $0.parameter == "nh3n" })
        let first = try #require(nh3n.points.first { $0.t == "2026-11-01" })
        // 0.01L enters as 0.005 beside the measured 0.4; the 维护 reading's 500 is in nothing.
        #expect(first.count == 2 && first.belowDetection == 1 && first.detectionLimit == 0.01 && first.mean == 0.2025, "\(first)")
        #expect(first.max == 0.4 && first.min == 0.005)
        #expect(nh3n.marked == [MarkedBucket(t: "2026-11-01", mark: "maintenance", count: 1)])
        let second = try #require(nh3n.points.first { $0.t == "2026-11-02" })
        #expect(second.count == 1 && second.belowDetection == 1 && second.detectionLimit == 0.05 && second.mean == 0.025)
        let tp = try #require(daily.series.first { $0.parameter == "tp" })
        #expect(tp.points.map(\.mean) == [0.005] && tp.points.first?.belowDetection == 1 && tp.points.first?.detectionLimit == 0.01)
        #expect(tp.marked == [MarkedBucket(t: "2026-11-01", mark: "calibration", count: 1)])
        #expect(tp.coverage.readings == 1, "a 校准 reading is no valid data")
        let cod = try #require(daily.series.first { $0.parameter == "cod" })
        #expect(cod.points.first?.mean == 2 && cod.points.first?.detectionLimit == 4)

        // The month: each below-detection reading at half its limit, (0.005 + 0.4 + 0.025) / 3.
        let monthly = try await client.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(station: "liuyiqiao", parameters: ["nh3n"], from: "2026-11-01", to: "2026-11-30", every: .month))
        #expect(monthly.series[0].points.map(\.mean) == [0.1433] && monthly.series[0].points[0].count == 3, "\(monthly)")
        let water = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-11-01", to: "2026-11-30"), as: WaterClassReply.self)
        #expect(water.means["nh3n"] == 0.1433 && water.means["tp"] == 0.005, "\(water.means)")

        // A 维护 reading of 500 mg/L (劣V many times over) raised nothing, live or historical.
        #expect(try await nh3nAlerts(client).isEmpty)
    }

    @Test func anExportsMarkedRowsImportAndComeBackMarkedAndUnjudged() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock())
        let dir = try TestSupport.temporaryDirectory()
        try Self.export.write(toFile: "\(dir)/export.csv", atomically: true, encoding: .utf8)
        let run = try Self.duban(service, ["readings", "import", "\(dir)/export.csv"])
        #expect(run.ok, "\(run.output)")
        #expect(run.output.contains("入库 7 条，重复 0 条（其中低于检出限 4 条、维护/校准/停运 2 条），0 条有误"), "\(run.output)")

        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        try await Self.expectMarksComeBack(client)

        // Importing again: all duplicates, marks and limits included.
        let again = try Self.duban(service, ["readings", "import", "\(dir)/export.csv"])
        #expect(again.output.contains("入库 0 条，重复 7 条"), "\(again.output)")

        // The CLI shows them in Chinese.
        let shown = try Self.duban(
            service, ["readings", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-01", "--every", "hour", "--parameter", "tp"])
        #expect(shown.ok && shown.output.contains("<0.01（未检出）") && shown.output.contains("校准"), "\(shown.output)")

        // The same 500 unmarked is a finding: the mark, not the value, kept it out.
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [reading("nh3n", 500, at: "2026-11-02T12:00:00+08:00")]),
            as: ReadingSubmitReply.self)
        #expect(try await Self.nh3nAlerts(client).map(\.alert).contains("class_exceeded:liuyiqiao:nh3n:2026-11-02"))
        await client.close()
        try await service.stop()
    }

    @Test func aMarkedReadingNeverRaisesALiveAlertAndChangesOnlyByRevision() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let t = "2026-11-20T08:00:00+08:00"
        var maintenance = reading("nh3n", 800, at: t)
        maintenance.mark = "maintenance"
        var belowDetection = reading("tp", .nan, at: t)
        belowDetection.mark = "below_detection"
        belowDetection.detectionLimit = 10
        belowDetection.unit = "µg/L"
        let first = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [maintenance, belowDetection]), as: ReadingSubmitReply.self)
        #expect(first.accepted == 2 && first.rejected.isEmpty, "\(first)")
        #expect(try await events(client, IngestTypes.alertRaised).isEmpty)
        let stored = try await client.call(
            ReadingsTypes.query, ReadingsQueryRequest(station: "liuyiqiao", parameters: ["tp"], from: "2026-11-20", to: "2026-11-20"))
        #expect(stored.series[0].points.first?.detectionLimit == 0.01, "µg/L converted like a value")

        // The same again is a duplicate; another mark is a conflict naming what is stored; a revision replaces it.
        var measured = reading("nh3n", 0.4, at: t)
        let second = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [maintenance, belowDetection, measured]), as: ReadingSubmitReply.self)
        #expect(second.duplicates == 2 && second.rejected.map(\.code) == [.conflict])
        #expect(second.rejected.first?.message.contains("800.0（维护）") == true, "\(second.rejected)")
        measured.flag = "revision"
        let revised = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [measured]), as: ReadingSubmitReply.self)
        #expect(revised.accepted == 1)
        let day = try await client.call(
            ReadingsTypes.query, ReadingsQueryRequest(station: "liuyiqiao", parameters: ["nh3n"], from: "2026-11-20", to: "2026-11-20"))
        #expect(day.series[0].points.map(\.mean) == [0.4] && day.series[0].marked == nil)
        await client.close()
        try await service.stop()
    }

    /// A 维护 reading gives no value but proves the station is reporting: the silence alert clears.
    @Test func aMaintenanceReadingKeepsTheStationAlive() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock(), tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-18T08:00:00+08:00")), as: ReadingSubmitReply.self)
        #expect(
            try await TestSupport.eventually {
                try await events(client, IngestTypes.alertRaised).contains {
                    (try? $0.body(as: AlertBody.self).alert) == "station_silent:liuyiqiao"
                }
            })
        let maintenance = SubmittedReading(
            station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T11:30:00+08:00", value: .nan, mark: "maintenance")
        _ = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [maintenance]), as: ReadingSubmitReply.self)
        #expect(
            try await TestSupport.eventually {
                try await events(client, IngestTypes.alertCleared).contains {
                    (try? $0.body(as: AlertBody.self).alert) == "station_silent:liuyiqiao"
                }
            })
        await client.close()
        try await service.stop()
    }

    @Test func anUnknownMarkOrABadLimitIsRefusedOnItsOwnWithItsField() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let t = "2026-11-20T08:00:00+08:00"
        func marked(_ mark: String?, value: Double = .nan, limit: Double? = nil) -> SubmittedReading {
            SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: t, value: value, mark: mark, detectionLimit: limit)
        }
        let reply = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                reading("tp", 0.08, at: t),
                marked("bogus", value: 1),
                marked("below_detection", limit: -0.01),
                marked("below_detection"),
                marked("below_detection", limit: .infinity),
                marked("below_detection", value: 0.5, limit: 0.01),
                marked("maintenance", limit: 0.01),
                marked(nil, value: .nan),
                marked("below_detection", limit: 1e9),
            ]), as: ReadingSubmitReply.self)
        #expect(reply.accepted == 1)
        #expect(
            reply.rejected.map { $0.field ?? "" } == [
                "body.readings[1].mark", "body.readings[2].detection_limit", "body.readings[3].detection_limit",
                "body.readings[4].detection_limit", "body.readings[5].value", "body.readings[6].detection_limit",
                "body.readings[7].value", "body.readings[8].detection_limit",
            ], "\(reply.rejected)")
        #expect(reply.rejected.allSatisfy { $0.code == .invalidArgument })
        #expect(reply.rejected.first?.message.contains("未知的标记") == true)

        // What the typed client cannot send: a mark that is not text, a limit that is not a number, "NaN" on a marked reading.
        let json =
            #"{"v":1,"id":"r1","type":"reading.submit","body":{"readings":["#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","value":12,"mark":5},"#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","mark":"below_detection","detection_limit":{}},"#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","mark":"maintenance","value":"NaN"},"#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","mark":"stopped"}]}}"#
        let frame = try #require(try await client.send(payload: Data(json.utf8), id: "r1", timeout: .seconds(5)))
        let raw = try JSONDecoder().decode(ReplyEnvelope<ReadingSubmitReply>.self, from: frame).result()
        #expect(raw.accepted == 1, "a 停运 reading without a value is taken")
        #expect(
            raw.rejected.map { $0.field ?? "" } == ["body.readings[0].mark", "body.readings[1].detection_limit", "body.readings[2].value"],
            "\(raw.rejected)")
        await client.close()
        try await service.stop()
    }

    /// PostgreSQL: a table made before marks existed (value NOT NULL, no columns) takes them and keeps its rows.
    @Test func postgresStoresMarksInATableMadeBeforeThem() async throws {
        let cluster = try PostgresCluster.start()
        defer { cluster.stop() }
        let sixteen = Int64(date("2026-11-01T16:00:00+08:00").timeIntervalSince1970 * 1000)
        _ = try cluster.psql(
            """
            CREATE TABLE readings (station TEXT NOT NULL, parameter TEXT NOT NULL, ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0, received_at BIGINT NOT NULL, PRIMARY KEY (station, parameter, ts));
            INSERT INTO readings VALUES ('liuyiqiao', 'nh3n', \(sixteen), 0.4, 0, 0)
            """)
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock()
        ) { $0.databaseURL = cluster.url }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let rows = try ReadingsImport.rows(
            try LedgerCSV.parse(Self.export).map { (line: $0.line, fields: $0.fields) }, defaultStation: nil)
        let readings = rows.compactMap(\.reading)
        #expect(readings.count == 7 && readings.filter { $0.mark != nil }.count == 6)
        let reply = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        // The 16:00 reading was already there: a duplicate.
        #expect(reply.accepted == 6 && reply.duplicates == 1 && reply.rejected.isEmpty, "\(reply)")
        try await Self.expectMarksComeBack(client)
        let again = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(again.duplicates == 7)
        let stored = try cluster.psql(
            "SELECT count(*) FILTER (WHERE mark IS NOT NULL), count(*) FILTER (WHERE value IS NULL) FROM readings")
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "6|1", "\(stored)")
        // A revision gives the 校准 reading its measured value and takes the mark away.
        let measured = SubmittedReading(
            station: "liuyiqiao", parameter: "tp", ts: "2026-11-01T12:00:00+08:00", value: 0.07, flag: "revision")
        let revised = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [measured]), as: ReadingSubmitReply.self)
        #expect(revised.accepted == 1, "\(revised)")
        let row = try cluster.psql("SELECT value, coalesce(mark, '-'), revision FROM readings WHERE parameter = 'tp' AND value > 0.05")
        #expect(row == "0.07|-|1", "\(row)")
        await client.close()
        try await service.stop()
    }
}
