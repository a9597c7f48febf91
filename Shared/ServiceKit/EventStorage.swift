import Foundation
import Schema

/// A remembered reply to a keyed request.
public struct StoredReply: Sendable, Equatable {
    public var type: String
    public var fingerprint: String
    public var ok: Bool
    public var payload: Data

    public init(type: String, fingerprint: String, ok: Bool, payload: Data) {
        self.type = type
        self.fingerprint = fingerprint
        self.ok = ok
        self.payload = payload
    }
}

/// Where a service keeps its event log and idempotency keys: what the rpc loop needs from storage.
/// SQLite (`ServiceStore`) is the embedded default; PostgreSQL serves instances that share a database.
public protocol EventStorage: Sendable {
    /// This instance's event stream.
    var stream: String { get }
    /// Where the data is, for logs.
    var location: String { get }
    /// Sets where committed events go (the events socket).
    func setPublisher(_ publish: @escaping @Sendable (_ topic: String, _ envelope: Data) -> Void)
    /// Head `seq` of every stream stored, this instance's included (0 when it has none yet).
    func heads() async throws -> [String: Int]
    /// Stored envelopes of `stream` with `seq > after`, oldest first, and its head; nil for an unknown stream.
    func events(stream: String, after: Int, limit: Int) async throws -> (envelopes: [Data], head: Int)?
    func storedReply(forKey key: String) async throws -> StoredReply?
    /// Remembers a reply on its own (for a mutating handler that changed nothing).
    func remember(key: String, reply: StoredReply) async throws
    /// Forgets keys older than the retention; returns how many.
    func purgeExpiredKeys(now: Date) async throws -> Int
    /// Idempotency keys held (the metrics port's `duban_idempotency_keys`).
    func keysHeld() async throws -> Int
}

/// Storage that can also answer the rpc loop's reads synchronously, on the calling thread (SQLite:
/// a read from the pool takes microseconds). With it, `sys.ping` and `events.since` are answered
/// on the socket thread as they arrive.
public protocol SynchronousEventStorage: EventStorage {
    func headsNow() throws -> [String: Int]
    func eventsNow(stream: String, after: Int, limit: Int) throws -> (envelopes: [Data], head: Int)?
}

/// How long idempotency keys are kept (PROTOCOL.md: at least 24 hours).
public let idempotencyKeyRetention: TimeInterval = 48 * 3600

/// Storage other than a `ServiceStore` that keeps an audit trail of its own (PostgreSQL).
public protocol AuditedStorage: EventStorage {
    func auditEntries(_ request: AuditListRequest) async throws -> [AuditEntry]
    func verifyAudit() async throws -> AuditVerifyReply
}
