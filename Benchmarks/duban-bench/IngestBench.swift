import DubanTesting
import Foundation
import GRDB
import Logging
import Messaging
import NIOCore
import PostgresNIO
import Schema
import ServiceKit

/// Sustained durable ingestion next to the storage limits of the same rows in the same batch sizes:
/// raw SQLite inserts (prepared statement, one transaction per batch, WAL, synchronous=FULL as the
/// service uses) and PostgreSQL COPY (one COPY per batch).
struct IngestBench {
    let runs: Int
    let readings: Int
    let inFlight: Int
    let postgres: Bool
    let batches: [Int]

    func total(_ batch: Int) -> Int { batch == 1 ? max(1, readings / 10) : max(batch, readings) }

    func run(into rows: inout [ReportRow]) async throws {
        var raw: [Int: [Double]] = [:]
        var copy: [Int: [Double]] = [:]
        var sqlite: [Int: [Double]] = [:]
        var pg: [Int: [Int: [Double]]] = [1: [:], 2: [:]]
        for _ in 0..<runs {
            for batch in batches {
                raw[batch, default: []].append(try rawSQLiteRate(batch: batch, total: total(batch)))
                sqlite[batch, default: []].append(try await dubanRate(batch: batch, instances: 1, postgres: false))
            }
        }
        if postgres {
            let cluster = try PostgresCluster.start()
            defer { cluster.stop() }
            for _ in 0..<runs {
                for batch in batches {
                    copy[batch, default: []].append(try await postgresCopyRate(cluster: cluster, batch: batch, total: total(batch)))
                }
            }
            for instances in [1, 2] {
                for _ in 0..<runs {
                    for batch in batches {
                        pg[instances]![batch, default: []].append(try await dubanRate(batch: batch, instances: instances, postgres: true))
                    }
                }
            }
        }
        // The transport's limit for the same messages: raw PUSH→PULL of the encoded requests' size.
        for batch in batches {
            let size = try WireCoding.encode(
                RequestEnvelope(
                    type: IngestTypes.readingSubmit.name, from: "bench", key: "k",
                    body: ReadingSubmitRequest(readings: Self.readings(batch, offset: 0)))
            ).count
            let messages = max(200, min(100_000, 20_000_000 / max(size, 1)))
            let rates = (0..<runs).map { _ in RawZMQ.pushPull(size: size, count: messages) * Double(batch) }
            let duban = Measured(sqlite[batch]!, unit: "readings/s")
            let reference = Measured(rates, unit: "readings/s")
            rows.append(
                ReportRow(
                    section: "ingestion", name: "reading.submit, batch \(batch) (\(size) B a message)", duban: duban, reference: reference,
                    referenceName: "raw ZeroMQ PUSH→PULL of the same messages", ratio: duban.median / reference.median))
        }
        for batch in batches {
            let reference = Measured(raw[batch]!, unit: "readings/s")
            let duban = Measured(sqlite[batch]!, unit: "readings/s")
            let ratio = duban.median / reference.median
            rows.append(
                ReportRow(
                    section: "ingestion", name: "reading.submit, batch \(batch), 1 instance, SQLite", duban: duban, reference: reference,
                    referenceName: "raw SQLite insert, same rows", ratio: ratio, target: batch == 1000 ? "≥ 0.6×" : nil,
                    met: batch == 1000 ? ratio >= 0.6 : nil))
        }
        if postgres {
            for instances in [1, 2] {
                for batch in batches {
                    let duban = Measured(pg[instances]![batch]!, unit: "readings/s")
                    let reference = Measured(copy[batch]!, unit: "readings/s")
                    rows.append(
                        ReportRow(
                            section: "ingestion",
                            name: "reading.submit, batch \(batch), \(instances) instance\(instances > 1 ? "s" : "") + broker, PostgreSQL",
                            duban: duban, reference: reference, referenceName: "PostgreSQL COPY, same rows",
                            ratio: duban.median / reference.median))
                }
            }
        }
    }

    /// PM2.5 readings a minute apart from 2020 on, unique per call.
    static func readings(_ count: Int, offset: Int) -> [SubmittedReading] {
        let start = Timestamp.parse("2020-01-01T00:00:00+08:00")!.timeIntervalSince1970
        return (0..<count).map { index in
            SubmittedReading(
                station: "chengzhong_air", parameter: "pm25",
                ts: Timestamp.format(Date(timeIntervalSince1970: start + Double(offset + index) * 60), fractional: false),
                value: Double(20 + index % 50))
        }
    }

