import CXlsxWriter
import Formats
import Foundation

/// Writes XLSX workbooks through Debian's libxlsxwriter (no Swift package writes XLSX). The library
/// writes to a file, so each workbook goes through a temporary one that is read back and removed.
public enum XLSXWriter {
    /// One worksheet: a header row and text rows, with how each column is shown (date and time
    /// columns as date cells, numbers as numbers, highlighted rows red): an export table.
    public typealias Sheet = ExportTable

    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The workbook's bytes. Text is written as given: callers neutralise formula-looking cells
    /// (`OfficeText.neutralise`); libxlsxwriter's string cells are never formulas in any case.
    public static func workbook(_ sheets: [Sheet]) throws -> Data {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("duban-\(UUID().uuidString).xlsx").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard let book = workbook_new(path) else { throw WriteError(description: "无法创建 XLSX 临时文件 \(path)") }
        // One format per kind of cell and per fill: libxlsxwriter formats are not combined per cell.
        func format(_ setup: (UnsafeMutablePointer<lxw_format>) -> Void) -> UnsafeMutablePointer<lxw_format> {
            let f = workbook_add_format(book)!
            format_set_font_name(f, "宋体")
            format_set_font_size(f, 11)
            format_set_align(f, UInt8(LXW_ALIGN_VERTICAL_TOP.rawValue))
            setup(f)
            return f
        }
        let header = format {
            format_set_bold($0)
            format_set_bg_color($0, 0xD9E1F2)
            format_set_border($0, UInt8(LXW_BORDER_THIN.rawValue))
            format_set_text_wrap($0)
        }
        struct Kind {
            var plain: UnsafeMutablePointer<lxw_format>
            var overdue: UnsafeMutablePointer<lxw_format>
        }
        func kind(_ setup: @escaping (UnsafeMutablePointer<lxw_format>) -> Void) -> Kind {
            Kind(
                plain: format { setup($0) },
                overdue: format {
                    setup($0)
                    format_set_bg_color($0, 0xFFC7CE)
                    format_set_font_color($0, 0x9C0006)
                })
        }
        let text = kind { format_set_text_wrap($0) }
        let date = kind { format_set_num_format($0, "yyyy-mm-dd") }
        let time = kind { format_set_num_format($0, "yyyy-mm-dd hh:mm") }
        let number = kind { format_set_num_format($0, "0.######") }

        var usedNames: Set<String> = []
        for sheet in sheets {
            let name = sheetName(sheet.name, used: &usedNames)
            guard let ws = workbook_add_worksheet(book, name) else { throw WriteError(description: "无法添加工作表 \(name)") }
            for (column, title) in sheet.headers.enumerated() {
                worksheet_write_string(ws, 0, lxw_col_t(column), cell(title), header)
            }
            for (index, row) in sheet.rows.enumerated() {
                let r = lxw_row_t(index + 1)
                let overdue = sheet.highlighted.contains(index)
                for (column, value) in row.enumerated() {
                    let c = lxw_col_t(column)
                    let pick = { (k: Kind) in overdue ? k.overdue : k.plain }
                    if value.isEmpty {
                        worksheet_write_blank(ws, r, c, pick(text))
                    } else if sheet.dateColumns.contains(column), var when = datetime(value) {
                        worksheet_write_datetime(ws, r, c, &when, pick(date))
                    } else if sheet.timeColumns.contains(column), var when = datetime(value) {
                        worksheet_write_datetime(ws, r, c, &when, pick(time))
                    } else if sheet.numberColumns.contains(column), let n = Double(value) {
                        worksheet_write_number(ws, r, c, n, pick(number))
                    } else {
                        worksheet_write_string(ws, r, c, cell(value), pick(text))
                    }
                }
            }
            // Widths from the longest line in each column (a CJK character is two), within reason.
            for column in sheet.headers.indices {
                var width = displayWidth(sheet.headers[column]) + 2
                for row in sheet.rows where column < row.count {
                    let longest = row[column].split(separator: "\n").map { displayWidth(String($0)) }.max() ?? 0
                    width = max(width, longest + 2)
                }
                if sheet.dateColumns.contains(column) { width = max(width, 12) }
                if sheet.timeColumns.contains(column) { width = max(width, 17) }
                worksheet_set_column(ws, lxw_col_t(column), lxw_col_t(column), Double(min(max(width, 8), 50)), nil)
            }
            worksheet_freeze_panes(ws, 1, 0)
            if !sheet.headers.isEmpty {
                worksheet_autofilter(ws, 0, 0, lxw_row_t(max(sheet.rows.count, 1)), lxw_col_t(sheet.headers.count - 1))
            }
        }
        let result = workbook_close(book)
        guard result == LXW_NO_ERROR else {
            throw WriteError(description: "XLSX 写入失败：\(String(cString: lxw_strerror(result)))")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw WriteError(description: "无法读回 XLSX 临时文件") }
        return data
    }

