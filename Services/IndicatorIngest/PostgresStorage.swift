import Foundation
import Logging
import PostgresNIO
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization

/// The event log and idempotency keys in PostgreSQL, shared by every ingest instance: any instance
/// answers `events.since` for any stream, and a retry that reaches another instance finds the key.
///
/// It is a `Service` in the ingest group: the connection pool runs from before the migrations
/// until graceful shutdown, then stops.
final class PostgresEventStorage: EventStorage, AuditedStorage, Service {
    let client: PostgresClient
    let stream: String
    let origin: String
    let location: String
    let logger: Logger
    private let publisher = Mutex<(@Sendable (String, Data) -> Void)?>(nil)
    private let runner: Task<Void, Never>

    /// Connects to `url` (`postgres://user:password@host:port/database`) and creates the tables if needed.
    static func connect(url: String, stream: String, origin: String, logger: Logger) async throws -> PostgresEventStorage {
        guard let parsed = URLComponents(string: url), ["postgres", "postgresql"].contains(parsed.scheme ?? ""), let host = parsed.host,
            let user = parsed.user
        else {
            throw ConfigurationErrorText("databaseURL must look like postgres://user:password@host:port/database, not \(url)")
        }
        let database = String(parsed.path.drop(while: { $0 == "/" }))
        var configuration = PostgresClient.Configuration(
            host: host, port: parsed.port ?? 5432, username: user, password: parsed.password, database: database.isEmpty ? nil : database,
            tls: .disable)
        configuration.options.maximumConnections = 8
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let storage = PostgresEventStorage(
            client: client, stream: stream, origin: origin, location: "postgres://\(host):\(parsed.port ?? 5432)/\(database)",
            logger: logger)
        try await storage.migrate()
        return storage
    }

    private init(client: PostgresClient, stream: String, origin: String, location: String, logger: Logger) {
        self.client = client
        self.stream = stream
        self.origin = origin
        self.location = location
        self.logger = logger
        runner = Task { await client.run() }
    }

    /// Stops the connection pool.
    func close() {
        runner.cancel()
    }

    /// Keeps the pool until graceful shutdown, then stops it.
    func run() async throws {
        try? await gracefulShutdown()
        close()
        await runner.value
    }

