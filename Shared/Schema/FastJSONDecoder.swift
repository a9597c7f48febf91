import Foundation

/// Decodes any `Decodable` from a `FastJSON` tree: the reply a typed call gets (a 1.2 kB task
/// with its reasons and milestones) in a fraction of Foundation's JSONDecoder time here.
///
/// It is only a fast path, like `FastJSON` itself: anything it is not sure to read exactly as
/// JSONDecoder would (a number that is not an exact `Int`, a type it has no case for) throws, and
/// the caller decodes the same bytes with JSONDecoder, which gives the precise answer or error.
public enum FastJSONDecoding {
    /// The value, or nil when the fast path cannot be sure (then use JSONDecoder).
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) -> T? {
        guard let tree = FastJSON.parse(data) else { return nil }
        return try? Scalars.decode(tree, as: type, codingPath: [])
    }

    /// The body of a successful reply, read from the tree without decoding the envelope around it
    /// (a typed call wants only the body; the envelope's own Codable was a third of its decoding).
    /// Nil for anything else: an error reply, an envelope field missing or of another type, a body
    /// the fast path is unsure of; the caller then reads the frame as a `ReplyEnvelope`, which
    /// gives the same body or the precise error.
    public static func replyBody<T: Decodable>(_ type: T.Type, from frame: Data) -> T? {
        guard let tree = FastJSON.parse(frame), case .object = tree else { return nil }
        // What ReplyEnvelope's synthesized init requires, as it reads it (the first of a repeated key).
        guard let version = tree["v"]?.integer, Int(exactly: version) != nil, tree["id"]?.string != nil,
            tree["type"]?.string != nil, tree["ts"]?.string != nil, case .bool(true)? = tree["ok"]
        else { return nil }
        if let re = tree["re"], !re.isNull, re.string == nil { return nil }
        if let error = tree["error"], !error.isNull { return nil }
        guard let body = tree["body"], !body.isNull else { return nil }
        return try? Scalars.decode(body, as: type, codingPath: [ReplyKey.body])
    }

    private enum ReplyKey: String, CodingKey { case body }

    /// Decodes with the fast path, falling back to JSONDecoder for anything it leaves.
    public static func decodeOrFallBack<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let value = decode(type, from: data) { return value }
        return try WireCoding.decoder().decode(type, fromUntrusted: data)
    }

    struct Unsure: Error {}
}

