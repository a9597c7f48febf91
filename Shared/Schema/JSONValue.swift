import Foundation

/// Any JSON value: for bodies a client does not know the type of (the CLI, external events).
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        if case .number(let n) = self, n.rounded() == n { return Int(n) }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Decodes this value as `T` (re-encodes it; fine for occasional use, not for hot paths).
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try WireCoding.decoder().decode(T.self, from: WireCoding.encode(self))
    }
}

/// An empty body, `{}`.
public struct Empty: Codable, Sendable, Equatable {
    public init() {}

    /// Any object, its fields ignored; anything else (`[]`, `"x"`) is refused, as PROTOCOL.md
    /// section 1 has a body be an object. The synthesized decoder read nothing and took anything.
    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }

    private struct NoKeys: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension Empty: FastDecodable {
    /// Any object reads as the empty body (unknown fields are ignored, as with Codable).
    public static func fastDecode(_ json: FastJSON) -> Empty? {
        if case .object = json { return Empty() }
        return nil
    }
}
