import Foundation

/// A small, strict JSON reader for the hot request types (`reading.submit` carries up to 10,000
/// readings a message). Foundation's JSONDecoder spends several microseconds per small object
/// here; this reads the same bytes into a plain tree several times faster.
///
/// It is only a fast path: whatever it does not accept (malformed JSON, a field of an unexpected
/// type, anything unusual) makes the caller fall back to JSONDecoder, which produces the precise
/// error with its field path. So it must never accept what JSONDecoder would refuse, and must read
/// what it accepts exactly as JSONDecoder would.
public enum FastJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integral number token (`12`, `-3`), as JSONDecoder reads an `Int`.
    case integer(Int64)
    /// Any other number token (`1.5`, `1e3`, `1.0`).
    case number(Double)
    case string(String)
    case array([FastJSON])
    /// Members in document order.
    case object([(String, FastJSON)])

    public static func == (lhs: FastJSON, rhs: FastJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Parses a whole document; nil if it is not exactly one valid JSON value (whitespace around it allowed).
    public static func parse(_ data: Data) -> FastJSON? {
        data.withUnsafeBytes { bytes -> FastJSON? in
            var reader = Reader(bytes: bytes)
            guard let value = reader.value(depth: 0) else { return nil }
            reader.skipWhitespace()
            return reader.position == bytes.count ? value : nil
        }
    }

    /// The string these bytes spell, or nil when they are not valid UTF-8. ASCII (`ascii`, known
    /// from the scan) needs no check. Anything else is validated once by the standard library's
    /// `_tryFromUTF8`, public because the inlinable `String(validatingCString:)` calls it:
    /// `String(validating:)` looks up its encoding's generic metadata on every call (a fifth of a
    /// request's parse, by profile), and decoding then comparing with the bytes read them twice.
    static func utf8String(_ bytes: UnsafeRawBufferPointer, ascii: Bool) -> String? {
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        return String._tryFromUTF8(bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// The string member `key` of a top-level object, read without building the rest of the
    /// document: members before it are skipped, members after it are not read at all. For routing
    /// (a reply's `re`) on a thread that must stay quick; nil when the document is not an object,
    /// the member is missing, or it is not a string.
    public static func topLevelString(_ key: String, in data: Data) -> String? {
        data.withUnsafeBytes { bytes -> String? in
            var reader = Reader(bytes: bytes)
            reader.skipWhitespace()
            guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: "{") else { return nil }
            reader.position += 1
            let wanted = Array(key.utf8)
            while true {
                reader.skipWhitespace()
                guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: "\"") else { return nil }
                // The key compared as bytes, not built as a string; one with escapes is decoded.
                let keyStart = reader.position + 1
                guard reader.skipValue(depth: 0) else { return nil }
                let rawKey = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(reader.position - 1)])
                let matches: Bool
                if rawKey.contains(UInt8(ascii: "\\")) {
                    var again = Reader(bytes: bytes, position: keyStart - 1)
                    matches = again.string() == key
                } else {
                    matches = rawKey.elementsEqual(wanted)
                }
                reader.skipWhitespace()
                guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: ":") else { return nil }
                reader.position += 1
                reader.skipWhitespace()
                if matches {
                    guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: "\"") else { return nil }
                    return reader.string()
                }
                guard reader.skipValue(depth: 0) else { return nil }
                reader.skipWhitespace()
                guard reader.position < bytes.count, bytes[reader.position] == UInt8(ascii: ",") else { return nil }
                reader.position += 1
            }
        }
    }

    /// The member named `key` of an object (the first one, if repeated, as JSONDecoder reads it).
    public subscript(key: String) -> FastJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    /// Either kind of number, as a Double.
    public var number: Double? {
        switch self {
        case .number(let n): return n
        case .integer(let n): return Double(n)
        default: return nil
        }
    }
    public var integer: Int64? { if case .integer(let n) = self { return n } else { return nil } }
    public var array: [FastJSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0
        /// Short strings seen before in this document (keys, station and parameter names repeat in
        /// every reading): reused instead of validated and built again.
        var shortStrings: [ShortKey: String] = [:]

        struct ShortKey: Hashable {
            var count: Int
            var low: UInt64
            var high: UInt64
        }

        static let maxDepth = 512

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) -> FastJSON? {
            guard depth < Self.maxDepth else { return nil }
            skipWhitespace()
            guard position < bytes.count else { return nil }
            switch bytes[position] {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string().map(FastJSON.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        /// Moves past one value without building it (strings are scanned for their closing quote,
        /// not decoded); false if the bytes end first or nest too deep.
        mutating func skipValue(depth: Int) -> Bool {
            guard depth < Self.maxDepth else { return false }
            skipWhitespace()
            guard position < bytes.count else { return false }
            switch bytes[position] {
            case UInt8(ascii: "\""):
                position += 1
                while position < bytes.count {
                    switch bytes[position] {
                    case UInt8(ascii: "\\"): position += 2
                    case UInt8(ascii: "\""):
                        position += 1
                        return true
                    default: position += 1
                    }
                }
                return false
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = bytes[position] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                position += 1
                while true {
                    skipWhitespace()
                    guard position < bytes.count else { return false }
                    switch bytes[position] {
                    case close:
                        position += 1
                        return true
                    case UInt8(ascii: ","), UInt8(ascii: ":"):
                        position += 1
                    default:
                        guard skipValue(depth: depth + 1) else { return false }
                    }
                }
            default:
                // A number or literal: up to the next delimiter.
                let start = position
                while position < bytes.count {
                    switch bytes[position] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return position > start
                    default: position += 1
                    }
                }
                return position > start
            }
        }

        mutating func literal(_ word: StaticString, _ value: FastJSON) -> FastJSON? {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[position + offset] != word.utf8Start[offset] { return nil }
            position += count
            return value
        }

        mutating func object(depth: Int) -> FastJSON? {
            position += 1
            var members: [(String, FastJSON)] = []
            // Room for a reply's usual object at once, not grown through 1, 2, 4 and 8.
            members.reserveCapacity(8)
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\""), let key = string() else { return nil }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return nil }
                position += 1
                guard let value = value(depth: depth + 1) else { return nil }
                members.append((key, value))
                skipWhitespace()
                guard position < bytes.count else { return nil }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                } else {
                    return nil
                }
            }
        }

        mutating func array(depth: Int) -> FastJSON? {
            position += 1
            var elements: [FastJSON] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
                skipWhitespace()
                guard position < bytes.count else { return nil }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    return nil
                }
            }
        }

        /// A string starting at the opening quote; nil on bad escapes, control characters or invalid UTF-8.
        mutating func string() -> String? {
            position += 1
            let start = position
            // Every byte OR-ed: below 0x80, the string is ASCII and needs no UTF-8 check.
            var allBits: UInt8 = 0
            // The common case: no escapes, decoded straight from the buffer. Eight bytes at a
            // time while none is a quote, a backslash or a control character (each found by the
            // classic zero-byte test); the byte loop below finds which one stopped it.
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            var wordBits: UInt64 = 0
            while position + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                let stops =
                    ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
                if stops & highs != 0 { break }
                wordBits |= word
                position += 8
            }
            if wordBits & highs != 0 { allBits = 0x80 }
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                    position += 1
                    // Small documents (a request envelope) repeat nothing worth the cache's hashing.
                    guard slice.count <= 16, bytes.count > 2048 else { return FastJSON.utf8String(slice, ascii: allBits < 0x80) }
                    var key = ShortKey(count: slice.count, low: 0, high: 0)
                    for (offset, byte) in slice.enumerated() {
                        if offset < 8 {
                            key.low |= UInt64(byte) << (8 * UInt64(offset))
                        } else {
                            key.high |= UInt64(byte) << (8 * UInt64(offset - 8))
                        }
                    }
                    if let known = shortStrings[key] { return known }
                    guard let string = FastJSON.utf8String(slice, ascii: allBits < 0x80) else { return nil }
                    if shortStrings.count < 256 { shortStrings[key] = string }
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { return nil }
                allBits |= byte
                position += 1
            }
            guard position < bytes.count else { return nil }
            var utf8: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return utf8.withUnsafeBytes { FastJSON.utf8String($0, ascii: false) }
                }
                if byte < 0x20 { return nil }
                if byte != UInt8(ascii: "\\") {
                    utf8.append(byte)
                    position += 1
                    continue
                }
                position += 1
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                        else { return nil }
                        position += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        return nil
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard position + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: return nil
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() -> FastJSON? {
            let start = position
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count else { return nil }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else if (0x31...0x39).contains(bytes[position]) {
                while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            } else {
                return nil
            }
            var integral = true
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                integral = false
                position += 1
                let digits = position
                while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
                guard position > digits else { return nil }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                integral = false
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                let digits = position
                while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
                guard position > digits else { return nil }
            }
            // Short integers, the usual case, without going through text.
            if integral, position - start <= 15 {
                var value: Int64 = 0
                var index = start
                let negative = bytes[index] == UInt8(ascii: "-")
                if negative { index += 1 }
                while index < position {
                    value = value * 10 + Int64(bytes[index] - 0x30)
                    index += 1
                }
                if negative && value == 0 { return .number(-0.0) }
                return .integer(negative ? -value : value)
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else { return nil }
            return .number(value)
        }
    }
}

/// A request body that can be read from a `FastJSON` tree; nil sends the request down the
/// JSONDecoder path, which answers with the precise error.
public protocol FastDecodable: Sendable {
    static func fastDecode(_ json: FastJSON) -> Self?
}

/// A request body that writes its own compact, deterministic bytes for idempotency fingerprints,
/// instead of being encoded as canonical JSON (for large bodies, that encoding is the expensive part).
/// The bytes must depend only on the decoded value.
public protocol Fingerprintable: Sendable {
    func fingerprint(into bytes: inout [UInt8])
}
