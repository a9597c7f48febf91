import Foundation
import Schema

/// Daily and annual means with GB 3095's data-validity rules.
public enum AirEvaluation {
    /// The district's calendar day of an instant in milliseconds.
    static func day(_ ms: Int64) -> String { Timestamp.districtDate(Date(timeIntervalSince1970: Double(ms) / 1000)) }

    /// The district's hour (`YYYY-MM-DD HH`) of an instant.
    static func hour(_ ms: Int64) -> Int64 { (ms / 1000 + Int64(Timestamp.districtOffset)) / 3600 }

    /// Daily means: values in the same hour are averaged first; a day is valid with at least `minHourly` hours.
    public static func dailyMeans(_ samples: [(ts: Int64, value: Double)], minHourly: Int) -> [String: (
        mean: Double, hours: Int, valid: Bool
    )] {
        var hours: [Int64: (sum: Double, count: Int)] = [:]
        for sample in samples {
            let key = hour(sample.ts)
            hours[key, default: (0, 0)].sum += sample.value
            hours[key, default: (0, 0)].count += 1
        }
        var days: [String: (sum: Double, count: Int)] = [:]
        for (key, bucket) in hours {
            let day = Self.day((key * 3600 - Int64(Timestamp.districtOffset)) * 1000)
            days[day, default: (0, 0)].sum += bucket.sum / Double(bucket.count)
            days[day, default: (0, 0)].count += 1
        }
        return days.mapValues { ($0.sum / Double($0.count), $0.count, $0.count >= minHourly) }
    }

    /// The annual mean of valid daily means, whether the year has enough of them, and the grade
    /// under the standard in force at the year's end (or today, for the year in progress).
    ///
    /// GB 3095-2012 §8 (数据统计的有效性规定, 表4 污染物浓度数据有效性的最低要求): an annual mean of
    /// PM2.5 needs "每年至少有324个日平均浓度值，每月至少有27个日平均浓度值（二月至少有25个日平均浓度值）",
    /// and a daily mean "每日至少有20个小时平均浓度值". A year short of that is provisional: its
    /// mean is shown, no grade is given and the target is not judged (the numbers are data,
    /// standards.yaml `validity`). The grade compares the mean as HJ 663-2013 reports it (rounded
    /// half-to-even to whole µg/m³), not the raw mean.
    public static func annual(
        parameter: String, year: Int, samples: [(ts: Int64, value: Double)], standards: Standards, today: String
    ) -> AirAnnualReply {
        let rules = standards.validity
        let daily = dailyMeans(samples, minHourly: rules.minHourlyPerDay).filter { $0.key.hasPrefix("\(year)-") && $0.value.valid }
        var perMonth: [Int: Int] = [:]
        for day in daily.keys { perMonth[Int(day.dropFirst(5).prefix(2))!, default: 0] += 1 }
        let monthsComplete = (1...12).allSatisfy { month in
            (perMonth[month] ?? 0) >= (month == 2 ? rules.minDaysFebruary : rules.minDaysPerMonth)
        }
        let valid = daily.count >= rules.minDaysPerYear && monthsComplete
        let mean = daily.isEmpty ? nil : daily.values.map(\.mean).reduce(0, +) / Double(daily.count)
        let asOf = min("\(year)-12-31", max(today, "\(year)-01-01"))
        let judged = mean.map { standards.airJudged(parameter, $0, on: asOf) }
        var grade: String?
        if valid, let judged, let limits = standards.airStandard(on: asOf)?.parameters[parameter]?.annual, limits.count == 2 {
            grade = judged <= limits[0] ? "一级" : judged <= limits[1] ? "二级" : "超二级"
        }
        return AirAnnualReply(
            pm25Mean: mean.map { ($0 * 10).rounded() / 10 }, validDays: daily.count, valid: valid, grade: grade, pm25Judged: judged,
            provisionalText: valid ? nil : provisionalText(validDays: daily.count, perMonth: perMonth, rules: rules))
    }

    /// Why a year's mean is not judged yet, in Chinese: the valid days and the months short of their minimum.
    static func provisionalText(validDays: Int, perMonth: [Int: Int], rules: Standards.Validity) -> String {
        let short = (1...12).filter { (perMonth[$0] ?? 0) < ($0 == 2 ? rules.minDaysFebruary : rules.minDaysPerMonth) }
        let months = short.count == 12 ? "各月" : short.map { "\($0)月" }.joined(separator: "、")
        return "有效天数不足，暂不评价：有效日均值 \(validDays) 天，年均值需至少 \(rules.minDaysPerYear) 天，"
            + "且每月至少 \(rules.minDaysPerMonth) 天（二月至少 \(rules.minDaysFebruary) 天）"
            + (short.isEmpty ? "" : "，\(months)不足")
    }
}