    /// The ledger's CSV (as `case.export` sends it) as a workbook: 完成时限 and the times as date
    /// cells, 经度/纬度 as numbers, overdue rows red; one sheet, or one per 批次 when asked.
    public static func ledger(csv: String, byBatch: Bool = false) throws -> Data {
        let records = try LedgerCSV.parse(csv)
        guard let header = records.first?.fields else { throw WriteError(description: "台账为空") }
        let rows = records.dropFirst().map(\.fields)
        let dates = Set(header.indices.filter { LedgerCSV.dateColumns.contains(header[$0]) })
        let times = Set(header.indices.filter { LedgerCSV.timeColumns.contains(header[$0]) })
        let numbers = Set(header.indices.filter { ["经度", "纬度"].contains(header[$0]) })
        let overdueColumn = header.firstIndex(of: "是否逾期")
        let batchColumn = header.firstIndex(of: "批次")
        func sheet(_ name: String, _ rows: [[String]]) -> Sheet {
            Sheet(
                name: name, headers: header, rows: rows, dateColumns: dates, timeColumns: times, numberColumns: numbers,
                highlighted: Set(
                    rows.indices.filter { index in overdueColumn.map { rows[index].count > $0 && rows[index][$0] == "是" } ?? false }))
        }
        guard byBatch, let batchColumn else { return try workbook([sheet("整改台账", Array(rows))]) }
        var order: [String] = []
        var groups: [String: [[String]]] = [:]
        for row in rows {
            let batch = row.count > batchColumn && !row[batchColumn].isEmpty ? row[batchColumn] : "未分批"
            if groups[batch] == nil { order.append(batch) }
            groups[batch, default: []].append(row)
        }
        return try workbook(order.sorted().map { sheet($0, groups[$0]!) })
    }

    /// An export table (the dispatch, the targets) as a workbook of one sheet: its date and time
    /// columns as date cells, numbers as numbers, highlighted rows red, every text cell neutralised.
    public static func table(_ table: ExportTable) throws -> Data {
        var guarded = table
        guarded.rows = table.rows.map { $0.map(ExportTable.guarded) }
        return try workbook([guarded])
    }

    /// Excel's sheet-name rules: at most 31 characters, none of `[]:*?/\`, unique.
    static func sheetName(_ raw: String, used: inout Set<String>) -> String {
        var name = String(raw.map { "[]:*?/\\".contains($0) ? "_" : $0 }.prefix(31))
        if name.isEmpty { name = "Sheet" }
        var candidate = name
        var n = 2
        while used.contains(candidate.lowercased()) {
            candidate = String(name.prefix(27)) + "(\(n))"
            n += 1
        }
        used.insert(candidate.lowercased())
        return candidate
    }

    /// A cell's text within Excel's 32,767-character limit.
    static func cell(_ text: String) -> String { text.count > 32767 ? String(text.prefix(32767)) : text }

    static func datetime(_ text: String) -> lxw_datetime? {
        let parts = text.split(separator: " ")
        guard let day = parts.first, let date = OfficeText.date(String(day)) else { return nil }
        let ymd = date.split(separator: "-").compactMap { Int32($0) }
        var hour: Int32 = 0
        var minute: Int32 = 0
        if parts.count == 2 {
            let clock = parts[1].split(separator: ":").compactMap { Int32($0) }
            guard clock.count >= 2 else { return nil }
            hour = clock[0]
            minute = clock[1]
        }
        return lxw_datetime(year: ymd[0], month: ymd[1], day: ymd[2], hour: hour, min: minute, sec: 0)
    }

    static func displayWidth(_ text: String) -> Int {
        text.unicodeScalars.reduce(0) { $0 + ($1.value > 0x2E80 ? 2 : 1) }
    }
}
