import Foundation
import Schema
import Yams

/// Water-quality classes of GB 3838-2002, best first; `劣V` is worse than V.
public enum WaterClass: Int, Comparable, Sendable, CaseIterable, Codable {
    case i = 1
    case ii, iii, iv, v, worseThanV

    public var label: String { ["I", "II", "III", "IV", "V", "劣V"][rawValue - 1] }

    public init?(label: String) {
        guard let index = ["I", "II", "III", "IV", "V", "劣V"].firstIndex(of: label) else { return nil }
        self.init(rawValue: index + 1)
    }

    public static func < (a: WaterClass, b: WaterClass) -> Bool { a.rawValue < b.rawValue }
}

/// The national standards, loaded from dated data (Resources/standards.yaml).
public struct Standards: Sendable {
    public struct WaterParameter: Codable, Sendable {
        public var name: String
        public var unit: String?
        public var direction: String?
        public var limits: [Double]?
        public var lakeLimits: [Double]?
        public var range: [Double]?
        public var assess: Bool?
        public var assessRivers: Bool?

        enum CodingKeys: String, CodingKey {
            case name, unit, direction, limits, range, assess
            case lakeLimits = "lake_limits"
            case assessRivers = "assess_rivers"
        }
    }

    /// A standard and the dates it applies (inclusive, district calendar).
    public struct DatedStandard<Parameter: Codable & Sendable>: Codable, Sendable {
        public var standard: String
        public var validFrom: String
        public var validTo: String?
        public var parameters: [String: Parameter]

        enum CodingKeys: String, CodingKey {
            case standard, parameters
            case validFrom = "valid_from"
            case validTo = "valid_to"
        }

        func applies(on day: String) -> Bool { validFrom <= day && (validTo.map { day <= $0 } ?? true) }
    }

    public typealias WaterStandard = DatedStandard<WaterParameter>
    public typealias AirStandard = DatedStandard<AirParameter>

    public struct AirParameter: Codable, Sendable {
        public var name: String
        public var unit: String?
        /// Grade 1 and grade 2 annual-mean limits.
        public var annual: [Double]?
        /// Grade 1 and grade 2 24-hour-mean limits.
        public var daily: [Double]?
        /// Digits after the point a statistic is rounded to before it is compared (HJ 663-2013).
        public var decimals: Int?
    }

    /// A statistic of an air parameter as HJ 663-2013 reports it: rounded half-to-even (GB/T 8170)
    /// to the parameter's precision in the standard in force on `day`; unchanged when none is given.
    public func airJudged(_ parameter: String, _ value: Double, on day: String) -> Double {
        guard let decimals = airStandard(on: day)?.parameters[parameter]?.decimals else { return value }
        return StandardRounding.round(value, decimals: decimals)
    }

    public struct Validity: Codable, Sendable {
        public var minHourlyPerDay: Int
        public var minDaysPerYear: Int
        public var minDaysPerMonth: Int
        public var minDaysFebruary: Int

        enum CodingKeys: String, CodingKey {
            case minHourlyPerDay = "min_hourly_per_day"
            case minDaysPerYear = "min_days_per_year"
            case minDaysPerMonth = "min_days_per_month"
            case minDaysFebruary = "min_days_february"
        }
    }

    struct File: Codable {
        var water: [WaterStandard]
        var air: [AirStandard]
        var validity: Validity
    }

    public var water: [WaterStandard]
    public var air: [AirStandard]
    public var validity: Validity

    public static func load(path: String) throws -> Standards {
        let file = try YAMLDecoder().decode(File.self, from: String(contentsOfFile: path, encoding: .utf8))
        return Standards(water: file.water, air: file.air, validity: file.validity)
    }

    public static func bundled() throws -> Standards {
        guard let path = Bundle.module.path(forResource: "standards", ofType: "yaml") else {
            throw ErrorBody.internal("缺少内置的监测标准文件")
        }
        return try load(path: path)
    }

    /// The water standard in force on a date (`YYYY-MM-DD`).
    public func waterStandard(on day: String) -> WaterStandard? {
        water.last { $0.applies(on: day) }
    }

    /// The air standard in force on a date (`YYYY-MM-DD`): GB 3095-2012 until 2026-02-28, GB 3095-2026 from 2026-03-01.
    public func airStandard(on day: String) -> AirStandard? {
        air.last { $0.applies(on: day) }
    }

    /// The class of one parameter's value (single factor), or nil if the standard does not classify it.
    public func waterClass(_ parameter: String, value: Double, on day: String, lake: Bool = false) -> WaterClass? {
        guard let spec = waterStandard(on: day)?.parameters[parameter] else { return nil }
        if let range = spec.range, range.count == 2 {
            return (range[0]...range[1]).contains(value) ? .i : .worseThanV
        }
        guard let limits = (lake ? spec.lakeLimits ?? spec.limits : spec.limits), limits.count == 5 else { return nil }
        for (index, limit) in limits.enumerated() {
            let within = spec.direction == "min" ? value >= limit : value <= limit
            if within { return WaterClass(rawValue: index + 1) }
        }
        return .worseThanV
    }

    /// Whether a parameter decides a section's class (水温, 总氮 for rivers and 粪大肠菌群 do not).
    public func assesses(_ parameter: String, on day: String, lake: Bool) -> Bool {
        guard let spec = waterStandard(on: day)?.parameters[parameter] else { return false }
        if spec.assess == false { return false }
        if !lake, spec.assessRivers == false { return false }
        return true
    }

    /// Single-factor evaluation: the worst assessed parameter decides; every parameter at that class is named.
    public func evaluateWater(_ values: [String: Double], on day: String, lake: Bool = false) -> (class: WaterClass, factors: [String])? {
        var worst: WaterClass?
        var factors: [String] = []
        for (parameter, value) in values.sorted(by: { $0.key < $1.key }) where assesses(parameter, on: day, lake: lake) {
            guard let cls = waterClass(parameter, value: value, on: day, lake: lake) else { continue }
            if worst == nil || cls > worst! {
                worst = cls
                factors = [parameter]
            } else if cls == worst {
                factors.append(parameter)
            }
        }
        return worst.map { ($0, factors) }
    }
}
