import Foundation

/// 数值修约 as GB/T 8170-2008 rule 3.3 says it (四舍六入五成双): a value is rounded on its decimal
/// digits, and an exact half goes to the even neighbour, so that 35.5 → 36, 36.5 → 36, 35.49 → 35.
///
/// HJ 663-2013 (《环境空气质量评价技术规范（试行）》, §6 数据统计要求, which cites GB/T 8170)
/// requires each statistic to be rounded to its reporting precision (PM2.5, PM10, SO2, NO2, O3: whole
/// µg/m³; CO: 0.1 mg/m³) before it is compared with a limit or a target: a PM2.5 annual mean of
/// 35.5 is reported as 36 and exceeds 35, while 35.4 is reported as 35 and does not.
public enum StandardRounding {
    /// `value` rounded half-to-even at `decimals` digits after the point, read from its shortest
    /// decimal form (so 2.675, stored in binary just below, still counts as an exact half).
    public static func round(_ value: Double, decimals: Int) -> Double {
        guard value.isFinite, var decimal = Decimal(string: "\(value)", locale: Locale(identifier: "en_US_POSIX")) else { return value }
        var rounded = Decimal()
        NSDecimalRound(&rounded, &decimal, decimals, .bankers)
        return NSDecimalNumber(decimal: rounded).doubleValue
    }
}
