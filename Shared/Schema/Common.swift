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

extension EvidenceRef: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        name = try members.required(CodingKeys.name)
        uri = try members.required(CodingKeys.uri)
        sha256 = try members.optional(CodingKeys.sha256)
    }
}

/// A list reply: `{"items": […]}`.
public struct ListReply<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    /// Present when the list was cut short (PROTOCOL.md section 6): send it back as `cursor` for the rest.
    public var next: String?
    /// Set by a handler that read the page at the request's cursor itself (keyset paging in its
    /// store): `items` start there, and hold one more than a page when more remain. Not on the wire.
    public var startsAtCursor = false

    enum CodingKeys: String, CodingKey { case items, next }

    public init(items: [Item], next: String? = nil) {
        self.items = items
        self.next = next
    }

    /// A page its handler read from the cursor on (see `startsAtCursor`).
    public static func page(startingAtCursor items: [Item]) -> ListReply {
        var reply = ListReply(items: items)
        reply.startsAtCursor = true
        return reply
    }
}

/// The list cursor (PROTOCOL.md section 6), opaque to clients: base64 of `offset:N` or
/// `offset:N;after:KEY`.
public struct ListCursor: Sendable, Equatable {
    public var offset: Int
    /// The key of the last item the reader got, when the list's items have keys.
    public var after: String?

    /// A request's cursor read, or `invalid_argument` for anything this service did not write.
    public init(_ text: String) throws {
        guard let decoded = Data(base64Encoded: text).flatMap({ String(data: $0, encoding: .utf8) }), decoded.hasPrefix("offset:") else {
            throw ErrorBody.invalidArgument("cursor 无效：请原样使用上一页答复中的 next", field: "body.cursor")
        }
        let parts = decoded.dropFirst(7).split(separator: ";", maxSplits: 1)
        guard let offset = parts.first.flatMap({ Int($0) }), offset >= 0 else {
            throw ErrorBody.invalidArgument("cursor 无效：请原样使用上一页答复中的 next", field: "body.cursor")
        }
        self.offset = offset
        after = parts.count == 2 && parts[1].hasPrefix("after:") ? String(parts[1].dropFirst(6)) : nil
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
        // The offset a next page's cursor counts from: the reader's position in the whole list.
        var base = 0
        if let cursor {
            // "offset:N" or "offset:N;after:KEY": after the keyed item where it still is, else at N.
            let position = try ListCursor(cursor)
            if startsAtCursor {
                base = position.offset
            } else {
                start = min(position.offset, items.count)
                if let key = position.after, let found = items.firstIndex(where: { ($0 as? any ListKeyed)?.listKey == key }) {
                    start = found + 1
                }
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
            let next = Data("offset:\(base + index)\(after)".utf8).base64EncodedString()
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
