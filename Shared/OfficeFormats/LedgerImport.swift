import Formats
import Foundation
import Schema

/// An office's ledger file on its way into `case.import`, the same for the CLI and the console:
/// read whatever the office has (XLSX, or CSV in UTF-8, GBK/GB18030 or UTF-16), sent in chunks,
/// and every reply told back by the file's own lines and column headers.
public struct LedgerImport: Sendable {
    /// The file's rows, those that could not be read carrying their problem.
    public let rows: [LedgerCSV.ImportRow]
    /// The user's own header for each wire field (`unit` → 责任单位), to name columns as the file does.
    public let headers: [String: String]

    /// A file that is not a ledger at all: one Chinese sentence.
    public struct Unreadable: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(_ data: Data) throws(Unreadable) {
        let records: [LedgerCSV.Record]
        do {
            let spreadsheet = data.starts(with: [0x50, 0x4B, 0x03, 0x04])
            if spreadsheet {
                records = try XLSXReader.read(data)
            } else {
                guard let decoded = OfficeText.decode(data) else {
                    throw Unreadable(description: "无法识别文件编码（支持 UTF-8、GBK/GB18030、UTF-16），也不是 XLSX")
                }
                records = try LedgerCSV.parse(decoded.text)
            }
            rows = try LedgerCSV.importRows(records, shortRows: spreadsheet)
        } catch let error as Unreadable {
            throw error
        } catch let error as LedgerCSV.SyntaxError {
            throw Unreadable(description: "\(error)")
        } catch let error as XLSXReader.ReadError {
            throw Unreadable(description: "\(error)")
        } catch {
            throw Unreadable(description: "\(error)")
        }
        headers = LedgerCSV.headerNames(records)
    }

    /// The rows that can be sent, in chunks of `size`: by default as many as one `case.import`
    /// takes, so that a file of up to that many rows is stored in one transaction (a connection
    /// lost halfway never leaves part of it stored; each row is still judged on its own).
    public func chunks(of size: Int = CaseTypes.maxImportRows) -> [[LedgerCSV.ImportRow]] {
        let good = rows.filter { $0.body != nil }
        return stride(from: 0, to: good.count, by: max(1, size)).map { Array(good[$0..<min($0 + max(1, size), good.count)]) }
    }

    /// What the ledger said of the file, chunk by chunk, by the file's lines.
    public struct Outcome: Sendable {
        public var imported = 0
        public var updated = 0
        public var unchanged = 0
        /// New rows whose 外部编号 the ledger already holds: that case, not a duplicate.
        public var existing = 0
        /// Lines refused, by the file's own column header.
        public var problems: [(line: Int, text: String)] = []
        public var notes: [(line: Int, text: String)] = []
        public var changes: [(line: Int, text: String)] = []
        /// Problems naming a unit the plan does not know: their index in `problems` and the name.
        var unknownUnits: [(Int, String)] = []

        public init() {}
    }

    /// Starts an outcome with the lines the file itself could not give.
    public func outcome() -> Outcome {
        var outcome = Outcome()
        outcome.problems = rows.compactMap { row in row.problem.map { (row.line, $0) } }
        return outcome
    }

    /// Adds one chunk's reply.
    public func add(_ reply: CaseImportReply, for slice: [LedgerCSV.ImportRow], to outcome: inout Outcome) {
        outcome.imported += reply.imported.count
        outcome.updated += reply.updated?.count ?? 0
        outcome.unchanged += reply.unchanged?.count ?? 0
        for rejected in reply.rejected where slice.indices.contains(rejected.index) {
            let key = rejected.field.map { $0.replacingOccurrences(of: "body.cases[\(rejected.index)]", with: "") } ?? ""
            let field = key.hasPrefix(".") ? String(key.dropFirst()).split(separator: ".").first.map(String.init) ?? "" : ""
            let line = slice[rejected.index].line
            // A new row whose 外部编号 the ledger already holds is that case: said, not an error.
            if rejected.code == .conflict, field == "external_ref" {
                outcome.existing += 1
                outcome.notes.append((line, rejected.message + "，未重复登记"))
                continue
            }
            // The user's own column header, not the wire's field name.
            let column = headers[field].map { "「\($0)」" } ?? field
            if rejected.code == .notFound, ["unit", "supervising_unit", "acceptance_unit"].contains(field),
                case .object(let body) = slice[rejected.index].body, case .string(let name) = body[field]
            {
                outcome.unknownUnits.append((outcome.problems.count, name))
            }
            outcome.problems.append((line, "\(column.isEmpty ? "" : column + "：")\(rejected.message)"))
        }
        for note in reply.notes ?? [] where slice.indices.contains(note.index) {
            outcome.notes.append((slice[note.index].line, "\(note.id)：\(note.message)"))
        }
        for change in reply.updated ?? [] where slice.indices.contains(change.index) {
            let what = change.changes.map { "\(headers[$0.field] ?? $0.field) \($0.from ?? "（空）") → \($0.to ?? "（空）")" }
            outcome.changes.append((slice[change.index].line, "\(change.id)：" + what.joined(separator: "；")))
        }
    }
}

extension LedgerImport.Outcome {
    /// Whether any problem names a unit the plan does not know (worth asking the registry for its units).
    public var namesUnknownUnits: Bool { !unknownUnits.isEmpty }

    /// Adds to each unknown unit's problem the nearest name the plan knows, when one is close
    /// (区农业局 → 区农业农村局); then puts everything in the file's order.
    public mutating func finish(knownUnits: [String]) {
        for (index, name) in unknownUnits {
            if let near = OfficeText.nearest(name, in: knownUnits) { problems[index].text += "，是否为「\(near)」？" }
        }
        unknownUnits = []
        problems.sort { $0.line < $1.line }
        notes.sort { $0.line < $1.line }
        changes.sort { $0.line < $1.line }
    }
}
