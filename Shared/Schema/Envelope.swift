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

    public init(id: String = MessageID.next(), type: String, ts: String = Timestamp.now(), from: String? = nil, key: String? = nil, body: Body) {
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
        throw error ?? ErrorBody(code: .internal, message: "reply has neither body nor error")
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
public enum EnvelopeWriter {
    /// A reply: `ok: true` with `body`, or `ok: false` with `error`.
    public static func reply(type: String, re: String?, ok: Bool, payload: Data, ts: String = Timestamp.now()) -> Data {
        var out = Data()
        out.reserveCapacity(payload.count + 160)
        out.append(literal: #"{"v":1,"id":"#)
        appendJSONString(MessageID.next(), to: &out)
        out.append(literal: #","type":"#)
        appendJSONString(type, to: &out)
        out.append(literal: #","re":"#)
        if let re { appendJSONString(re, to: &out) } else { out.append(literal: "null") }
        out.append(literal: #","ts":"#)
        appendJSONString(ts, to: &out)
        out.append(literal: ok ? #","ok":true,"body":"# : #","ok":false,"error":"#)
        out.append(payload)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A request, with the body already encoded: what `RequestEnvelope` encodes to, without
    /// JSONEncoder's cost on every call.
    public static func request(id: String, type: String, ts: String = Timestamp.now(), from: String?, key: String?, body: Data) -> Data {
        var out = Data()
        out.reserveCapacity(body.count + 160)
        out.append(literal: #"{"v":1,"id":"#)
        appendJSONString(id, to: &out)
        out.append(literal: #","type":"#)
        appendJSONString(type, to: &out)
        out.append(literal: #","ts":"#)
        appendJSONString(ts, to: &out)
        if let from {
            out.append(literal: #","from":"#)
            appendJSONString(from, to: &out)
        }
        if let key {
            out.append(literal: #","key":"#)
            appendJSONString(key, to: &out)
        }
        out.append(literal: #","body":"#)
        out.append(body)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// An error reply.
    public static func errorReply(type: String, re: String?, error: ErrorBody) -> Data {
        reply(type: type, re: re, ok: false, payload: (try? WireCoding.encode(error)) ?? Data(#"{"code":"internal","message":"encoding failed"}"#.utf8))
    }

    /// An event envelope.
    public static func event(id: String, type: String, ts: String, from: String, stream: String, seq: Int, body: Data) -> Data {
        var out = Data()
        out.reserveCapacity(body.count + 200)
        out.append(literal: #"{"v":1,"id":"#)
        appendJSONString(id, to: &out)
        out.append(literal: #","type":"#)
        appendJSONString(type, to: &out)
        out.append(literal: #","ts":"#)
        appendJSONString(ts, to: &out)
        out.append(literal: #","from":"#)
        appendJSONString(from, to: &out)
        out.append(literal: #","stream":"#)
        appendJSONString(stream, to: &out)
        out.append(literal: #","seq":"#)
        out.append(contentsOf: String(seq).utf8)
        out.append(literal: #","body":"#)
        out.append(body)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Appends `string` as a JSON string literal (quotes, backslashes and control characters escaped).
    /// Runs that need no escaping (nearly everything) are appended whole: byte-by-byte appends to
    /// `Data` were a tenth of a `sys.ping`'s time.
    public static func appendJSONString(_ string: String, to out: inout Data) {
        var string = string
        string.withUTF8 { bytes in
            out.append(UInt8(ascii: "\""))
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if index > runStart { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
                case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            if bytes.count > runStart { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
            out.append(UInt8(ascii: "\""))
        }
    }
}

extension Data {
    /// Appends a literal's UTF-8 bytes in one copy (appending a `String.UTF8View` goes byte by byte).
    @inlinable
    public mutating func append(literal: StaticString) {
        literal.withUTF8Buffer { append($0) }
    }
}
