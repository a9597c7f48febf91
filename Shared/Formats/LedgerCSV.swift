import Foundation
import Schema

/// The ledger as offices keep it: CSV with Chinese headers, UTF-8 with a BOM so that Excel opens
/// it as UTF-8, CRLF line ends.
public enum LedgerCSV {
    /// Export columns, in order.
    public static let headers = [
        "编号", "来源", "问题标题", "问题描述", "责任单位", "监管单位", "验收单位", "完成时限", "整改措施", "所属任务", "批次", "位置", "经度", "纬度", "外部编号", "状态",
        "是否逾期", "登记时间", "更新时间", "销号时间", "最新进展", "原完成时限", "关联问题", "作废原因",
    ]

    /// Import columns: header (Chinese or the protocol's field name) → `case.open` field.
    public static let importColumns: [String: String] = [
        "来源": "source", "问题标题": "title", "标题": "title", "责任单位": "unit", "完成时限": "deadline", "问题描述": "description", "所属任务": "task",
        "批次": "batch", "位置": "location", "经度": "lon", "纬度": "lat", "外部编号": "external_ref", "监管单位": "supervising_unit",
        "验收单位": "acceptance_unit", "整改措施": "measures",
        "source": "source", "title": "title", "unit": "unit", "deadline": "deadline", "description": "description", "task": "task",
        "batch": "batch",
        "location": "location", "lon": "lon", "lat": "lat", "external_ref": "external_ref", "supervising_unit": "supervising_unit",
        "acceptance_unit": "acceptance_unit", "measures": "measures",
    ]

    public static func export(_ cases: [Case]) -> String {
        var out = "\u{FEFF}"
        out += row(headers)
        for item in cases {
            out += row([
                item.id, item.source.label, item.title, item.description ?? "", item.unit, item.supervisingUnit ?? "",
                item.acceptanceUnit ?? "",
                item.deadline ?? "", item.measures ?? "", item.task ?? "", item.batch ?? "", item.location ?? "",
                item.coordinates.map { "\($0.lon)" } ?? "", item.coordinates.map { "\($0.lat)" } ?? "", item.externalRef ?? "",
                item.state.label,
                item.overdue ? "是" : "否", item.openedAt, item.updatedAt, item.closedAt ?? "", latestUpdate(item),
                item.originalDeadline ?? "", (item.related ?? []).joined(separator: "、"), item.voidReason ?? "",
            ])
        }
        return out
    }

    /// 最新进展 as an office reads it: the day, the percent, what was done.
    static func latestUpdate(_ item: Case) -> String {
        guard let update = item.latestUpdate else { return "" }
        return "\(update.at.prefix(10))" + (update.progress.map { " \($0)%" } ?? "") + " \(update.text)"
    }

    public static func row(_ fields: [String]) -> String {
        fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }

    /// A record of a CSV file and the line it starts on.
    public struct Record: Sendable, Equatable {
        public var line: Int
        public var fields: [String]
    }

    /// A CSV syntax error, with its line.
    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses RFC 4180 CSV (a leading BOM, quoted fields with commas, quotes and line breaks).
    /// Hand-written because the CSV packages at hand do not report the line a record starts on,
    /// and the import's error report must name it. Blank lines are skipped.
    public static func parse(_ text: String) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var line = 1
        var recordLine = 1
        var inQuotes = false
        var quoteLine = 1
        var characters = Array(text.unicodeScalars)
        if characters.first == "\u{FEFF}" { characters.removeFirst() }
        var index = 0
        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(line: recordLine, fields: fields)) }
            fields = []
        }
        while index < characters.count {
            let c = characters[index]
            if inQuotes {
                if c == "\"" {
                    if index + 1 < characters.count, characters[index + 1] == "\"" {
                        field.unicodeScalars.append("\"")
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else {
                switch c {
                case "\"":
                    guard field.isEmpty else { throw SyntaxError(line: line, message: "a quote inside an unquoted field") }
                    inQuotes = true
                    quoteLine = line
                case ",":
                    fields.append(field)
                    field = ""
                case "\r":
                    break
                case "\n":
                    endRecord()
                    line += 1
                    recordLine = line
                default:
                    field.unicodeScalars.append(c)
                }
            }
            index += 1
        }
        if inQuotes { throw SyntaxError(line: quoteLine, message: "a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }

    /// One CSV row turned into a `case.open` body, or why it cannot be.
    public struct ImportRow: Sendable {
        public var line: Int
        public var body: JSONValue?
        public var problem: String?
    }

    /// Turns a parsed ledger CSV into `case.open` bodies, one per record after the header.
    public static func importRows(_ records: [Record]) throws -> [ImportRow] {
        guard let header = records.first else { throw SyntaxError(line: 1, message: "the file is empty") }
        var columns: [Int: String] = [:]
        for (index, name) in header.fields.enumerated() {
            let name = name.trimmingCharacters(in: .whitespaces)
            guard let field = importColumns[name] else {
                if ["编号", "状态", "是否逾期", "登记时间", "更新时间", "销号时间"].contains(name) { continue }  // exported columns the ledger sets itself
                throw SyntaxError(line: header.line, message: "unknown column \(name)")
            }
            columns[index] = field
        }
        for required in ["source", "title", "unit"] where !columns.values.contains(required) {
            let heading = importColumns.first { $0.value == required && $0.key.unicodeScalars.first!.value > 127 }!.key
            throw SyntaxError(line: header.line, message: "missing column for \(required) (\(heading))")
        }
        return records.dropFirst().map { record in
            guard record.fields.count == header.fields.count else {
                return ImportRow(
                    line: record.line, body: nil, problem: "\(record.fields.count) fields where the header has \(header.fields.count)")
            }
            var object: [String: JSONValue] = [:]
            var lat: String?
            var lon: String?
            for (index, raw) in record.fields.enumerated() {
                guard let field = columns[index] else { continue }
                let value = raw.trimmingCharacters(in: .whitespaces)
                if value.isEmpty { continue }
                switch field {
                case "lat": lat = value
                case "lon": lon = value
                case "source": object["source"] = .string(CaseSource(text: value)?.rawValue ?? value)
                default: object[field] = .string(value)
                }
            }
            if lat != nil || lon != nil {
                guard let lat, let lon, let latitude = Double(lat), let longitude = Double(lon) else {
                    return ImportRow(line: record.line, body: nil, problem: "经度 and 纬度 must both be numbers")
                }
                object["coordinates"] = .object(["lat": .number(latitude), "lon": .number(longitude)])
            }
            return ImportRow(line: record.line, body: .object(object), problem: nil)
        }
    }
}
