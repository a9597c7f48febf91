import Foundation
import Schema

/// The ledger as offices keep it: CSV with Chinese headers, UTF-8 with a BOM so that Excel opens
/// it as UTF-8, CRLF line ends. The same columns make the XLSX ledger (OfficeFormats).
public enum LedgerCSV {
    /// Export columns, in order.
    public static let headers = [
        "编号", "来源", "问题标题", "问题描述", "责任单位", "监管单位", "验收单位", "完成时限", "整改措施", "所属任务", "批次", "位置", "经度", "纬度", "外部编号", "状态",
        "是否逾期", "最新进展", "退回原因", "材料", "原完成时限", "关联问题", "作废原因", "登记时间", "更新时间", "验收时间", "销号时间",
    ]

    /// Export columns that hold a date (`YYYY-MM-DD`) or a time (`YYYY-MM-DD HH:MM`, district time).
    public static let dateColumns: Set<String> = ["完成时限"]
    public static let timeColumns: Set<String> = ["登记时间", "更新时间", "验收时间", "销号时间"]

    /// Import columns: header (as exported, the variants offices use, or the protocol's field
    /// name) → `case.open` field; `id` and `state` are the ledger's own 编号 and 状态.
    public static let importColumns: [String: String] = {
        var map: [String: String] = [:]
        let names: [(String, [String])] = [
            ("id", ["编号", "台账编号", "问题编号（台账）", "id"]),
            ("state", ["状态", "办理状态", "整改状态", "state"]),
            ("source", ["来源", "问题来源", "source"]),
            ("title", ["问题标题", "标题", "问题名称", "问题", "title"]),
            ("description", ["问题描述", "描述", "问题详情", "具体问题", "description"]),
            ("unit", ["责任单位", "整改责任单位", "牵头单位", "责任部门", "unit"]),
            ("supervising_unit", ["监管单位", "监管部门", "督办单位", "supervising_unit"]),
            ("acceptance_unit", ["验收单位", "验收部门", "acceptance_unit"]),
            ("deadline", ["完成时限", "整改时限", "整改期限", "完成期限", "截止日期", "deadline"]),
            ("measures", ["整改措施", "整改方案", "措施", "measures"]),
            ("task", ["所属任务", "任务", "任务编号", "task"]),
            ("batch", ["批次", "交办批次", "batch"]),
            ("location", ["位置", "地址", "具体位置", "点位位置", "location"]),
            ("lon", ["经度", "lon"]),
            ("lat", ["纬度", "lat"]),
            ("external_ref", ["外部编号", "原编号", "督察编号", "external_ref"]),
        ]
        for (field, headers) in names { for header in headers { map[OfficeText.normalizedHeader(header)] = field } }
        return map
    }()

    /// Exported columns the ledger sets itself, and an office's own running number: read past on import.
    public static let ignoredColumns: Set<String> = [
        "是否逾期", "最新进展", "退回原因", "材料", "原完成时限", "关联问题", "作废原因", "登记时间", "更新时间", "验收时间", "销号时间", "序号",
    ]

    /// The ledger's rows. Each case should carry its history (`case.get`, or the export's own
    /// read): 最新进展, 退回原因, 验收时间 come from it.
    public static func export(_ cases: [Case]) -> String {
        var out = "\u{FEFF}"
        out += row(headers)
        for item in cases { out += row(fields(item).map(OfficeText.neutralise)) }
        return out
    }

    /// One case's export fields, in `headers` order, before neutralisation.
    public static func fields(_ item: Case) -> [String] {
        let history = item.history ?? []
        let rejection = history.last { $0.action == "reject" }?.comment
        let accepted = history.last { $0.action == "accept" }?.at
        let evidence = item.evidence.map { "\($0.name) \($0.uri)" }.joined(separator: "\n")
        return [
            item.id, item.source.label, item.title, item.description ?? "", item.unit, item.supervisingUnit ?? "",
            item.acceptanceUnit ?? "",
            item.deadline ?? "", item.measures ?? "", item.task ?? "", item.batch ?? "", item.location ?? "",
            item.coordinates.map { "\($0.lon)" } ?? "", item.coordinates.map { "\($0.lat)" } ?? "", item.externalRef ?? "",
            item.state.label,
            item.overdue ? "是" : "否", latestUpdate(item), rejection ?? "", evidence, item.originalDeadline ?? "",
            (item.related ?? []).joined(separator: "、"), item.voidReason ?? "", localTime(item.openedAt), localTime(item.updatedAt),
            accepted.map(localTime) ?? "", item.closedAt.map(localTime) ?? "",
        ]
    }

