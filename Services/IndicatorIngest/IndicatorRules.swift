import Foundation
import PlanFormat
import Schema

/// One of the plan's targets, as an indicator.
public struct IndicatorDefinition: Sendable {
    public var id: String
    public var name: String
    public var target: PlanDocument.TargetEntry
    /// The threshold, from the plan or (for 市控标准 and the like) from configuration.
    public var threshold: JSONValue?
    /// Separately judged quantities of this target (主要污染物减排 and 碳排放强度), each an indicator.
    public var parts: [IndicatorDefinition] = []
    /// Digits a numeric value is rounded to (half-to-even, GB/T 8170) before it is compared with the
    /// threshold, where a standard sets a reporting precision (HJ 663-2013 for the PM2.5 annual mean).
    public var decimals: Int?

    static let names: [String: String] = [
        "forest_coverage": "森林覆盖率", "water_quality_liuyiqiao": "六一桥入湟断面年均水质", "aquatic_eco_evaluation": "水生态环境质量综合评价",
        "sewage_treatment_rate": "污水处理率", "pm25_annual_mean": "PM2.5年平均浓度", "industrial_solid_waste_utilization": "一般工业固体废物综合利用率",
        "hazardous_waste_safe_disposal": "工业危险废物安全处置率", "manure_facility_matching": "规模养殖场粪污处理设施设备配套率", "manure_utilization": "粪污综合利用率",
        "farmland_film_recovery": "农田残膜回收率", "rural_sewage_treatment": "农村污水处理率", "urban_garbage_harmless": "城市生活垃圾无害化处理率",
        "emissions_carbon_intensity": "主要污染物减排和碳排放强度", "major_pollutant_reduction": "主要污染物减排", "carbon_intensity": "碳排放强度",
    ]

    /// The indicators of a plan, thresholds the plan leaves to configuration filled from `thresholds`.
    public static func from(plan: PlanDocument, thresholds: [String: Double], decimals: [String: Int] = [:]) -> [IndicatorDefinition] {
        from(targets: plan.targets, thresholds: thresholds, decimals: decimals)
    }

    /// The indicators of a plan's targets (the file, or the registry's plan in force).
    public static func from(
        targets: [PlanDocument.TargetEntry], thresholds: [String: Double], decimals: [String: Int] = [:]
    ) -> [IndicatorDefinition] {
        targets.map { target in
            var threshold = target.threshold
            if threshold == nil, let key = target.thresholdFrom, let value = thresholds[key] { threshold = .number(value) }
            return IndicatorDefinition(
                id: target.indicator, name: names[target.indicator] ?? target.text, target: target, threshold: threshold,
                parts: from(targets: target.parts ?? [], thresholds: thresholds, decimals: decimals), decimals: decimals[target.indicator])
        }
    }

    /// A target as `plan.get` sends it, in the plan file's form.
    public static func entry(_ target: PlanTarget) -> PlanDocument.TargetEntry {
        PlanDocument.TargetEntry(
            indicator: target.indicator, text: target.text, op: target.operator, threshold: target.threshold,
            thresholdFrom: target.thresholdFrom, unit: target.unit, scale: target.scale, tasks: target.tasks,
            parts: target.parts.map { $0.map(entry) })
    }

    /// Checks a reported value's type and range for this indicator.
    public func validate(_ value: JSONValue) throws {
        switch target.op {
        case "at_least", "equal", "at_most":
            guard case .number(let number) = value, number.isFinite else {
                throw ErrorBody.invalidArgument("指标 \(id) 的值应为数字", field: "body.value")
            }
            if target.unit == "%", !(0...100).contains(number) {
                throw ErrorBody.invalidArgument("指标 \(id) 为百分比，应在 0 到 100 之间（收到 \(number)）", field: "body.value")
            }
            if number < 0 { throw ErrorBody.invalidArgument("指标 \(id) 的值不能为负数", field: "body.value") }
        case "class_at_least", "category_at_least":
            guard case .string(let label) = value, target.scale?.contains(label) ?? false else {
                throw ErrorBody.invalidArgument(
                    "指标 \(id) 的值应为以下之一：\((target.scale ?? []).joined(separator: "、"))", field: "body.value")
            }
        case "meets_standard", "within_quota":
            switch value {
            case .bool: break
            case .number(let number) where number.isFinite && threshold != nil: break
            case .number where !parts.isEmpty:
                // The two quantities each have their own value: a bare number cannot say which it is.
                throw ErrorBody.invalidArgument(
                    "指标 \(id) 由\(parts.map { "\($0.name)（\($0.id)）" }.joined(separator: "、"))分别评价，请分别报送各自的数值；"
                        + "本指标只接受 true 或 false（是否达标）", field: "body.value")
            default:
                throw ErrorBody.invalidArgument(
                    "指标 \(id) 的值应为 true 或 false（是否达标）" + (threshold == nil ? "" : "，或一个数值"), field: "body.value")
            }
        default:
            throw ErrorBody.invalidArgument("指标 \(id) 的比较方式 \(target.op) 未知", field: "body.indicator")
        }
    }

