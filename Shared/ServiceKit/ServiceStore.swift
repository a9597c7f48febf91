import Foundation
import GRDB
import Schema
import Synchronization

/// Events a write produces; stored in the same transaction as the change, published after commit.
public struct EventBuffer: Sendable {
    /// The events emitted so far: topic and encoded body.
    public private(set) var items: [(type: String, body: Data)] = []

    public init() {}

    /// Adds an event with topic `type`.
    public mutating func emit<Body: Encodable>(_ type: String, _ body: Body) throws {
        items.append((type, try WireCoding.encode(body)))
    }
}

/// A service's SQLite database: its own tables plus the event log and the idempotency store.
///
/// The store is its database's only writer (each service owns its data; one process per data
/// directory): what it keeps in memory about the database, such as the streams' heads, relies on it.
///
/// Events are written in the transaction that makes the change they report, so a crash can
/// never keep one without the other, and published only after that transaction commits
/// (from GRDB's writer queue, so publication follows `seq` order).
public final class ServiceStore: SynchronousEventStorage, Sendable {
    public let pool: DatabasePool
    /// This instance's event stream (`registry`, `ingest-2`).
    public let stream: String
    /// The events' `from`.
    public let origin: String
    public let path: String
    private let publisher = Mutex<(@Sendable (_ topic: String, _ envelope: Data) -> Void)?>(nil)
    private let writes = Atomic<Int>(0)
    /// Head `seq` of every stream in the database, kept in memory: this store is the database's only
    /// writer, and it moves a head once the transaction that appends to it has committed. Every
    /// `sys.ping` asks for them, and a read transaction for them cost more than the rest of the request.
    private let knownHeads = Mutex<[String: Int]>([:])

    /// Counts the write transactions made through `write`, each counted once it has committed (or
    /// failed). What is computed from the database and kept in memory is current while this is
    /// unchanged: read it before reading the database, and a write that lands in between only
    /// makes the next reader compute again.
    public var writeGeneration: Int { writes.load(ordering: .acquiring) }

    public static let keyRetention = idempotencyKeyRetention
    public var location: String { path }

