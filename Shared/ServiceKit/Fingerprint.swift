import Crypto
import Foundation
import Schema

/// Idempotency fingerprints: SHA-256 (swift-crypto) of a request's type and body, as lowercase hex.
public enum Fingerprint {
    public static func hex(_ data: Data) -> String { Hex.lowercase(SHA256.hash(data: data)) }
}
