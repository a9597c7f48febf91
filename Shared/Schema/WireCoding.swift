import Foundation

/// JSON coding as the wire uses it: one place, so services and clients cannot drift apart.
public enum WireCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    /// Whether `data` would make JSONDecoder trap. FoundationEssentials kills the process (SIGILL)
    /// when the 513th level of nesting opens with a `[`: its "too many nested arrays" error takes a
    /// location two bytes on from the bracket (`JSONScanner.scanArray`, `sourceLocation(atOffset: 1)`
    /// after reading it; objects take -1), which traps when that is past the end, or at the end
    /// behind a `\r` (the line count looks for `\n` after it). So: a document ending in `[` or `[\r`,
    /// after JSONDecoder's transcoding from UTF-16 or UTF-32, whose code units end in zero bytes.
    /// A 527-byte frame killed every service (found by `fuzz-envelope`).
    ///
    /// No JSON document ends with `[` and white space, so refusing that never refuses a valid one.
    static func trapsJSONDecoder(_ data: Data) -> Bool {
        guard let last = data.lastIndex(where: { !(($0 == 0) || $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) else {
            return false
        }
        return data[last] == UInt8(ascii: "[")
    }

    public static func encode<T: Encodable>(_ value: T) throws -> Data { try encoder().encode(value) }

    /// Encodes with sorted keys: the same value always gives the same bytes (idempotency hashes).
    public static func canonical<T: Encodable>(_ value: T) throws -> Data {
        let encoder = encoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// The protocol's dotted path for a coding path: `body.readings[3].value`.
    public static func fieldPath(_ path: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
        var out = ""
        for component in path + (key.map { [$0] } ?? []) {
            if let index = component.intValue, component.stringValue.hasPrefix("Index") || component.stringValue == String(index) {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? component.stringValue : ".\(component.stringValue)"
            }
        }
        return out
    }

    /// Maps a decoding failure to `invalid_argument` with the offending field.
    public static func describe(_ error: DecodingError) -> ErrorBody {
        switch error {
        case .keyNotFound(let key, let context):
            let field = fieldPath(context.codingPath, appending: key)
            return .invalidArgument("缺少字段 \(field)", field: field)
        case .typeMismatch(let type, let context):
            let field = fieldPath(context.codingPath)
            return .invalidArgument("\(named(field))应为\(typeName(type))", field: field)
        case .valueNotFound(let type, let context):
            let field = fieldPath(context.codingPath)
            return .invalidArgument("\(named(field))应为\(typeName(type))，不能为 null", field: field)
        case .dataCorrupted(let context):
            let field = fieldPath(context.codingPath)
            return .invalidArgument("\(named(field))的值无效", field: field)
        @unknown default:
            return .invalidArgument("请求体无效", field: "body")
        }
    }

    /// "字段 x " for a field, or the item itself when the path is empty (an item of a batch, whose
    /// caller adds where it is).
    private static func named(_ field: String) -> String { field.isEmpty ? "该项" : "字段 \(field) " }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "字符串"
        case is Int.Type, is Int64.Type: return "整数"
        case is Double.Type: return "数值"
        case is Bool.Type: return "布尔值"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "数组" }
            if name.hasPrefix("Dictionary") { return "对象" }
            return "对象"
        }
    }
}

/// Decodes request bodies by type name: one parse of the frame, whatever the type.
public struct RequestTypeTable: Sendable {
    public private(set) var bodyTypes: [String: any (Decodable & Sendable).Type] = [:]
    /// Types read through `FastJSON` first.
    private var fastTypes: [String: @Sendable (FastJSON) -> (any Sendable)?] = [:]

    public init() {}

    public mutating func register(_ type: String, body: any (Decodable & Sendable).Type) {
        bodyTypes[type] = body
        if let fast = body as? any FastDecodable.Type {
            fastTypes[type] = { fast.fastDecode($0) }
        }
    }

    /// Decodes a request frame, or throws a `RequestDecodingFailure` that says how to answer it.
    public func decode(_ frame: Data) throws(RequestDecodingFailure) -> DecodedRequest {
        if !fastTypes.isEmpty, let decoded = decodeFast(frame) { return decoded }
        return try decodeWithFoundation(frame)
    }

