import Foundation

/// The protocol's major version (`v`).
public let protocolVersion = 1

/// A request as a client sends it (PROTOCOL.md section 2).
public struct RequestEnvelope<Body: Encodable & Sendable>: Encodable, Sendable {
    public var v = protocolVersion
    public var id: String
    public var type: String
    public var ts: String
    public var from: String?
    public var key: String?
    public var body: Body

    public init(
        id: String = MessageID.next(), type: String, ts: String = Timestamp.now(), from: String? = nil, key: String? = nil, body: Body
    ) {
        self.id = id
        self.type = type
        self.ts = ts
        self.from = from
        self.key = key
        self.body = body
    }
}

/// A reply as a client reads it.
public struct ReplyEnvelope<Body: Decodable & Sendable>: Decodable, Sendable {
    public var v: Int
    public var id: String
    public var type: String
    public var re: String?
    public var ts: String
    public var ok: Bool
    public var body: Body?
    public var error: ErrorBody?

    /// The body of a successful reply, or the reply's error thrown.
    public func result() throws -> Body {
        if ok, let body { return body }
        throw error ?? ErrorBody(code: .internal, message: "答复中既无 body 也无 error")
    }
}

/// An event as subscribers and `events.since` see it (PROTOCOL.md section 4).
public struct EventEnvelope<Body: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var id: String
    public var type: String
    public var ts: String
    public var from: String?
    public var stream: String
    public var seq: Int
    public var body: Body
}

/// An event whose body type is not known in advance.
public typealias AnyEvent = EventEnvelope<JSONValue>

extension EventEnvelope where Body == JSONValue {
    /// Decodes the body as `T`.
    public func body<T: Decodable>(as type: T.Type) throws -> T { try body.decode(as: T.self) }
}

/// Writes envelopes as bytes by splicing an already-encoded body into a hand-written header,
/// so that stored bodies (idempotent replies, the event log) are never decoded and encoded again.
/// The bytes are gathered in an array and become `Data` in one copy: small appends to `Data`
/// each went through its general `replaceSubrange`, a visible cost on every request.
public enum EnvelopeWriter {
    /// A reply: `ok: true` with `body`, or `ok: false` with `error`.
    public static func reply(type: String, re: String?, ok: Bool, payload: Data, ts: String = Timestamp.now()) -> Data {
        var out = JSONBytes(capacity: payload.count + 160)
        out.envelopeStart(id: MessageID.next(), type: type)
        out.literal(#","re":"#)
        if let re { out.string(re) } else { out.literal("null") }
        out.literal(#","ts":"#)
        out.string(ts)
        out.literal(ok ? #","ok":true,"body":"# : #","ok":false,"error":"#)
        out.raw(payload)
        out.literal("}")
        return out.data
    }

    /// A request, with the body already encoded: what `RequestEnvelope` encodes to, without
    /// JSONEncoder's cost on every call.
    public static func request(id: String, type: String, ts: String = Timestamp.now(), from: String?, key: String?, body: Data) -> Data {
        var out = JSONBytes(capacity: body.count + 160)
        out.envelopeStart(id: id, type: type)
        out.literal(#","ts":"#)
        out.string(ts)
        if let from {
            out.literal(#","from":"#)
            out.string(from)
        }
        if let key {
            out.literal(#","key":"#)
            out.string(key)
        }
        out.literal(#","body":"#)
        out.raw(body)
        out.literal("}")
        return out.data
    }

    /// An error reply.
    /// A refusal never echoes more than a short prefix of what it refuses: a type or id over 256
    /// characters (no real one is) comes back cut to that.
    public static func errorReply(type: String, re: String?, error: ErrorBody) -> Data {
        reply(
            type: type.count > 256 ? String(type.prefix(256)) : type, re: re.map { $0.count > 256 ? String($0.prefix(256)) : $0 },
            ok: false,
            payload: (try? WireCoding.encode(error)) ?? Data(#"{"code":"internal","message":"答复编码失败"}"#.utf8))
    }

    /// An event envelope.
    public static func event(id: String, type: String, ts: String, from: String, stream: String, seq: Int, body: Data) -> Data {
        var out = JSONBytes(capacity: body.count + 200)
        out.envelopeStart(id: id, type: type)
        out.literal(#","ts":"#)
        out.string(ts)
        out.literal(#","from":"#)
        out.string(from)
        out.literal(#","stream":"#)
        out.string(stream)
        out.literal(#","seq":"#)
        out.bytes.append(contentsOf: String(seq).utf8)
        out.literal(#","body":"#)
        out.raw(body)
        out.literal("}")
        return out.data
    }
}

/// JSON text gathered as bytes.
public struct JSONBytes: Sendable {
    public var bytes: [UInt8] = []

    public init(capacity: Int) { bytes.reserveCapacity(capacity) }

    public var data: Data { Data(bytes) }

    /// `{"v":1,"id":…,"type":…`: how every envelope begins.
    mutating func envelopeStart(id: String, type: String) {
        literal(#"{"v":1,"id":"#)
        string(id)
        literal(#","type":"#)
        string(type)
    }

    public mutating func literal(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ data: Data) {
        data.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    /// `string` as a JSON string literal: quotes, backslashes and control characters escaped; runs
    /// that need no escaping (nearly everything) appended whole.
    public mutating func string(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if index > runStart { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
                case 0x0A: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            if utf8.count > runStart { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count])) }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
