import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

func date(_ text: String) -> Date { Timestamp.parse(text)! }

func reading(_ parameter: String, _ value: Double, at ts: String, station: String = "liuyiqiao", unit: String? = nil, flag: String? = nil)
    -> SubmittedReading
{
    SubmittedReading(station: station, parameter: parameter, ts: ts, value: value, unit: unit, flag: flag)
}

/// A class II sample at liuyiqiao, with one parameter set.
func sample(at ts: String, _ overrides: [String: Double] = [:]) -> [SubmittedReading] {
    var values: [String: Double] = ["ph": 7.8, "do": 6.5, "codmn": 3.5, "cod": 14, "nh3n": 0.4, "tp": 0.08]
    for (key, value) in overrides { values[key] = value }
    return values.sorted { $0.key < $1.key }.map { reading($0.key, $0.value, at: ts) }
}

func events(_ client: RPCClient, _ type: String) async throws -> [AnyEvent] {
    try await client.call(
        SystemTypes.eventsSince, EventsSinceRequest(stream: "ingest", after: 0, limit: 10_000), as: EventsSinceReply<AnyEvent>.self
    )
    .events.filter { $0.type == type }
}

@Suite struct IngestServiceTests {
    static func clock() -> ServiceClock { ServiceClock.starting(at: date("2026-11-20T12:00:00+08:00")) }

