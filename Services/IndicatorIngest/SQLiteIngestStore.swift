import Foundation
import GRDB
import Schema
import ServiceKit

/// Ingestion's data in the instance's SQLite database (the single-instance default).
final class SQLiteIngestStore: IngestStore {
    let store: ServiceStore
    var eventStorage: any EventStorage { store }

    init(store: ServiceStore) { self.store = store }

    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("ingest-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE readings (
                        station TEXT NOT NULL,
                        parameter TEXT NOT NULL,
                        ts INTEGER NOT NULL,
                        value REAL NOT NULL,
                        revision INTEGER NOT NULL DEFAULT 0,
                        received_at INTEGER NOT NULL,
                        PRIMARY KEY (station, parameter, ts)
                    ) WITHOUT ROWID;
                    CREATE TABLE indicator_values (
                        indicator TEXT NOT NULL,
                        period TEXT NOT NULL,
                        value TEXT NOT NULL,
                        source TEXT NOT NULL,
                        note TEXT,
                        reported_at TEXT NOT NULL,
                        PRIMARY KEY (indicator, period)
                    );
                    CREATE TABLE alerts (
                        key TEXT PRIMARY KEY NOT NULL,
                        active INTEGER NOT NULL,
                        body TEXT NOT NULL,
                        changed_at TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("ingest-v2-findings") { db in
            // Historical findings: one per kind, series and district day (`limit` is a keyword, hence `limit_value`).
            try db.execute(
                sql: """
                    CREATE TABLE findings (
                        kind TEXT NOT NULL,
                        station TEXT NOT NULL,
                        parameter TEXT NOT NULL,
                        day TEXT NOT NULL,
                        severity TEXT NOT NULL,
                        message TEXT NOT NULL,
                        value REAL NOT NULL,
                        limit_value REAL,
                        rank REAL NOT NULL,
                        reading_ts INTEGER NOT NULL,
                        first_ts INTEGER NOT NULL,
                        last_ts INTEGER NOT NULL,
                        readings INTEGER NOT NULL,
                        recorded_at TEXT NOT NULL,
                        PRIMARY KEY (kind, station, parameter, day)
                    );
                    CREATE INDEX findings_day ON findings(day);
                    """)
        }
        migrator.registerMigration("ingest-v3-provisional") { db in
            // A value that cannot yet be valid under its standard (GB 3095's data validity): shown, not judged.
            try db.execute(sql: "ALTER TABLE indicator_values ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("ingest-v4-marks") { db in
            // Quality marks (below detection with its limit; 维护, 校准, 停运). A status-marked reading may
            // have no value, and SQLite cannot drop a NOT NULL: the table is rebuilt, every row kept.
            try db.execute(
                sql: """
                    CREATE TABLE readings_marked (
                        station TEXT NOT NULL,
                        parameter TEXT NOT NULL,
                        ts INTEGER NOT NULL,
                        value REAL,
                        revision INTEGER NOT NULL DEFAULT 0,
                        received_at INTEGER NOT NULL,
                        mark TEXT,
                        detection_limit REAL,
                        PRIMARY KEY (station, parameter, ts)
                    ) WITHOUT ROWID;
                    INSERT INTO readings_marked (station, parameter, ts, value, revision, received_at)
                        SELECT station, parameter, ts, value, revision, received_at FROM readings;
                    DROP TABLE readings;
                    ALTER TABLE readings_marked RENAME TO readings;
                    """)
        }
    }

    func submit(
        _ readings: [NormalizedReading], rejected: [RejectedItem], context: RequestContext,
        dayWindow: @escaping @Sendable (Int64) -> (Int64, Int64),
        evaluate: @escaping AlertEvaluator
    ) async throws -> ReadingSubmitReply {
        let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
        return try await context.write { db, events in
            var tally = BatchTally(refused: rejected)
            // The batch's receipt time is the same for every row: written into the statement, so each
            // row binds only its own four values.
            var insert = PlainReadingInsert(
                try db.makeStatement(
                    sql:
                        "INSERT INTO readings (station, parameter, ts, value, revision, received_at) "
                        + "VALUES (?, ?, ?, ?, 0, \(receivedAt)) ON CONFLICT DO NOTHING"
                ),
                in: db)
            // Marked readings are rare: their own statement, so that a plain one binds no more than before.
            let insertMarked = try db.cachedStatement(
                sql:
                    "INSERT INTO readings (station, parameter, ts, value, revision, received_at, mark, detection_limit) "
                    + "VALUES (?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT DO NOTHING"
            )
            let existing = try db.cachedStatement(
                sql: "SELECT value, mark, detection_limit FROM readings WHERE station = ? AND parameter = ? AND ts = ?")
            let revise = try db.cachedStatement(
                sql:
                    "UPDATE readings SET value = ?, mark = ?, detection_limit = ?, revision = revision + 1, received_at = ? "
                    + "WHERE station = ? AND parameter = ? AND ts = ?"
            )
            // The newest reading of each series before this batch: only readings after it can change a live alert.
            var prior: [SeriesKey: (ts: Int64, value: Double)] = [:]
            for key in SeriesKey.of(readings) {
                if let row = try Row.fetchOne(
                    db,
                    sql: "SELECT ts, value FROM readings WHERE station = ? AND parameter = ? AND mark IS NULL ORDER BY ts DESC LIMIT 1",
                    arguments: [key.station, key.parameter])
                {
                    prior[key] = (row[0], row[1])
                }
            }
            for reading in readings {
                let inserted: Bool
                if let mark = reading.mark {
                    try insertMarked.execute(arguments: [
                        reading.station, reading.parameter, reading.ts, reading.storedValue, receivedAt, mark.rawValue,
                        reading.detectionLimit,
                    ])
                    inserted = db.changesCount > 0
                } else {
                    inserted = try insert.insert(
                        station: reading.station, parameter: reading.parameter, ts: reading.ts, value: reading.value)
                }
                if !inserted {
                    let row = try Row.fetchOne(existing, arguments: [reading.station, reading.parameter, reading.ts])
                    let stored = StoredState(value: row?[0], mark: row?[1], detectionLimit: row?[2])
                    if stored.matches(reading) {
                        tally.duplicate()
                        continue
                    }
                    guard reading.revision else {
                        tally.refuseChange(reading, stored: stored)
                        continue
                    }
                    try revise.execute(arguments: [
                        reading.storedValue, reading.mark?.rawValue, reading.detectionLimit, receivedAt, reading.station, reading.parameter,
                        reading.ts,
                    ])
                }
                tally.stored(reading)
            }
            try tally.emitAccepted(into: &events)
            var batches: [SeriesBatch] = []
            for (key, series) in tally.storedSeries {
                guard let (from, to) = SeriesBatch.dayRange(series, dayWindow: dayWindow) else { continue }
                // The days' hourly means, computed by SQLite: up to 24 rows a day instead of every reading.
                let hourly = try HourlyMeans.read(
                    db, station: key.station, parameter: key.parameter, from: from, to: to, offsetSeconds: Int64(Timestamp.districtOffset)
                ).map { SeriesBatch.hourSample(hour: $0.hour, mean: $0.mean) }
                batches.append(
                    SeriesBatch(
                        station: key.station, parameter: key.parameter, readings: series, prior: prior[key],
                        days: SeriesBatch.days(touchedBy: series, hourly: hourly)))
            }
            batches += tally.livenessBatches
            if !batches.isEmpty {
                let active = Set(try String.fetchAll(db, sql: "SELECT key FROM alerts WHERE active = 1"))
                let judgement = evaluate(batches, active)
                let recorded = try Self.record(judgement.findings, at: judgement.at, db: db)
                try alertEvents(recorded, into: &events)
                try Self.apply(judgement.transitions, db: db)
                try alertEvents(judgement.transitions, into: &events)
            }
            return tally.reply
        }
    }

    static func apply(_ transitions: [AlertTransition], db: Database) throws {
        for transition in transitions {
            try db.execute(
                sql: "INSERT OR REPLACE INTO alerts (key, active, body, changed_at) VALUES (?, ?, ?, ?)",
                arguments: [
                    transition.key, transition.raise, String(decoding: try WireCoding.encode(transition.body), as: UTF8.self),
                    transition.body.at,
                ])
        }
    }

    /// Records findings: a new one is inserted and published; one already recorded for its day takes
    /// the new readings in silently (the worst exceedance kept). Returns the raised events of the new ones.
    static func record(_ findings: [FindingDraft], at: String, db: Database) throws -> [AlertTransition] {
        var raised: [AlertTransition] = []
        for finding in findings {
            try db.execute(
                sql: """
                    INSERT INTO findings (kind, station, parameter, day, severity, message, value, limit_value, rank, reading_ts,
                    first_ts, last_ts, readings, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: [
                    finding.kind, finding.station, finding.parameter, finding.day, finding.severity, finding.message, finding.value,
                    finding.limit, finding.rank, finding.readingTs, finding.firstTs, finding.lastTs, finding.readings, at,
                ])
            if db.changesCount > 0 {
                raised.append(AlertTransition(key: finding.alert, raise: true, body: finding.body(at: at)))
                continue
            }
            // A daily mean is judged again as its day fills: the count is the day's hours, not a sum.
            try db.execute(
                sql: """
                    UPDATE findings SET
                    readings = CASE WHEN kind = 'limit_exceeded' THEN :readings ELSE readings + :readings END,
                    first_ts = MIN(first_ts, :first), last_ts = MAX(last_ts, :last),
                    severity = CASE WHEN :rank > rank THEN :severity ELSE severity END,
                    message = CASE WHEN :rank > rank THEN :message ELSE message END,
                    value = CASE WHEN :rank > rank THEN :value ELSE value END,
                    limit_value = CASE WHEN :rank > rank THEN :limit ELSE limit_value END,
                    reading_ts = CASE WHEN :rank > rank THEN :ts ELSE reading_ts END,
                    rank = MAX(rank, :rank)
                    WHERE kind = :kind AND station = :station AND parameter = :parameter AND day = :day
                    """,
                arguments: [
                    "readings": finding.readings, "first": finding.firstTs, "last": finding.lastTs, "rank": finding.rank,
                    "severity": finding.severity, "message": finding.message, "value": finding.value, "limit": finding.limit,
                    "ts": finding.readingTs, "kind": finding.kind, "station": finding.station, "parameter": finding.parameter,
                    "day": finding.day,
                ])
        }
        return raised
    }

    func findings(_ request: FindingListRequest) async throws -> [Finding] {
        let (from, to, limit) = try request.checked()
        return try await store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM findings WHERE day >= ? AND day <= ? AND (? IS NULL OR station = ?) AND (? IS NULL OR parameter = ?)
                    ORDER BY day, kind, station, parameter LIMIT ?
                    """,
                arguments: [from, to, request.station, request.station, request.parameter, request.parameter, limit]
            ).map { (row: Row) -> Finding in
                let limit: Double? = row["limit_value"]
                let times: (Int64, Int64, Int64) = (row["reading_ts"], row["first_ts"], row["last_ts"])
                return FindingDraft.listed(
                    kind: row["kind"] as String, station: row["station"] as String, parameter: row["parameter"] as String,
                    day: row["day"] as String, severity: row["severity"] as String, message: row["message"] as String,
                    value: row["value"] as Double, limit: limit, readingTs: times.0, firstTs: times.1, lastTs: times.2,
                    readings: row["readings"] as Int, recordedAt: row["recorded_at"] as String)
            }
        }
    }

    func samples(station: String, parameters: [String]?, from: Int64, to: Int64) async throws -> [StoredSample] {
        try await store.pool.read { db in
            guard let parameters else { return try SampleRows.read(db, station: station, parameter: nil, from: from, to: to) }
            // Each parameter read along the primary key (station, parameter, ts): a station-wide
            // scan would read every other parameter's rows only to drop them (the PM2.5 annual mean
            // read a year of all six of an air station's parameters).
            var samples: [StoredSample] = []
            for parameter in Set(parameters).sorted() {
                samples += try SampleRows.read(db, station: station, parameter: parameter, from: from, to: to)
            }
            if parameters.count > 1 { samples.sort { $0.ts < $1.ts } }
            return samples
        }
    }

    func latestTimes() async throws -> [String: Int64] {
        try await store.pool.read { db in
            var out: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT station, MAX(ts) AS ts FROM readings GROUP BY station") {
                out[row["station"]] = row["ts"]
            }
            return out
        }
    }

