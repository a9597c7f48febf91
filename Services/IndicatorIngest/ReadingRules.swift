import Foundation
import Schema

/// A reading that passed every check, in the parameter's canonical unit.
public struct NormalizedReading: Sendable, Equatable {
    public var index: Int
    public var station: String
    public var parameter: String
    /// Milliseconds since 1970, UTC.
    public var ts: Int64
    /// In the canonical unit; for `below_detection` the limit; NaN when a status-marked reading has none.
    public var value: Double
    public var revision: Bool
    public var mark: ReadingMark? = nil
    /// With `below_detection`: the limit in the canonical unit.
    public var detectionLimit: Double? = nil

    /// The value as stored: nil for "none".
    var storedValue: Double? { value.isNaN ? nil : value }
}

/// What each reading must be: known station and parameter, finite value in its physical range,
/// a known unit (converted to the canonical one), a time from 2000 on and at most an hour ahead
/// of the service's clock (`PlausibleRange.reading`).
public struct ReadingRules: Sendable {
    public let stations: [String: StationConfig]
    public init(stations: [StationConfig]) {
        self.stations = Dictionary(uniqueKeysWithValues: stations.map { ($0.id, $0) })
    }

    /// Canonical unit of each parameter.
    public static func canonicalUnit(_ parameter: String) -> String {
        switch parameter {
        case "ph": return "无量纲"
        case "fecal_coliform": return "个/L"
        case "pm25", "pm10", "so2", "no2", "o3": return "µg/m³"
        case "co": return "mg/m³"
        default: return "mg/L"
        }
    }

    /// Turns a value in `unit` into the canonical unit, or nil if the unit is not one of the parameter's.
    /// Smaller units divide by an exact power of ten rather than multiply by its inverse: 50 ng/L must
    /// be exactly 0.00005 mg/L, the class I limit for mercury, not 5.0000000000000004e-05.
    public static func converter(_ parameter: String, unit: String?) -> (@Sendable (Double) -> Double)? {
        guard let raw = unit?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return { $0 } }
        let unit = raw.replacingOccurrences(of: "μ", with: "µ").replacingOccurrences(of: "ug", with: "µg").replacingOccurrences(
            of: "m3", with: "m³"
        )
        .replacingOccurrences(of: "/l", with: "/L")
        // (multiply, divide)
        let table: [String: (Double, Double)]
        switch canonicalUnit(parameter) {
        case "mg/L": table = ["mg/L": (1, 1), "µg/L": (1, 1000), "ng/L": (1, 1_000_000), "g/L": (1000, 1)]
        case "个/L": table = ["个/L": (1, 1), "MPN/L": (1, 1), "CFU/L": (1, 1), "MPN/100mL": (10, 1), "CFU/100mL": (10, 1)]
        case "µg/m³": table = ["µg/m³": (1, 1), "mg/m³": (1000, 1)]
        case "mg/m³": table = ["mg/m³": (1, 1), "µg/m³": (1, 1000)]
        case "无量纲": table = ["无量纲": (1, 1), "pH": (1, 1), "1": (1, 1)]
        default: table = [:]
        }
        guard let (times, over) = table[unit] else { return nil }
        return { $0 * times / over }
    }

    /// The physical range of a parameter in its canonical unit.
    public static func physicalRange(_ parameter: String) -> ClosedRange<Double> {
        switch parameter {
        case "ph": return 0...14
        case "do": return 0...25
        case "fecal_coliform": return 0...1e9
        case "pm25", "pm10": return 0...5000
        case "so2", "no2", "o3": return 0...10_000
        case "co": return 0...500
        default: return 0...100_000
        }
    }

    /// Judges one reading; the reply names its index.
    public func check(_ reading: SubmittedReading, index: Int, now: Date) -> Result<NormalizedReading, RejectedItem> {
        func reject(_ code: ErrorCode, _ message: String, _ field: String) -> Result<NormalizedReading, RejectedItem> {
            .failure(RejectedItem(index: index, code: code, message: message, field: "body.readings[\(index)].\(field)"))
        }
        if let problem = reading.problem { return reject(problem.code, problem.message, problem.field ?? "") }
        guard let station = stations[reading.station] else {
            return reject(.notFound, "没有站点 \(ErrorBody.quote(reading.station))", "station")
        }
        guard station.parameters.contains(reading.parameter) else {
            return reject(.invalidArgument, "站点 \(station.id) 不监测 \(ErrorBody.quote(reading.parameter))", "parameter")
        }
        var mark: ReadingMark?
        if let text = reading.mark {
            guard let known = ReadingMark(rawValue: text) else {
                return reject(
                    .invalidArgument,
                    "未知的标记 \(ErrorBody.quote(text))，可选：\(ReadingMark.allCases.map(\.rawValue).joined(separator: "、"))", "mark")
            }
            mark = known
        }
        // A marked reading may carry no value (NaN after decoding); any other value must be finite.
        guard reading.value.isFinite || (mark != nil && reading.value.isNaN) else {
            return reject(.invalidArgument, "value 应为有限数值（收到 \(reading.value)）", "value")
        }
        guard let convert = Self.converter(reading.parameter, unit: reading.unit) else {
            return reject(
                .invalidArgument,
                "单位 \(ErrorBody.quote(reading.unit ?? "")) 不适用于 \(reading.parameter)"
                    + "（标准单位 \(Self.canonicalUnit(reading.parameter))）",
                "unit")
        }
        let range = Self.physicalRange(reading.parameter)
        var limit: Double?
        if mark == .belowDetection {
            guard let given = reading.detectionLimit else {
                return reject(.invalidArgument, "低于检出限的读数须给出 detection_limit（检出限）", "detection_limit")
            }
            guard given.isFinite, given > 0, range.contains(convert(given)) else {
                return reject(.invalidArgument, "detection_limit 应为正的有限数值，且不超出 \(reading.parameter) 的物理范围（收到 \(given)）", "detection_limit")
            }
            // The value says nothing the limit does not: omitted, or the limit itself.
            guard reading.value.isNaN || reading.value == given else {
                return reject(.invalidArgument, "低于检出限的读数 value 应省略或等于 detection_limit（\(given)）", "value")
            }
            limit = convert(given)
        } else if let given = reading.detectionLimit {
            return reject(
                .invalidArgument, "只有 below_detection（低于检出限）的读数可带 detection_limit（收到 \(given)）", "detection_limit")
        }
        let value = limit ?? convert(reading.value)
        guard value.isNaN || range.contains(value) else {
            return reject(
                .invalidArgument,
                "\(reading.parameter) \(reading.value) \(reading.unit ?? Self.canonicalUnit(reading.parameter)) "
                    + "超出物理上可能的范围",
                "value")
        }
        let time: Date
        do {
            time = try PlausibleRange.reading(reading.ts, now: now, field: "ts")
        } catch {
            return reject(error.code, error.message, "ts")
        }
        if let flag = reading.flag, flag != "revision" {
            return reject(.invalidArgument, "flag 只能为 revision 或不填", "flag")
        }
        return .success(
            NormalizedReading(
                index: index, station: station.id, parameter: reading.parameter, ts: Int64((time.timeIntervalSince1970 * 1000).rounded()),
                value: value,
                revision: reading.flag == "revision", mark: mark, detectionLimit: limit))
    }
}
