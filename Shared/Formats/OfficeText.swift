import Foundation
import Schema

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What office files carry and how to read it: text encodings, the dates people and Excel write,
/// formula neutralisation, and the nearest valid name for a mistyped one.
public enum OfficeText {
    /// A file's text and the encoding it was read as (named for messages).
    public struct Decoded: Sendable {
        public var text: String
        public var encoding: String
    }

    /// Decodes a file as UTF-8 (with or without BOM), UTF-16 (BOM, or the zero bytes of mostly
    /// ASCII text) or GB18030 (which covers GBK and GB2312: Excel's "CSV (逗号分隔)" on a Chinese
    /// Windows). GB18030 goes through glibc's iconv because Foundation on Linux does not decode it.
    public static func decode(_ data: Data) -> Decoded? {
        let bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            return String(bytes: bytes.dropFirst(3), encoding: .utf8).map { Decoded(text: $0, encoding: "UTF-8") }
        }
        if bytes.starts(with: [0xFF, 0xFE]) {
            return String(data: Data(bytes.dropFirst(2)), encoding: .utf16LittleEndian).map { Decoded(text: $0, encoding: "UTF-16") }
        }
        if bytes.starts(with: [0xFE, 0xFF]) {
            return String(data: Data(bytes.dropFirst(2)), encoding: .utf16BigEndian).map { Decoded(text: $0, encoding: "UTF-16") }
        }
        if bytes.count >= 4, bytes.count % 2 == 0 {
            // Without a BOM, UTF-16 shows itself by a zero in every other byte of its ASCII (commas, digits, line ends).
            let evenZeros = stride(from: 0, to: bytes.count, by: 2).filter { bytes[$0] == 0 }.count
            let oddZeros = stride(from: 1, to: bytes.count, by: 2).filter { bytes[$0] == 0 }.count
            if oddZeros * 4 > bytes.count / 2, evenZeros == 0 {
                return String(data: data, encoding: .utf16LittleEndian).map { Decoded(text: $0, encoding: "UTF-16") }
            }
            if evenZeros * 4 > bytes.count / 2, oddZeros == 0 {
                return String(data: data, encoding: .utf16BigEndian).map { Decoded(text: $0, encoding: "UTF-16") }
            }
        }
        if let text = String(validating: bytes, as: UTF8.self) { return Decoded(text: text, encoding: "UTF-8") }
        return convert(bytes, from: "GB18030").map { Decoded(text: $0, encoding: "GB18030") }
    }

    /// Converts bytes in `encoding` to a String through iconv; nil when they are not valid in it.
    static func convert(_ bytes: [UInt8], from encoding: String) -> String? {
        let converter = iconv_open("UTF-8", encoding)
        guard converter != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(converter) }
        var input = bytes.map { CChar(bitPattern: $0) }
        var output = [CChar](repeating: 0, count: bytes.count * 4 + 16)
        let converted: Int? = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                var inPointer: UnsafeMutablePointer<CChar>? = inBuffer.baseAddress
                var inLeft = inBuffer.count
                var outPointer: UnsafeMutablePointer<CChar>? = outBuffer.baseAddress
                var outLeft = outBuffer.count
                let result = iconv(converter, &inPointer, &inLeft, &outPointer, &outLeft)
                return result == -1 || inLeft != 0 ? nil : outBuffer.count - outLeft
            }
        }
        guard let converted else { return nil }
        return String(validating: output[..<converted].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A date as offices write it, as `YYYY-MM-DD`: `2026-12-31`, `2026/12/31`, `2026/1/5`, `2026.1.5`,
    /// `2026年12月31日`, a time after the date (`2026/12/31 0:00`), or an Excel serial number (`46387`; 20000–80000, 1954–2119, so that a
    /// bare year is not taken for one).
    public static func date(_ text: String) -> String? {
        var trimmed = text.trimmingCharacters(in: .whitespaces)
        if let space = trimmed.firstIndex(where: { $0 == " " || $0 == "T" }) { trimmed = String(trimmed[..<space]) }
        if let serial = Double(trimmed), serial == serial.rounded(), (20000...80000).contains(serial) {
            return excelDate(serial)
        }
        var normalized = trimmed
        for separator in ["/", ".", "年", "月"] { normalized = normalized.replacingOccurrences(of: separator, with: "-") }
        if normalized.hasSuffix("日") { normalized.removeLast() }
        let parts = normalized.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, (1...2).contains(parts[1].count), (1...2).contains(parts[2].count),
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month),
            (1...Timestamp.daysInMonth(year, month)).contains(day)
        else { return nil }
        return Timestamp.dateString(year, month, day)
    }

    /// An Excel serial day (1900 date system, with Excel's phantom 1900-02-29) as `YYYY-MM-DD`.
    public static func excelDate(_ serial: Double) -> String? {
        let days = Int(serial.rounded(.down))
        guard days >= 1 else { return nil }
        // Serial 61 is 1900-03-01; from there on, serial − 25569 is days since 1970-01-01.
        let date = Date(timeIntervalSince1970: Double(days - 25569) * 86400)
        let (year, month, day) = Timestamp.districtCivil(date.addingTimeInterval(-Double(Timestamp.districtOffset)))
        return Timestamp.dateString(year, month, day)
    }

    /// The Excel serial day of a `YYYY-MM-DD` date.
    public static func excelSerial(_ date: String) -> Double? {
        guard let start = Timestamp.startOfDistrictDay(date) else { return nil }
        return ((start.timeIntervalSince1970 + Double(Timestamp.districtOffset)) / 86400).rounded() + 25569
    }

    /// Characters that make a spreadsheet read a cell as a formula (or DDE): such a text is
    /// written with a leading `'` so that it stays text.
    static let formulaStarts: Set<Character> = ["=", "+", "-", "@", "\t", "\r"]

    /// A text cell as exported: a leading `'` when it would otherwise start a formula.
    public static func neutralise(_ text: String) -> String {
        guard let first = text.first, formulaStarts.contains(first) else { return text }
        return "'" + text
    }

    /// A cell as imported: the `'` that `neutralise` put in front of a formula-looking text removed.
    public static func unneutralise(_ text: String) -> String {
        guard text.hasPrefix("'"), let second = text.dropFirst().first, formulaStarts.contains(second) else { return text }
        return String(text.dropFirst())
    }

    /// A header as compared: no spaces, no required-field stars, half-width brackets.
    public static func normalizedHeader(_ text: String) -> String {
        var out = unneutralise(text.trimmingCharacters(in: .whitespacesAndNewlines))
        out = out.replacingOccurrences(of: "（", with: "(").replacingOccurrences(of: "）", with: ")")
        out.removeAll { $0 == " " || $0 == "\u{3000}" || $0 == "*" || $0 == "＊" }
        return out
    }

    /// The candidate nearest to `text` (edit distance over characters), when it is near enough to
    /// be what was meant: at most a third of the longer name differs.
    public static func nearest(_ text: String, in candidates: [String]) -> String? {
        let target = Array(text)
        var best: (name: String, distance: Int, shared: Int)?
        for candidate in candidates {
            let characters = Array(candidate)
            let distance = editDistance(target, characters)
            // Between names as far apart, the one sharing more of what was typed: 区农业局 is 区农业农村局
            // (all four kept, two added), not 区教育局 (two of four changed).
            let shared = commonSubsequence(target, characters)
            if best == nil || (distance, -shared) < (best!.distance, -best!.shared) { best = (candidate, distance, shared) }
        }
        guard let best, best.distance > 0, best.distance * 3 <= max(target.count, best.name.count) else { return nil }
        return best.name
    }

    /// The length of the longest common subsequence of two names.
    static func commonSubsequence(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var previous = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            var current = Array(repeating: 0, count: b.count + 1)
            for j in 1...b.count {
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            previous = current
        }
        return previous[b.count]
    }

    public static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
