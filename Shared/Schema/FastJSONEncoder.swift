import Foundation

/// Encodes a value as compact JSON without Foundation's JSONEncoder: the bodies a client sends
/// (a typed `task.get` spent a sixth of its client thread's time in JSONEncoder, by profile, for
/// `{"id":"7.3"}`). The containers write straight into one buffer as `encode(to:)` fills them.
///
/// Only a fast path, like `FastJSONDecoding`: whatever it is not sure JSONDecoder would read back
/// to the same value (Foundation's special types, a number that is not finite, a container used
/// after one opened beside it, a key written twice, a super encoder, a value that writes nothing)
/// returns nil, and the caller encodes with JSONEncoder, which gives the precise bytes or error.
/// The bytes are not JSONEncoder's (members in the order written, `/` not escaped); they only go
/// on the wire, where a service reads the value (its idempotency fingerprint is taken from the
/// decoded body, never from these bytes).
public enum FastJSONEncoding {
    /// The value's JSON, or nil when the fast path cannot be sure of it.
    public static func encode<T: Encodable>(_ value: T) -> Data? {
        let stream = JSONStream()
        do {
            try stream.write(value, inside: JSONStream.root)
        } catch {
            return nil
        }
        guard stream.finish() else { return nil }
        return Data(stream.bytes)
    }

    /// Encodes with the fast path, falling back to JSONEncoder for anything it leaves.
    public static func encodeOrFallBack<T: Encodable>(_ value: T) throws -> Data {
        if let data = encode(value) { return data }
        return try WireCoding.encode(value)
    }

    struct Unsure: Error {}
}

/// The buffer and the containers open in it, innermost last. A container is written to only while
/// it is open: writing to an outer one closes the ones opened inside it since (as `encode(to:)`
/// fills a member and moves on), and a container closed that way is not written to again.
private final class JSONStream {
    static let root = 0

    struct Open {
        let id: Int
        /// The byte that closes it (`}` or `]`); nothing for the root.
        let close: UInt8?
        var members = 0
        /// An object's keys so far: a key written twice is JSONEncoder's to resolve.
        var keys: [String] = []
    }

    var bytes: [UInt8] = []
    var failed = false
    private var open = [Open(id: JSONStream.root, close: nil)]
    private var lastID = JSONStream.root

    init() { bytes.reserveCapacity(128) }

    /// Makes `id` the innermost open container, closing those opened inside it.
    func enter(_ id: Int) throws {
        guard !failed else { throw FastJSONEncoding.Unsure() }
        while let innermost = open.last, innermost.id != id {
            guard let close = innermost.close else {
                failed = true
                throw FastJSONEncoding.Unsure()
            }
            bytes.append(close)
            open.removeLast()
        }
    }

    /// Closes everything still open; false if anything went wrong or nothing was written.
    func finish() -> Bool {
        guard !failed, !bytes.isEmpty else { return false }
        while let innermost = open.last, let close = innermost.close {
            bytes.append(close)
            open.removeLast()
        }
        return true
    }

    /// Opens an object or an array at the current position; its id.
    func openContainer(_ opening: UInt8, closedBy close: UInt8) -> Int {
        bytes.append(opening)
        lastID += 1
        open.append(Open(id: lastID, close: close))
        return lastID
    }

