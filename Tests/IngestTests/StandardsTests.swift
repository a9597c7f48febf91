import Foundation
import Schema
import Testing

@testable import IndicatorIngest

/// GB 3838-2002 and GB 3095 as the evaluation applies them.
@Suite struct StandardsTests {
    let standards = try! Standards.bundled()
    let day = "2026-11-20"

    /// A liuyiqiao sample in which everything is class II.
    static let classII: [String: Double] = [
        "ph": 7.8, "do": 6.5, "codmn": 3.5, "cod": 14, "bod5": 2.5, "nh3n": 0.4, "tp": 0.08, "f": 0.5, "cu": 0.5,
    ]

    @Test func singleFactorTheWorstParameterDecides() throws {
        var sample = Self.classII
        #expect(standards.evaluateWater(sample, on: day)?.class == .ii)
        sample["nh3n"] = 1.2
        let result = try #require(standards.evaluateWater(sample, on: day))
        #expect(result.class == .iv && result.factors == ["nh3n"])
        sample["cod"] = 25
        #expect(standards.evaluateWater(sample, on: day)?.factors == ["cod", "nh3n"], "every parameter at the worst class is named")
        sample["nh3n"] = 2.5
        #expect(standards.evaluateWater(sample, on: day)?.class == .worseThanV)
    }

    @Test(arguments: [
        ("nh3n", 0.15, WaterClass.i), ("nh3n", 0.151, .ii), ("nh3n", 1.0, .iii), ("nh3n", 1.5, .iv), ("nh3n", 2.0, .v),
        ("nh3n", 2.01, .worseThanV),
        ("do", 7.5, .i), ("do", 7.4, .ii), ("do", 5, .iii), ("do", 1.9, .worseThanV),
        ("ph", 6, .i), ("ph", 9, .i), ("ph", 5.9, .worseThanV), ("ph", 9.1, .worseThanV),
        ("tp", 0.2, .iii), ("tp", 0.4, .v), ("codmn", 6, .iii), ("cod", 20, .iii), ("bod5", 4, .iii), ("hg", 0.0001, .iii),
        ("hg", 0.0002, .iv),
        ("fecal_coliform", 10_000, .iii),
    ])
    func table1Limits(parameter: String, value: Double, expected: WaterClass) {
        #expect(standards.waterClass(parameter, value: value, on: day) == expected)
    }

    @Test func totalNitrogenAndFecalColiformDoNotClassifyARiver() {
        var sample = Self.classII
        sample["tn"] = 5
        sample["fecal_coliform"] = 100_000
        #expect(standards.evaluateWater(sample, on: day)?.class == .ii)
        #expect(standards.evaluateWater(sample, on: day, lake: true)?.class == .worseThanV, "total nitrogen counts for lakes")
        #expect(standards.waterClass("tp", value: 0.04, on: day, lake: true) == .iii, "lakes have their own phosphorus limits")
    }

    @Test func airLimitsFollowTheDate() throws {
        let old = try #require(standards.airStandard(on: "2026-02-28"))
        let new = try #require(standards.airStandard(on: "2026-03-01"))
        #expect(old.standard == "GB 3095-2012" && new.standard == "GB 3095-2026")
        #expect(old.parameters["pm25"]?.annual?[1] == 35 && old.parameters["pm25"]?.daily?[1] == 75)
        #expect(new.parameters["pm25"]?.annual?[1] == 30 && new.parameters["pm25"]?.daily?[1] == 60)
        #expect(standards.validity.minHourlyPerDay == 20 && standards.validity.minDaysPerYear == 324)
    }
}

/// GB 3095's data-validity rules for means.
@Suite struct AirValidityTests {
    let standards = try! Standards.bundled()

    /// Hourly values for `hours` hours of every day in `days` (`YYYY-MM-DD`), all `value`.
    func hourly(_ days: [String], hours: Int, value: Double) -> [(ts: Int64, value: Double)] {
        days.flatMap { day in
            (0..<hours).map { hour in
                (Int64((Timestamp.startOfDistrictDay(day)!.timeIntervalSince1970 + Double(hour) * 3600) * 1000), value)
            }
        }
    }

    func days(_ year: Int, perMonth: (Int) -> Int) -> [String] {
        (1...12).flatMap { month in (1...perMonth(month)).map { String(format: "%04d-%02d-%02d", year, month, $0) } }
    }

    @Test func aDailyMeanNeedsTwentyHourlyValues() {
        let day = ["2026-05-01"]
        #expect(AirEvaluation.dailyMeans(hourly(day, hours: 20, value: 40), minHourly: 20)["2026-05-01"]?.valid == true)
        #expect(AirEvaluation.dailyMeans(hourly(day, hours: 19, value: 40), minHourly: 20)["2026-05-01"]?.valid == false)
        // Several values in one hour are one hourly value.
        let doubled = hourly(day, hours: 19, value: 40) + hourly(day, hours: 19, value: 60)
        #expect(AirEvaluation.dailyMeans(doubled, minHourly: 20)["2026-05-01"]?.hours == 19)
    }