private struct TreeDecoder: Decoder {
    let value: FastJSON
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ value: FastJSON, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw FastJSONDecoding.Unsure() }
        return KeyedDecodingContainer(TreeKeyedContainer<Key>(members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw FastJSONDecoding.Unsure() }
        return TreeUnkeyedContainer(items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { TreeSingleValue(value, codingPath: codingPath) }
}

/// The scalar reads shared by every container, as JSONDecoder reads them.
private enum Scalars {
    static func bool(_ value: FastJSON) throws -> Bool {
        guard case .bool(let flag) = value else { throw FastJSONDecoding.Unsure() }
        return flag
    }

    static func string(_ value: FastJSON) throws -> String {
        guard case .string(let text) = value else { throw FastJSONDecoding.Unsure() }
        return text
    }

    static func double(_ value: FastJSON) throws -> Double {
        switch value {
        case .number(let number): return number
        case .integer(let number): return Double(number)
        default: throw FastJSONDecoding.Unsure()
        }
    }

    /// An integral token that fits, or a number with an integral value as JSONDecoder takes one
    /// (`1.0`, `1e3`, `-0.0`), within 2^53 where a Double is exact; anything else is JSONDecoder's.
    static func integer<T: FixedWidthInteger>(_ value: FastJSON, as type: T.Type) throws -> T {
        switch value {
        case .integer(let number):
            if let exact = T(exactly: number) { return exact }
        case .number(let number) where abs(number) < 9_007_199_254_740_992:
            if let exact = T(exactly: number) { return exact }
        default: break
        }
        throw FastJSONDecoding.Unsure()
    }

    static func decode<T: Decodable>(_ value: FastJSON, as type: T.Type, codingPath: [any CodingKey]) throws -> T {
        if type == String.self { return try string(value) as! T }
        if type == Int.self { return try integer(value, as: Int.self) as! T }
        if type == Double.self { return try double(value) as! T }
        if type == Bool.self { return try bool(value) as! T }
        // Foundation's special cases (Date, Data, URL, Decimal) are JSONDecoder's to read.
        if type == Date.self || type == Data.self || type == URL.self || type == Decimal.self { throw FastJSONDecoding.Unsure() }
        // The types that read themselves from the tree (a task, a ping's reply), and lists of them.
        if let readable = type as? any TreeReadable.Type { return try readable.init(tree: value) as! T }
        // A map straight from the members: through Codable, a dictionary makes a key for each
        // member and looks each up again (most of a `sys.ping` reply's decoding, by profile).
        if case .object(let members) = value, let map = type as? any StringKeyedMap.Type {
            return try map.init(members: members, codingPath: codingPath) as! T
        }
        // A list likewise, without an unkeyed container boxed for each element.
        if case .array(let items) = value, let list = type as? any TreeList.Type {
            return try list.init(items: items, codingPath: codingPath) as! T
        }
        return try T(from: TreeDecoder(value, codingPath: codingPath))
    }
}

/// An array, as a JSON array decodes into one.
private protocol TreeList {
    init(items: [FastJSON], codingPath: [any CodingKey]) throws
}

extension Array: TreeList where Element: Decodable {
    fileprivate init(items: [FastJSON], codingPath: [any CodingKey]) throws {
        self.init()
        reserveCapacity(items.count)
        for item in items { append(try Scalars.decode(item, as: Element.self, codingPath: codingPath)) }
    }
}

/// A dictionary keyed by strings, as a JSON object decodes into one. Its values and a list's items
/// are decoded with the container's coding path, not one path array made per element: a path
/// only names where an error is, and any error here sends the whole document to JSONDecoder,
/// whose error names the precise path.
private protocol StringKeyedMap {
    init(members: [(String, FastJSON)], codingPath: [any CodingKey]) throws
}

extension Dictionary: StringKeyedMap where Key == String, Value: Decodable {
    /// As `Dictionary.init(from:)` reads a keyed container here: a repeated key's first value.
    fileprivate init(members: [(String, FastJSON)], codingPath: [any CodingKey]) throws {
        self.init(minimumCapacity: members.count)
        for (name, member) in members where self[name] == nil {
            self[name] = try Scalars.decode(member, as: Value.self, codingPath: codingPath)
        }
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.init(intValue) }
}

private struct TreeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let codingPath: [any CodingKey]
    /// Members in document order; looked up by a scan while there are few (a reply's objects have
    /// a handful to a few dozen), through `index` when there are many (an object used as a map).
    private let members: [(String, FastJSON)]
    /// Each key's first position, as `FastJSON`'s subscript reads a repeated key; only for large objects.
    private let index: [String: Int]?

    private static var scanLimit: Int { 24 }

    init(_ list: [(String, FastJSON)], codingPath: [any CodingKey]) {
        self.codingPath = codingPath
        members = list
        if list.count > Self.scanLimit {
            var index: [String: Int] = [:]
            index.reserveCapacity(list.count)
            for (position, member) in list.enumerated() where index[member.0] == nil { index[member.0] = position }
            self.index = index
        } else {
            index = nil
        }
    }

    /// Built when asked for (a dictionary's decoding asks; a struct's never does): making a `Key`
    /// from each member's name compares it with every case of the type's keys.
    var allKeys: [Key] {
        var seen = Set<String>()
        return members.compactMap { name, _ in seen.insert(name).inserted ? Key(stringValue: name) : nil }
    }

    private func lookUp(_ name: String) -> FastJSON? {
        if let index { return index[name].map { members[$0].1 } }
        for member in members where member.0 == name { return member.1 }
        return nil
    }

    func contains(_ key: Key) -> Bool { lookUp(key.stringValue) != nil }

    private func value(_ key: Key) throws -> FastJSON {
        guard let value = lookUp(key.stringValue) else { throw FastJSONDecoding.Unsure() }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key).isNull }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Scalars.bool(value(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try Scalars.string(value(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Scalars.double(value(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        let number = try Scalars.double(value(key))
        guard let exact = Float(exactly: number) else { throw FastJSONDecoding.Unsure() }
        return exact
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Scalars.integer(value(key), as: Int.self) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Scalars.integer(value(key), as: Int8.self) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Scalars.integer(value(key), as: Int16.self) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Scalars.integer(value(key), as: Int32.self) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Scalars.integer(value(key), as: Int64.self) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Scalars.integer(value(key), as: UInt.self) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Scalars.integer(value(key), as: UInt8.self) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Scalars.integer(value(key), as: UInt16.self) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Scalars.integer(value(key), as: UInt32.self) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Scalars.integer(value(key), as: UInt64.self) }

    // Nested values keep this container's path (see `StringKeyedMap`): no path array made per member.
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try Scalars.decode(value(key), as: type, codingPath: codingPath)
    }

    // Optional members in one look-up each (the protocol's defaults ask `contains`, then
    // `decodeNil`, then `decode`): absent or null is nil, as JSONDecoder reads them.
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let value = lookUp(key.stringValue), !value.isNull else { return nil }
        return try Scalars.string(value)
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let value = lookUp(key.stringValue), !value.isNull else { return nil }
        return try Scalars.integer(value, as: Int.self)
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let value = lookUp(key.stringValue), !value.isNull else { return nil }
        return try Scalars.bool(value)
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        guard let value = lookUp(key.stringValue), !value.isNull else { return nil }
        return try Scalars.double(value)
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = lookUp(key.stringValue), !value.isNull else { return nil }
        return try Scalars.decode(value, as: type, codingPath: codingPath)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TreeDecoder(value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw FastJSONDecoding.Unsure() }
    func superDecoder(forKey key: Key) throws -> any Decoder { TreeDecoder(try value(key), codingPath: codingPath + [key]) }
}

private struct TreeUnkeyedContainer: UnkeyedDecodingContainer {
    let items: [FastJSON]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(_ items: [FastJSON], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> FastJSON {
        guard currentIndex < items.count else { throw FastJSONDecoding.Unsure() }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard currentIndex < items.count else { throw FastJSONDecoding.Unsure() }
        if items[currentIndex].isNull {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try Scalars.bool(next()) }
    mutating func decode(_ type: String.Type) throws -> String { try Scalars.string(next()) }
    mutating func decode(_ type: Double.Type) throws -> Double { try Scalars.double(next()) }
    mutating func decode(_ type: Int.Type) throws -> Int { try Scalars.integer(next(), as: Int.self) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try Scalars.integer(next(), as: Int64.self) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let path = codingPath + [IndexKey(currentIndex)]
        return try Scalars.decode(next(), as: type, codingPath: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let path = codingPath + [IndexKey(currentIndex)]
        return try TreeDecoder(next(), codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let path = codingPath + [IndexKey(currentIndex)]
        return try TreeDecoder(next(), codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let path = codingPath + [IndexKey(currentIndex)]
        return TreeDecoder(try next(), codingPath: path)
    }
}

private struct TreeSingleValue: SingleValueDecodingContainer {
    let value: FastJSON
    let codingPath: [any CodingKey]

    init(_ value: FastJSON, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try Scalars.bool(value) }
    func decode(_ type: String.Type) throws -> String { try Scalars.string(value) }
    func decode(_ type: Double.Type) throws -> Double { try Scalars.double(value) }
    func decode(_ type: Float.Type) throws -> Float {
        guard let exact = Float(exactly: try Scalars.double(value)) else { throw FastJSONDecoding.Unsure() }
        return exact
    }
    func decode(_ type: Int.Type) throws -> Int { try Scalars.integer(value, as: Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try Scalars.integer(value, as: Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try Scalars.integer(value, as: Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try Scalars.integer(value, as: Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try Scalars.integer(value, as: Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try Scalars.integer(value, as: UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try Scalars.integer(value, as: UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try Scalars.integer(value, as: UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try Scalars.integer(value, as: UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try Scalars.integer(value, as: UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try Scalars.decode(value, as: type, codingPath: codingPath) }
}

/// A type that reads itself from the tree without Codable's containers: the replies typed calls
/// get most (a task with its milestones, reasons and reports read in a fraction of the generic
/// path's time, whose keyed containers look up generic metadata at every level). Its reading must
/// be exactly what its synthesized `init(from:)` does with JSONDecoder, member by member through
/// `TreeMembers` by the type's own `CodingKeys`; anything else throws `FastJSONDecoding.Unsure`,
/// and the document goes to JSONDecoder. `fuzz-bodies` and `TreeReadableTests` hold the two readings
/// to each other.
protocol TreeReadable: Decodable {
    init(tree: FastJSON) throws
}

/// A JSON object's members read as a synthesized `init(from:)` reads its keyed container.
struct TreeMembers {
    private let members: [(String, FastJSON)]

    init(_ tree: FastJSON) throws {
        guard case .object(let members) = tree else { throw FastJSONDecoding.Unsure() }
        self.members = members
    }

    /// The first member of that name, as JSONDecoder reads a repeated key (names equal as Swift
    /// compares strings, canonically, as JSONDecoder's dictionary of members does).
    private func value(_ key: some CodingKey) -> FastJSON? {
        let name = key.stringValue
        for member in members where member.0 == name { return member.1 }
        return nil
    }

    /// `decode(_:forKey:)`: present and of its type (null is not a value).
    func required<T: TreeReadable>(_ key: some CodingKey) throws -> T {
        guard let value = value(key) else { throw FastJSONDecoding.Unsure() }
        return try T(tree: value)
    }

    /// `decodeIfPresent(_:forKey:)`: absent or null is nil, anything else of its type.
    func optional<T: TreeReadable>(_ key: some CodingKey) throws -> T? {
        guard let value = value(key), !value.isNull else { return nil }
        return try T(tree: value)
    }
}

extension String: TreeReadable {
    init(tree: FastJSON) throws { self = try Scalars.string(tree) }
}

extension Int: TreeReadable {
    init(tree: FastJSON) throws { self = try Scalars.integer(tree, as: Int.self) }
}

extension Double: TreeReadable {
    init(tree: FastJSON) throws { self = try Scalars.double(tree) }
}

extension Bool: TreeReadable {
    init(tree: FastJSON) throws { self = try Scalars.bool(tree) }
}

extension Array: TreeReadable where Element: TreeReadable {
    init(tree: FastJSON) throws {
        guard case .array(let items) = tree else { throw FastJSONDecoding.Unsure() }
        self.init()
        reserveCapacity(items.count)
        for item in items { append(try Element(tree: item)) }
    }
}

extension Dictionary: TreeReadable where Key == String, Value: TreeReadable {
    /// A repeated key's first value, as `StringKeyedMap` reads it.
    init(tree: FastJSON) throws {
        guard case .object(let members) = tree else { throw FastJSONDecoding.Unsure() }
        self.init(minimumCapacity: members.count)
        for (name, member) in members where self[name] == nil { self[name] = try Value(tree: member) }
    }
}

/// An enum with string raw values, as its synthesized `init(from:)` reads it: a string naming a case.
extension TreeReadable where Self: RawRepresentable, RawValue == String {
    init(tree: FastJSON) throws {
        guard case .string(let raw) = tree, let value = Self(rawValue: raw) else { throw FastJSONDecoding.Unsure() }
        self = value
    }
}