    /// The JSONDecoder path alone: what answers every frame the fast path leaves, and what the fast
    /// path must agree with wherever it answers (the envelope fuzzer asserts it).
    public func decodeWithFoundation(_ frame: Data) throws(RequestDecodingFailure) -> DecodedRequest {
        // JSONDecoder reads only the strings it decodes: invalid UTF-8 in a field the body type
        // ignores would pass (a sys.ping answered `ok`). PROTOCOL.md: a frame is UTF-8 or `bad_frame`.
        // (FastJSON validates every string it meets.)
        // Nor may a frame be UTF-16 or UTF-32, which JSONDecoder would read: their zero bytes are
        // valid UTF-8, and no UTF-8 JSON text has a zero byte (a control character in a string is
        // escaped).
        let hasZeroByte = frame.withUnsafeBytes { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
        guard String(validating: frame, as: UTF8.self) != nil, !hasZeroByte else {
            throw RequestDecodingFailure(re: nil, type: nil, error: .notAJSONObject)
        }
        let decoder = JSONDecoder()
        decoder.userInfo[RequestTypeTable.userInfoKey] = self
        do {
            return try decoder.decode(DecodedRequest.self, fromUntrusted: frame)
        } catch let failure as RequestDecodingFailure {
            throw failure
        } catch {
            throw Self.undecodable(frame)
        }
    }

    /// The answer to a frame JSONDecoder could not read as a request: when it is a JSON object
    /// after all (a number that does not fit its field, say), `invalid_argument` with its id, so a
    /// client can tell which request failed; otherwise `bad_frame`.
    public static func undecodable(_ frame: Data) -> RequestDecodingFailure {
        guard let object = try? JSONSerialization.jsonObject(with: frame) as? [String: Any] else {
            return RequestDecodingFailure(re: nil, type: nil, error: .notAJSONObject)
        }
        let id = object["id"] as? String
        let type = object["type"] as? String
        return RequestDecodingFailure(
            re: id.map { $0.count > 256 ? String($0.prefix(256)) : $0 }, type: type,
            error: .invalidArgument("请求中有无法读取的值（数字不是整数或超出范围等）", field: "body"))
    }

    static let userInfoKey = CodingUserInfoKey(rawValue: "duban.requestTypes")!

    /// The fast path for a well-formed request of a `FastDecodable` type; nil for anything else,
    /// which then takes the JSONDecoder path and gets its precise answer there.
    public func decodeFast(_ frame: Data) -> DecodedRequest? {
        // Parse only frames whose type is a fast one (other requests are not parsed twice): the
        // envelope's `type` read on its own, which stops at it, ahead of the body.
        guard let named = FastJSON.topLevelString("type", in: frame), fastTypes[named] != nil else { return nil }
        guard let json = FastJSON.parse(frame), case .object = json,
            json["v"]?.integer == Int64(protocolVersion), let type = json["type"]?.string, let entry = fastTypes[type],
            let id = json["id"]?.string, !id.isEmpty
        else { return nil }
        var key: String?
        if let value = json["key"], !value.isNull {
            guard let text = value.string, !text.isEmpty else { return nil }
            key = text
        }
        guard let bodyJSON = json["body"], !bodyJSON.isNull, let body = entry(bodyJSON) else { return nil }
        // As `try? decodeIfPresent(String.self, …)` reads them: a non-string ts or from is absent.
        var request = DecodedRequest(id: id, type: type, ts: json["ts"]?.string, from: json["from"]?.string, key: key, body: body)
        if let cursor = bodyJSON["cursor"] {
            // Anything but a string is for the slow path to refuse by name.
            guard let text = cursor.string else { return nil }
            request.cursor = text
        }
        return request
    }
}

/// Why a frame could not be decoded, with what is needed to reply to it.
public struct RequestDecodingFailure: Error, Sendable {
    /// The request id, when one could be read.
    public var re: String?
    public var type: String?
    public var error: ErrorBody
}

/// A request decoded from the wire, with its body already of the registered type.
public struct DecodedRequest: Decodable, Sendable {
    public var id: String
    public var type: String
    public var ts: String?
    public var from: String?
    public var key: String?
    public var body: any Sendable
    /// The body's `cursor`, for a list read on from where its last page stopped.
    public var cursor: String?
    /// Who asks, once the server has authenticated and authorized it (never read from the wire).
    public var caller: Caller?
    /// A write's first bytes as received, for the audit trail (never read from the wire).
    public var auditSummary: String?

    enum Keys: String, CodingKey { case v, id, type, ts, from, key, body }
    enum BodyKeys: String, CodingKey { case cursor }

    public init(id: String, type: String, ts: String? = nil, from: String? = nil, key: String? = nil, body: any Sendable) {
        self.id = id
        self.type = type
        self.ts = ts
        self.from = from
        self.key = key
        self.body = body
    }

