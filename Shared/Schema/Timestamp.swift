import Foundation

/// RFC 3339 times and the district's calendar (Asia/Shanghai, +08:00, no daylight saving).
public enum Timestamp {
    /// The district's offset from UTC, in seconds.
    public static let districtOffset = 8 * 3600

    /// The current time as RFC 3339 with the district's offset.
    public static func now() -> String { format(Date()) }

    /// Formats `date` as `2026-03-05T09:30:00.123+08:00`. Written digit by digit: every reply and
    /// event carries a time, and String(format:) was a visible cost per request.
    public static func format(_ date: Date, fractional: Bool = true) -> String {
        let seconds = date.timeIntervalSince1970 + Double(districtOffset)
        let whole = Int64(seconds.rounded(.down))
        let millis = Int((seconds - Double(whole)) * 1000)
        let (y, m, d) = civil(fromDays: Int(floorDiv(whole, 86_400)))
        let secondOfDay = Int(whole - floorDiv(whole, 86_400) * 86_400)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        appendDate(y, m, d, &out)
        out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2, &out)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2, &out)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2, &out)
        if fractional {
            out.append(UInt8(ascii: "."))
            digits(millis, 3, &out)
        }
        out.append(contentsOf: "+08:00".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// `value` zero-padded to `width` digits (values are never negative here).
    static func digits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = max(0, value)
        if rest >= divisor * 10 {
            out.append(contentsOf: String(rest).utf8)
            return
        }
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// `YYYY-MM-DD` from its parts.
    public static func dateString(_ year: Int, _ month: Int, _ day: Int) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(10)
        appendDate(year, month, day, &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendDate(_ year: Int, _ month: Int, _ day: Int, _ out: inout [UInt8]) {
        digits(year, 4, &out)
        out.append(UInt8(ascii: "-"))
        digits(month, 2, &out)
        out.append(UInt8(ascii: "-"))
        digits(day, 2, &out)
    }

    /// The district's calendar year, month and day of an instant.
    public static func districtCivil(_ date: Date) -> (year: Int, month: Int, day: Int) {
        let days = Int(floorDiv(Int64((date.timeIntervalSince1970 + Double(districtOffset)).rounded(.down)), 86_400))
        return civil(fromDays: days)
    }

    /// Local midnight starting a district calendar day.
    public static func startOfDistrictDay(year: Int, month: Int, day: Int) -> Date {
        Date(timeIntervalSince1970: Double(daysFromCivil(year, month, day) * 86_400 - districtOffset))
    }

    /// Parses an RFC 3339 date-time with an offset (`Z` or `±hh:mm`), optional fractional seconds.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for i in from..<(from + count) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                value = value * 10 + Int(b[i] - 48)
            }
            return value
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == 32,
            let h = num(11, 2), b[13] == 58, let mi = num(14, 2), b[16] == 58, let s = num(17, 2),
            (1...12).contains(mo), d >= 1, d <= daysInMonth(y, mo), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            guard i + 1 == b.count else { return nil }
        } else if b[i] == 43 || b[i] == 45 {
            guard i + 6 == b.count, let oh = num(i + 1, 2), b[i + 3] == 58, let om = num(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == 43 ? 1 : -1)
        } else {
            return nil
        }
        let days = daysFromCivil(y, mo, d)
        let epoch = Double(days * 86_400 + h * 3600 + mi * 60 + min(s, 59) - offset) + fraction
        return Date(timeIntervalSince1970: epoch)
    }

    /// The district's calendar date (`YYYY-MM-DD`) of an instant.
    public static func districtDate(_ date: Date) -> String {
        let (y, m, d) = districtCivil(date)
        return dateString(y, m, d)
    }

    /// The start of a district calendar day (`YYYY-MM-DD`, local midnight) as an instant.
    public static func startOfDistrictDay(_ day: String) -> Date? {
        let parts = day.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1, d <= daysInMonth(y, m)
        else { return nil }
        return Date(timeIntervalSince1970: Double(daysFromCivil(y, m, d) * 86_400 - districtOffset))
    }

    public static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    // Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
    public static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
