import GRDB
import GRDBSQLite
import Schema

/// The two statements a batch of readings runs once per reading or per stored row, driven through
/// SQLite's C API on statements GRDB prepared. Through `Statement.execute(arguments:)` each row
/// built an arguments array of existentials, converted every value and ran GRDB's per-statement
/// hooks: more than SQLite's own work for the insert (`duban-bench --only ingest`). Everything
/// else in the transaction stays with GRDB; these statements are used for nothing else.

/// `INSERT … VALUES (station, parameter, ts, value, …) ON CONFLICT DO NOTHING` for plain readings.
struct PlainReadingInsert {
    private let statement: Statement
    private let connection: SQLiteConnection
    // Bindings survive `sqlite3_reset`: a batch is mostly one series after another, so the
    // station and parameter are bound again only when they change.
    private var boundStation: String?
    private var boundParameter: String?

    /// `statement` has exactly the four parameters station, parameter, ts and value, in that order.
    init(_ statement: Statement, in db: Database) {
        self.statement = statement
        self.connection = db.sqliteConnection!
    }

    /// Inserts one reading; false when a row with its key was already stored.
    mutating func insert(station: String, parameter: String, ts: Int64, value: Double) throws -> Bool {
        let handle = statement.sqliteStatement
        if station != boundStation {
            try check(sqlite3_bind_text(handle, 1, station, -1, sqliteTransient))
            boundStation = station
        }
        if parameter != boundParameter {
            try check(sqlite3_bind_text(handle, 2, parameter, -1, sqliteTransient))
            boundParameter = parameter
        }
        try check(sqlite3_bind_int64(handle, 3, ts))
        try check(sqlite3_bind_double(handle, 4, value))
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else { throw error(code) }
        return sqlite3_changes(connection) > 0
    }

    private func check(_ code: CInt) throws {
        guard code == SQLITE_OK else { throw error(code) }
    }

    private func error(_ code: CInt) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)), sql: statement.sql)
    }
}

/// The hourly means of one series over a window, summed in order of the primary key instead of
/// grouped by SQLite (a GROUP BY on an expression sorts every row of the window first).
enum HourlyMeans {
    /// `SELECT ts, statistic` of the judged rows of (station, parameter) in [from, to), in `ts` order.
    static let rowsSQL = """
        SELECT ts, \(SeriesBatch.statisticSQL) FROM readings
        WHERE station = ? AND parameter = ? AND ts >= ? AND ts < ? AND \(SeriesBatch.judgedSQL) ORDER BY ts
        """

    /// (hour number since 1970 in district time, mean) for each hour with a judged row, oldest first:
    /// the same figures as `SeriesBatch.hourlyMeansSQL`.
    static func read(
        _ db: Database, station: String, parameter: String, from: Int64, to: Int64, offsetSeconds: Int64
    ) throws -> [(hour: Int64, mean: Double)] {
        let statement = try db.cachedStatement(sql: rowsSQL)
        try statement.setArguments([station, parameter, from, to])
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        var means: [(hour: Int64, mean: Double)] = []
        var hour = Int64.min
        var sum = 0.0
        var count = 0
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: rowsSQL)
            }
            // A NULL statistic (a below-detection reading without its limit) is left out, as AVG does.
            guard sqlite3_column_type(handle, 1) != SQLITE_NULL else { continue }
            let rowHour = (sqlite3_column_int64(handle, 0) / 1000 + offsetSeconds) / 3600
            if rowHour != hour {
                if count > 0 { means.append((hour, sum / Double(count))) }
                hour = rowHour
                sum = 0
                count = 0
            }
            sum += sqlite3_column_double(handle, 1)
            count += 1
        }
        if count > 0 { means.append((hour, sum / Double(count))) }
        return means
    }
}

/// Stored readings of a station, oldest first, read column by column: a year of minute readings is
/// half a million rows, and GRDB's `Row` made and looked up by column name for each cost ten times
/// SQLite's own reading.
enum SampleRows {
    static let seriesSQL = """
        SELECT parameter, ts, value, mark, detection_limit FROM readings
        WHERE station = ? AND parameter = ? AND ts >= ? AND ts <= ? ORDER BY ts
        """
    static let stationSQL = """
        SELECT parameter, ts, value, mark, detection_limit FROM readings
        WHERE station = ? AND ts >= ? AND ts <= ? ORDER BY ts
        """

    /// One parameter's readings in [from, to], or every parameter's (`parameter` nil).
    static func read(_ db: Database, station: String, parameter: String?, from: Int64, to: Int64) throws -> [StoredSample] {
        let statement: Statement
        if let parameter {
            statement = try db.cachedStatement(sql: seriesSQL)
            try statement.setArguments([station, parameter, from, to])
        } else {
            statement = try db.cachedStatement(sql: stationSQL)
            try statement.setArguments([station, from, to])
        }
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        var samples: [StoredSample] = []
        // Parameter names repeat row after row: the previous one is reused while the bytes match.
        var name = parameter ?? ""
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                    sql: statement.sql)
            }
            if parameter == nil { name = text(handle, 0, reusing: name) ?? "" }
            let mark =
                sqlite3_column_type(handle, 3) == SQLITE_NULL
                ? nil : text(handle, 3, reusing: "").flatMap(ReadingMark.init(rawValue:))
            samples.append(
                StoredSample(
                    parameter: name, ts: sqlite3_column_int64(handle, 1),
                    value: sqlite3_column_type(handle, 2) == SQLITE_NULL ? .nan : sqlite3_column_double(handle, 2), mark: mark,
                    detectionLimit: sqlite3_column_type(handle, 4) == SQLITE_NULL ? nil : sqlite3_column_double(handle, 4)))
        }
        return samples
    }

    /// A text column's value; `previous` itself when its UTF-8 bytes are the same.
    private static func text(_ handle: SQLiteStatement, _ column: CInt, reusing previous: String) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        let buffer = UnsafeBufferPointer(start: bytes, count: count)
        if previous.utf8.elementsEqual(buffer) { return previous }
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// SQLite copies the bytes of a value bound with this destructor before the bind returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
