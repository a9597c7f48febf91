import Formats
import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads the first sheet of an XLSX workbook into rows of text, as the CSV importers take them:
/// shared and inline strings as they are, numbers without a trailing `.0`, cells with a date
/// format as `YYYY-MM-DD` (or `YYYY-MM-DD HH:MM` when they carry a time). No XLSX reader is
/// packaged for Swift or Debian; a workbook is a ZIP of XML parts, read here with `ZIPParts` (zlib)
/// and Foundation's XMLParser.
public enum XLSXReader {
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Files larger than this are refused before they are unpacked (a ZIP bomb stops here too:
    /// each part is read with a cap).
    static let maxPartSize = 64 << 20

    public static func read(_ data: Data) throws -> [LedgerCSV.Record] {
        let archive: ZIPParts
        do {
            archive = try ZIPParts(data)
        } catch {
            throw ReadError("不是有效的 XLSX 文件（无法作为 ZIP 打开）")
        }
        func part(_ path: String) throws -> Data? {
            let out: Data?
            do {
                out = try archive.extract(path, limit: maxPartSize)
            } catch {
                if case .tooLarge = error { throw ReadError("XLSX 中 \(path) 过大") }
                throw ReadError("XLSX 已损坏：\(path) 无法解压")
            }
            // Foundation's XMLParser on Linux traps on a name or attribute that is not UTF-8 (found by
            // Fuzz/fuzz-xlsx); Excel, WPS and openpyxl write every part as UTF-8.
            if let out, String(validating: out, as: UTF8.self) == nil { throw ReadError("XLSX 已损坏：\(path) 不是 UTF-8 编码的 XML") }
            return out
        }
        guard let workbook = try part("xl/workbook.xml") else { throw ReadError("不是 Excel 工作簿（缺少 xl/workbook.xml）") }
        let sheets = XMLElements.parse(workbook, names: ["sheet"])
        guard let first = sheets.first else { throw ReadError("工作簿中没有工作表") }
        var sheetPath = "xl/worksheets/sheet1.xml"
        if let rid = first.attributes["r:id"], let rels = try part("xl/_rels/workbook.xml.rels") {
            if let target = XMLElements.parse(rels, names: ["Relationship"]).first(where: { $0.attributes["Id"] == rid })?.attributes[
                "Target"]
            {
                sheetPath = target.hasPrefix("/") ? String(target.dropFirst()) : "xl/" + target
            }
        }
        let shared = try part("xl/sharedStrings.xml").map(SharedStrings.parse) ?? []
        let dateStyles = try part("xl/styles.xml").map(Styles.dateStyles) ?? []
        guard let sheet = try part(sheetPath) else { throw ReadError("工作簿缺少工作表 \(sheetPath)") }
        return try SheetParser.parse(sheet, shared: shared, dateStyles: dateStyles)
    }

    /// A cell reference's column, 0-based: `C7` → 2.
    static func column(_ reference: String) -> Int? {
        var value = 0
        var any = false
        for scalar in reference.unicodeScalars {
            guard scalar.value >= 65, scalar.value <= 90 else { break }
            value = value * 26 + Int(scalar.value - 64)
            any = true
        }
        return any && value <= 16384 ? value - 1 : nil
    }

    /// A number as a cell shows it in a CSV: integers without `.0`.
    static func numberText(_ text: String) -> String {
        guard let value = Double(text) else { return text }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return text
    }

    /// A date serial as `YYYY-MM-DD`, with ` HH:MM` when it has a time of day.
    static func dateText(_ text: String) -> String {
        guard let serial = Double(text), let date = OfficeText.excelDate(serial) else { return text }
        let minutes = Int(((serial - serial.rounded(.down)) * 1440).rounded())
        if minutes == 0 || minutes == 1440 { return date }
        return date + String(format: " %02d:%02d", minutes / 60, minutes % 60)
    }
}

/// Elements and their attributes, for the small parts (workbook, relationships).
final class XMLElements: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
    }
    let names: Set<String>
    var found: [Element] = []

    init(names: Set<String>) { self.names = names }

    static func parse(_ data: Data, names: Set<String>) -> [Element] {
        let delegate = XMLElements(names: names)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        parser.parse()
        return delegate.found
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        if names.contains(elementName) { found.append(Element(name: elementName, attributes: attributeDict)) }
    }
}

/// `xl/sharedStrings.xml`: each `<si>` is one string, the text of all its `<t>` (rich-text runs too).
final class SharedStrings: NSObject, XMLParserDelegate {
    var strings: [String] = []
    var current = ""
    var inText = false
    var inPhonetic = false

