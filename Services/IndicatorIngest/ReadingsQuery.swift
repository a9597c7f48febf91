import Foundation
import Schema

/// `readings.query`: stored readings as means per hour, district day or month.
enum ReadingsQuery {
    /// The buckets between two instants (ms, `to` inclusive): each one's start, end and label.
    static func buckets(from: Int64, to: Int64, every: ReadingsInterval) -> [(start: Int64, end: Int64, label: String)] {
        let offset = Int64(Timestamp.districtOffset) * 1000
        var out: [(Int64, Int64, String)] = []
        switch every {
        case .hour:
            var start = ((from + offset) / 3_600_000) * 3_600_000 - offset
            while start <= to {
                let local = Timestamp.format(Date(timeIntervalSince1970: Double(start) / 1000), fractional: false)
                out.append((start, start + 3_600_000, String(local.prefix(13)) + ":00" + String(local.suffix(6))))
                start += 3_600_000
            }
        case .day:
            var start = ((from + offset) / 86_400_000) * 86_400_000 - offset
            while start <= to {
                out.append((start, start + 86_400_000, Timestamp.districtDate(Date(timeIntervalSince1970: Double(start) / 1000))))
                start += 86_400_000
            }
        case .month:
            let first = Timestamp.districtDate(Date(timeIntervalSince1970: Double(from) / 1000))
            var (year, month) = (Int(first.prefix(4))!, Int(first.dropFirst(5).prefix(2))!)
            while true {
                let start = Int64(Timestamp.startOfDistrictDay(year: year, month: month, day: 1).timeIntervalSince1970 * 1000)
                guard start <= to else { break }
                let (nextYear, nextMonth) = month == 12 ? (year + 1, 1) : (year, month + 1)
                let end = Int64(Timestamp.startOfDistrictDay(year: nextYear, month: nextMonth, day: 1).timeIntervalSince1970 * 1000)
                out.append((start, end, String(format: "%04d-%02d", year, month)))
                (year, month) = (nextYear, nextMonth)
            }
        }
        return out
    }

    /// The day whose standard judges a bucket: its own day, or a month's first.
    static func standardDay(_ label: String) -> String { label.count >= 10 ? String(label.prefix(10)) : label + "-01" }

    /// Four decimals, as `water.class` gives its means.
    static func rounded(_ value: Double) -> Double { (value * 10_000).rounded() / 10_000 }

    static func answer(
        _ samples: [StoredSample], station: StationConfig, parameters: [String], from: Int64, to: Int64, every: ReadingsInterval,
        standards: Standards
    ) -> ReadingsQueryReply {
        let buckets = buckets(from: from, to: to, every: every)
        let starts = buckets.map(\.start)
        /// The bucket a reading falls in: the last whose start is not after it.
        func bucket(_ ts: Int64) -> Int? {
            var low = 0
            var high = starts.count - 1
            guard high >= 0, ts >= starts[0], ts < buckets[high].end else { return nil }
            while low < high {
                let mid = (low + high + 1) / 2
                if starts[mid] <= ts { low = mid } else { high = mid - 1 }
            }
            return low
        }
        typealias Cell = (sum: Double, min: Double, max: Double, count: Int, belowDetection: Int, limit: Double)
        var sums: [String: [Int: Cell]] = [:]
        var marked: [String: [Int: [ReadingMark: Int]]] = [:]
        for sample in samples where sample.ts >= from && sample.ts <= to {
            guard let index = bucket(sample.ts) else { continue }
            guard let value = sample.statistic else {
                if let mark = sample.mark { marked[sample.parameter, default: [:]][index, default: [:]][mark, default: 0] += 1 }
                continue
            }
            var cell = sums[sample.parameter, default: [:]][index] ?? (0, .infinity, -.infinity, 0, 0, 0)
            cell.sum += value
            cell.min = Swift.min(cell.min, value)
            cell.max = Swift.max(cell.max, value)
            cell.count += 1
            if sample.mark == .belowDetection {
                cell.belowDetection += 1
                cell.limit = Swift.max(cell.limit, sample.detectionLimit ?? sample.value)
            }
            sums[sample.parameter, default: [:]][index] = cell
        }
        let water = station.kind == "water"
        var means: [Int: [String: Double]] = [:]
        let series = parameters.map { parameter -> ReadingSeries in
            let cells = sums[parameter] ?? [:]
            let points = cells.keys.sorted().map { index -> ReadingPoint in
                let cell = cells[index]!
                let mean = rounded(cell.sum / Double(cell.count))
                means[index, default: [:]][parameter] = mean
                let day = standardDay(buckets[index].label)
                let cls = water ? standards.waterClass(parameter, value: mean, on: day, lake: station.isLake)?.label : nil
                return ReadingPoint(
                    t: buckets[index].label, mean: mean, min: cell.min, max: cell.max, count: cell.count, class: cls,
                    belowDetection: cell.belowDetection == 0 ? nil : cell.belowDetection,
                    detectionLimit: cell.belowDetection == 0 ? nil : cell.limit)
            }
            let readings = points.reduce(0) { $0 + $1.count }
            let expected = station.expectedIntervalMinutes.map { minutes in
                Int((Double(Swift.min(to + 1, buckets.last?.end ?? to) - (buckets.first?.start ?? from)) / 60_000 / minutes).rounded())
            }
            let flagged = (marked[parameter] ?? [:]).sorted { $0.key < $1.key }.flatMap { index, marks in
                ReadingMark.allCases.compactMap { mark in
                    marks[mark].map { MarkedBucket(t: buckets[index].label, mark: mark.rawValue, count: $0) }
                }
            }
            return ReadingSeries(
                parameter: parameter, unit: ReadingRules.canonicalUnit(parameter), points: points,
                coverage: ReadingCoverage(buckets: buckets.count, withData: points.count, readings: readings, expectedReadings: expected),
                marked: flagged.isEmpty ? nil : flagged)
        }
        var classes: [BucketClass]?
        if water {
            classes = means.keys.sorted().compactMap { index in
                let label = buckets[index].label
                guard let result = standards.evaluateWater(means[index]!, on: standardDay(label), lake: station.isLake) else { return nil }
                return BucketClass(t: label, class: result.class.label, factors: result.factors)
            }
        }
        return ReadingsQueryReply(
            station: station.id, name: station.name, kind: station.kind, every: every, targetClass: station.targetClass, series: series,
            classes: classes)
    }
}
