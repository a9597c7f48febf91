import DubanTesting
import Foundation
import GRDB
import Schema
import ServiceKit
import Testing

@testable import IndicatorIngest

/// The statements ingestion drives through SQLite's C API give what the plain SQL gave: the same
/// hourly means as the `GROUP BY` query, the same samples as a `Row` read, and an insert that tells
/// a new row from a stored one.
@Suite struct BatchStatementsTests {
    static func store() throws -> ServiceStore {
        try ServiceStore(
            path: "\(try TestSupport.temporaryDirectory("batch-statements"))/ingest.sqlite", stream: "ingest", origin: "ingest",
            migrations: SQLiteIngestStore.migrations)
    }

    /// Three series over three district days, a reading every 7 minutes with gaps, some of them
    /// below detection (with and without a limit) or status-marked (with and without a value).
    static func fill(_ store: ServiceStore, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let start = Int64(Timestamp.parse("2026-03-01T00:00:00+08:00")!.timeIntervalSince1970 * 1000)
        try store.pool.write { db in
            for (station, parameter) in [("liuyiqiao", "nh3n"), ("liuyiqiao", "codmn"), ("chengzhong_air", "pm25")] {
                for step in 0..<(3 * 24 * 60 / 7) where Int.random(in: 0..<10, using: &generator) > 0 {
                    let ts = start + Int64(step) * 7 * 60_000
                    let value = Double.random(in: 0...80, using: &generator).rounded(toPlaces: 3)
                    let (mark, stored, limit): (String?, Double?, Double?) =
                        switch Int.random(in: 0..<20, using: &generator) {
                        case 0: ("below_detection", 0.02, 0.02)
                        case 1: ("below_detection", nil, nil)
                        case 2: ("maintenance", nil, nil)
                        case 3: ("calibration", value, nil)
                        default: (nil, value, nil)
                        }
                    try db.execute(
                        sql: """
                            INSERT INTO readings (station, parameter, ts, value, revision, received_at, mark, detection_limit)
                            VALUES (?, ?, ?, ?, 0, 0, ?, ?)
                            """,
                        arguments: [station, parameter, ts, stored, mark, limit])
                }
            }
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func hourlyMeansAreThoseOfTheGroupedQuery(seed: UInt64) throws {
        let store = try Self.store()
        try Self.fill(store, seed: seed)
        let offset = Int64(Timestamp.districtOffset)
        let from = Int64(Timestamp.parse("2026-03-01T00:00:00+08:00")!.timeIntervalSince1970 * 1000)
        let to = Int64(Timestamp.parse("2026-03-03T00:00:00+08:00")!.timeIntervalSince1970 * 1000)
        try store.pool.read { db in
            for (station, parameter) in [("liuyiqiao", "nh3n"), ("chengzhong_air", "pm25"), ("chengzhong_air", "so2")] {
                let grouped = try Row.fetchAll(
                    db, sql: SeriesBatch.hourlyMeansSQL, arguments: [offset, station, parameter, from, to]
                ).compactMap { row -> (Int64, Double)? in
                    guard let mean = row[1] as Double? else { return nil }
                    return (row[0], mean)
                }
                let summed = try HourlyMeans.read(db, station: station, parameter: parameter, from: from, to: to, offsetSeconds: offset)
                #expect(summed.count == grouped.count, "\(station) \(parameter)")
                for (mine, theirs) in zip(summed, grouped) {
                    #expect(mine.hour == theirs.0)
                    #expect(abs(mine.mean - theirs.1) <= 1e-9 * max(1, abs(theirs.1)), "hour \(mine.hour): \(mine.mean) \(theirs.1)")
                }
                if parameter != "so2" { #expect(summed.count > 40) }
            }
        }
    }

    @Test func samplesAreThoseOfARowRead() throws {
        let store = try Self.store()
        try Self.fill(store, seed: 7)
        let from = Int64(Timestamp.parse("2026-03-01T06:00:00+08:00")!.timeIntervalSince1970 * 1000)
        let to = Int64(Timestamp.parse("2026-03-02T18:00:00+08:00")!.timeIntervalSince1970 * 1000)
        try store.pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT parameter, ts, value, mark, detection_limit FROM readings "
                    + "WHERE station = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                arguments: ["liuyiqiao", from, to])
            func sample(_ row: Row) -> StoredSample {
                StoredSample(
                    parameter: row[0], ts: row[1], value: (row[2] as Double?) ?? .nan,
                    mark: (row[3] as String?).flatMap(ReadingMark.init(rawValue:)), detectionLimit: row[4])
            }
            func same(_ a: [StoredSample], _ b: [StoredSample]) -> Bool {
                a.count == b.count
                    && zip(a, b).allSatisfy {
                        $0.parameter == $1.parameter && $0.ts == $1.ts && $0.mark == $1.mark && $0.detectionLimit == $1.detectionLimit
                            && ($0.value == $1.value || ($0.value.isNaN && $1.value.isNaN))
                    }
            }
            let all = try SampleRows.read(db, station: "liuyiqiao", parameter: nil, from: from, to: to)
            #expect(all.count > 300)
            #expect(same(all, rows.map(sample)))
            let one = try SampleRows.read(db, station: "liuyiqiao", parameter: "codmn", from: from, to: to)
            #expect(same(one, rows.map(sample).filter { $0.parameter == "codmn" }))
            #expect(one.contains { $0.value.isNaN } && one.contains { $0.mark == .belowDetection })
        }
    }

    @Test func theInsertTellsANewRowFromAStoredOneAndReportsSQLitesError() throws {
        let store = try Self.store()
        try store.pool.write { db in
            var insert = PlainReadingInsert(
                try db.makeStatement(
                    sql: "INSERT INTO readings (station, parameter, ts, value, revision, received_at) VALUES (?, ?, ?, ?, 0, 1) "
                        + "ON CONFLICT DO NOTHING"),
                in: db)
            #expect(try insert.insert(station: "liuyiqiao", parameter: "nh3n", ts: 1_000, value: 0.4))
            #expect(try insert.insert(station: "liuyiqiao", parameter: "codmn", ts: 1_000, value: 3))
            #expect(try insert.insert(station: "liuyiqiao", parameter: "nh3n", ts: 1_000, value: 0.5) == false)
            #expect(try insert.insert(station: "chengzhong_air", parameter: "nh3n", ts: 1_000, value: 9))
            let stored = try Row.fetchAll(db, sql: "SELECT station, parameter, value FROM readings ORDER BY station, parameter")
            #expect(
                stored.map { "\($0[0] as String) \($0[1] as String) \($0[2] as Double)" } == [
                    "chengzhong_air nh3n 9.0", "liuyiqiao codmn 3.0", "liuyiqiao nh3n 0.4",
                ])
            // A constraint SQLite enforces comes back as GRDB's error, which maps itself to the protocol's codes.
            var failing = PlainReadingInsert(
                try db.makeStatement(
                    sql: "INSERT INTO readings (station, parameter, ts, value, revision, received_at) VALUES (?, ?, ?, ?, 0, NULL)"),
                in: db)
            #expect(throws: DatabaseError.self) { try failing.insert(station: "liuyiqiao", parameter: "tp", ts: 2_000, value: 0.1) }
        }
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