    /// The value as compared with the threshold: a number rounded to the standard's precision, if one applies.
    public func judged(_ value: JSONValue?) -> JSONValue? {
        guard let decimals, case .number(let number)? = value else { return value }
        return .number(StandardRounding.round(number, decimals: decimals))
    }

    /// `met`, `not_met`, or `unknown` for a stored value: a provisional one is never judged.
    public func attainment(of latest: IndicatorValue?) -> String {
        guard let latest, latest.provisional != true else { return "unknown" }
        return attainment(of: latest.value)
    }

    /// `met`, `not_met`, or `unknown` (no value, or no threshold configured). A number is rounded to
    /// the standard's precision first (`decimals`), so 35.5 µg/m³ is 36 and exceeds 35.
    public func attainment(of raw: JSONValue?) -> String {
        guard let value = judged(raw) else { return "unknown" }
        switch (target.op, value, threshold) {
        case ("at_least", .number(let v), .number(let t)?): return v >= t - 1e-9 ? "met" : "not_met"
        case ("equal", .number(let v), .number(let t)?): return abs(v - t) < 1e-9 ? "met" : "not_met"
        case ("at_most", .number(let v), .number(let t)?): return v <= t + 1e-9 ? "met" : "not_met"
        case ("class_at_least", .string(let v), .string(let t)?), ("category_at_least", .string(let v), .string(let t)?):
            guard let scale = target.scale, let vi = scale.firstIndex(of: v), let ti = scale.firstIndex(of: t) else { return "unknown" }
            return vi <= ti ? "met" : "not_met"
        case ("meets_standard", .bool(let v), _), ("within_quota", .bool(let v), _): return v ? "met" : "not_met"
        case ("meets_standard", .number(let v), .number(let t)?): return v >= t - 1e-9 ? "met" : "not_met"
        default: return "unknown"
        }
    }

    /// A target of several parts: met when every part is met, not met when any is not, else unknown.
    static func combined(_ parts: [String]) -> String {
        if parts.contains("not_met") { return "not_met" }
        if !parts.isEmpty, parts.allSatisfy({ $0 == "met" }) { return "met" }
        return "unknown"
    }
}

/// Periods of indicator values: `YYYY`, `YYYY-Qn`, `YYYY-MM`.
public enum IndicatorPeriod {
    /// The last day of the period, or nil if it is not a period.
    public static func end(_ period: String) -> String? {
        if period.count == 4, let year = Int(period), year > 1900 { return "\(period)-12-31" }
        if period.count == 7, period.dropFirst(4).hasPrefix("-Q"), let year = Int(period.prefix(4)), let q = Int(period.suffix(1)),
            (1...4).contains(q)
        {
            let month = q * 3
            return String(format: "%04d-%02d-%02d", year, month, Timestamp.daysInMonth(year, month))
        }
        if period.count == 7, let year = Int(period.prefix(4)), period.dropFirst(4).first == "-", let month = Int(period.suffix(2)),
            (1...12).contains(month)
        {
            return String(format: "%04d-%02d-%02d", year, month, Timestamp.daysInMonth(year, month))
        }
        return nil
    }

    /// Least-squares line through numeric history, read at 2026-12-31; nil with fewer than two points.
    public static func projection(_ history: [IndicatorValue], to day: String = "2026-12-31") -> Double? {
        let points: [(Double, Double)] = history.compactMap { value in
            guard case .number(let y) = value.value, let end = end(value.period), let date = Timestamp.startOfDistrictDay(end) else {
                return nil
            }
            return (date.timeIntervalSince1970, y)
        }
        guard points.count >= 2, let target = Timestamp.startOfDistrictDay(day)?.timeIntervalSince1970 else { return nil }
        let n = Double(points.count)
        let mx = points.map(\.0).reduce(0, +) / n
        let my = points.map(\.1).reduce(0, +) / n
        let sxx = points.map { ($0.0 - mx) * ($0.0 - mx) }.reduce(0, +)
        guard sxx > 0 else { return my }
        let slope = points.map { ($0.0 - mx) * ($0.1 - my) }.reduce(0, +) / sxx
        return ((my + slope * (target - mx)) * 100).rounded() / 100
    }
}