    @Test func aSampleWithAmmoniaAt1Point2IsClassIVDecidedByNH3NAndRaisesOneAlert() async throws {
        let clock = Self.clock()
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "六一桥自动站")
        let first = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-20T08:00:00+08:00", ["nh3n": 1.2])),
            as: ReadingSubmitReply.self)
        #expect(first.accepted == 6 && first.rejected.isEmpty)
        let sampleClass = try await client.call(
            IngestTypes.waterClass,
            WaterClassRequest(station: "liuyiqiao", from: "2026-11-20T08:00:00+08:00", to: "2026-11-20T08:00:00+08:00"),
            as: WaterClassReply.self)
        #expect(sampleClass.class == "IV" && sampleClass.factors == ["nh3n"] && sampleClass.samples == 1)
        var raised = try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self) }
        #expect(raised.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"])
        #expect(raised.first?.kind == "class_exceeded" && raised.first?.value == 1.2 && raised.first?.limit == 1.0)

        // The condition goes on: no second alert. Then it ends: cleared once.
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-20T09:00:00+08:00", ["nh3n": 1.4])),
            as: ReadingSubmitReply.self)
        raised = try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self) }
        #expect(raised.filter { $0.alert == "class_exceeded:liuyiqiao:nh3n" }.count == 1)
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: sample(at: "2026-11-20T10:00:00+08:00", ["nh3n": 0.6])),
            as: ReadingSubmitReply.self)
        let cleared = try await events(client, IngestTypes.alertCleared).map { try $0.body(as: AlertBody.self) }
        #expect(cleared.map(\.alert) == ["class_exceeded:liuyiqiao:nh3n"])

        // The period mean is evaluated the same way: (1.2 + 1.4 + 0.6) / 3 ≈ 1.07 → IV by nh3n.
        let mean = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-11-20", to: "2026-11-20"), as: WaterClassReply.self)
        #expect(mean.class == "IV" && mean.factors == ["nh3n"] && mean.samples == 3)
        #expect(abs((mean.means["nh3n"] ?? 0) - 1.0667) < 0.001)

        // The indicator follows from the readings.
        #expect(
            try await TestSupport.eventually {
                try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "water_quality_liuyiqiao"), as: Indicator.self)
                    .latest?.value
                    == .string("IV")
            })
        let indicator = try await client.call(
            IngestTypes.indicatorGet, IndicatorGetRequest(id: "water_quality_liuyiqiao"), as: Indicator.self)
        #expect(indicator.attainment == "not_met" && indicator.tasks == ["7.1"])
        #expect(try await events(client, IngestTypes.indicatorUpdated).count >= 1)
        await client.close()
        try await service.stop()
    }

    @Test func badReadingsAreRefusedOneByOneAndTheRestIsStored() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: Self.clock())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let t = "2026-11-20T08:00:00+08:00"
        let batch = ReadingSubmitRequest(readings: [
            reading("nh3n", 0.4, at: t),
            reading("cod", .nan, at: t),
            reading("cod", -3, at: "2026-11-20T09:00:00+08:00"),
            reading("chlorophyll", 1, at: t),
            reading("ph", 15, at: t),
            reading("do", 6, at: "2026-11-21T08:00:00+08:00"),
            reading("tp", 90, at: t, unit: "µg/L"),
        ])
        let reply = try await client.call(IngestTypes.readingSubmit, batch, as: ReadingSubmitReply.self)
        #expect(reply.accepted == 2 && reply.duplicates == 0)
        #expect(reply.rejected.map(\.index) == [1, 2, 3, 4, 5])
        #expect(reply.rejected.map(\.code) == Array(repeating: .invalidArgument, count: 5))
        #expect(
            reply.rejected.map { $0.field ?? "" } == [
                "body.readings[1].value", "body.readings[2].value", "body.readings[3].parameter", "body.readings[4].value",
                "body.readings[5].ts",
            ])
        let stored = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-11-20", to: "2026-11-21"), as: WaterClassReply.self)
        #expect(stored.means == ["nh3n": 0.4, "tp": 0.09])

        // NaN as JSON can only come as a string; a value that is no number at all is refused the same way.
        let json =
            #"{"v":1,"id":"r1","type":"reading.submit","body":{"readings":["#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","value":"NaN"},"#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","value":{}},"#
            + #"{"station":"liuyiqiao","parameter":"cod","ts":"2026-11-20T10:00:00+08:00","value":12}]}}"#
        let raw = Data(json.utf8)
        let replyFrame = try #require(try await client.send(payload: raw, id: "r1", timeout: .seconds(5)))
        let rawReply = try JSONDecoder().decode(ReplyEnvelope<ReadingSubmitReply>.self, from: replyFrame).result()
        #expect(rawReply.accepted == 1 && rawReply.rejected.map(\.index) == [0, 1])

        let tooMany = ReadingSubmitRequest(readings: Array(repeating: reading("nh3n", 0.4, at: t), count: 10_001))
        do {
            _ = try await client.call(IngestTypes.readingSubmit, tooMany, as: ReadingSubmitReply.self)
            Issue.record("10,001 readings must be refused")
        } catch let error as ErrorBody {
            #expect(error.code == .invalidArgument && error.field == "body.readings")
        }
        await client.close()
        try await service.stop()
    }

    @Test func duplicatesAreCountedAndChangedValuesNeedARevision() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: Self.clock())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let t = "2026-11-20T08:00:00+08:00"
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [reading("nh3n", 0.4, at: t)]), as: ReadingSubmitReply.self)
        // Same key, different spelling of the same time: a duplicate, not a second reading.
        let again = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [reading("nh3n", 0.4, at: "2026-11-20T00:00:00Z"), reading("nh3n", 400, at: t, unit: "µg/L")]),
            as: ReadingSubmitReply.self)
        #expect(again.accepted == 0 && again.duplicates == 2)
        let changed = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [reading("nh3n", 0.5, at: t)]), as: ReadingSubmitReply.self)
        #expect(changed.accepted == 0 && changed.rejected.first?.code == .conflict)
        let revised = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: [reading("nh3n", 0.5, at: t, flag: "revision")]),
            as: ReadingSubmitReply.self)
        #expect(revised.accepted == 1)
        let now = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-11-20", to: "2026-11-20"), as: WaterClassReply.self)
        #expect(now.means["nh3n"] == 0.5 && now.samples == 1)
        let accepted = try await events(client, IngestTypes.readingsAccepted).map { try $0.body(as: ReadingsAccepted.self).count }
        #expect(accepted == [1, 1], "one event per stored batch; a batch that stored nothing publishes nothing")
        await client.close()
        try await service.stop()
    }

    @Test func silenceAndSuddenJumpsRaiseAlerts() async throws {
        let clock = Self.clock()
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        _ = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                reading("pm25", 30, at: "2026-11-20T10:00:00+08:00", station: "chengzhong_air"),
                reading("pm25", 150, at: "2026-11-20T11:00:00+08:00", station: "chengzhong_air"),
            ]), as: ReadingSubmitReply.self)
        var raised = try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self).alert }
        #expect(raised == ["sudden_jump:chengzhong_air:pm25"])
        // Three hours (three expected intervals) later with nothing new: silent.
        clock.set(date("2026-11-20T14:01:00+08:00"))
        #expect(try await TestSupport.eventually { try await events(client, IngestTypes.alertRaised).count == 2 })
        raised = try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self).alert }
        #expect(raised.last == "station_silent:chengzhong_air")
        _ = try await client.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [reading("pm25", 140, at: "2026-11-20T14:00:00+08:00", station: "chengzhong_air")]),
            as: ReadingSubmitReply.self)
        let cleared = Set(try await events(client, IngestTypes.alertCleared).map { try $0.body(as: AlertBody.self).alert })
        #expect(cleared == ["station_silent:chengzhong_air", "sudden_jump:chengzhong_air:pm25"])
        await client.close()
        try await service.stop()
    }

    @Test func aDailyMeanOverTheLimitRaisesOnlyOnceTheDayIsValid() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: .starting(at: date("2026-11-21T12:00:00+08:00"))
        )
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let hours = (0..<24).map { reading("pm25", 80, at: String(format: "2026-11-20T%02d:00:00+08:00", $0), station: "chengzhong_air") }
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: Array(hours.prefix(19))), as: ReadingSubmitReply.self)
        // (The station may also be reported silent meanwhile: these readings are from the day before.)
        func limitAlerts() async throws -> [AlertBody] {
            try await events(client, IngestTypes.alertRaised).map { try $0.body(as: AlertBody.self) }.filter { $0.kind == "limit_exceeded" }
        }
        #expect(try await limitAlerts().isEmpty, "19 hours are not a valid daily mean")
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: Array(hours.dropFirst(19))), as: ReadingSubmitReply.self)
        let alert = try await limitAlerts()
        // A day before the live window (six hours for this station): a historical finding, not a live alert.
        #expect(
            alert.map(\.alert) == ["limit_exceeded:chengzhong_air:pm25:2026-11-20"] && alert.first?.limit == 60
                && alert.first?.historical == true && alert.first?.readingTs == "2026-11-20T23:00:00+08:00",
            "GB 3095-2026 transitional 24-hour limit: \(alert)")
        await client.close()
        try await service.stop()
    }

    @Test func pm25AnnualMeansWithTooFewValidDaysAreInvalid() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: .starting(at: date("2026-11-21T12:00:00+08:00"))
        )
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        // January 2026: 31 days × 21 hours; February: 10 days × 12 hours (not valid days).
        var readings: [SubmittedReading] = []
        for day in 1...31 {
            for hour in 0..<21 {
                readings.append(
                    reading("pm25", 40, at: String(format: "2026-01-%02dT%02d:00:00+08:00", day, hour), station: "chengzhong_air"))
            }
        }
        for day in 1...10 {
            for hour in 0..<12 {
                readings.append(
                    reading("pm25", 90, at: String(format: "2026-02-%02dT%02d:00:00+08:00", day, hour), station: "chengzhong_air"))
            }
        }
        let reply = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(reply.accepted == readings.count)
        let annual = try await client.call(
            IngestTypes.airAnnual, AirAnnualRequest(station: "chengzhong_air", year: 2026), as: AirAnnualReply.self)
        #expect(annual.validDays == 31 && !annual.valid && annual.pm25Mean == 40 && annual.grade == nil)
        #expect(
            try await TestSupport.eventually {
                try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "pm25_annual_mean"), as: Indicator.self).latest?
                    .value == .number(40)
            })
        let indicator = try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "pm25_annual_mean"), as: Indicator.self)
        #expect(indicator.latest?.note?.contains("有效天数不足，暂不评价") == true && indicator.provisional == true)
        #expect(indicator.attainment == "unknown", "the city's control value is not configured")
        await client.close()
        try await service.stop()
    }

    @Test func indicatorReportsAreCheckedJudgedAndProjected() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: Self.clock()
        ) { $0.thresholds["city_control_value"] = 30 }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区自然资源和林业局")
        func report(_ id: String, _ period: String, _ value: JSONValue) async throws -> IndicatorValue {
            try await client.call(
                IngestTypes.indicatorReport, IndicatorReportRequest(indicator: id, period: period, value: value, source: "统计年报"),
                as: IndicatorValue.self)
        }
        func refused(_ id: String, _ period: String, _ value: JSONValue) async throws -> ErrorBody {
            do {
                _ = try await report(id, period, value)
            } catch let error as ErrorBody {
                return error
            }
            throw TestFailure("accepted")
        }
        _ = try await report("forest_coverage", "2024", .number(30.9))
        _ = try await report("forest_coverage", "2025", .number(31.2))
        var forest = try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "forest_coverage"), as: Indicator.self)
        #expect(forest.attainment == "not_met" && forest.latest?.value == .number(31.2))
        #expect(forest.projection == .number(31.5), "30.9 → 31.2 → 31.5 by the end of 2026")
        _ = try await report("forest_coverage", "2026-Q3", .number(31.6))
        forest = try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "forest_coverage"), as: Indicator.self)
        #expect(forest.attainment == "met" && forest.history?.map(\.period) == ["2024", "2025", "2026-Q3"])

        _ = try await report("aquatic_eco_evaluation", "2025", .string("有所好转"))
        #expect(
            try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "aquatic_eco_evaluation"), as: Indicator.self)
                .attainment == "met")
        _ = try await report("aquatic_eco_evaluation", "2026", .string("有所变差"))
        #expect(
            try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "aquatic_eco_evaluation"), as: Indicator.self)
                .attainment == "not_met")
        _ = try await report("pm25_annual_mean", "2025", .number(28))
        #expect(
            try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "pm25_annual_mean"), as: Indicator.self).attainment
                == "met")
        _ = try await report("emissions_carbon_intensity", "2025", .bool(true))
        _ = try await report("hazardous_waste_safe_disposal", "2025", .number(99.5))
        #expect(
            try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "hazardous_waste_safe_disposal"), as: Indicator.self)
                .attainment == "not_met")

        #expect(try await refused("forest_coverage", "2025", .number(140)).field == "body.value")
        #expect(try await refused("forest_coverage", "2025", .string("high")).field == "body.value")
        #expect(try await refused("aquatic_eco_evaluation", "2025", .string("很好")).field == "body.value")
        #expect(try await refused("forest_coverage", "2025-13", .number(31)).field == "body.period")
        #expect(try await refused("forest_coverage", "2027", .number(31)).field == "body.period")
        #expect(try await refused("happiness", "2025", .number(31)).code == .notFound)

        let updates = try await events(client, IngestTypes.indicatorUpdated).map { try $0.body(as: IndicatorUpdated.self) }
        #expect(updates.filter { $0.indicator == "forest_coverage" }.map(\.attainment) == ["not_met", "not_met", "met"])
        #expect(updates.first { $0.indicator == "forest_coverage" }?.tasks == ["3"])
        let list = try await client.call(IngestTypes.indicatorList, Empty(), as: ListReply<Indicator>.self)
        #expect(list.items.map(\.id) == IndicatorID.all && list.items.allSatisfy { $0.history == nil })
        await client.close()
        try await service.stop()
    }
}
