import Foundation
import ZIPFoundation

/// A report as a Word document in 公文 form (GB/T 9704): 发文机关, 标题, 主送, 正文 with numbered
/// sections and tables, 落款 and 成文日期. Built from the report's Markdown (the same data, the
/// same order), and packed in memory with ZIPFoundation. The fonts are named as Windows offices
/// have them (方正小标宋简体 for the title, 黑体 for section headings, 仿宋_GB2312 for the text);
/// a renderer without them substitutes.
public enum GongwenDocument {
    public static let titleFont = "方正小标宋简体"
    public static let bodyFont = "仿宋_GB2312"
    public static let headingFont = "黑体"
    public static let subheadingFont = "楷体_GB2312"

    /// A block of the document's body.
    public enum Block: Equatable, Sendable {
        case heading(String)
        /// `### ` and `#### `: a part of a section.
        case subheading(String)
        case paragraph(String)
        case table([[String]])
    }

    /// The parts of a 公文 taken from a report's Markdown: `# ` is the title, `## ` a section, `### `/`#### ` its parts, `- `
    /// and plain lines paragraphs, `|…|` rows a table, `生成时间：` the 成文日期.
    public struct Parts: Sendable {
        public var title: String
        public var blocks: [Block]
        public var date: String?
    }

    public static func parts(markdown: String) -> Parts {
        var title = ""
        var blocks: [Block] = []
        var date: String?
        var table: [[String]] = []
        func flush() {
            if !table.isEmpty { blocks.append(.table(table)) }
            table = []
        }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("|") {
                let cells = line.dropFirst().split(separator: "|", omittingEmptySubsequences: false).dropLast(line.hasSuffix("|") ? 1 : 0)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                // The separator row (|---|---|) is Markdown's, not the table's.
                if cells.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 == "-" || $0 == ":" } }) { continue }
                table.append(cells)
                continue
            }
            flush()
            if line.isEmpty { continue }
            if line.hasPrefix("# ") {
                title = String(line.dropFirst(2))
            } else if line.hasPrefix("## ") {
                blocks.append(.heading(String(line.dropFirst(3))))
            } else if line.hasPrefix("### ") || line.hasPrefix("#### ") {
                // A section's parts (a unit in the dispatch, an order): 公文's second level, in 楷体.
                blocks.append(.subheading(String(line.drop { $0 == "#" }.dropFirst())))
            } else if line.hasPrefix("生成时间：") {
                date = String(line.dropFirst("生成时间：".count))
            } else if line.hasPrefix("- ") {
                blocks.append(.paragraph(String(line.dropFirst(2))))
            } else {
                blocks.append(.paragraph(line))
            }
        }
        flush()
        return Parts(title: title, blocks: blocks, date: date)
    }

    /// `2026-11-30…` as 公文 writes a date: 2026年11月30日.
    public static func chineseDate(_ text: String) -> String {
        let parts = text.prefix(10).split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return text }
        return "\(parts[0])年\(parts[1])月\(parts[2])日"
    }

    /// The .docx bytes.
    public static func docx(markdown: String, agency: String, recipients: String, signer: String? = nil) throws -> Data {
        let parts = parts(markdown: markdown)
        var body = ""
        // 发文机关标志: red, centred, with the red line under it.
        body += paragraph(
            runs: [run(agency, font: titleFont, size: 36, color: "C00000")], align: "center",
            extra: "<w:pBdr><w:bottom w:val=\"single\" w:sz=\"18\" w:space=\"6\" w:color=\"C00000\"/></w:pBdr><w:spacing w:after=\"240\"/>")
        body += paragraph(
            runs: [run(parts.title, font: titleFont, size: 44)], align: "center", extra: "<w:spacing w:before=\"480\" w:after=\"480\"/>")
        body += paragraph(runs: [run(recipients + "：", font: bodyFont, size: 32)])
        for block in parts.blocks {
            switch block {
            case .heading(let text):
                body += paragraph(runs: [run(text, font: headingFont, size: 32)], indent: true)
            case .subheading(let text):
                body += paragraph(runs: [run(text, font: subheadingFont, size: 32)], indent: true)
            case .paragraph(let text):
                body += paragraph(runs: [run(text, font: bodyFont, size: 32)], indent: true)
            case .table(let rows):
                body += tableXML(rows)
                body += paragraph(runs: [])
            }
        }
        let dateText = chineseDate(parts.date ?? "")
        body += paragraph(runs: [], extra: "<w:spacing w:before=\"480\"/>")
        body += paragraph(runs: [run(signer ?? agency, font: bodyFont, size: 32)], align: "right", extra: "<w:ind w:right=\"640\"/>")
        body += paragraph(runs: [run(dateText, font: bodyFont, size: 32)], align: "right", extra: "<w:ind w:right=\"640\"/>")
        // A4 with the 公文 margins: 37 mm top, 35 mm bottom, 28 mm left, 26 mm right.
        body +=
            "<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/>"
            + "<w:pgMar w:top=\"2098\" w:right=\"1474\" w:bottom=\"1984\" w:left=\"1588\" "
            + "w:header=\"851\" w:footer=\"992\" w:gutter=\"0\"/>"
            + "</w:sectPr>"
        let document =
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
            + "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" "
            + "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><w:body>\(body)</w:body></w:document>"
        let files: [(String, String)] = [
            ("[Content_Types].xml", contentTypes),
            ("_rels/.rels", rootRels),
            ("word/_rels/document.xml.rels", documentRels),
            ("word/document.xml", document),
            ("word/styles.xml", styles),
            ("docProps/core.xml", core(title: parts.title)),
        ]
        let archive = try Archive(data: Data(), accessMode: .create)
        for (path, text) in files {
            let data = Data(text.utf8)
            try archive.addEntry(
                with: path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate,
                provider: { position, size in data.subdata(in: Int(position)..<Int(position) + size) })
        }
        guard let data = archive.data else { throw CocoaError(.fileWriteUnknown) }
        return data
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            // XML 1.0 has no place for other control characters.
            case _ where c.value < 0x20 && c != "\t": out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func run(_ text: String, font: String, size: Int, bold: Bool = false, color: String? = nil) -> String {
        "<w:r><w:rPr><w:rFonts w:ascii=\"\(font)\" w:eastAsia=\"\(font)\" w:hAnsi=\"\(font)\" w:cs=\"\(font)\"/>"
            + (bold ? "<w:b/>" : "") + (color.map { "<w:color w:val=\"\($0)\"/>" } ?? "")
            + "<w:sz w:val=\"\(size)\"/><w:szCs w:val=\"\(size)\"/></w:rPr><w:t xml:space=\"preserve\">\(escape(text))</w:t></w:r>"
    }

    static func paragraph(runs: [String], align: String? = nil, indent: Bool = false, extra: String = "") -> String {
        "<w:p><w:pPr>\(extra)" + (indent ? "<w:ind w:firstLineChars=\"200\" w:firstLine=\"640\"/>" : "")
            + (align.map { "<w:jc w:val=\"\($0)\"/>" } ?? "") + "</w:pPr>\(runs.joined())</w:p>"
    }

    static func tableXML(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        guard columns > 0 else { return "" }
        // The text block is 156 mm wide (8844 twips). Each column gets at least its header and a
        // short word (a half-width character at 五号 is about 105 twips, a CJK one twice that), and the
        // rest goes to the columns whose text is longer, in proportion.
        func width(_ text: String) -> Double { Double(text.unicodeScalars.reduce(0) { $0 + ($1.value > 0x2E80 ? 2 : 1) }) * 105 + 230 }
        let longest = (0..<columns).map { column in rows.map { column < $0.count ? width($0[column]) : 230 }.max() ?? 230 }
        let need = (0..<columns).map { column in
            max(width(rows[0].count > column ? rows[0][column] : ""), min(longest[column], 8 * 105 + 230))
        }
        let want = zip(need, longest).map { max($0, $1) }
        var widths: [Double]
        if want.reduce(0, +) <= 8844 {
            widths = want.map { $0 * 8844 / want.reduce(0, +) }
        } else if need.reduce(0, +) < 8844 {
            let spare = 8844 - need.reduce(0, +)
            let extra = zip(want, need).map { $0 - $1 }
            let total = max(extra.reduce(0, +), 1)
            widths = zip(need, extra).map { $0 + spare * $1 / total }
        } else {
            widths = need.map { $0 * 8844 / need.reduce(0, +) }
        }
        var xml =
            "<w:tbl><w:tblPr><w:tblW w:w=\"8844\" w:type=\"dxa\"/><w:jc w:val=\"center\"/><w:tblBorders>"
            + ["top", "left", "bottom", "right", "insideH", "insideV"].map {
                "<w:\($0) w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"000000\"/>"
            }
            .joined()
            + "</w:tblBorders><w:tblLayout w:type=\"fixed\"/></w:tblPr><w:tblGrid>"
            + widths.map { "<w:gridCol w:w=\"\(Int($0))\"/>" }.joined() + "</w:tblGrid>"
        for (index, row) in rows.enumerated() {
            xml += "<w:tr>" + (index == 0 ? "<w:trPr><w:tblHeader/></w:trPr>" : "")
            for column in 0..<columns {
                let text = column < row.count ? row[column] : ""
                xml +=
                    "<w:tc><w:tcPr><w:tcW w:w=\"\(Int(widths[column]))\" w:type=\"dxa\"/><w:vAlign w:val=\"center\"/></w:tcPr>"
                    + paragraph(
                        runs: [run(text, font: index == 0 ? headingFont : bodyFont, size: 21)], align: index == 0 ? "center" : "left",
                        extra: "<w:spacing w:line=\"300\" w:lineRule=\"auto\"/>")
                    + "</w:tc>"
            }
            xml += "</w:tr>"
        }
        return xml + "</w:tbl>"
    }

    static let contentTypes = """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\
        <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\
        <Default Extension="xml" ContentType="application/xml"/>\
        <Override PartName="/word/document.xml" \
        ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>\
        <Override PartName="/word/styles.xml" \
        ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>\
        <Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>\
        </Types>
        """

    static let rootRels = """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
        <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" \
        Target="word/document.xml"/>\
        <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" \
        Target="docProps/core.xml"/>\
        </Relationships>
        """

    static let documentRels = """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
        <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>\
        </Relationships>
        """

    static let styles = """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">\
        <w:docDefaults><w:rPrDefault><w:rPr>\
        <w:rFonts w:ascii="\(bodyFont)" w:eastAsia="\(bodyFont)" w:hAnsi="\(bodyFont)" w:cs="\(bodyFont)"/>\
        <w:sz w:val="32"/><w:szCs w:val="32"/><w:lang w:val="en-US" w:eastAsia="zh-CN"/></w:rPr></w:rPrDefault>\
        <w:pPrDefault><w:pPr><w:spacing w:line="560" w:lineRule="exact"/><w:jc w:val="both"/></w:pPr></w:pPrDefault></w:docDefaults>\
        <w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>\
        <w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/>\
        <w:tblPr><w:tblCellMar><w:left w:w="108" w:type="dxa"/><w:right w:w="108" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>\
        </w:styles>
        """

    static func core(title: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" \
        xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>\(escape(title))</dc:title></cp:coreProperties>
        """
    }
}
