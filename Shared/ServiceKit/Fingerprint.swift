import Crypto
import Foundation

/// Idempotency fingerprints: SHA-256 (swift-crypto) of a request's type and body, as lowercase hex.
public enum Fingerprint {
    public static func hex(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