    /// 最新进展 as an office reads it: the unit's latest progress update (the day, the percent, what was
    /// done); without one, the case's latest step in its history.
    static func latestUpdate(_ item: Case) -> String {
        if let update = item.latestUpdate {
            return "\(update.at.prefix(10))" + (update.progress.map { " \($0)%" } ?? "") + " \(update.text)"
        }
        guard let step = (item.history ?? []).last(where: { $0.action != "open" }) else { return "" }
        return "\(localTime(step.at)) \(step.to.label)" + (step.comment.map { "：\($0)" } ?? "")
    }

    /// A wire time as a spreadsheet shows it: `YYYY-MM-DD HH:MM` in the district's time.
    public static func localTime(_ wire: String) -> String {
        guard let date = Timestamp.parse(wire) else { return wire }
        // `format` writes the district's clock (+08:00): its first 16 characters are the local minute.
        return String(Timestamp.format(date, fractional: false).prefix(16)).replacingOccurrences(of: "T", with: " ")
    }

    public static func row(_ fields: [String]) -> String {
        fields.map { field in
            // By scalar, as `parse` reads: "\r\n" is one Character, equal to neither "\r" nor "\n", so
            // a cell with a Windows line break was written unquoted and read back as two records (and
            // a quote followed by a combining mark is a Character other than the quote). A cell that
            // starts with a byte-order mark is quoted too: first in a file, the mark would be read as
            // the file's and dropped.
            let special = field.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
            guard special || field.unicodeScalars.first == "\u{FEFF}" else { return field }
            var quoted = String.UnicodeScalarView()
            quoted.append("\"")
            for scalar in field.unicodeScalars {
                if scalar == "\"" { quoted.append("\"") }
                quoted.append(scalar)
            }
            quoted.append("\"")
            return String(quoted)
        }.joined(separator: ",") + "\r\n"
    }

    /// A record of a CSV file and the line it starts on.
    public struct Record: Sendable, Equatable {
        public var line: Int
        public var fields: [String]
        public init(line: Int, fields: [String]) {
            self.line = line
            self.fields = fields
        }
    }

    /// A CSV syntax error, with its line.
    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public var line: Int
        public var message: String
        public var description: String { "第 \(line) 行：\(message)" }
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
                    guard field.isEmpty else { throw SyntaxError(line: line, message: "未加引号的字段中有引号（\"），含引号的内容须整格用引号括起") }
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
        if inQuotes { throw SyntaxError(line: quoteLine, message: "引号没有闭合") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }

    /// One row turned into a `case.open` body (or, when it names its 编号, a round-trip edit of that
    /// case: `id`, `state` and every column the file has, empty ones as ""), or why it cannot be.
    public struct ImportRow: Sendable {
        public var line: Int
        public var body: JSONValue?
        public var problem: String?
        /// The case's 编号 when the row names one.
        public var id: String?
    }

    /// The header as the file spells it, for each field, so that a message names the user's own column.
    public static func headerNames(_ records: [Record]) -> [String: String] {
        var names: [String: String] = [:]
        for name in records.first?.fields ?? [] {
            if let field = importColumns[OfficeText.normalizedHeader(name)] { names[field] = name.trimmingCharacters(in: .whitespaces) }
        }
        names["coordinates"] = names["lon"].map { "\($0)/\(names["lat"] ?? "纬度")" }
        return names
    }

