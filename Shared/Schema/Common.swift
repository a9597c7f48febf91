import Foundation

/// A reference to a piece of evidence: a photo, a document, an acceptance report.
public struct EvidenceRef: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var uri: String
    /// Hex SHA-256 of the file, when known.
    public var sha256: String?

    public init(name: String, uri: String, sha256: String? = nil) {
        self.name = name
        self.uri = uri
        self.sha256 = sha256
    }

    /// Checks a list of evidence as a request carries it at `field` (`body.evidence`): every item
    /// named and located, a hash when given 64 hex digits.
    public static func validate(_ evidence: [EvidenceRef], field: String) throws(ErrorBody) {
        for (index, item) in evidence.enumerated() {
            if item.name.isEmpty { throw ErrorBody.invalidArgument("佐证材料须有名称（name）", field: "\(field)[\(index)].name") }
            if item.uri.isEmpty { throw ErrorBody.invalidArgument("佐证材料须有地址（uri）", field: "\(field)[\(index)].uri") }
            if let sha = item.sha256, sha.count != 64 || !sha.allSatisfy(\.isHexDigit) {
                throw ErrorBody.invalidArgument("sha256 应为 64 位十六进制数字", field: "\(field)[\(index)].sha256")
            }
        }
    }
}

/// A list reply: `{"items": […]}`.
public struct ListReply<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    /// Present when the list was cut short (PROTOCOL.md section 6): send it back as `cursor` for the rest.
    public var next: String?
    public init(items: [Item], next: String? = nil) {
        self.items = items
        self.next = next
    }
}

/// A reply that is sent a page at a time when it is long.
public protocol PagedReply: Encodable {
    /// The page starting at `cursor` (nil: the first), at most `maxItems` items and about
    /// `maxBytes` bytes of them (one item always goes), encoded, with `next` when more remain.
    func encodePage(cursor: String?, maxItems: Int, maxBytes: Int) throws -> Data
}

/// An item a list can be read on after by key: the next page starts after the last item the
/// reader got, wherever it now stands, so items that left the list meanwhile shift nothing.
public protocol ListKeyed {
    var listKey: String { get }
}

extension Case: ListKeyed { public var listKey: String { id } }
extension Notice: ListKeyed { public var listKey: String { id } }

extension ListReply: PagedReply {
    public func encodePage(cursor: String?, maxItems: Int, maxBytes: Int) throws -> Data {
        var start = 0
        if let cursor {
            // "offset:N" or "offset:N;after:KEY": after the keyed item where it still is, else at N.
            guard let decoded = Data(base64Encoded: cursor).flatMap({ String(data: $0, encoding: .utf8) }), decoded.hasPrefix("offset:")
            else {
                throw ErrorBody.invalidArgument("cursor 无效：请原样使用上一页答复中的 next", field: "body.cursor")
            }
            let parts = decoded.dropFirst(7).split(separator: ";", maxSplits: 1)
            guard let offset = parts.first.flatMap({ Int($0) }), offset >= 0 else {
                throw ErrorBody.invalidArgument("cursor 无效：请原样使用上一页答复中的 next", field: "body.cursor")
            }
            start = min(offset, items.count)
            if parts.count == 2, parts[1].hasPrefix("after:") {
                let key = String(parts[1].dropFirst(6))
                if let found = items.firstIndex(where: { ($0 as? any ListKeyed)?.listKey == key }) { start = found + 1 }
            }
        }
        if start == 0, items.count <= maxItems {
            let whole = try WireCoding.encode(ListReply(items: items))
            if whole.count <= maxBytes { return whole }
        }
        let encoder = WireCoding.encoder()
        var out = Data(#"{"items":["#.utf8)
        var index = start
        while index < items.count, index - start < maxItems {
            let item = try encoder.encode(items[index])
            if index > start && out.count + item.count > maxBytes { break }
            if index > start { out.append(UInt8(ascii: ",")) }
            out.append(item)
            index += 1
        }
        out.append(UInt8(ascii: "]"))
        if index < items.count {
            let after = (items[index - 1] as? any ListKeyed).map { ";after:\($0.listKey)" } ?? ""
            let next = Data("offset:\(index)\(after)".utf8).base64EncodedString()
            out.append(contentsOf: #","next":"\#(next)""#.utf8)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// An item of a batch that was refused, and why (`reading.submit`, `case.import`).
public struct RejectedItem: Codable, Sendable, Equatable, Error {
    public var index: Int
    public var code: ErrorCode
    public var message: String
    public var field: String?

    public init(index: Int, code: ErrorCode, message: String, field: String? = nil) {
        self.index = index
        self.code = code
        self.message = message
        self.field = field
    }
}

/// The request types that change state: clients give them an idempotency key (PROTOCOL.md section 5).
public enum MutatingTypes {
    public static let all: Set<String> = Set(RequestCatalog.all.filter { $0.kind == .write }.map(\.name))
}
