import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

/// `readings.query`: the means a dashboard draws are the ones the services judge.
@Suite struct ReadingsQueryTests {
    @Test func dailyMeansMatchWaterClassForTheSameDaysAndCoverageCountsTheGaps() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 30)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        // October: an hourly row of six parameters, 氨氮 at class IV on three days; the 31st is missing.
        let rows = JudgedReadingsTests.october(classIVDays: [5, 12, 20]).filter { !$0.ts.hasPrefix("2026-10-31") }
        _ = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: rows), as: ReadingSubmitReply.self)

        let daily = try await client.call(
            ReadingsTypes.query, ReadingsQueryRequest(station: "liuyiqiao", from: "2026-10-01", to: "2026-10-31", every: .day))
        #expect(daily.kind == "water" && daily.targetClass == "III" && daily.every == .day)
        let nh3n = try #require(daily.series.first { $0.parameter == "nh3n" })
        #expect(nh3n.unit == "mg/L" && nh3n.points.count == 30)
        #expect(nh3n.coverage.buckets == 31 && nh3n.coverage.withData == 30 && nh3n.coverage.readings == 720)
        for day in ["2026-10-05", "2026-10-06", "2026-10-12"] {
            let water = try await client.call(
                IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: day, to: day), as: WaterClassReply.self)
            let point = try #require(nh3n.points.first { $0.t == day })
            #expect(point.mean == water.means["nh3n"], "\(day)")
            #expect(daily.classes?.first { $0.t == day }?.class == water.class, "\(day)")
            #expect(point.count == 24)
        }
        let fifth = try #require(nh3n.points.first { $0.t == "2026-10-05" })
        #expect(fifth.max == 1.1 && fifth.min == 0.4 && fifth.mean == 0.6333)

        // Hours: one point per hour with data; months: the whole month in one.
        let hourly = try await client.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(
                station: "liuyiqiao", parameters: ["nh3n"], from: "2026-10-05T07:00:00+08:00", to: "2026-10-05T09:59:59+08:00", every: .hour
            ))
        #expect(hourly.series[0].points.map(\.t) == ["2026-10-05T07:00+08:00", "2026-10-05T08:00+08:00", "2026-10-05T09:00+08:00"])
        #expect(hourly.series[0].points.map(\.class) == ["II", "IV", "IV"])
        let monthly = try await client.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(station: "liuyiqiao", parameters: ["nh3n"], from: "2026-10-01", to: "2026-10-31", every: .month))
        #expect(monthly.series[0].points.map(\.t) == ["2026-10"] && monthly.series[0].points[0].count == 720)

        // Every bad request named.
        #expect(
            try await refusal(client, ReadingsTypes.query, ReadingsQueryRequest(station: "六一桥x", from: "2026-10-01", to: "2026-10-02"))
                .field == "body.station")
        #expect(
            try await refusal(
                client, ReadingsTypes.query,
                ReadingsQueryRequest(station: "liuyiqiao", parameters: ["pm25"], from: "2026-10-01", to: "2026-10-02")
            )
            .field == "body.parameters[0]")
        #expect(
            try await refusal(client, ReadingsTypes.query, ReadingsQueryRequest(station: "liuyiqiao", from: "2026-10-02", to: "2026-10-01"))
                .field == "body.to")
        #expect(
            try await refusal(
                client, ReadingsTypes.query, ReadingsQueryRequest(station: "liuyiqiao", from: "2000-01-01", to: "2026-10-01", every: .hour)
            )
            .field == "body.from", "too many points")
        await client.close()
        try await service.stop()
    }
}
