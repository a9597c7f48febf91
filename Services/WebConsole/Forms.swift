import Foundation

/// A submitted form: `application/x-www-form-urlencoded` fields, or a `multipart/form-data`
/// body's fields and files. Parsed by hand from bytes a stranger sent: sizes are bounded by the
/// caller's body limit, and anything malformed is refused with one Chinese message.
struct FormData: Sendable {
    var fields: [String: String] = [:]
    var files: [String: UploadedFile] = [:]

    subscript(_ name: String) -> String? { fields[name] }

    /// A trimmed, non-empty field or nil.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    static func parse(contentType: String?, body: [UInt8]) throws(WebError) -> FormData {
        let type = (contentType ?? "").lowercased()
        if type.hasPrefix("application/x-www-form-urlencoded") {
            guard let text = String(bytes: body, encoding: .utf8) else { throw .invalid("表单不是 UTF-8 编码") }
            return FormData(fields: urlEncoded(text))
        }
        if type.hasPrefix("multipart/form-data") {
            guard let boundary = parameter("boundary", in: contentType ?? ""), !boundary.isEmpty, boundary.utf8.count <= 200 else {
                throw .invalid("multipart 表单缺少 boundary")
            }
            return try multipart(body, boundary: boundary)
        }
        throw WebError(status: 415, "不支持的表单类型：\(contentType ?? "（无）")")
    }

    static func urlEncoded(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            let name = decode(parts[0])
            // The first value wins: a repeated field cannot override a hidden one placed earlier.
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }

    /// `boundary=…` (quoted or not) from a header value.
    static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let kv = piece.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = kv[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    static func multipart(_ body: [UInt8], boundary: String) throws(WebError) -> FormData {
        let delimiter = Array("--\(boundary)".utf8)
        var form = FormData()
        var positions: [Int] = []
        var search = 0
        while let found = find(delimiter, in: body, from: search) {
            positions.append(found)
            search = found + delimiter.count
        }
        guard positions.count >= 2 else { throw .invalid("multipart 表单格式不正确") }
        for (index, start) in positions.dropLast().enumerated() {
            var partStart = start + delimiter.count
            // After the delimiter: CRLF; the last delimiter is followed by "--".
            guard partStart + 2 <= body.count, body[partStart] == 13, body[partStart + 1] == 10 else { continue }
            partStart += 2
            // The part ends with CRLF before the next delimiter.
            let partEnd = positions[index + 1] - 2
            guard partEnd >= partStart, let headerEnd = find(Array("\r\n\r\n".utf8), in: body, from: partStart), headerEnd < partEnd + 1
            else { throw .invalid("multipart 表单的某一部分缺少头部") }
            guard let headerText = String(bytes: body[partStart..<headerEnd], encoding: .utf8) else {
                throw .invalid("multipart 头部不是 UTF-8")
            }
            var disposition = ""
            var type = "application/octet-stream"
            for line in headerText.split(separator: "\r\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let key = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
                if key == "content-disposition" { disposition = String(kv[1]) }
                if key == "content-type" { type = kv[1].trimmingCharacters(in: .whitespaces) }
            }
            guard let name = parameter("name", in: disposition) else { throw .invalid("multipart 部分缺少字段名") }
            let content = Array(body[(headerEnd + 4)..<max(headerEnd + 4, partEnd)])
            if let filename = parameter("filename", in: disposition) {
                if !filename.isEmpty || !content.isEmpty {
                    form.files[name] = UploadedFile(filename: filename, contentType: type, bytes: content)
                }
            } else if form.fields[name] == nil {
                guard let value = String(bytes: content, encoding: .utf8) else { throw .invalid("字段 \(name) 不是 UTF-8 文本") }
                form.fields[name] = value
            }
        }
        return form
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

/// A file from a form, not yet checked.
struct UploadedFile: Sendable {
    var filename: String
    var contentType: String
    var bytes: [UInt8]
}

/// Which evidence files are taken: by extension, confirmed by the file's first bytes, so a
/// renamed executable or HTML page is refused.
enum EvidenceTypes {
    static let allowed: [String: String] = [
        "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "doc": "application/msword", "xls": "application/vnd.ms-excel", "txt": "text/plain", "csv": "text/csv",
    ]

    /// The content type to store, or a Chinese reason for refusing.
    static func check(_ file: UploadedFile, maxBytes: Int) -> Result<String, WebError> {
        if file.bytes.isEmpty { return .failure(.invalid("佐证材料文件为空")) }
        if file.bytes.count > maxBytes {
            return .failure(WebError(status: 413, "佐证材料文件过大：\(file.bytes.count) 字节，上限 \(maxBytes) 字节"))
        }
        let ext = (file.filename as NSString).pathExtension.lowercased()
        guard let type = allowed[ext] else {
            return .failure(.invalid("不接受的文件类型 .\(ext)（可上传 pdf、png、jpg、docx、xlsx、doc、xls、txt、csv）"))
        }
        let head = Array(file.bytes.prefix(8))
        let matches: Bool
        switch ext {
        case "pdf": matches = head.starts(with: Array("%PDF".utf8))
        case "png": matches = head.starts(with: [0x89, 0x50, 0x4E, 0x47])
        case "jpg", "jpeg": matches = head.starts(with: [0xFF, 0xD8, 0xFF])
        case "docx", "xlsx": matches = head.starts(with: [0x50, 0x4B, 0x03, 0x04])
        case "doc", "xls": matches = head.starts(with: [0xD0, 0xCF, 0x11, 0xE0])
        default: matches = !file.bytes.contains(0) && String(bytes: file.bytes, encoding: .utf8) != nil
        }
        return matches ? .success(type) : .failure(.invalid("文件内容与扩展名 .\(ext) 不符"))
    }

    /// A file name safe to show and to send back in Content-Disposition's `filename*`.
    static func cleanName(_ name: String) -> String {
        let base = (name.replacingOccurrences(of: "\\", with: "/") as NSString).lastPathComponent
        let cleaned = base.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) && $0 != "\"" }
        let text = String(String.UnicodeScalarView(cleaned))
        return text.isEmpty ? "evidence" : String(text.prefix(120))
    }
}
