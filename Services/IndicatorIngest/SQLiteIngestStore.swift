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
            let insert = try db.makeStatement(
                sql:
                    "INSERT INTO readings (station, parameter, ts, value, revision, received_at) "
                    + "VALUES (?, ?, ?, ?, 0, \(receivedAt)) ON CONFLICT DO NOTHING"
            )
            let existing = try db.cachedStatement(sql: "SELECT value FROM readings WHERE station = ? AND parameter = ? AND ts = ?")
            let revise = try db.cachedStatement(
                sql:
                    "UPDATE readings SET value = ?, revision = revision + 1, received_at = ? WHERE station = ? AND parameter = ? AND ts = ?"
            )
            for reading in readings {
                try insert.execute(arguments: [reading.station, reading.parameter, reading.ts, reading.value])
                if db.changesCount == 0 {
                    let stored = try Double.fetchOne(existing, arguments: [reading.station, reading.parameter, reading.ts]) ?? .nan
                    if BatchTally.same(stored, reading.value) {
                        tally.duplicate()
                        continue
                    }
                    guard reading.revision else {
                        tally.refuseChange(reading, stored: stored)
                        continue
                    }
                    try revise.execute(arguments: [reading.value, receivedAt, reading.station, reading.parameter, reading.ts])
                }
                tally.stored(reading)
            }
            try tally.emitAccepted(into: &events)
            var changes: [SeriesChange] = []
            for (station, parameters) in tally.series.sorted(by: { $0.key < $1.key }) {
                for parameter in parameters.sorted() {
                    let rows = try Row.fetchAll(
                        db, sql: "SELECT ts, value FROM readings WHERE station = ? AND parameter = ? ORDER BY ts DESC LIMIT 2",
                        arguments: [station, parameter]
                    ).map { ($0["ts"] as Int64, $0["value"] as Double) }
                    guard let newest = rows.first else { continue }
                    let (dayStart, dayEnd) = dayWindow(newest.0)
                    // The day's hourly means, computed by SQLite: up to 24 rows instead of every reading of the day.
                    let daySamples = try Row.fetchAll(
                        db, sql: SeriesChange.hourlyMeansSQL,
                        arguments: [Int64(Timestamp.districtOffset), station, parameter, dayStart, dayEnd]
                    ).map { SeriesChange.hourSample(hour: $0[0], mean: $0[1]) }
                    if let change = SeriesChange.from(
                        station: station, parameter: parameter, newestTwo: rows, daySamples: daySamples, batch: readings)
                    {
                        changes.append(change)
                    }
                }
            }
            if !changes.isEmpty {
                let active = Set(try String.fetchAll(db, sql: "SELECT key FROM alerts WHERE active = 1"))
                let transitions = evaluate(changes, active)
                try Self.apply(transitions, db: db)
                try alertEvents(transitions, into: &events)
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

    func samples(station: String, parameters: [String]?, from: Int64, to: Int64) async throws -> [StoredSample] {
        try await store.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT parameter, ts, value FROM readings WHERE station = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                arguments: [station, from, to]
            ).compactMap { row in
                let parameter: String = row["parameter"]
                if let parameters, !parameters.contains(parameter) { return nil }
                return StoredSample(parameter: parameter, ts: row["ts"], value: row["value"])
            }
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
                source: $0["source"], note: $0["note"], reportedAt: $0["reported_at"])
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
                    "INSERT OR REPLACE INTO indicator_values (indicator, period, value, source, note, reported_at) "
                    + "VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    definition.id, value.period, String(decoding: try WireCoding.canonical(value.value), as: UTF8.self), value.source,
                    value.note,
                    value.reportedAt,
                ])
            let after = Self.latest(try Self.values(db, definition.id))
            if let after, after.value != before?.value || after.period != before?.period {
                try events.emit(
                    IngestTypes.indicatorUpdated,
                    IndicatorUpdated(
                        indicator: definition.id, period: after.period, value: after.value,
                        attainment: definition.attainment(of: after.value),
                        previousAttainment: before.map { definition.attainment(of: $0.value) }, source: after.source,
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