    /// Starts the next member of object `id`: its separator, key and colon.
    func member(_ key: String, of id: Int) throws {
        try enter(id)
        let index = open.count - 1
        if open[index].keys.contains(key) {
            failed = true
            throw FastJSONEncoding.Unsure()
        }
        open[index].keys.append(key)
        if open[index].members > 0 { bytes.append(UInt8(ascii: ",")) }
        open[index].members += 1
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    /// Starts the next element of array `id`: its separator.
    func element(of id: Int) throws {
        try enter(id)
        let index = open.count - 1
        if open[index].members > 0 { bytes.append(UInt8(ascii: ",")) }
        open[index].members += 1
    }

    func memberCount(_ id: Int) -> Int { open.last(where: { $0.id == id })?.members ?? 0 }

    func poison() { failed = true }

    /// Every refusal fails the whole stream: an `encode(to:)` that catches it and writes on would
    /// otherwise leave a key or a separator with no value after it.
    func unsure() -> FastJSONEncoding.Unsure {
        failed = true
        return FastJSONEncoding.Unsure()
    }

    // MARK: Values

    /// Writes `value` as the one value at the current position, inside container `parent`.
    func write<T: Encodable>(_ value: T, inside parent: Int) throws {
        if T.self == String.self { return writeString(value as! String) }
        if T.self == Int.self { return writeInteger(value as! Int) }
        if T.self == Double.self { return try writeDouble(value as! Double) }
        if T.self == Bool.self { return writeBool(value as! Bool) }
        // Foundation's special cases (Date, Data, URL, Decimal) are JSONEncoder's to write.
        if T.self == Date.self || T.self == Data.self || T.self == URL.self || T.self == Decimal.self { throw unsure() }
        let encoder = StreamEncoder(stream: self, parent: parent)
        do {
            try value.encode(to: encoder)
        } catch {
            // Its key or separator is written: a caller that catches this and goes on must not
            // leave `"key":` with nothing after it, so the whole stream is given up.
            failed = true
            throw error
        }
        // Exactly one value, or the document is not JSON (`"key":` with nothing after it).
        guard encoder.produced == 1, !failed else {
            failed = true
            throw FastJSONEncoding.Unsure()
        }
    }

    func writeBool(_ value: Bool) { bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes) }
    func writeNull() { bytes.append(contentsOf: Self.nullBytes) }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
    private static let nullBytes = Array("null".utf8)

    func writeInteger<I: FixedWidthInteger>(_ value: I) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        // Digits of the magnitude, least significant first, into a small stack buffer.
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude != 0 {
                let (quotient, remainder) = magnitude.quotientAndRemainder(dividingBy: 10)
                buffer[count] = UInt8(ascii: "0") + UInt8(remainder)
                count += 1
                magnitude = quotient
            }
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
    }

    /// A finite number in Swift's shortest form that reads back exactly (`1.5`, `1e-05`, `-0.0`);
    /// JSON has no infinity or NaN, which JSONEncoder refuses by default.
    func writeDouble(_ value: Double) throws {
        guard value.isFinite else { throw unsure() }
        bytes.append(contentsOf: value.description.utf8)
    }

    func writeFloat(_ value: Float) throws {
        guard value.isFinite else { throw unsure() }
        bytes.append(contentsOf: value.description.utf8)
    }

    /// A string with `"`, `\` and control characters escaped; everything else as its UTF-8.
    func writeString(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var runStart = 0
            for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: Array("\\u00".utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// One value's place in the stream: `encode(to:)` asks it for one container and fills it.
private final class StreamEncoder: Encoder {
    let stream: JSONStream
    /// The container the value is written inside (its key or separator is written already).
    let parent: Int
    /// Values this encoder started: exactly one, or the stream fails.
    var produced = 0

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(stream: JSONStream, parent: Int) {
        self.stream = stream
        self.parent = parent
    }

    /// Starts this encoder's one value; false (and the stream failed) for a second one.
    func start() -> Bool {
        produced += 1
        guard produced == 1, (try? stream.enter(parent)) != nil else {
            stream.poison()
            return false
        }
        return true
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let id = start() ? stream.openContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}")) : -1
        return KeyedEncodingContainer(StreamKeyedContainer<Key>(stream: stream, id: id))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let id = start() ? stream.openContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]")) : -1
        return StreamUnkeyedContainer(stream: stream, id: id)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { StreamSingleValue(encoder: self) }
}

private struct StreamKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let stream: JSONStream
    let id: Int
    var codingPath: [any CodingKey] { [] }

    private func member(_ key: Key) throws { try stream.member(key.stringValue, of: id) }

    mutating func encodeNil(forKey key: Key) throws {
        try member(key)
        stream.writeNull()
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        try member(key)
        stream.writeBool(value)
    }
    mutating func encode(_ value: String, forKey key: Key) throws {
        try member(key)
        stream.writeString(value)
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        try member(key)
        try stream.writeDouble(value)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        try member(key)
        try stream.writeFloat(value)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try integer(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try integer(value, key) }

    private func integer<I: FixedWidthInteger>(_ value: I, _ key: Key) throws {
        try member(key)
        stream.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try member(key)
        try stream.write(value, inside: id)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        guard (try? member(key)) != nil else {
            stream.poison()
            return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(stream: stream, id: -1))
        }
        let nested = stream.openContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}"))
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(stream: stream, id: nested))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        guard (try? member(key)) != nil else {
            stream.poison()
            return StreamUnkeyedContainer(stream: stream, id: -1)
        }
        return StreamUnkeyedContainer(stream: stream, id: stream.openContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]")))
    }

    // JSONEncoder's super encoders write into a member or the same object later: its to do.
    mutating func superEncoder() -> any Encoder { poisoned() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { poisoned() }

    private func poisoned() -> any Encoder {
        stream.poison()
        return StreamEncoder(stream: stream, parent: -1)
    }
}

