import Foundation
import Schema

/// A CURVE certificate in ZeroMQ's format, the one czmq's `zcert` and pyzmq's `zmq.auth` write
/// (ZPL, RFC 4): a `metadata` section of `name = value` lines and a `curve` section with
/// `public-key` and, in a secret certificate, `secret-key` (Z85). czmq quotes values, pyzmq does
/// not; both are read.
public struct Certificate: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String?
    public var metadata: [String: String]

    public init(publicKey: String, secretKey: String? = nil, metadata: [String: String] = [:]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.metadata = metadata
    }

    /// Reads a certificate file; the error names the file and line.
    public static func load(path: String) throws -> Certificate {
        guard let data = FileManager.default.contents(atPath: path) else { throw CertificateError.unreadable(path) }
        guard let text = String(data: data, encoding: .utf8) else { throw CertificateError.invalid(path, line: 0, "不是 UTF-8 文本") }
        return try parse(text, path: path)
    }

    /// Parses ZPL text: a section name at the start of a line, its `name = value` lines indented below it.
    public static func parse(_ text: String, path: String = "证书") throws -> Certificate {
        var section = ""
        var metadata: [String: String] = [:]
        var publicKey: String?
        var secretKey: String?
        // Lines split at each LF scalar: "\r\n" is one Character, which splitting by Character would
        // not cut (a certificate saved on Windows was one long line).
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map {
            String(String.UnicodeScalarView($0))
        }
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : rawLine
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let indented = line.first == " " || line.first == "\t"
            if !indented {
                section = trimmed
                continue
            }
            // By Unicode scalars, not Characters: a combining mark after `=` or after the opening
            // quote joins it into one Character (`"\u{059A}`), which then is not a quote (found by
            // fuzz-certificate: a value written back came back with its quotes).
            let scalars = trimmed.unicodeScalars
            guard let equals = scalars.firstIndex(of: "=") else {
                throw CertificateError.invalid(path, line: index + 1, "应为 名称 = 值")
            }
            let name = String(scalars[..<equals]).trimmingCharacters(in: .whitespaces)
            var value = String(scalars[scalars.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            let valueScalars = value.unicodeScalars
            if valueScalars.count >= 2, let first = valueScalars.first, first == "\"" || first == "'", valueScalars.last == first {
                value = String(String.UnicodeScalarView(valueScalars.dropFirst().dropLast()))
            }
            switch (section, name) {
            case ("curve", "public-key"): publicKey = value
            case ("curve", "secret-key"): secretKey = value
            case ("metadata", _): metadata[name] = value
            default: continue
            }
        }
        guard let publicKey else { throw CertificateError.invalid(path, line: 0, "缺少 curve 段的 public-key") }
        guard publicKey.utf8.count == 40 else { throw CertificateError.invalid(path, line: 0, "public-key 应为 40 个字符的 Z85 编码") }
        if let secretKey, secretKey.utf8.count != 40 {
            throw CertificateError.invalid(path, line: 0, "secret-key 应为 40 个字符的 Z85 编码")
        }
        return Certificate(publicKey: publicKey, secretKey: secretKey, metadata: metadata)
    }

    /// The public certificate as czmq's `zcert_save_public` writes it: metadata included.
    public var publicText: String { text(includingSecret: false) }
    /// The secret certificate (public and secret key, metadata).
    public var secretText: String { text(includingSecret: true) }

    private func text(includingSecret: Bool) -> String {
        var lines = ["#   ****  Generated on \(Timestamp.now()) by duban  ****"]
        if includingSecret {
            lines.append("#   ZeroMQ CURVE **Secret** Certificate")
            lines.append("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.")
        } else {
            lines.append("#   ZeroMQ CURVE Public Certificate")
            lines.append("#   Exchange securely, or use a secure mechanism to verify the contents")
            lines.append("#   of this file after exchange.")
        }
        lines.append("")
        lines.append("metadata")
        for name in metadata.keys.sorted() {
            lines.append("    \(name) = \"\(metadata[name]!)\"")
        }
        lines.append("curve")
        lines.append("    public-key = \"\(publicKey)\"")
        if includingSecret, let secretKey { lines.append("    secret-key = \"\(secretKey)\"") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The principal this certificate names, called `name` (its file stem). Throws when the
    /// metadata does not say who it is.
    public func principal(name: String) throws -> Principal {
        guard let roleName = metadata["role"], !roleName.isEmpty else {
            throw CertificateError.metadata(name, "缺少 role（应为 \(Role.allCases.map(\.rawValue).joined(separator: "、")) 之一）")
        }
        guard let role = Role(rawValue: roleName) else {
            throw CertificateError.metadata(
                name, "role 为 \(ErrorBody.quote(roleName))，应为 \(Role.allCases.map(\.rawValue).joined(separator: "、")) 之一")
        }
        let unit = metadata["unit"].flatMap { $0.isEmpty ? nil : $0 }
        let stations = (metadata["stations"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let service = metadata["service"].flatMap { $0.isEmpty ? nil : $0 }
        switch role {
        case .unit where unit == nil: throw CertificateError.metadata(name, "role 为 unit 时须写明 unit（单位名称，与方案一致）")
        case .station where stations.isEmpty: throw CertificateError.metadata(name, "role 为 station 时须写明 stations（站点编号，逗号分隔）")
        case .service where service == nil: throw CertificateError.metadata(name, "role 为 service 时须写明 service")
        default: break
        }
        return Principal(
            name: name, role: role, unit: role == .unit ? unit : nil, stations: role == .station ? stations : [],
            service: role == .service ? service : nil, instance: metadata["instance"], publicKey: publicKey)
    }

    /// Whether `name` may name a certificate file: ASCII letters, digits, `-`, `_` and `.`, not starting with `.`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
            }
    }
}

/// A certificate that cannot be used, in Chinese, naming the file.
public enum CertificateError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case invalid(String, line: Int, String)
    case metadata(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path): return "无法读取证书文件 \(path)"
        case .invalid(let path, let line, let why): return line > 0 ? "证书文件 \(path) 第 \(line) 行：\(why)" : "证书文件 \(path)：\(why)"
        case .metadata(let name, let why): return "证书 \(name) 的 metadata 有误：\(why)"
        }
    }
}