    func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            // Instances may start together: one creates the tables, the others wait for it.
            try await connection.query("SELECT pg_advisory_xact_lock(7201001)", logger: logger)
            for statement in Self.schema { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }

    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS duban_events (
            stream TEXT NOT NULL, seq BIGINT NOT NULL CHECK (seq > 0), type TEXT NOT NULL, id TEXT NOT NULL, ts TEXT NOT NULL,
            envelope BYTEA NOT NULL, PRIMARY KEY (stream, seq))
        """,
        """
        CREATE TABLE IF NOT EXISTS duban_idempotency (
            key TEXT PRIMARY KEY, type TEXT NOT NULL, fingerprint TEXT NOT NULL, ok BOOLEAN NOT NULL, payload BYTEA NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS duban_idempotency_created ON duban_idempotency(created_at)",
        """
        CREATE TABLE IF NOT EXISTS readings (
            station TEXT NOT NULL, parameter TEXT NOT NULL, ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0, received_at BIGINT NOT NULL, PRIMARY KEY (station, parameter, ts))
        """,
        // Quality marks (below detection with its limit; 维护, 校准, 停运): a status-marked reading may have
        // no value. Dropping NOT NULL only once, so that a restart takes no table lock for nothing.
        "ALTER TABLE readings ADD COLUMN IF NOT EXISTS mark TEXT",
        "ALTER TABLE readings ADD COLUMN IF NOT EXISTS detection_limit DOUBLE PRECISION",
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'readings'
                       AND column_name = 'value' AND is_nullable = 'NO') THEN
                ALTER TABLE readings ALTER COLUMN value DROP NOT NULL;
            END IF;
        END $$
        """,
        """
        CREATE TABLE IF NOT EXISTS indicator_values (
            indicator TEXT NOT NULL, period TEXT NOT NULL, value TEXT NOT NULL, source TEXT NOT NULL, note TEXT, reported_at TEXT NOT NULL,
            PRIMARY KEY (indicator, period))
        """,
        // A value that cannot yet be valid under its standard (GB 3095's data validity): shown, not judged.
        "ALTER TABLE indicator_values ADD COLUMN IF NOT EXISTS provisional BOOLEAN NOT NULL DEFAULT FALSE",
        "CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, active BOOLEAN NOT NULL, body TEXT NOT NULL, changed_at TEXT NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS findings (
            kind TEXT NOT NULL, station TEXT NOT NULL, parameter TEXT NOT NULL, day TEXT NOT NULL, severity TEXT NOT NULL,
            message TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, limit_value DOUBLE PRECISION, rank DOUBLE PRECISION NOT NULL,
            reading_ts BIGINT NOT NULL, first_ts BIGINT NOT NULL, last_ts BIGINT NOT NULL, readings INTEGER NOT NULL,
            recorded_at TEXT NOT NULL, PRIMARY KEY (kind, station, parameter, day))
        """,
        "CREATE INDEX IF NOT EXISTS findings_day ON findings(day)",
        // The audit trail: one chain for the shared database, whichever instance stored the change.
        """
        CREATE TABLE IF NOT EXISTS duban_audit (
            seq BIGINT PRIMARY KEY, at TEXT NOT NULL, stream TEXT NOT NULL, type TEXT NOT NULL, request_id TEXT NOT NULL, principal TEXT,
            principal_key TEXT, role TEXT NOT NULL, actor TEXT, unit TEXT, summary TEXT NOT NULL, digest TEXT NOT NULL, prev TEXT NOT NULL,
            hash TEXT NOT NULL)
        """,
        """
        CREATE OR REPLACE FUNCTION duban_audit_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$ LANGUAGE plpgsql
        """,
        """
        CREATE OR REPLACE TRIGGER duban_audit_append_only BEFORE UPDATE OR DELETE ON duban_audit
        FOR EACH ROW EXECUTE FUNCTION duban_audit_append_only()
        """,
    ]

    func setPublisher(_ publish: @escaping @Sendable (String, Data) -> Void) {
        publisher.withLock { $0 = publish }
    }

    func heads() async throws -> [String: Int] {
        var heads = [stream: 0]
        for try await (name, head) in try await client.query("SELECT stream, MAX(seq) FROM duban_events GROUP BY stream", logger: logger)
            .decode((String, Int64).self)
        {
            heads[name] = Int(head)
        }
        return heads
    }

    func events(stream: String, after: Int, limit: Int) async throws -> (envelopes: [Data], head: Int)? {
        var head: Int64?
        for try await value in try await client.query("SELECT MAX(seq) FROM duban_events WHERE stream = \(stream)", logger: logger).decode(
            Int64?.self)
        {
            head = value
        }
        guard head != nil || stream == self.stream else { return nil }
        var envelopes: [Data] = []
        let rows = try await client.query(
            "SELECT envelope FROM duban_events WHERE stream = \(stream) AND seq > \(Int64(after)) ORDER BY seq LIMIT \(Int64(limit))",
            logger: logger)
        for try await envelope in rows.decode(Data.self) { envelopes.append(envelope) }
        return (envelopes, Int(head ?? 0))
    }

    func storedReply(forKey key: String) async throws -> StoredReply? {
        let rows = try await client.query("SELECT type, fingerprint, ok, payload FROM duban_idempotency WHERE key = \(key)", logger: logger)
        for try await (type, fingerprint, ok, payload) in rows.decode((String, String, Bool, Data).self) {
            return StoredReply(type: type, fingerprint: fingerprint, ok: ok, payload: payload)
        }
        return nil
    }

    func remember(key: String, reply: StoredReply) async throws {
        try await client.query(
            """
            INSERT INTO duban_idempotency (key, type, fingerprint, ok, payload, created_at)
            VALUES (\(key), \(reply.type), \(reply.fingerprint), \(reply.ok), \(reply.payload), \(Date().timeIntervalSince1970))
            ON CONFLICT (key) DO NOTHING
            """, logger: logger)
    }

    func keysHeld() async throws -> Int {
        let rows = try await client.query("SELECT COUNT(*)::BIGINT FROM duban_idempotency", logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    func purgeExpiredKeys(now: Date) async throws -> Int {
        var removed = 0
        let rows = try await client.query(
            "DELETE FROM duban_idempotency WHERE created_at < \(now.timeIntervalSince1970 - idempotencyKeyRetention) RETURNING key",
            logger: logger)
        for try await _ in rows.decode(String.self) { removed += 1 }
        return removed
    }

    func auditEntries(_ request: AuditListRequest) async throws -> [AuditEntry] {
        let limit = request.limit ?? 1000
        guard (1...5000).contains(limit) else { throw ErrorBody.invalidArgument("limit 应在 1 到 5000 之间", field: "body.limit") }
        var since = ""
        var until = "\u{10FFFF}"
        for (value, field) in [(request.since, "body.since"), (request.until, "body.until")] {
            guard let value else { continue }
            guard let instant = Timestamp.parse(value) ?? Timestamp.startOfDistrictDay(value) else {
                throw ErrorBody.invalidArgument("应为 RFC 3339 时间或 YYYY-MM-DD 日期", field: field)
            }
            if field == "body.since" { since = Timestamp.format(instant) } else { until = Timestamp.format(instant) }
        }
        var entries: [AuditEntry] = []
        let rows = try await client.query(
            """
            SELECT seq, at, stream, type, request_id, principal, principal_key, role, actor, unit, summary, digest, prev, hash \
            FROM duban_audit WHERE seq > \(Int64(request.after ?? 0)) AND at >= \(since) AND at < \(until) \
            AND (CAST(\(request.unit) AS TEXT) IS NULL OR unit = \(request.unit)) \
            AND (CAST(\(request.principal) AS TEXT) IS NULL OR principal = \(request.principal)) \
            AND (CAST(\(request.type) AS TEXT) IS NULL OR type = \(request.type)) ORDER BY seq LIMIT \(Int64(limit))
            """, logger: logger)
        for try await row in rows.decode(
            (Int64, String, String, String, String, String?, String?, String, String?, String?, String, String, String, String).self)
        {
            entries.append(
                AuditEntry(
                    seq: Int(row.0), at: row.1, stream: row.2, type: row.3, requestID: row.4, principal: row.5, principalKey: row.6,
                    role: row.7, actor: row.8, unit: row.9, summary: row.10, digest: row.11, prev: row.12, hash: row.13))
        }
        return entries
    }

    func verifyAudit() async throws -> AuditVerifyReply {
        var entries: [AuditEntry] = []
        var after = 0
        while true {
            let page = try await auditEntries(AuditListRequest(after: after, limit: 5000))
            entries += page
            guard let last = page.last, page.count == 5000 else { break }
            after = last.seq
        }
        let broken = AuditChain.firstBreak(entries)
        return AuditVerifyReply(
            stream: "postgres", entries: entries.count, headSeq: entries.last?.seq ?? 0, headHash: entries.last?.hash ?? AuditEntry.genesis,
            ok: broken == nil, firstBad: broken?.seq, problem: broken?.problem)
    }

    /// Runs `body` in one transaction; events it emits are logged in it, and for a keyed request the
    /// reply is remembered in it. Published after commit.
    func transaction<Reply: Encodable & Sendable>(
        context: RequestContext?, _ body: @Sendable (PostgresConnection, inout EventBuffer) async throws -> Reply
    ) async throws -> Reply {
        let stream = self.stream
        let origin = self.origin
        let logger = self.logger
        let (reply, published) = try await client.withTransaction(logger: logger) { connection -> (Reply, [(String, Data)]) in
            var buffer = EventBuffer()
            let reply = try await body(connection, &buffer)
            var published: [(String, Data)] = []
            if !buffer.items.isEmpty {
                // One writer per stream at a time, so `seq` stays contiguous across this instance's concurrent work.
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(stream)))", logger: logger)
                var head: Int64 = 0
                for try await value in try await connection.query(
                    "SELECT COALESCE(MAX(seq), 0) FROM duban_events WHERE stream = \(stream)", logger: logger
                )
                .decode(Int64.self) { head = value }
                let ts = Timestamp.now()
                for item in buffer.items {
                    head += 1
                    let id = MessageID.next()
                    let envelope = EnvelopeWriter.event(
                        id: id, type: item.type, ts: ts, from: origin, stream: stream, seq: Int(head), body: item.body)
                    try await connection.query(
                        """
                        INSERT INTO duban_events (stream, seq, type, id, ts, envelope) \
                        VALUES (\(stream), \(head), \(item.type), \(id), \(ts), \(envelope))
                        """,
                        logger: logger)
                    published.append((item.type, envelope))
                }
            }
            if let context {
                // Who changed what, in the change's own transaction; one appender at a time keeps the chain whole.
                try await connection.query("SELECT pg_advisory_xact_lock(7201002)", logger: logger)
                var last: (Int64, String)?
                for try await row in try await connection.query(
                    "SELECT seq, hash FROM duban_audit ORDER BY seq DESC LIMIT 1", logger: logger
                )
                .decode((Int64, String).self) {
                    last = row
                }
                let entry = AuditTrail.makeEntry(context: context, stream: stream, lastSeq: Int(last?.0 ?? 0), lastHash: last?.1)
                try await connection.query(
                    """
                    INSERT INTO duban_audit (seq, at, stream, type, request_id, principal, principal_key, role, actor, unit, summary, \
                    digest, prev, hash) VALUES (\(Int64(entry.seq)), \(entry.at), \(entry.stream), \(entry.type), \(entry.requestID), \
                    \(entry.principal), \(entry.principalKey), \(entry.role), \(entry.actor), \(entry.unit), \(entry.summary), \
                    \(entry.digest), \(entry.prev), \(entry.hash))
                    """, logger: logger)
            }
            if let context, let idempotency = context.idempotency {
                let payload = try WireCoding.encode(reply)
                var claimed = false
                // Another instance handling a retry of the same request waits here for that one to finish, then finds the key taken.
                for try await _ in try await connection.query(
                    """
                    INSERT INTO duban_idempotency (key, type, fingerprint, ok, payload, created_at)
                    VALUES (\(idempotency.key), \(context.type), \(idempotency.fingerprint), true, \
                    \(payload), \(Date().timeIntervalSince1970))
                    ON CONFLICT (key) DO NOTHING RETURNING key
                    """, logger: logger
                ).decode(String.self) { claimed = true }
                guard claimed else {
                    throw ErrorBody.unavailable("该请求正由另一实例处理，请稍后用同一 key 重试")
                }
            }
            return (reply, published)
        }
        context?.markReplyRemembered()
        if let publish = publisher.withLock({ $0 }) {
            for (topic, envelope) in published { publish(topic, envelope) }
        }
        return reply
    }
}