private struct StreamUnkeyedContainer: UnkeyedEncodingContainer {
    let stream: JSONStream
    let id: Int
    var codingPath: [any CodingKey] { [] }
    var count: Int { stream.memberCount(id) }

    private func element() throws { try stream.element(of: id) }

    mutating func encodeNil() throws {
        try element()
        stream.writeNull()
    }
    mutating func encode(_ value: Bool) throws {
        try element()
        stream.writeBool(value)
    }
    mutating func encode(_ value: String) throws {
        try element()
        stream.writeString(value)
    }
    mutating func encode(_ value: Double) throws {
        try element()
        try stream.writeDouble(value)
    }
    mutating func encode(_ value: Float) throws {
        try element()
        try stream.writeFloat(value)
    }
    mutating func encode(_ value: Int) throws { try integer(value) }
    mutating func encode(_ value: Int8) throws { try integer(value) }
    mutating func encode(_ value: Int16) throws { try integer(value) }
    mutating func encode(_ value: Int32) throws { try integer(value) }
    mutating func encode(_ value: Int64) throws { try integer(value) }
    mutating func encode(_ value: UInt) throws { try integer(value) }
    mutating func encode(_ value: UInt8) throws { try integer(value) }
    mutating func encode(_ value: UInt16) throws { try integer(value) }
    mutating func encode(_ value: UInt32) throws { try integer(value) }
    mutating func encode(_ value: UInt64) throws { try integer(value) }

    private func integer<I: FixedWidthInteger>(_ value: I) throws {
        try element()
        stream.writeInteger(value)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try element()
        try stream.write(value, inside: id)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        guard (try? element()) != nil else {
            stream.poison()
            return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(stream: stream, id: -1))
        }
        let nested = stream.openContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}"))
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(stream: stream, id: nested))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        guard (try? element()) != nil else {
            stream.poison()
            return StreamUnkeyedContainer(stream: stream, id: -1)
        }
        return StreamUnkeyedContainer(stream: stream, id: stream.openContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]")))
    }

    mutating func superEncoder() -> any Encoder {
        stream.poison()
        return StreamEncoder(stream: stream, parent: -1)
    }
}

/// The encoder's one value, written where the encoder stands.
private struct StreamSingleValue: SingleValueEncodingContainer {
    let encoder: StreamEncoder
    var codingPath: [any CodingKey] { [] }
    private var stream: JSONStream { encoder.stream }

    private func start() throws {
        guard encoder.start() else { throw FastJSONEncoding.Unsure() }
    }

    mutating func encodeNil() throws {
        try start()
        stream.writeNull()
    }
    mutating func encode(_ value: Bool) throws {
        try start()
        stream.writeBool(value)
    }
    mutating func encode(_ value: String) throws {
        try start()
        stream.writeString(value)
    }
    mutating func encode(_ value: Double) throws {
        try start()
        try stream.writeDouble(value)
    }
    mutating func encode(_ value: Float) throws {
        try start()
        try stream.writeFloat(value)
    }
    mutating func encode(_ value: Int) throws { try integer(value) }
    mutating func encode(_ value: Int8) throws { try integer(value) }
    mutating func encode(_ value: Int16) throws { try integer(value) }
    mutating func encode(_ value: Int32) throws { try integer(value) }
    mutating func encode(_ value: Int64) throws { try integer(value) }
    mutating func encode(_ value: UInt) throws { try integer(value) }
    mutating func encode(_ value: UInt8) throws { try integer(value) }
    mutating func encode(_ value: UInt16) throws { try integer(value) }
    mutating func encode(_ value: UInt32) throws { try integer(value) }
    mutating func encode(_ value: UInt64) throws { try integer(value) }

    private func integer<I: FixedWidthInteger>(_ value: I) throws {
        try start()
        stream.writeInteger(value)
    }

    /// A value in this place: written through an encoder that takes over the place (its one
    /// value is this encoder's one value).
    mutating func encode<T: Encodable>(_ value: T) throws {
        try start()
        try stream.write(value, inside: encoder.parent)
    }
}