    func activeAlerts() async throws -> Set<String> {
        Set(try await store.pool.read { try String.fetchAll($0, sql: "SELECT key FROM alerts WHERE active = 1") })
    }

    func apply(_ transitions: [AlertTransition]) async throws {
        guard !transitions.isEmpty else { return }
        try await store.write { db, events in
            try Self.apply(transitions, db: db)
            try alertEvents(transitions, into: &events)
        }
    }

    func indicatorValues(_ indicator: String) async throws -> [IndicatorValue] {
        try await store.pool.read { db in try Self.values(db, indicator) }
    }

    static func values(_ db: Database, _ indicator: String) throws -> [IndicatorValue] {
        try Row.fetchAll(db, sql: "SELECT * FROM indicator_values WHERE indicator = ?", arguments: [indicator]).map {
            IndicatorValue(
                period: $0["period"], value: (try? JSONDecoder().decode(JSONValue.self, from: Data(($0["value"] as String).utf8))) ?? .null,
                source: $0["source"], note: $0["note"], reportedAt: $0["reported_at"], provisional: (($0["provisional"] as Bool?) ?? false))
        }.sorted { (IndicatorPeriod.end($0.period) ?? "") < (IndicatorPeriod.end($1.period) ?? "") }
    }

    func record(_ value: IndicatorValue, for definition: IndicatorDefinition, alerts: [AlertTransition], context: RequestContext?)
        async throws
        -> IndicatorValue
    {
        let body: @Sendable (Database, inout EventBuffer) throws -> IndicatorValue = { db, events in
            let before = Self.latest(try Self.values(db, definition.id))
            try db.execute(
                sql:
                    "INSERT OR REPLACE INTO indicator_values (indicator, period, value, source, note, reported_at, provisional) "
                    + "VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    definition.id, value.period, String(decoding: try WireCoding.canonical(value.value), as: UTF8.self), value.source,
                    value.note,
                    value.reportedAt, value.provisional == true,
                ])
            let after = Self.latest(try Self.values(db, definition.id))
            if let after, after.value != before?.value || after.period != before?.period || after.provisional != before?.provisional {
                try events.emit(
                    IngestTypes.indicatorUpdated,
                    IndicatorUpdated(
                        indicator: definition.id, period: after.period, value: after.value,
                        attainment: definition.attainment(of: after),
                        previousAttainment: before.map { definition.attainment(of: $0) }, source: after.source,
                        tasks: definition.target.tasks))
            }
            try Self.apply(alerts, db: db)
            try alertEvents(alerts, into: &events)
            return value
        }
        if let context { return try await context.write(body) }
        return try await store.write(body)
    }
}
