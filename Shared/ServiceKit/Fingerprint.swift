import Crypto
import Foundation

/// Idempotency fingerprints: SHA-256 (swift-crypto) of a request's type and body, as lowercase hex.
public enum Fingerprint {
    public static func hex(_ data: Data) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in SHA256.hash(data: data) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
