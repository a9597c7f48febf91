import DubanTesting
import Foundation
import Messaging
import PlanFormat
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import IndicatorIngest

/// The standards as their rules say: monthly means for a section's annual class, GB 3095's
/// data validity before a PM2.5 annual mean is judged, HJ 663 rounding before any comparison,
/// the two quantities of 主要污染物减排和碳排放强度, and targets that follow the registry's plan.
@Suite struct StandardsRulesTests {
    static func indicator(_ client: RPCClient, _ id: String) async throws -> Indicator {
        try await client.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: id), as: Indicator.self)
    }

    static func report(_ client: RPCClient, _ id: String, _ period: String, _ value: JSONValue) async throws -> IndicatorValue {
        try await client.call(
            IngestTypes.indicatorReport, IndicatorReportRequest(indicator: id, period: period, value: value, source: "统计年报"),
            as: IndicatorValue.self)
    }

    @Test func roundingIsHalfToEvenOnTheDecimalDigits() {
        #expect(StandardRounding.round(35.5, decimals: 0) == 36)
        #expect(StandardRounding.round(36.5, decimals: 0) == 36)
        #expect(StandardRounding.round(35.49, decimals: 0) == 35)
        #expect(StandardRounding.round(35.51, decimals: 0) == 36)
        #expect(StandardRounding.round(0.125, decimals: 2) == 0.12)
        // 2.675 is stored in binary just below 2.675; its decimal form is an exact half, 7 is odd: up.
        #expect(StandardRounding.round(2.675, decimals: 2) == 2.68)
        #expect(StandardRounding.round(1.25, decimals: 1) == 1.2 && StandardRounding.round(1.35, decimals: 1) == 1.4)
    }

    /// One January sample at class V (NH3-N 1.9) and nine February samples at III (0.9): every
    /// sample averaged is 1.0 (III); the months averaged are (1.9 + 0.9) / 2 = 1.4 (IV), as the
    /// 2011 评价办法 judges a year.
    @Test func theAnnualClassIsTheMeanOfMonthlyMeansNotOfRawSamples() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "六一桥自动站")
        var readings = sample(at: "2026-01-15T08:00:00+08:00", ["nh3n": 1.9])
        for day in 1...9 { readings += sample(at: String(format: "2026-02-%02dT08:00:00+08:00", day), ["nh3n": 0.9]) }
        let reply = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(reply.accepted == 60 && reply.rejected.isEmpty)

        // What averaging the raw samples would say: III.
        let standards = try Standards.bundled()
        let raw = ((1.9 + 9 * 0.9) / 10 * 10_000).rounded() / 10_000
        #expect(raw == 1.0 && standards.waterClass("nh3n", value: raw, on: "2026-11-20") == .iii)

        let year = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-01-01", to: "2026-11-20"), as: WaterClassReply.self)
        #expect(year.class == "IV" && year.factors == ["nh3n"] && year.means["nh3n"] == 1.4 && year.months == 2 && year.samples == 10)
        // Within one month the monthly mean is the samples' mean.
        let february = try await client.call(
            IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "2026-02-01", to: "2026-02-28"), as: WaterClassReply.self)
        #expect(february.class == "III" && february.means["nh3n"] == 0.9 && february.months == 1)

        #expect(
            try await TestSupport.eventually { try await Self.indicator(client, "water_quality_liuyiqiao").latest?.value == .string("IV") })
        let indicator = try await Self.indicator(client, "water_quality_liuyiqiao")
        #expect(indicator.attainment == "not_met" && indicator.latest?.note?.contains("各月均值") == true)
        #expect(indicator.latest?.note?.contains("2 个月") == true, "\(indicator.latest?.note ?? "")")
        await client.close()
        try await service.stop()
    }

    /// 2026 at 30.5 µg/m³ every hour, 20 hours a day, every day but 25–28 February: 361 valid days,
    /// yet February has 24 (< 25), so the year cannot be valid and the mean is provisional, not
    /// judged. With 25 February the year is valid, and 30.5 is reported as 30 (HJ 663, half-to-even):
    /// within a city control value of 30, where the raw mean would not be.
    @Test func pm25AnnualMeanIsProvisionalUntilTheYearCanBeValidThenJudgedRounded() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: .starting(at: date("2027-01-02T12:00:00+08:00"))
        ) { $0.thresholds["city_control_value"] = 30 }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "城中区空气自动站")
        func day(_ text: String) -> [SubmittedReading] {
            (0..<20).map { reading("pm25", 30.5, at: "\(text)T\(String(format: "%02d", $0)):00:00+08:00", station: "chengzhong_air") }
        }
        var readings: [SubmittedReading] = []
        var cursor = Timestamp.startOfDistrictDay("2026-01-01")!
        while Timestamp.districtDate(cursor) < "2027-01-01" {
            let text = Timestamp.districtDate(cursor)
            if !("2026-02-25"..."2026-02-28").contains(text) { readings += day(text) }
            cursor = cursor.addingTimeInterval(86_400)
        }
        let first = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(first.accepted == 361 * 20)

        let annual = try await client.call(
            IngestTypes.airAnnual, AirAnnualRequest(station: "chengzhong_air", year: 2026), as: AirAnnualReply.self)
        #expect(annual.validDays == 361 && !annual.valid && annual.grade == nil && annual.pm25Mean == 30.5 && annual.pm25Judged == 30)
        #expect(annual.provisionalText?.hasPrefix("有效天数不足，暂不评价") == true && annual.provisionalText?.contains("2月不足") == true)
        #expect(try await TestSupport.eventually { try await Self.indicator(client, "pm25_annual_mean").latest?.period == "2026" })
        var indicator = try await Self.indicator(client, "pm25_annual_mean")
        #expect(indicator.provisional == true && indicator.latest?.provisional == true && indicator.attainment == "unknown")
        #expect(indicator.provisionalText?.hasPrefix("有效天数不足，暂不评价") == true)
        #expect(indicator.latest?.value == .number(30))

        // The 25th of February makes the year valid: now judged, on the rounded mean.
        _ = try await client.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: day("2026-02-25")), as: ReadingSubmitReply.self)
        #expect(try await TestSupport.eventually { try await Self.indicator(client, "pm25_annual_mean").provisional == nil })
        indicator = try await Self.indicator(client, "pm25_annual_mean")
        #expect(indicator.attainment == "met" && indicator.judgedValue == .number(30) && indicator.provisionalText == nil)
        let valid = try await client.call(
            IngestTypes.airAnnual, AirAnnualRequest(station: "chengzhong_air", year: 2026), as: AirAnnualReply.self)
        #expect(valid.valid && valid.validDays == 362 && valid.grade == "二级" && valid.provisionalText == nil)
        let updates = try await events(client, IngestTypes.indicatorUpdated).map { try $0.body(as: IndicatorUpdated.self) }
        #expect(updates.map(\.attainment) == ["unknown", "met"], "provisional first, then judged")
        await client.close()
        try await service.stop()
    }

    /// The same with PostgreSQL (the scale-out storage): the provisional mark is stored and read back.
    @Test func aProvisionalMeanIsStoredAsSuchInPostgres() async throws {
        let cluster = try PostgresCluster.start()
        defer { cluster.stop() }
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: .starting(at: date("2026-11-21T12:00:00+08:00"))
        ) {
            $0.databaseURL = cluster.url
            $0.thresholds["city_control_value"] = 30
        }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "城中区空气自动站")
        let readings = (1...31).flatMap { day in
            (0..<20).map { reading("pm25", 20, at: String(format: "2026-01-%02dT%02d:00:00+08:00", day, $0), station: "chengzhong_air") }
        }
        _ = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(try await TestSupport.eventually { try await Self.indicator(client, "pm25_annual_mean").latest != nil })
        let indicator = try await Self.indicator(client, "pm25_annual_mean")
        #expect(indicator.provisional == true && indicator.attainment == "unknown" && indicator.latest?.value == .number(20))
        #expect(indicator.provisionalText?.contains("有效日均值 31 天") == true, "\(indicator.provisionalText ?? "")")
        let stored = try cluster.psql("SELECT provisional FROM indicator_values WHERE indicator = 'pm25_annual_mean'")
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "t", "\(stored)")
        await client.close()
        try await service.stop()
    }

    @Test func reportedValuesAreRoundedBeforeTheyMeetTheLimit() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock()
        ) { $0.thresholds["city_control_value"] = 35 }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        for (period, value, attainment, judged) in [
            ("2024", 35.5, "not_met", 36.0), ("2025", 34.5, "met", 34), ("2026-Q1", 35.49, "met", 35), ("2026-Q2", 35.51, "not_met", 36),
            ("2026-Q3", 36.5, "not_met", 36), ("2026-Q4", 35.0, "met", 35),
        ] {
            _ = try await Self.report(client, "pm25_annual_mean", period, .number(value))
            let indicator = try await Self.indicator(client, "pm25_annual_mean")
            #expect(indicator.attainment == attainment && indicator.judgedValue == .number(judged), "\(value) against 35")
        }
        // Percentages have no reporting precision: compared as reported.
        _ = try await Self.report(client, "forest_coverage", "2025", .number(31.475))
        #expect(try await Self.indicator(client, "forest_coverage").attainment == "not_met")
        #expect(try await Self.indicator(client, "forest_coverage").judgedValue == nil)
        await client.close()
        try await service.stop()
    }

    /// GB 3095-2026's 24-hour PM2.5 limit is 60: daily means of 60.5 (reported 60) and 59.5 (60)
    /// are within it, 61.5 (62) and 60.6 (61) exceed it.
    @Test func dailyMeansAreRoundedBeforeTheDailyLimit() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: .starting(at: date("2026-11-25T12:00:00+08:00"))
        )
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "城中区空气自动站")
        var readings: [SubmittedReading] = []
        for (day, value) in [("2026-11-18", 59.5), ("2026-11-19", 60.5), ("2026-11-20", 61.5), ("2026-11-21", 60.6)] {
            readings += (0..<24).map {
                reading("pm25", value, at: "\(day)T\(String(format: "%02d", $0)):00:00+08:00", station: "chengzhong_air")
            }
        }
        _ = try await client.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        let findings = try await client.call(
            IngestTypes.findingList, FindingListRequest(station: "chengzhong_air"), as: ListReply<Finding>.self
        ).items.filter { $0.kind == "limit_exceeded" }
        #expect(findings.map(\.day) == ["2026-11-20", "2026-11-21"], "\(findings.map(\.day))")
        #expect(findings.map(\.value) == [62, 61] && findings.allSatisfy { $0.limit == 60 })
        await client.close()
        try await service.stop()
    }

    @Test func pollutantReductionAndCarbonIntensityAreTwoJudgedValues() async throws {
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: IngestServiceTests.clock()
        ) {
            $0.thresholds["national_quota_pollutant_reduction"] = 1200
            $0.thresholds["national_quota_carbon_intensity"] = 0.8
        }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        var target = try await Self.indicator(client, "emissions_carbon_intensity")
        #expect(target.parts?.map(\.id) == ["major_pollutant_reduction", "carbon_intensity"])
        #expect(target.parts?.map(\.name) == ["主要污染物减排", "碳排放强度"])
        #expect(target.parts?.map(\.unit) == ["吨", "吨二氧化碳/万元"] && target.parts?.map(\.operator) == ["at_least", "at_most"])
        #expect(target.parts?.map(\.threshold) == [.number(1200), .number(0.8)] && target.attainment == "unknown")
        #expect(try await client.call(IngestTypes.indicatorList, Empty(), as: ListReply<Indicator>.self).items.count == 13)

        // An old client's yes/no for the whole target still counts while no part has a value.
        _ = try await Self.report(client, "emissions_carbon_intensity", "2025", .bool(true))
        #expect(try await Self.indicator(client, "emissions_carbon_intensity").attainment == "met")

        _ = try await Self.report(client, "major_pollutant_reduction", "2025", .number(1310))
        target = try await Self.indicator(client, "emissions_carbon_intensity")
        #expect(target.parts?.map(\.attainment) == ["met", "unknown"] && target.attainment == "unknown")
        _ = try await Self.report(client, "carbon_intensity", "2025", .number(0.85))
        target = try await Self.indicator(client, "emissions_carbon_intensity")
        #expect(target.parts?.map(\.attainment) == ["met", "not_met"] && target.attainment == "not_met")
        _ = try await Self.report(client, "carbon_intensity", "2026", .number(0.78))
        target = try await Self.indicator(client, "emissions_carbon_intensity")
        #expect(target.parts?.map(\.attainment) == ["met", "met"] && target.attainment == "met")
        let part = try await Self.indicator(client, "carbon_intensity")
        #expect(part.latest?.value == .number(0.78) && part.history?.count == 2 && part.tasks == ["15"])

        // A bare number for the whole target cannot say which quantity it is.
        do {
            _ = try await Self.report(client, "emissions_carbon_intensity", "2026", .number(0.78))
            Issue.record("a number for the whole target was accepted")
        } catch let error as ErrorBody {
            #expect(error.code == .invalidArgument && error.field == "body.value" && error.message.contains("carbon_intensity"))
        }
        await client.close()
        try await service.stop()
    }

    @Test func aPlanFileWithABadPartIsRefusedNamingThePart() throws {
        let text = try String(contentsOfFile: try #require(PlanLoader.bundledPlanPath), encoding: .utf8)
        let parsed = try PlanLoader.parse(text, file: "plan.yaml")
        let parts = parsed.targets.first { $0.indicator == "emissions_carbon_intensity" }?.parts
        #expect(
            parts?.map(\.indicator) == ["major_pollutant_reduction", "carbon_intensity"] && parts?.allSatisfy { $0.tasks == ["15"] } == true
        )
        let broken = text.replacingOccurrences(of: "threshold_from: national_quota_carbon_intensity", with: "threshold: many")
            .replacingOccurrences(
                of: "        operator: at_most\n        threshold: many", with: "        operator: class_at_least\n        threshold: many")
        var message = ""
        do {
            _ = try PlanLoader.parse(broken, file: "plan.yaml")
        } catch {
            message = error.description
        }
        #expect(message.contains("分项指标的比较方式") && message.contains("parts[1].threshold"), "\(message)")
    }

    /// A `plan.load` at the registry that lowers 森林覆盖率's target from 31.48 % to 31 % reaches
    /// ingestion through the registry's event: 31.2 % is then met, and the next report is judged by it.
    @Test func aPlanReloadChangesAnIngestTargetThreshold() async throws {
        let clock = IngestServiceTests.clock()
        let registry = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.2)
        let service = try await InProcessService.start(
            IngestService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.2
        ) { $0.endpoints[.registry] = registry.endpoints }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        let office = try await RPCClient.connect(to: registry.endpoints.rpc, from: officeUnit)
        let plan = try await office.call(RegistryTypes.planGet, Empty(), as: PlanReply.self)
        #expect(plan.targets.first { $0.indicator == "emissions_carbon_intensity" }?.parts?.count == 2)

        _ = try await Self.report(client, "forest_coverage", "2025", .number(31.2))
        #expect(try await Self.indicator(client, "forest_coverage").threshold == .number(31.48))
        #expect(try await Self.indicator(client, "forest_coverage").attainment == "not_met")

        let text = try String(contentsOfFile: try #require(PlanLoader.bundledPlanPath), encoding: .utf8)
        #expect(text.contains("threshold: 31.48\n"))
        _ = try await office.call(
            RegistryTypes.planLoad,
            PlanLoadRequest(content: text.replacingOccurrences(of: "threshold: 31.48\n", with: "threshold: 31\n"), name: "revised.yaml"),
            as: PlanLoadReply.self)
        #expect(
            try await TestSupport.eventually { try await Self.indicator(client, "forest_coverage").threshold == .number(31) },
            "the reload reached ingestion")
        #expect(try await Self.indicator(client, "forest_coverage").attainment == "met")
        _ = try await Self.report(client, "forest_coverage", "2026-Q3", .number(31.1))
        let update = try await events(client, IngestTypes.indicatorUpdated).map { try $0.body(as: IndicatorUpdated.self) }
            .last { $0.indicator == "forest_coverage" }
        #expect(update?.attainment == "met" && update?.previousAttainment == "met" && update?.period == "2026-Q3")
        await office.close()
        await client.close()
        try await service.stop()

        // Restarted while the registry is down, ingestion still judges by the reloaded plan it kept.
        try await registry.stop()
        let restarted = try await InProcessService.start(
            IngestService.self, dataDirectory: service.dataDirectory, clock: clock, tickSeconds: 0.2
        ) { $0.endpoints[.registry] = registry.endpoints }
        let again = try await RPCClient.connect(to: restarted.endpoints.rpc, from: officeUnit)
        let kept = try await Self.indicator(again, "forest_coverage")
        #expect(kept.threshold == .number(31) && kept.attainment == "met")
        await again.close()
        try await restarted.stop()
    }
}
