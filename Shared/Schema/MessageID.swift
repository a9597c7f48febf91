import Foundation
import Synchronization

/// Message ids (PROTOCOL.md's `id`): random version-4 UUIDs in lowercase, as `UUID()` makes them,
/// without its cost on the request path. Foundation's `UUID()` opened, read and closed
/// `/dev/urandom` for every id and formatted it with `sprintf`: a sixth of a `sys.ping`'s time on
/// the socket thread. Here a xoshiro256** generator seeded once from the system's random source
/// makes 122 random bits per id, and the digits are written by table.
public enum MessageID {
    private static let generator = Mutex(Xoshiro256StarStar(seededBy: SystemRandomNumberGenerator()))
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A new id, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    public static func next() -> String {
        var (high, low) = generator.withLock { ($0.next(), $0.next()) }
        high = (high & ~0x0000_0000_0000_F000) | 0x0000_0000_0000_4000  // version 4
        low = (low & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000  // variant 1
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[position] = hexDigits[Int((value >> UInt64(shift)) & 0xF)]
                    position += 1
                }
            }
            func dash() {
                buffer[position] = UInt8(ascii: "-")
                position += 1
            }
            put(high >> 32, nibbles: 8)
            dash()
            put(high >> 16, nibbles: 4)
            dash()
            put(high, nibbles: 4)
            dash()
            put(low >> 48, nibbles: 4)
            dash()
            put(low, nibbles: 12)
            return position
        }
    }
}

/// xoshiro256** (Blackman and Vigna): fast, 256 bits of state, good statistical quality. Not for
/// secrets; ids only need to be unique, and 122 random bits from a seed drawn from the system's
/// source are.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init(seededBy source: some RandomNumberGenerator) {
        var source = source
        state = (source.next(), source.next(), source.next(), source.next())
        if state == (0, 0, 0, 0) { state.0 = 1 }
    }

    mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