    static func parse(_ data: Data) -> [String] {
        let delegate = SharedStrings()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        parser.parse()
        return delegate.strings
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        switch elementName {
        case "si": current = ""
        case "t": inText = true
        case "rPh": inPhonetic = true  // phonetic guides are not the cell's text
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        switch elementName {
        case "si": strings.append(current)
        case "t": inText = false
        case "rPh": inPhonetic = false
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText && !inPhonetic { current += string }
    }
}

/// `xl/styles.xml`: which cell formats (`s` indexes into `cellXfs`) show a date.
final class Styles: NSObject, XMLParserDelegate {
    var customDate: Set<Int> = []
    var inCellXfs = false
    var formats: [Int] = []

    static func dateStyles(_ data: Data) -> Set<Int> {
        let delegate = Styles()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        parser.parse()
        // Built-in date and time formats: 14–22, 27–36 and 50–58 (East Asian dates), 45–47.
        let builtIn = Set(14...22).union(27...36).union(45...47).union(50...58)
        return Set(
            delegate.formats.enumerated().filter { builtIn.contains($0.element) || delegate.customDate.contains($0.element) }.map(\.offset))
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        switch elementName {
        case "numFmt":
            guard let id = attributeDict["numFmtId"].flatMap(Int.init), let code = attributeDict["formatCode"] else { return }
            // A format is a date when it has date letters outside quoted text and brackets ([Red], [$-804]).
            var stripped = ""
            var quoted = false
            var bracket = false
            for c in code {
                if c == "\"" {
                    quoted.toggle()
                } else if c == "[" {
                    bracket = true
                } else if c == "]" {
                    bracket = false
                } else if !quoted && !bracket {
                    stripped.append(c)
                }
            }
            if stripped.lowercased().contains(where: { "ymdh".contains($0) }) || stripped.contains("年") { customDate.insert(id) }
        case "cellXfs": inCellXfs = true
        case "xf" where inCellXfs: formats.append(attributeDict["numFmtId"].flatMap(Int.init) ?? 0)
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        if elementName == "cellXfs" { inCellXfs = false }
    }
}

/// A worksheet's `<sheetData>`: rows by their number (the line a message names), cells by column.
final class SheetParser: NSObject, XMLParserDelegate {
    let shared: [String]
    let dateStyles: Set<Int>
    var records: [LedgerCSV.Record] = []
    var row: [Int: String] = [:]
    var rowNumber = 0
    var cellColumn = 0
    var cellType = "n"
    var cellStyle = 0
    var value = ""
    var inValue = false
    var inInline = false
    var problem: String?

    init(shared: [String], dateStyles: Set<Int>) {
        self.shared = shared
        self.dateStyles = dateStyles
    }

    static func parse(_ data: Data, shared: [String], dateStyles: Set<Int>) throws -> [LedgerCSV.Record] {
        let delegate = SheetParser(shared: shared, dateStyles: dateStyles)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        guard parser.parse() else { throw XLSXReader.ReadError("工作表不是有效的 XML（\(parser.parserError.map { "\($0)" } ?? "")）") }
        if let problem = delegate.problem { throw XLSXReader.ReadError(problem) }
        return delegate.records
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        switch elementName {
        case "row":
            rowNumber = attributeDict["r"].flatMap(Int.init) ?? rowNumber + 1
            row = [:]
            cellColumn = -1
        case "c":
            cellColumn = attributeDict["r"].flatMap(XLSXReader.column) ?? cellColumn + 1
            cellType = attributeDict["t"] ?? "n"
            cellStyle = attributeDict["s"].flatMap(Int.init) ?? 0
            value = ""
        case "v": inValue = true
        case "is": inInline = true
        case "t" where inInline: inValue = true
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        switch elementName {
        case "v", "t": inValue = false
        case "is": inInline = false
        case "c":
            guard cellColumn >= 0, cellColumn < 1024 else { return }
            switch cellType {
            case "s":
                guard let index = Int(value), shared.indices.contains(index) else {
                    problem = "第 \(rowNumber) 行：共享字符串 \(value) 不存在"
                    return
                }
                row[cellColumn] = shared[index]
            case "inlineStr", "str": row[cellColumn] = value
            case "b": row[cellColumn] = value == "1" ? "是" : "否"
            case "e": row[cellColumn] = value
            case "d": row[cellColumn] = String(value.prefix(10))
            default: row[cellColumn] = dateStyles.contains(cellStyle) ? XLSXReader.dateText(value) : XLSXReader.numberText(value)
            }
        case "row":
            guard let last = row.keys.max() else { return }
            records.append(LedgerCSV.Record(line: rowNumber, fields: (0...last).map { row[$0] ?? "" }))
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inValue { value += string }
    }
}
