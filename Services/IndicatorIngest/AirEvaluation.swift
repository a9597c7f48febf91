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
        var grade: String?
        if valid, let mean, let limits = standards.airStandard(on: asOf)?.parameters[parameter]?.annual, limits.count == 2 {
            grade = mean <= limits[0] ? "一级" : mean <= limits[1] ? "二级" : "超二级"
        }
        return AirAnnualReply(pm25Mean: mean.map { ($0 * 10).rounded() / 10 }, validDays: daily.count, valid: valid, grade: grade)
    }
}
