import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

/// 监测预警预判和趋势分析 at 六一桥: warned before the breach, by trend and by nearness to the limit.
@Suite struct EarlyWarningTests {
    @Test func nh3nRisingTowardsTheLimitWarnsBeforeTheFirstReadingOverIt() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-08T00:00:00+08:00"))
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        func raised() async throws -> [AlertBody] {
            try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self) }
        }
        func cleared() async throws -> [AlertBody] {
            try await events(client, IngestTypes.alertCleared).map { try $0.body(as: AlertBody.self) }
        }

        // A week of readings every four hours, 氨氮 rising steadily from 0.30 to 0.72 mg/L: all within class III.
        var rows: [SubmittedReading] = []
        for step in 0..<42 {
            let ts = Timestamp.format(date("2026-11-01T00:00:00+08:00").addingTimeInterval(Double(step) * 4 * 3600), fractional: false)
            rows += sample(at: ts, ["nh3n": 0.30 + 0.01 * Double(step)])
        }
        _ = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: rows), as: ReadingSubmitReply.self)
        #expect(try await TestSupport.eventually { try await raised().contains { $0.kind == "trend_rising" } })
        let trend = try #require(try await raised().first { $0.kind == "trend_rising" })
        #expect(trend.alert == "trend_rising:liuyiqiao:nh3n" && trend.severity == "warning" && trend.limit == 1.0)
        #expect((trend.projection ?? 0) > 1.0 && trend.message.contains("上升趋势"), "\(trend)")
        #expect(try await !raised().contains { $0.kind == "class_exceeded" }, "warned before any breach")

        // Nearer: 0.85 is 85 % of the class III limit.
        clock.set(date("2026-11-08T04:00:00+08:00"))
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-08T04:00:00+08:00", ["nh3n": 0.85])),
            as: ReadingSubmitReply.self)
        let near = try #require(try await raised().first { $0.kind == "approaching_limit" })
        #expect(near.alert == "approaching_limit:liuyiqiao:nh3n" && near.severity == "warning" && near.message.contains("85%"))
        #expect(try await !raised().contains { $0.kind == "class_exceeded" })

        // The breach: the warning gives way to the alert.
        clock.set(date("2026-11-08T08:00:00+08:00"))
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-08T08:00:00+08:00", ["nh3n": 1.1])),
            as: ReadingSubmitReply.self)
        #expect(try await raised().contains { $0.alert == "class_exceeded:liuyiqiao:nh3n" })
        #expect(try await cleared().contains { $0.alert == "approaching_limit:liuyiqiao:nh3n" })
        await client.close()
        try await service.stop()
    }

    @Test func aFlatSeriesFarBelowTheLimitWarnsOfNothing() {
        let now = date("2026-11-08T00:00:00+08:00")
        let station = StationConfig(
            id: "s", name: "断面", kind: "water", waterBody: "river", targetClass: "III", expectedIntervalMinutes: 240, jumpFactor: nil,
            jumpFloor: nil, parameters: ["nh3n"])
        let flat = (0..<42).map {
            StoredSample(parameter: "nh3n", ts: Int64(now.timeIntervalSince1970 * 1000) - Int64($0) * 4 * 3_600_000, value: 0.4)
        }
        #expect(AlertRules.trend(flat, station: station, standards: try! Standards.bundled(), active: [], now: now).isEmpty)
    }
}
