import Foundation
import Schema

/// What the harnesses share. A harness that finds a property broken calls `Fuzz.fail`, which
/// stops the run the way libFuzzer records a crash (the input is written to `crash-…`).
public enum Fuzz {
    /// Stops the run: the property named in `message` does not hold for this input.
    public static func fail(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
        fatalError("fuzz property broken: \(message)", file: file, line: line)
    }

    /// A value's canonical JSON (sorted keys), for comparing two decodings of the same bytes.
    public static func canonical(_ value: any Encodable) -> Data? {
        try? WireCoding.canonical(value)
    }

    /// Whether FastJSON's tree and JSONSerialization's read the same document the same way. A
    /// repeated key (JSONSerialization keeps one of them) only needs to agree with one occurrence.
    public static func agrees(_ fast: FastJSON, _ foundation: Any) -> Bool {
        switch fast {
        case .null:
            return foundation is NSNull
        case .bool(let value):
            return (foundation as? Bool) == value
        case .integer(let value):
            guard let number = foundation as? NSNumber else { return false }
            return number.doubleValue == Double(value)
        case .number(let value):
            guard let number = foundation as? NSNumber else { return false }
            // Integers past Int64 come back from Foundation as Decimal or Double: equal to a few ulps.
            let other = number.doubleValue
            return other == value || abs(other - value) <= abs(value) * 1e-12
        case .string(let value):
            return (foundation as? String) == value
        case .array(let elements):
            guard let others = foundation as? [Any], others.count == elements.count else { return false }
            return zip(elements, others).allSatisfy { agrees($0, $1) }
        case .object(let members):
            guard let others = foundation as? [String: Any] else { return false }
            let keys = Set(members.map(\.0))
            guard Set(others.keys) == keys else { return false }
            return keys.allSatisfy { key in
                members.contains { $0.0 == key && agrees($0.1, others[key]!) }
            }
        }
    }

    /// A stable number for bytes (Swift's `hashValue` changes from run to run; a corpus entry must
    /// pick the same branch every time).
    public static func stableIndex(_ bytes: some Sequence<UInt8>, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(hash % UInt64(max(count, 1)))
    }
}