/// Ingestion's data in PostgreSQL, for several instances behind a broker.
final class PostgresIngestStore: IngestStore {
    let storage: PostgresEventStorage
    var eventStorage: any EventStorage { storage }
    var client: PostgresClient { storage.client }
    var logger: Logger { storage.logger }

    init(storage: PostgresEventStorage) { self.storage = storage }

    func submit(
        _ readings: [NormalizedReading], rejected: [RejectedItem], context: RequestContext,
        dayWindow: @escaping @Sendable (Int64) -> (Int64, Int64),
        evaluate: @escaping AlertEvaluator
    ) async throws -> ReadingSubmitReply {
        let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
        let logger = self.logger
        return try await storage.transaction(context: context) { connection, events in
            var tally = BatchTally(refused: rejected)
            // The newest reading of each series before this batch: only readings after it can change a live alert.
            var prior: [SeriesKey: (ts: Int64, value: Double)] = [:]
            for key in SeriesKey.of(readings) {
                for try await row in try await connection.query(
                    """
                    SELECT ts, value FROM readings WHERE station = \(key.station) AND parameter = \(key.parameter) \
                    AND mark IS NULL ORDER BY ts DESC LIMIT 1
                    """,
                    logger: logger
                ).decode((Int64, Double).self) { prior[key] = row }
            }
            // One statement for the whole batch; what it did not insert already exists.
            var inserted: Set<String> = []
            // Marked readings are rare: a statement of their own, so that plain batches send no more arrays than before.
            let plain = readings.contains { $0.mark != nil } ? readings.filter { $0.mark == nil } : readings
            let marked = plain.count == readings.count ? [] : readings.filter { $0.mark != nil }
            if !plain.isEmpty {
                let rows = try await connection.query(
                    """
                    INSERT INTO readings (station, parameter, ts, value, revision, received_at)
                    SELECT s, p, t, v, 0, \(receivedAt) FROM UNNEST(\(plain.map(\.station)), \(plain.map(\.parameter)), \
                    \(plain.map(\.ts)), \(plain.map(\.value))) AS u(s, p, t, v)
                    ON CONFLICT DO NOTHING RETURNING station, parameter, ts
                    """, logger: logger)
                for try await (station, parameter, ts) in rows.decode((String, String, Int64).self) {
                    inserted.insert("\(station)|\(parameter)|\(ts)")
                }
            }
            if !marked.isEmpty {
                // No value and no limit travel as NaN in the arrays (PostgreSQL's NaN equals NaN) and are stored as NULL.
                let rows = try await connection.query(
                    """
                    INSERT INTO readings (station, parameter, ts, value, revision, received_at, mark, detection_limit)
                    SELECT s, p, t, NULLIF(v, 'NaN'::float8), 0, \(receivedAt), m, NULLIF(l, 'NaN'::float8)
                    FROM UNNEST(\(marked.map(\.station)), \(marked.map(\.parameter)), \(marked.map(\.ts)), \(marked.map(\.value)), \
                    \(marked.map { $0.mark?.rawValue ?? "" }), \(marked.map { $0.detectionLimit ?? .nan })) AS u(s, p, t, v, m, l)
                    ON CONFLICT DO NOTHING RETURNING station, parameter, ts
                    """, logger: logger)
                for try await (station, parameter, ts) in rows.decode((String, String, Int64).self) {
                    inserted.insert("\(station)|\(parameter)|\(ts)")
                }
            }
            // A batch may hold the same key twice: the first is new, the rest compare with it.
            var seenInBatch: [String: StoredState] = [:]
            let missing = readings.filter { !inserted.contains("\($0.station)|\($0.parameter)|\($0.ts)") }
            var existing: [String: StoredState] = [:]
            if !missing.isEmpty {
                let rows = try await connection.query(
                    """
                    SELECT r.station, r.parameter, r.ts, r.value, r.mark, r.detection_limit FROM readings r
                    JOIN UNNEST(\(missing.map(\.station)), \(missing.map(\.parameter)), \(missing.map(\.ts))) AS u(s, p, t)
                    ON r.station = u.s AND r.parameter = u.p AND r.ts = u.t
                    """, logger: logger)
                for try await (station, parameter, ts, value, mark, limit) in rows.decode(
                    (String, String, Int64, Double?, String?, Double?).self)
                {
                    existing["\(station)|\(parameter)|\(ts)"] = StoredState(value: value, mark: mark, detectionLimit: limit)
                }
            }
            for reading in readings {
                let key = "\(reading.station)|\(reading.parameter)|\(reading.ts)"
                if inserted.contains(key), seenInBatch[key] == nil {
                    seenInBatch[key] = StoredState(reading)
                } else {
                    let stored = seenInBatch[key] ?? existing[key] ?? StoredState(value: nil, mark: nil, detectionLimit: nil)
                    if stored.matches(reading) {
                        tally.duplicate()
                        continue
                    }
                    guard reading.revision else {
                        tally.refuseChange(reading, stored: stored)
                        continue
                    }
                    try await connection.query(
                        """
                        UPDATE readings SET value = \(reading.storedValue), mark = \(reading.mark?.rawValue), \
                        detection_limit = \(reading.detectionLimit), revision = revision + 1, received_at = \(receivedAt)
                        WHERE station = \(reading.station) AND parameter = \(reading.parameter) AND ts = \(reading.ts)
                        """, logger: logger)
                    seenInBatch[key] = StoredState(reading)
                }
                tally.stored(reading)
            }
            try tally.emitAccepted(into: &events)
            let series = tally.storedSeries
            // Instances judge alerts one at a time, so two batches cannot both raise the same alert. Taken
            // whenever the batch stored anything, judged or not (a batch of marked readings only): it then
            // logs events under the stream's lock and audits under this one, and this one must come first,
            // as in `apply`, or the two transactions deadlock.
            if tally.accepted > 0 { try await connection.query("SELECT pg_advisory_xact_lock(7201002)", logger: logger) }
            let liveness = tally.livenessBatches
            if !series.isEmpty || !liveness.isEmpty {
                var batches: [SeriesBatch] = liveness
                let offset = Int64(Timestamp.districtOffset)
                for (key, readings) in series {
                    guard let (from, to) = SeriesBatch.dayRange(readings, dayWindow: dayWindow) else { continue }
                    // The days' hourly means, computed by PostgreSQL: up to 24 rows a day instead of every reading.
                    var hourly: [(ts: Int64, value: Double)] = []
                    for try await (hour, mean) in try await connection.query(
                        """
                        SELECT (ts / 1000 + \(offset)) / 3600 AS hour, AVG(\(unescaped: SeriesBatch.statisticSQL)) FROM readings
                        WHERE station = \(key.station) AND parameter = \(key.parameter) AND ts >= \(from) AND ts < \(to) \
                        AND \(unescaped: SeriesBatch.judgedSQL) GROUP BY hour
                        """,
                        logger: logger
                    ).decode((Int64, Double).self) { hourly.append(SeriesBatch.hourSample(hour: hour, mean: mean)) }
                    batches.append(
                        SeriesBatch(
                            station: key.station, parameter: key.parameter, readings: readings, prior: prior[key],
                            days: SeriesBatch.days(touchedBy: readings, hourly: hourly)))
                }
                var active: Set<String> = []
                for try await key in try await connection.query("SELECT key FROM alerts WHERE active", logger: logger).decode(String.self) {
                    active.insert(key)
                }
                let judgement = evaluate(batches, active)
                let recorded = try await Self.record(judgement.findings, at: judgement.at, connection: connection, logger: logger)
                try alertEvents(recorded, into: &events)
                try await Self.apply(judgement.transitions, connection: connection, logger: logger)
                try alertEvents(judgement.transitions, into: &events)
            }
            return tally.reply
        }
    }

