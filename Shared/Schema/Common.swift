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
}

/// A list reply: `{"items": […]}`.
public struct ListReply<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
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