    public init(from decoder: any Decoder) throws {
        guard let table = decoder.userInfo[RequestTypeTable.userInfoKey] as? RequestTypeTable else {
            throw RequestDecodingFailure(re: nil, type: nil, error: .internal("解码器缺少请求类型表"))
        }
        let container: KeyedDecodingContainer<Keys>
        do {
            container = try decoder.container(keyedBy: Keys.self)
        } catch {
            throw RequestDecodingFailure(re: nil, type: nil, error: ErrorBody(code: .badFrame, message: "消息不是 JSON 对象"))
        }
        let id = try? container.decodeIfPresent(String.self, forKey: .id)
        let type = try? container.decodeIfPresent(String.self, forKey: .type)
        func fail(_ code: ErrorCode, _ message: String, _ field: String) -> RequestDecodingFailure {
            RequestDecodingFailure(re: id ?? nil, type: type ?? nil, error: ErrorBody(code: code, message: message, field: field))
        }
        guard let id = id ?? nil, !id.isEmpty else { throw fail(.badFrame, "缺少 id，或 id 不是字符串", "id") }
        guard container.contains(.v) else { throw fail(.badFrame, "缺少协议版本 v", "v") }
        guard let version = try? container.decode(Int.self, forKey: .v) else { throw fail(.badFrame, "协议版本 v 应为整数", "v") }
        guard let type = type ?? nil, !type.isEmpty else { throw fail(.badFrame, "缺少 type，或 type 不是字符串", "type") }
        guard version == protocolVersion else {
            throw fail(.unsupportedVersion, "不支持协议版本 \(version)，本服务使用版本 1", "v")
        }
        guard let bodyType = table.bodyTypes[type] else { throw fail(.unknownType, "没有请求类型 \(ErrorBody.quote(type))", "type") }
        self.id = id
        self.type = type
        self.ts = try? container.decodeIfPresent(String.self, forKey: .ts)
        self.from = try? container.decodeIfPresent(String.self, forKey: .from)
        if container.contains(.key), (try? container.decodeNil(forKey: .key)) == false {
            guard let key = try? container.decode(String.self, forKey: .key), !key.isEmpty else {
                throw fail(.invalidArgument, "幂等键 key 应为非空字符串", "key")
            }
            self.key = key
        } else {
            self.key = nil
        }
        do {
            if container.contains(.body), try !container.decodeNil(forKey: .body) {
                self.body = try container.decode(bodyType, forKey: .body)
                if let nested = try? container.nestedContainer(keyedBy: BodyKeys.self, forKey: .body), nested.contains(.cursor) {
                    guard let cursor = try? nested.decode(String.self, forKey: .cursor) else {
                        throw RequestDecodingFailure(
                            re: id, type: type, error: .invalidArgument("cursor 应为上一页答复中的 next（字符串）", field: "body.cursor"))
                    }
                    self.cursor = cursor
                }
            } else {
                // A missing body is an empty object: types whose fields are all optional accept it.
                let empty = JSONDecoder()
                self.body = try Self.decodeEmpty(bodyType, with: empty)
            }
        } catch let error as DecodingError {
            var described = WireCoding.describe(error)
            if !(described.field ?? "").hasPrefix("body") {
                described.field = described.field.map { $0.isEmpty ? "body" : "body.\($0)" } ?? "body"
                described.message = "缺少字段 \(described.field!)"
                if case .typeMismatch = error { described.message = "body 应为 JSON 对象" }
            }
            throw RequestDecodingFailure(re: id, type: type, error: described)
        } catch let error as ErrorBody {
            throw RequestDecodingFailure(re: id, type: type, error: error)
        }
    }

    private static func decodeEmpty<T: Decodable>(_ type: T.Type, with decoder: JSONDecoder) throws -> T {
        try decoder.decode(T.self, from: Data("{}".utf8))
    }
}

extension JSONDecoder {
    /// `decode(_:from:)` for bytes from outside the process (a peer, a webhook's answer, a file a
    /// person gives): the same, except that bytes on which JSONDecoder would kill the process
    /// (`WireCoding.trapsJSONDecoder`) are refused as the invalid JSON they are.
    public func decode<T: Decodable>(_ type: T.Type, fromUntrusted data: Data) throws -> T {
        guard !WireCoding.trapsJSONDecoder(data) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: [], debugDescription: "The given data was not valid JSON (it ends with '[')."))
        }
        return try decode(type, from: data)
    }
}