    @Test func anAnnualMeanNeeds324DaysAnd27EachMonthAnd25InFebruary() {
        let full = days(2025, perMonth: { Timestamp.daysInMonth(2025, $0) })
        let ok = AirEvaluation.annual(
            parameter: "pm25", year: 2025, samples: hourly(full, hours: 22, value: 32), standards: standards, today: "2026-01-10")
        #expect(ok.valid && ok.validDays == 365 && ok.pm25Mean == 32 && ok.grade == "二级")
        // 27 a month and 25 in February: 322 days, too few.
        let thin = days(2025, perMonth: { $0 == 2 ? 25 : 27 })
        let short = AirEvaluation.annual(
            parameter: "pm25", year: 2025, samples: hourly(thin, hours: 22, value: 32), standards: standards, today: "2026-01-10")
        #expect(!short.valid && short.validDays == 322 && short.grade == nil)
        // Enough days in the year, but one month with 26: invalid.
        let uneven = days(2025, perMonth: { $0 == 7 ? 26 : Timestamp.daysInMonth(2025, $0) })
        #expect(
            !AirEvaluation.annual(
                parameter: "pm25", year: 2025, samples: hourly(uneven, hours: 22, value: 32), standards: standards, today: "2026-01-10"
            ).valid)
        // Days with too few hours do not count.
        let sparse = AirEvaluation.annual(
            parameter: "pm25", year: 2025, samples: hourly(full, hours: 12, value: 32), standards: standards, today: "2026-01-10")
        #expect(!sparse.valid && sparse.validDays == 0 && sparse.pm25Mean == nil)
    }

    @Test func theGradeUsesTheStandardInForceAtTheYearsEnd() {
        let full2026 = days(2026, perMonth: { Timestamp.daysInMonth(2026, $0) })
        // 32 µg/m³ is grade 2 under GB 3095-2012 (35), over it under GB 3095-2026 (30).
        let under2026 = AirEvaluation.annual(
            parameter: "pm25", year: 2026, samples: hourly(full2026, hours: 22, value: 32), standards: standards, today: "2027-01-05")
        #expect(under2026.grade == "超二级")
        let full2025 = days(2025, perMonth: { Timestamp.daysInMonth(2025, $0) })
        let under2012 = AirEvaluation.annual(
            parameter: "pm25", year: 2025, samples: hourly(full2025, hours: 22, value: 32), standards: standards, today: "2027-01-05")
        #expect(under2012.grade == "二级")
    }
}

@Suite struct ReadingRulesTests {
    let rules = ReadingRules(stations: try! StationsFile.load(path: StationsFile.bundledPath()!))
    let now = Timestamp.parse("2026-11-20T12:00:00+08:00")!

    func check(
        _ parameter: String, _ value: Double, unit: String? = nil, ts: String = "2026-11-20T08:00:00+08:00", station: String = "liuyiqiao"
    )
        -> Result<NormalizedReading, RejectedItem>
    {
        rules.check(SubmittedReading(station: station, parameter: parameter, ts: ts, value: value, unit: unit), index: 3, now: now)
    }

    @Test func unitsAreConverted() throws {
        #expect(try check("tp", 80, unit: "µg/L").get().value == 0.08)
        #expect(try check("tp", 80, unit: "ug/L").get().value == 0.08)
        #expect(try check("hg", 50, unit: "ng/L").get().value == 0.00005)
        #expect(try check("pm25", 0.035, unit: "mg/m³", station: "chengzhong_air").get().value == 35)
        #expect(try check("co", 800, unit: "µg/m³", station: "chengzhong_air").get().value == 0.8)
        #expect(try check("fecal_coliform", 120, unit: "MPN/100mL").get().value == 1200)
    }

    @Test func eachBadReadingIsNamedWithItsIndexAndField() {
        func failure(_ result: Result<NormalizedReading, RejectedItem>) -> RejectedItem? {
            if case .failure(let item) = result { return item }
            return nil
        }
        #expect(failure(check("nh3n", .nan))?.field == "body.readings[3].value")
        #expect(failure(check("nh3n", .infinity))?.code == .invalidArgument)
        #expect(failure(check("nh3n", -0.1))?.field == "body.readings[3].value")
        #expect(failure(check("ph", 15))?.message.contains("超出物理上可能的范围") == true)
        #expect(failure(check("xyz", 1))?.field == "body.readings[3].parameter")
        #expect(failure(check("pm25", 1))?.field == "body.readings[3].parameter", "liuyiqiao does not measure PM2.5")
        #expect(failure(check("nh3n", 1, station: "nowhere"))?.code == .notFound)
        #expect(failure(check("nh3n", 1, unit: "kg/L"))?.field == "body.readings[3].unit")
        #expect(failure(check("nh3n", 1, ts: "2026-11-21T08:00:00+08:00"))?.field == "body.readings[3].ts")
        #expect(failure(check("nh3n", 1, ts: "yesterday"))?.field == "body.readings[3].ts")
        if case .failure = check("nh3n", 1, ts: "2026-11-20T12:03:00+08:00") { Issue.record("a few minutes of clock skew is accepted") }
    }
}