    /// Turns a parsed ledger (CSV or XLSX rows) into `case.open` bodies, one per record after the header.
    /// A spreadsheet drops a row's empty trailing cells (`shortRows`); a CSV row that is short has lost a quote.
    public static func importRows(_ records: [Record], shortRows: Bool = false) throws -> [ImportRow] {
        guard let header = records.first else { throw SyntaxError(line: 1, message: "文件是空的") }
        var columns: [Int: String] = [:]
        var headers: [String: String] = [:]
        for (index, raw) in header.fields.enumerated() {
            let name = OfficeText.normalizedHeader(raw)
            if name.isEmpty || ignoredColumns.contains(name) { continue }
            guard let field = importColumns[name] else {
                let known = knownHeaders()
                let hint = OfficeText.nearest(name, in: known).map { "，是否为「\($0)」？" } ?? "；可用的列：\(knownList)"
                throw SyntaxError(line: header.line, message: "第 \(index + 1) 列「\(raw)」不是台账的列\(hint)")
            }
            if let other = columns.first(where: { $0.value == field }) {
                throw SyntaxError(
                    line: header.line, message: "第 \(other.key + 1) 列「\(header.fields[other.key])」和第 \(index + 1) 列「\(raw)」是同一项")
            }
            columns[index] = field
            headers[field] = raw.trimmingCharacters(in: .whitespaces)
        }
        let hasID = columns.values.contains("id")
        if !hasID {
            for (required, heading) in [("source", "来源"), ("title", "问题标题"), ("unit", "责任单位")] where !columns.values.contains(required) {
                throw SyntaxError(line: header.line, message: "缺少「\(heading)」列")
            }
        }
        return records.dropFirst().compactMap { record -> ImportRow? in
            let cells = record.fields.map { OfficeText.unneutralise($0.trimmingCharacters(in: .whitespaces)) }
            if cells.allSatisfy(\.isEmpty) { return nil }
            guard
                (cells.count == header.fields.count || shortRows && cells.count < header.fields.count)
                    || cells.count > header.fields.count && cells[header.fields.count...].allSatisfy(\.isEmpty)
            else {
                return ImportRow(line: record.line, body: nil, problem: "有 \(cells.count) 格，表头只有 \(header.fields.count) 列")
            }
            var values: [String: String] = [:]
            for (index, field) in columns { values[field] = index < cells.count ? cells[index] : "" }
            let id = values["id"].flatMap { $0.isEmpty ? nil : $0 }
            if hasID, id == nil, !columns.values.contains("source") || !columns.values.contains("title") || !columns.values.contains("unit")
            {
                return ImportRow(line: record.line, body: nil, problem: "「\(headers["id"] ?? "编号")」为空，又缺少登记新问题所需的来源、问题标题、责任单位列")
            }
            var object: [String: JSONValue] = [:]
            for (field, value) in values where field != "lat" && field != "lon" && field != "id" {
                // A new case leaves out what is empty; an edit sends it, so that clearing a cell clears the field.
                if value.isEmpty && id == nil || field == "state" && id == nil { continue }
                switch field {
                case "source" where !value.isEmpty:
                    guard let source = CaseSource(text: value) else {
                        let hint = OfficeText.nearest(value, in: CaseSource.allCases.map(\.label)).map { "，是否为「\($0)」？" } ?? ""
                        return ImportRow(line: record.line, body: nil, problem: "「\(headers[field]!)」：「\(value)」不是问题来源\(hint)", id: id)
                    }
                    object["source"] = .string(source.rawValue)
                case "deadline" where !value.isEmpty:
                    guard let date = OfficeText.date(value) else {
                        return ImportRow(
                            line: record.line, body: nil,
                            problem: "「\(headers[field]!)」：「\(value)」不是日期（可写 2026-12-31、2026/12/31、2026年12月31日）", id: id)
                    }
                    object["deadline"] = .string(date)
                case "task" where value.hasSuffix(".0") && Double(value) != nil:
                    object["task"] = .string(String(value.dropLast(2)))  // a task number a spreadsheet kept as a number
                default:
                    object[field] = .string(value)
                }
            }
            let lat = values["lat"] ?? ""
            let lon = values["lon"] ?? ""
            if !lat.isEmpty || !lon.isEmpty {
                guard let latitude = Double(lat), let longitude = Double(lon) else {
                    let bad = Double(lon) == nil ? (headers["lon"] ?? "经度", lon) : (headers["lat"] ?? "纬度", lat)
                    return ImportRow(
                        line: record.line, body: nil, problem: "「\(bad.0)」：「\(bad.1)」不是数字（经度、纬度须同时填写）", id: id)
                }
                object["coordinates"] = .object(["lat": .number(latitude), "lon": .number(longitude)])
            } else if id != nil, columns.values.contains("lat") {
                object["coordinates"] = .null
            }
            if let id { object["id"] = .string(id) }
            return ImportRow(line: record.line, body: .object(object), problem: nil, id: id)
        }
    }

    static func knownHeaders() -> [String] {
        ["编号", "来源", "问题标题", "问题描述", "责任单位", "监管单位", "验收单位", "完成时限", "整改措施", "所属任务", "批次", "位置", "经度", "纬度", "外部编号", "状态"]
            + importColumns.keys.filter { $0.unicodeScalars.first!.value > 127 } + ignoredColumns
    }

    static var knownList: String { headers.joined(separator: "、") }
}
