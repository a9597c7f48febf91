import ArgumentParser
import DubanTesting
import Foundation
import GRDB
import Messaging
import Schema
import ServiceKit

/// Sustained end-to-end ingestion into durable storage, next to the raw SQLite insert rate of the
/// same rows in the same batch sizes, measured in one run on one machine.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "duban-bench", abstract: "Duban's benchmarks; see Benchmarks/README.md.")

    @Option(help: "Readings per configuration and batch size (batches of 1 send a tenth).") var readings: Int = 40_000
    @Option(help: "Requests in flight per client.") var inFlight: Int = 4
    @Option(help: "Repeat each measurement this many times and report min/median/max.") var runs: Int = 3
    @Option(help: "Where to write the figures as JSON.") var json: String = "Benchmarks/results/ingest.json"
    @Flag(help: "Skip PostgreSQL (when it is not installed).") var noPostgres = false

    struct Row: Codable {
        var configuration: String
        var batch: Int
        var readingsPerSecond: [Double]
        var median: Double { readingsPerSecond.sorted()[readingsPerSecond.count / 2] }
        var rawSQLite: Double?
        var ratio: Double? { rawSQLite.map { median / $0 } }
    }

    func run() async throws {
        var rows: [Row] = []
        let batches = [1, 100, 1000, 10_000]
        var raw: [Int: Double] = [:]
        for batch in batches {
            var rates: [Double] = []
            for _ in 0..<runs { rates.append(try rawSQLiteRate(batch: batch, total: total(batch))) }
            raw[batch] = rates.sorted()[rates.count / 2]
            rows.append(Row(configuration: "raw SQLite insert (reference)", batch: batch, readingsPerSecond: rates))
        }
        for batch in batches {
            var rates: [Double] = []
            for _ in 0..<runs { rates.append(try await dubanRate(batch: batch, instances: 1, postgres: false)) }
            rows.append(Row(configuration: "duban-ingest, 1 instance, SQLite", batch: batch, readingsPerSecond: rates, rawSQLite: raw[batch]))
        }
        if !noPostgres {
            for instances in [1, 2] {
                for batch in batches {
                    var rates: [Double] = []
                    for _ in 0..<runs { rates.append(try await dubanRate(batch: batch, instances: instances, postgres: true)) }
                    rows.append(
                        Row(configuration: "duban-ingest, \(instances) instance\(instances > 1 ? "s" : "") + broker, PostgreSQL", batch: batch, readingsPerSecond: rates,
                            rawSQLite: raw[batch]))
                }
            }
        }
        print("")
        print(pad("configuration", 52) + pad("batch", 7) + pad("readings/s (min/median/max)", 34) + "÷ raw SQLite")
        for row in rows {
            let sorted = row.readingsPerSecond.sorted()
            print(
                pad(row.configuration, 52) + pad("\(row.batch)", 7)
                    + pad("\(Int(sorted.first!)) / \(Int(row.median)) / \(Int(sorted.last!))", 34) + (row.ratio.map { String(format: "%.2f", $0) } ?? ""))
        }
        try FileManager.default.createDirectory(atPath: (json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(rows).write(to: URL(fileURLWithPath: json))
        print("\nfigures written to \(json)")
    }

    func total(_ batch: Int) -> Int { batch == 1 ? max(1, readings / 10) : max(batch, readings) }

    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }

    /// PM2.5 readings a minute apart from 2020 on, unique per call.
    static func readings(_ count: Int, offset: Int) -> [SubmittedReading] {
        let start = Timestamp.parse("2020-01-01T00:00:00+08:00")!.timeIntervalSince1970
        return (0..<count).map { index in
            SubmittedReading(
                station: "chengzhong_air", parameter: "pm25", ts: Timestamp.format(Date(timeIntervalSince1970: start + Double(offset + index) * 60), fractional: false),
                value: Double(20 + index % 50))
        }
    }

    /// The durable-storage limit: the same rows, the same batch sizes, a prepared insert and one
    /// transaction per batch, WAL with synchronous=FULL as duban-ingest uses.
    func rawSQLiteRate(batch: Int, total: Int) throws -> Double {
        let dir = try TestSupport.temporaryDirectory("bench-raw")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var configuration = Configuration()
        configuration.prepareDatabase { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: "\(dir)/raw.sqlite", configuration: configuration)
        try pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE readings (station TEXT NOT NULL, parameter TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
                    revision INTEGER NOT NULL DEFAULT 0, received_at INTEGER NOT NULL, PRIMARY KEY (station, parameter, ts)) WITHOUT ROWID
                    """)
        }
        let rows = Self.readings(total, offset: 0).map { ($0.station, $0.parameter, Int64(Timestamp.parse($0.ts)!.timeIntervalSince1970 * 1000), $0.value) }
        let started = ContinuousClock.now
        for start in stride(from: 0, to: rows.count, by: batch) {
            try pool.write { db in
                let statement = try db.cachedStatement(sql: "INSERT INTO readings (station, parameter, ts, value, received_at) VALUES (?, ?, ?, ?, 0)")
                for row in rows[start..<min(start + batch, rows.count)] { try statement.execute(arguments: [row.0, row.1, row.2, row.3]) }
            }
        }
        return Double(rows.count) / seconds(ContinuousClock.now - started)
    }

    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Readings per second acknowledged by duban-ingest (each acknowledged only once durably stored).
    func dubanRate(batch: Int, instances: Int, postgres: Bool) async throws -> Double {
        var cluster: PostgresCluster?
        var processes: [ServiceProcess] = []
        defer {
            for process in processes { process.kill() }
            cluster?.stop()
        }
        let front = TestSupport.freeEndpoints()
        let environment = ["DUBAN_LOG_LEVEL": "warning", "LOG_LEVEL": "warning"]
        if postgres {
            cluster = try PostgresCluster.start()
            let backend = "tcp://127.0.0.1:\(TestSupport.freePort())"
            let eventsIn = "tcp://127.0.0.1:\(TestSupport.freePort())"
            processes.append(
                try await ServiceProcess.start(
                    "duban-broker", arguments: ["--frontend", front.rpc, "--backend", backend, "--events-in", eventsIn, "--events-out", front.events],
                    endpoints: front, waitForPing: false, passEndpoints: false))
            for index in 1...instances {
                processes.append(
                    try await ServiceProcess.start(
                        "duban-ingest",
                        arguments: ["--instance", "ingest-\(index)", "--database-url", cluster!.url, "--data-dir", try TestSupport.temporaryDirectory("bench")],
                        endpoints: Endpoints(rpc: ">\(backend)", events: ">\(eventsIn)"), environment: environment, pingAt: front.rpc))
            }
        } else {
            processes.append(
                try await ServiceProcess.start(
                    "duban-ingest", arguments: ["--data-dir", try TestSupport.temporaryDirectory("bench")], endpoints: front, environment: environment))
        }
        let client = try await RPCClient.connect(to: front.rpc, from: "bench")
        defer { Task { await client.close() } }
        let total = self.total(batch)
        let requests = stride(from: 0, to: total, by: batch).map { ReadingSubmitRequest(readings: Self.readings(min(batch, total - $0), offset: $0)) }
        let started = ContinuousClock.now
        var accepted = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0
            while next < min(inFlight, requests.count) {
                let request = requests[next]
                group.addTask { try await client.call(IngestTypes.readingSubmit, request, as: ReadingSubmitReply.self, timeout: .seconds(60)).accepted }
                next += 1
            }
            while let count = try await group.next() {
                accepted += count
                if next < requests.count {
                    let request = requests[next]
                    group.addTask { try await client.call(IngestTypes.readingSubmit, request, as: ReadingSubmitReply.self, timeout: .seconds(60)).accepted }
                    next += 1
                }
            }
        }
        let rate = Double(accepted) / seconds(ContinuousClock.now - started)
        guard accepted == total else { throw TestFailure("only \(accepted) of \(total) readings were accepted") }
        FileHandle.standardError.write(Data("  \(postgres ? "PostgreSQL" : "SQLite") ×\(instances), batch \(batch): \(Int(rate)) readings/s\n".utf8))
        return rate
    }
}
