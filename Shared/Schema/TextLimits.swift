import Foundation

/// The longest text a request may carry in any one field: documented in docs/protocol.md, refused
/// with `invalid_argument` naming the field. A declaration may allow more (`plan.load`'s file) or
/// check its fields itself (`reading.submit`, whose every field is checked against the stations
/// and the standards).
public enum TextLimits {
    /// Characters in one text field, unless the request type says otherwise.
    public static let defaultCharacters = 10_000

    /// The first string in `payload` (a JSON document) longer than `limit` characters, with its
    /// path (`body.summary`, `body.cases[3].title`), or nil when every string is within it.
    ///
    /// A byte scan finds whether any string token is long enough to matter (a character is at
    /// least one byte, so a token of at most `limit` bytes is within it); only then is the
    /// document parsed to name the field. The common case costs one pass over the bytes.
    public static func firstOverlong(in payload: Data, limit: Int) -> (field: String, characters: Int)? {
        guard payload.count > limit, hasLongStringToken(payload, limit: limit) else { return nil }
        guard let root = try? JSONSerialization.jsonObject(with: payload, options: [.fragmentsAllowed]) else { return nil }
        return firstOverlong(root, limit: limit, path: "")
    }

    private static func hasLongStringToken(_ payload: Data, limit: Int) -> Bool {
        payload.withUnsafeBytes { bytes -> Bool in
            var inString = false
            var escaped = false
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                        if index - start > limit { return true }
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                    start = index + 1
                }
            }
            return inString && bytes.count - start > limit
        }
    }

    private static func firstOverlong(_ value: Any, limit: Int, path: String) -> (field: String, characters: Int)? {
        switch value {
        case let text as String:
            let count = text.count
            return count > limit ? (path.isEmpty ? "body" : path, count) : nil
        case let object as [String: Any]:
            for key in object.keys.sorted() {
                if key.count > limit { return (path.isEmpty ? "body" : path, key.count) }
                if let found = firstOverlong(object[key]!, limit: limit, path: path.isEmpty ? key : "\(path).\(key)") { return found }
            }
            return nil
        case let array as [Any]:
            for (index, element) in array.enumerated() {
                if let found = firstOverlong(element, limit: limit, path: "\(path)[\(index)]") { return found }
            }
            return nil
        default:
            return nil
        }
    }
}