    /// Opens (creating if needed) the database at `path` and runs the kit's and the service's migrations.
    public init(path: String, stream: String, origin: String, migrations: (inout DatabaseMigrator) -> Void = { _ in }) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // FULL: an acknowledged write survives power loss, not only a process crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        pool = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        self.stream = stream
        self.origin = origin
        var migrator = DatabaseMigrator()
        migrator.registerMigration("servicekit-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE duban_events (
                        stream TEXT NOT NULL,
                        seq INTEGER NOT NULL CHECK (seq > 0),
                        type TEXT NOT NULL,
                        id TEXT NOT NULL,
                        ts TEXT NOT NULL,
                        envelope BLOB NOT NULL,
                        PRIMARY KEY (stream, seq)
                    ) WITHOUT ROWID;
                    CREATE TABLE duban_idempotency (
                        key TEXT PRIMARY KEY NOT NULL,
                        type TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        ok INTEGER NOT NULL,
                        payload BLOB NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE INDEX duban_idempotency_created ON duban_idempotency(created_at);
                    """)
        }
        AuditTrail.migrate(&migrator)
        migrations(&migrator)
        try migrator.migrate(pool)
        let stored = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT stream, MAX(seq) AS head FROM duban_events GROUP BY stream").map {
                (row: Row) -> (String, Int) in
                (row["stream"], row["head"])
            }
        }
        var heads = [stream: 0]
        for (name, head) in stored { heads[name] = head }
        knownHeads.withLock { $0 = heads }
    }

    /// Sets where committed events go (the events socket).
    public func setPublisher(_ publish: @escaping @Sendable (_ topic: String, _ envelope: Data) -> Void) {
        publisher.withLock { $0 = publish }
    }

    /// Runs `updates` in one write transaction; events it emits are logged in that transaction and published after commit.
    /// `publishing: false` logs the events without sending them live, exactly what a subscriber
    /// sees when PUB drops them (for tests of catch-up); they are still read through `events.since`.
    public func write<T: Sendable>(publishing: Bool = true, _ updates: @escaping @Sendable (Database, inout EventBuffer) throws -> T)
        async throws -> T
    {
        defer { writes.add(1, ordering: .releasing) }
        return try await pool.write { db in try self.writeInTransaction(db, publishing: publishing, updates) }
    }

    /// The same inside a transaction the caller already holds.
    public func writeInTransaction<T>(_ db: Database, publishing: Bool = true, _ updates: (Database, inout EventBuffer) throws -> T) throws
        -> T
    {
        var buffer = EventBuffer()
        let result = try updates(db, &buffer)
        try appendEvents(db, buffer, publishing: publishing)
        return result
    }

    /// Logs the buffered events in `db`'s transaction and publishes them once it commits.
    public func appendEvents(_ db: Database, _ buffer: EventBuffer, publishing: Bool = true) throws {
        guard !buffer.items.isEmpty else { return }
        var head = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM duban_events WHERE stream = ?", arguments: [stream]) ?? 0
        var published: [(String, Data)] = []
        let ts = Timestamp.now()
        for item in buffer.items {
            head += 1
            let id = MessageID.next()
            let envelope = EnvelopeWriter.event(id: id, type: item.type, ts: ts, from: origin, stream: stream, seq: head, body: item.body)
            try db.execute(
                sql: "INSERT INTO duban_events (stream, seq, type, id, ts, envelope) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [stream, head, item.type, id, ts, envelope])
            published.append((item.type, envelope))
        }
        let events = published
        let newHead = head
        db.afterNextTransaction(onCommit: { [self] _ in
            // Before publishing: whoever sees the event and asks for the head gets at least its seq.
            knownHeads.withLock { $0[stream] = max($0[stream] ?? 0, newHead) }
            guard publishing, let publish = publisher.withLock({ $0 }) else { return }
            for (topic, envelope) in events { publish(topic, envelope) }
        })
    }

    // MARK: Event log reads

    public func heads() async throws -> [String: Int] { try headsNow() }

    /// A synchronous read on the calling thread: for short reads on the request path, where the
    /// async `pool.read` would cost two thread hops.
    public func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    /// Head `seq` of every stream in this database, with this instance's stream at 0 if it has no events yet.
    public func headsNow() throws -> [String: Int] {
        knownHeads.withLock { $0 }
    }

    public func events(stream: String, after: Int, limit: Int) async throws -> (envelopes: [Data], head: Int)? {
        try eventsNow(stream: stream, after: after, limit: limit)
    }

    /// Stored envelopes of `stream` with `seq > after`, oldest first, and the stream's head.
    public func eventsNow(stream: String, after: Int, limit: Int) throws -> (envelopes: [Data], head: Int)? {
        try pool.read { db in
            let head = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM duban_events WHERE stream = ?", arguments: [stream])
            guard head != nil || stream == self.stream else { return nil }
            let envelopes = try Data.fetchAll(
                db, sql: "SELECT envelope FROM duban_events WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [stream, after, limit])
            return (envelopes, head ?? 0)
        }
    }

    // MARK: Idempotency

    public func storedReply(forKey key: String) async throws -> StoredReply? { try storedReplyNow(forKey: key) }

    public func remember(key: String, reply: StoredReply) async throws {
        try await pool.write { db in try self.remember(db, key: key, reply: reply) }
    }

    public func storedReplyNow(forKey key: String) throws -> StoredReply? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT type, fingerprint, ok, payload FROM duban_idempotency WHERE key = ?", arguments: [key]).map {
                StoredReply(type: $0["type"], fingerprint: $0["fingerprint"], ok: $0["ok"], payload: $0["payload"])
            }
        }
    }

    /// Remembers the reply to a keyed request, in the caller's transaction.
    public func remember(_ db: Database, key: String, reply: StoredReply) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO duban_idempotency (key, type, fingerprint, ok, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [key, reply.type, reply.fingerprint, reply.ok, reply.payload, Date().timeIntervalSince1970])
    }

    /// Forgets keys older than the retention.
    @discardableResult
    public func keysHeld() async throws -> Int {
        try await pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM duban_idempotency") ?? 0 }
    }

    public func purgeExpiredKeys(now: Date) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM duban_idempotency WHERE created_at < ?", arguments: [now.timeIntervalSince1970 - Self.keyRetention])
            return db.changesCount
        }
    }
}