    static func apply(_ transitions: [AlertTransition], connection: PostgresConnection, logger: Logger) async throws {
        for transition in transitions {
            let body = String(decoding: try WireCoding.encode(transition.body), as: UTF8.self)
            try await connection.query(
                """
                INSERT INTO alerts (key, active, body, changed_at) \
                VALUES (\(transition.key), \(transition.raise), \(body), \(transition.body.at))
                ON CONFLICT (key) DO UPDATE SET active = EXCLUDED.active, body = EXCLUDED.body, changed_at = EXCLUDED.changed_at
                """, logger: logger)
        }
    }

    /// Records findings as SQLiteIngestStore.record does; returns the raised events of the new ones.
    static func record(_ findings: [FindingDraft], at: String, connection: PostgresConnection, logger: Logger) async throws
        -> [AlertTransition]
    {
        var raised: [AlertTransition] = []
        for finding in findings {
            // `xmax = 0` only for a row this statement inserted.
            for try await inserted in try await connection.query(
                """
                INSERT INTO findings AS f (kind, station, parameter, day, severity, message, value, limit_value, rank, reading_ts, \
                first_ts, last_ts, readings, recorded_at) VALUES (\(finding.kind), \(finding.station), \(finding.parameter), \
                \(finding.day), \(finding.severity), \(finding.message), \(finding.value), \(finding.limit), \(finding.rank), \
                \(finding.readingTs), \(finding.firstTs), \(finding.lastTs), \(finding.readings), \(at))
                ON CONFLICT (kind, station, parameter, day) DO UPDATE SET
                readings = CASE WHEN f.kind = 'limit_exceeded' THEN EXCLUDED.readings ELSE f.readings + EXCLUDED.readings END,
                first_ts = LEAST(f.first_ts, EXCLUDED.first_ts), last_ts = GREATEST(f.last_ts, EXCLUDED.last_ts),
                severity = CASE WHEN EXCLUDED.rank > f.rank THEN EXCLUDED.severity ELSE f.severity END,
                message = CASE WHEN EXCLUDED.rank > f.rank THEN EXCLUDED.message ELSE f.message END,
                value = CASE WHEN EXCLUDED.rank > f.rank THEN EXCLUDED.value ELSE f.value END,
                limit_value = CASE WHEN EXCLUDED.rank > f.rank THEN EXCLUDED.limit_value ELSE f.limit_value END,
                reading_ts = CASE WHEN EXCLUDED.rank > f.rank THEN EXCLUDED.reading_ts ELSE f.reading_ts END,
                rank = GREATEST(f.rank, EXCLUDED.rank)
                RETURNING (xmax = 0)
                """, logger: logger
            ).decode(Bool.self) where inserted {
                raised.append(AlertTransition(key: finding.alert, raise: true, body: finding.body(at: at)))
            }
        }
        return raised
    }

