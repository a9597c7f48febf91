/// The error codes of PROTOCOL.md section 2.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    case badFrame = "bad_frame"
    case unsupportedVersion = "unsupported_version"
    case unknownType = "unknown_type"
    case invalidArgument = "invalid_argument"
    case notFound = "not_found"
    case conflict
    case tooLarge = "too_large"
    case unauthenticated
    case permissionDenied = "permission_denied"
    case unavailable
    case `internal`
}

/// The `error` object of a failed reply.
public struct ErrorBody: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// Where the problem is, e.g. `body.readings[3].value`.
    public var field: String?

    public init(code: ErrorCode, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String {
        field.map { "\(code.rawValue): \(message) (\($0))" } ?? "\(code.rawValue): \(message)"
    }
}

/// An error a handler throws to answer with one of the protocol's codes.
public typealias ProtocolError = ErrorBody

extension ErrorBody {
    /// The answer to a frame that is not a UTF-8 JSON object at all.
    public static let notAJSONObject = ErrorBody(code: .badFrame, message: "消息不是 UTF-8 编码的 JSON 对象")

    /// Text from a request, shortened for an error message: a refusal never echoes more than
    /// a short prefix of what it refuses.
    public static func quote(_ text: String, limit: Int = 64) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "…（共\(text.utf8.count)字节）"
    }

    public static func invalidArgument(_ message: String, field: String) -> ErrorBody {
        ErrorBody(code: .invalidArgument, message: message, field: field)
    }

    public static func notFound(_ message: String, field: String? = nil) -> ErrorBody {
        ErrorBody(code: .notFound, message: message, field: field)
    }

    public static func conflict(_ message: String, field: String? = nil) -> ErrorBody {
        ErrorBody(code: .conflict, message: message, field: field)
    }

    public static func permissionDenied(_ message: String, field: String? = nil) -> ErrorBody {
        ErrorBody(code: .permissionDenied, message: message, field: field)
    }

    public static func unavailable(_ message: String) -> ErrorBody {
        ErrorBody(code: .unavailable, message: message)
    }

    public static func `internal`(_ message: String) -> ErrorBody {
        ErrorBody(code: .internal, message: message)
    }
}