    static func rows(_ total: Int) -> [(String, String, Int64, Double)] {
        readings(total, offset: 0).map { ($0.station, $0.parameter, Int64(Timestamp.parse($0.ts)!.timeIntervalSince1970 * 1000), $0.value) }
    }

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
        let rows = Self.rows(total)
        let started = ContinuousClock.now
        for start in stride(from: 0, to: rows.count, by: batch) {
            try pool.write { db in
                let statement = try db.cachedStatement(
                    sql: "INSERT INTO readings (station, parameter, ts, value, received_at) VALUES (?, ?, ?, ?, 0)")
                for row in rows[start..<min(start + batch, rows.count)] { try statement.execute(arguments: [row.0, row.1, row.2, row.3]) }
            }
        }
        let rate = Double(rows.count) / seconds(ContinuousClock.now - started)
        log("raw SQLite, batch \(batch): \(Int(rate)) readings/s")
        return rate
    }

    func postgresCopyRate(cluster: PostgresCluster, batch: Int, total: Int) async throws -> Double {
        let table = "copy_\(batch)_\(UInt32.random(in: 0...UInt32.max))"
        try cluster.psql(
            """
            CREATE TABLE \(table) (station TEXT NOT NULL, parameter TEXT NOT NULL, ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0, received_at BIGINT NOT NULL, PRIMARY KEY (station, parameter, ts))
            """)
        let logger = Logger(label: "bench.copy")
        let configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: cluster.port, username: "duban", password: nil, database: "duban", tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        defer { Task { try? await connection.close() } }
        let rows = Self.rows(total)
        let started = ContinuousClock.now
        for start in stride(from: 0, to: rows.count, by: batch) {
            var buffer = ByteBuffer()
            for row in rows[start..<min(start + batch, rows.count)] { buffer.writeString("\(row.0)\t\(row.1)\t\(row.2)\t\(row.3)\t0\n") }
            try await connection.copyFrom(table: table, columns: ["station", "parameter", "ts", "value", "received_at"], logger: logger) {
                writer in
                try await writer.write(buffer)
            }
        }
        let rate = Double(rows.count) / seconds(ContinuousClock.now - started)
        log("PostgreSQL COPY, batch \(batch): \(Int(rate)) readings/s")
        return rate
    }

    /// Readings per second acknowledged by duban-ingest (each acknowledged only once durably stored).
    func dubanRate(batch: Int, instances: Int, postgres: Bool, keys: TestKeys? = nil) async throws -> Double {
        var cluster: PostgresCluster?
        var processes: [ServiceProcess] = []
        defer {
            for process in processes { process.kill() }
            cluster?.stop()
        }
        let front = TestSupport.freeEndpoints()
        let environment = ["LOG_LEVEL": "warning"]
        if postgres {
            cluster = try PostgresCluster.start()
            let backend = "tcp://127.0.0.1:\(TestSupport.freePort())"
            let eventsIn = "tcp://127.0.0.1:\(TestSupport.freePort())"
            processes.append(
                try await ServiceProcess.start(
                    "duban-broker",
                    arguments: ["--frontend", front.rpc, "--backend", backend, "--events-in", eventsIn, "--events-out", front.events],
                    endpoints: front, waitForPing: false, passEndpoints: false))
            for index in 1...instances {
                processes.append(
                    try await ServiceProcess.start(
                        "duban-ingest",
                        arguments: [
                            "--instance", "ingest-\(index)", "--database-url", cluster!.url, "--data-dir",
                            try TestSupport.temporaryDirectory("bench"),
                        ],
                        endpoints: Endpoints(rpc: ">\(backend)", events: ">\(eventsIn)"), environment: environment, pingAt: front.rpc))
            }
        } else {
            processes.append(
                try await ServiceProcess.start(
                    "duban-ingest",
                    arguments: ["--data-dir", try TestSupport.temporaryDirectory("bench")] + (keys.map { ["--keys", $0.path] } ?? []),
                    endpoints: front, environment: environment, curve: try keys?.curve("admin", toward: .ingest)))
        }
        // With keys the administrator's certificate submits (any station), and `from` is left to it.
        let client = try await RPCClient.connect(
            to: front.rpc, from: keys == nil ? "bench" : nil, curve: try keys?.curve("admin", toward: .ingest))
        defer { Task { await client.close() } }
        let total = self.total(batch)
        // Encoded before the clock starts: a station encodes on its own machine, not on the service's cores.
        let requests = try stride(from: 0, to: total, by: batch).map { offset in
            let envelope = RequestEnvelope(
                type: IngestTypes.readingSubmit.name, from: keys == nil ? "bench" : nil, key: UUID().uuidString.lowercased(),
                body: ReadingSubmitRequest(readings: Self.readings(min(batch, total - offset), offset: offset)))
            return (id: envelope.id, payload: try WireCoding.encode(envelope))
        }
        @Sendable func submit(_ request: (id: String, payload: Data)) async throws -> Int {
            guard let reply = try await client.send(payload: request.payload, id: request.id, timeout: .seconds(60)) else {
                throw TestFailure("reading.submit timed out")
            }
            return try WireCoding.decoder().decode(ReplyEnvelope<ReadingSubmitReply>.self, from: reply).result().accepted
        }
        let started = ContinuousClock.now
        var accepted = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0
            while next < min(inFlight, requests.count) {
                let request = requests[next]
                group.addTask { try await submit(request) }
                next += 1
            }
            while let count = try await group.next() {
                accepted += count
                if next < requests.count {
                    let request = requests[next]
                    group.addTask { try await submit(request) }
                    next += 1
                }
            }
        }
        let rate = Double(accepted) / seconds(ContinuousClock.now - started)
        guard accepted == total else { throw TestFailure("only \(accepted) of \(total) readings were accepted") }
        log("duban-ingest \(postgres ? "PostgreSQL" : "SQLite") ×\(instances), batch \(batch): \(Int(rate)) readings/s")
        return rate
    }
}