    func findings(_ request: FindingListRequest) async throws -> [Finding] {
        let (from, to, limit) = try request.checked()
        var out: [Finding] = []
        let rows = try await client.query(
            """
            SELECT kind, station, parameter, day, severity, message, value, limit_value, reading_ts, first_ts, last_ts, readings, \
            recorded_at FROM findings WHERE day >= \(from) AND day <= \(to) \
            AND (\(request.station)::TEXT IS NULL OR station = \(request.station)) \
            AND (\(request.parameter)::TEXT IS NULL OR parameter = \(request.parameter)) \
            ORDER BY day, kind, station, parameter LIMIT \(Int64(limit))
            """, logger: logger)
        for try await row in rows.decode(
            (String, String, String, String, String, String, Double, Double?, Int64, Int64, Int64, Int32, String).self)
        {
            out.append(
                FindingDraft.listed(
                    kind: row.0, station: row.1, parameter: row.2, day: row.3, severity: row.4, message: row.5, value: row.6, limit: row.7,
                    readingTs: row.8, firstTs: row.9, lastTs: row.10, readings: Int(row.11), recordedAt: row.12))
        }
        return out
    }

    func samples(station: String, parameters: [String]?, from: Int64, to: Int64) async throws -> [StoredSample] {
        var out: [StoredSample] = []
        // The parameters filtered by PostgreSQL, along the primary key (station, parameter, ts): the
        // PM2.5 annual mean would otherwise fetch a year of every parameter of the station.
        let query: PostgresQuery =
            if let parameters {
                """
                SELECT parameter, ts, value, mark, detection_limit FROM readings \
                WHERE station = \(station) AND parameter = ANY(\(parameters)) AND ts >= \(from) AND ts <= \(to) ORDER BY ts
                """
            } else {
                """
                SELECT parameter, ts, value, mark, detection_limit FROM readings \
                WHERE station = \(station) AND ts >= \(from) AND ts <= \(to) ORDER BY ts
                """
            }
        let rows = try await client.query(query, logger: logger)
        for try await (parameter, ts, value, mark, limit) in rows.decode((String, Int64, Double?, String?, Double?).self) {
            out.append(
                StoredSample(
                    parameter: parameter, ts: ts, value: value ?? .nan, mark: mark.flatMap(ReadingMark.init(rawValue:)),
                    detectionLimit: limit))
        }
        return out
    }

