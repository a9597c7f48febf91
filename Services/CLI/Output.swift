import ArgumentParser
import Formats
import Foundation
import OfficeFormats
import Schema

/// Everything the CLI prints goes through here: it shadows Swift's `print` in this module, so no
/// command can forget it. What is shown came largely from data anyone could type (case titles,
/// reasons, comments, error messages quoting a request), and a terminal would obey the control
/// sequences in it; `DisplayText` drops them.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(DisplayText.sanitized(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

/// Bytes for standard output or error, made safe the same way.
func displayData(_ text: String) -> Data { Data(DisplayText.sanitized(text).utf8) }

/// `--format csv|xlsx --out FILE`: a command's table written as a document instead of printed.
struct ExportOptions: ParsableArguments {
    @Option(help: "导出为文件：csv（UTF-8 带 BOM）或 xlsx（日期单元格、冻结表头、逾期或未达标行标红）。") var format: String?
    @Option(help: "导出到哪个文件（默认：表名加扩展名，当前目录；只写 --out 时按扩展名定格式）。") var out: String?

    /// The format asked for, if any: from `--format`, or from `--out`'s extension.
    func chosenFormat() throws -> String? {
        if let format {
            guard ["csv", "xlsx"].contains(format) else { throw ValidationError("--format：应为 csv 或 xlsx，收到 \(format)") }
            return format
        }
        guard let out else { return nil }
        return (out as NSString).pathExtension.lowercased() == "xlsx" ? "xlsx" : "csv"
    }

    func write(_ table: ExportTable, format: String) throws {
        let path = out ?? "\(table.name).\(format)"
        let data = format == "xlsx" ? try XLSXWriter.table(table) : Data(table.csv.utf8)
        do {
            try data.write(to: URL(fileURLWithPath: path))
        } catch {
            throw ValidationError("--out：无法写入 \(path)")
        }
        print("\(path)：\(table.rows.count) 行")
    }
}
