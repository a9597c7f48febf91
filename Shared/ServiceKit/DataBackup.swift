import Foundation
import GRDB
import Schema

/// A consistent copy of a service's SQLite database taken while the service writes it (SQLite's
/// online backup through GRDB: the copy is one snapshot, never a file caught mid-write), checked
/// and described by a manifest; and its restore into a fresh data directory.
public enum DataBackup {
    /// What `<name>.manifest.json` says of a copy.
    public struct Manifest: Codable, Sendable, Equatable {
        public var service: String
        public var file: String
        public var bytes: Int
        public var sha256: String
        public var takenAt: String
        /// The migrations the copy has applied: a newer release applies the rest on start.
        public var migrations: [String]
        /// Each event stream's head in the copy.
        public var heads: [String: Int]

        enum CodingKeys: String, CodingKey {
            case service, file, bytes, sha256, migrations, heads
            case takenAt = "taken_at"
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case noDatabase(String)
        case exists(String)
        case corrupt(String)

        public var description: String {
            switch self {
            case .noDatabase(let path): return "没有数据库文件 \(path)：数据目录或实例名是否正确？"
            case .exists(let path): return "\(path) 已存在：恢复只写入新的数据目录，请先停止服务并移走旧文件"
            case .corrupt(let why): return "备份不完整或已损坏：\(why)"
            }
        }
    }

    /// Copies the database at `source` into `directory` as `<service>.sqlite` with its manifest.
    public static func backup(database source: String, service: String, into directory: String, now: Date = Date()) throws -> Manifest {
        guard FileManager.default.fileExists(atPath: source) else { throw Failure.noDatabase(source) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = "\(service).sqlite"
        let target = (directory as NSString).appendingPathComponent(file)
        let partial = target + ".part"
        try? FileManager.default.removeItem(atPath: partial)
        var readOnly = Configuration()
        readOnly.readonly = true
        readOnly.busyMode = .timeout(30)
        let live = try DatabaseQueue(path: source, configuration: readOnly)
        do {
            let copy = try DatabaseQueue(path: partial)
            try live.backup(to: copy)
            // A copy that is not a whole database is no backup.
            let check = try copy.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
            guard check == "ok" else { throw Failure.corrupt(check ?? "integrity_check") }
            try copy.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
            try copy.close()
        }
        try live.close()
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.moveItem(atPath: partial, toPath: target)
        let manifest = try describe(target, service: service, file: file, now: now)
        try write(manifest, to: directory)
        return manifest
    }

    /// Restores `<service>.sqlite` from `directory` to `destination`, which must not exist yet:
    /// the manifest's hash is checked and the copy checked whole before anything is written.
    public static func restore(service: String, from directory: String, to destination: String) throws -> Manifest {
        let (manifest, bytes, _) = try verifiedCopy(service: service, in: directory)
        for path in [destination, destination + "-wal", destination + "-shm"] where FileManager.default.fileExists(atPath: path) {
            throw Failure.exists(path)
        }
        let folder = (destination as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let partial = destination + ".part"
        try? FileManager.default.removeItem(atPath: partial)
        try bytes.write(to: URL(fileURLWithPath: partial))
        let check = try DatabaseQueue(path: partial).read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        guard check == "ok" else {
            try? FileManager.default.removeItem(atPath: partial)
            throw Failure.corrupt(check ?? "integrity_check")
        }
        try FileManager.default.moveItem(atPath: partial, toPath: destination)
        return manifest
    }

    /// Ingest on PostgreSQL: `pg_dump --format=custom` of the database into `<service>.pgdump` (one
    /// snapshot of the whole database while instances write it), with its manifest.
    public static func dumpPostgres(url: String, service: String, into directory: String, now: Date = Date()) throws -> Manifest {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = "\(service).pgdump"
        let target = (directory as NSString).appendingPathComponent(file)
        try runTool("pg_dump", ["--format=custom", "--no-owner", "--file=\(target)", url])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: target))
        let manifest = Manifest(
            service: service, file: file, bytes: bytes.count, sha256: Fingerprint.hex(bytes), takenAt: Timestamp.format(now),
            migrations: [],
            heads: [:])
        try write(manifest, to: directory)
        return manifest
    }

    /// Restores a `pg_dump` into the (empty) database at `url`.
    public static func restorePostgres(url: String, service: String, from directory: String) throws -> Manifest {
        let (manifest, _, source) = try verifiedCopy(service: service, in: directory)
        try runTool("pg_restore", ["--no-owner", "--exit-on-error", "--dbname=\(url)", source])
        return manifest
    }

    /// Runs a PostgreSQL client tool found on PATH (Debian: postgresql-client), failing with its output.
    static func runTool(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure.corrupt("\(tool) 失败（\(process.terminationStatus)）：\(text.prefix(500))")
        }
    }

    /// A copy's manifest, bytes and path, its sha256 checked against the manifest.
    static func verifiedCopy(service: String, in directory: String) throws -> (Manifest, Data, String) {
        let manifestPath = (directory as NSString).appendingPathComponent("\(service).manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestPath) else { throw Failure.noDatabase(manifestPath) }
        let manifest = try JSONDecoder().decode(Manifest.self, fromUntrusted: data)
        let source = (directory as NSString).appendingPathComponent(manifest.file)
        guard let bytes = FileManager.default.contents(atPath: source) else { throw Failure.noDatabase(source) }
        guard Fingerprint.hex(bytes) == manifest.sha256 else { throw Failure.corrupt("\(manifest.file) 的 sha256 与清单不符") }
        return (manifest, bytes, source)
    }

    static func describe(_ path: String, service: String, file: String, now: Date) throws -> Manifest {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let (migrations, heads) = try DatabaseQueue(path: path).read { db -> ([String], [String: Int]) in
            let applied =
                try db.tableExists("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
            var heads: [String: Int] = [:]
            if try db.tableExists("duban_events") {
                for row in try Row.fetchAll(db, sql: "SELECT stream, MAX(seq) AS head FROM duban_events GROUP BY stream") {
                    heads[row["stream"]] = row["head"]
                }
            }
            return (applied, heads)
        }
        return Manifest(
            service: service, file: file, bytes: bytes.count, sha256: Fingerprint.hex(bytes), takenAt: Timestamp.format(now),
            migrations: migrations, heads: heads)
    }

    static func write(_ manifest: Manifest, to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(manifest).write(
            to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("\(manifest.service).manifest.json")))
    }
}