    func latestTimes() async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for try await (station, ts) in try await client.query("SELECT station, MAX(ts) FROM readings GROUP BY station", logger: logger)
            .decode((String, Int64).self)
        {
            out[station] = ts
        }
        return out
    }

    func activeAlerts() async throws -> Set<String> {
        var out: Set<String> = []
        for try await key in try await client.query("SELECT key FROM alerts WHERE active", logger: logger).decode(String.self) {
            out.insert(key)
        }
        return out
    }

    func apply(_ transitions: [AlertTransition]) async throws {
        guard !transitions.isEmpty else { return }
        let logger = self.logger
        _ = try await storage.transaction(context: nil) { connection, events -> Empty in
            try await connection.query("SELECT pg_advisory_xact_lock(7201002)", logger: logger)
            try await Self.apply(transitions, connection: connection, logger: logger)
            try alertEvents(transitions, into: &events)
            return Empty()
        }
    }

    func indicatorValues(_ indicator: String) async throws -> [IndicatorValue] {
        try await Self.values(indicator, query: { try await self.client.query($0, logger: self.logger) })
    }

    static func values(_ indicator: String, query: (PostgresQuery) async throws -> PostgresRowSequence) async throws -> [IndicatorValue] {
        var out: [IndicatorValue] = []
        let rows = try await query(
            "SELECT period, value, source, note, reported_at, provisional FROM indicator_values WHERE indicator = \(indicator)")
        for try await (period, value, source, note, reportedAt, provisional) in rows.decode(
            (String, String, String, String?, String, Bool).self)
        {
            out.append(
                IndicatorValue(
                    period: period, value: (try? JSONDecoder().decode(JSONValue.self, from: Data(value.utf8))) ?? .null, source: source,
                    note: note,
                    reportedAt: reportedAt, provisional: provisional))
        }
        return out.sorted { (IndicatorPeriod.end($0.period) ?? "") < (IndicatorPeriod.end($1.period) ?? "") }
    }

    func record(_ value: IndicatorValue, for definition: IndicatorDefinition, alerts: [AlertTransition], context: RequestContext?)
        async throws
        -> IndicatorValue
    {
        let logger = self.logger
        return try await storage.transaction(context: context) { connection, events in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(definition.id)))", logger: logger)
            let before = SQLiteIngestStore.latest(
                try await Self.values(definition.id, query: { try await connection.query($0, logger: logger) }))
            let encoded = String(decoding: try WireCoding.canonical(value.value), as: UTF8.self)
            try await connection.query(
                """
                INSERT INTO indicator_values (indicator, period, value, source, note, reported_at, provisional)
                VALUES (\(definition.id), \(value.period), \(encoded), \(value.source), \(value.note), \
                \(value.reportedAt ?? Timestamp.now()), \(value.provisional == true))
                ON CONFLICT (indicator, period) DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source, note = EXCLUDED.note,
                reported_at = EXCLUDED.reported_at, provisional = EXCLUDED.provisional
                """, logger: logger)
            let after = SQLiteIngestStore.latest(
                try await Self.values(definition.id, query: { try await connection.query($0, logger: logger) }))
            if let after, after.value != before?.value || after.period != before?.period || after.provisional != before?.provisional {
                try events.emit(
                    IngestTypes.indicatorUpdated,
                    IndicatorUpdated(
                        indicator: definition.id, period: after.period, value: after.value,
                        attainment: definition.attainment(of: after),
                        previousAttainment: before.map { definition.attainment(of: $0) }, source: after.source,
                        tasks: definition.target.tasks))
            }
            if !alerts.isEmpty {
                try await connection.query("SELECT pg_advisory_xact_lock(7201002)", logger: logger)
                try await Self.apply(alerts, connection: connection, logger: logger)
                try alertEvents(alerts, into: &events)
            }
            return value
        }
    }
}
