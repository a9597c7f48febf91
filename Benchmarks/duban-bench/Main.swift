import ArgumentParser
import Foundation

/// Duban against its references, measured in one run on one machine: absolute figures drift on a
/// shared 2-core machine, so each Duban figure is printed next to its reference and their ratio.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "duban-bench", abstract: "Duban's benchmarks; see Benchmarks/README.md.")

    @Option(help: "Sections to run: ingest, requests, events, footprint, curve, fairness, web (repeatable; default all).") var only:
        [String] =
            []
    @Option(help: "Repeat each measurement this many times and report min/median/max.") var runs: Int = 3
    @Option(help: "Readings per ingestion measurement (batches of 1 send a tenth).") var readings: Int = 40_000
    @Option(help: "Ingestion requests in flight.") var inFlight: Int = 4
    @Option(help: "Readings per ingestion message (repeatable; default 1, 100, 1000 and 10000).") var batch: [Int] = []
    @Option(help: "Calls per latency measurement.") var calls: Int = 20_000
    @Option(help: "Requests in flight for pipelined throughput (and gRPC's concurrency).") var window: Int = 64
    @Option(help: "Calls per pipelined throughput measurement (default: ten times --calls).") var pipelinedCalls: Int?
    @Option(help: "Events per fan-out measurement.") var events: Int = 4_000
    @Option(help: "Web: ledger cases behind the dashboard.") var webCases: Int = 5_000
    @Option(help: "Web: live screens connected at once.") var screens: Int = 500
    @Option(help: "Web: seconds per load measurement.") var webSeconds: Double = 10
    @Option(help: "Web: clients in the closed load loop.") var webClients: Int = 8
    @Option(help: "Web: progress reports sent while the screens listen.") var webReports: Int = 200
    @Option(help: "The gRPC reference executable (Benchmarks/grpc-reference, built by run.sh).") var grpc: String?
    @Option(help: "Where to write the figures as JSON.") var json: String = "Benchmarks/results/bench.json"
    @Flag(help: "Skip PostgreSQL (when it is not installed).") var noPostgres = false
    @Option(help: .hidden) var rawServer: String?
    @Option(help: .hidden) var rawReplySize: Int = 0
    @Option(help: .hidden) var profileCalls: String?

    func wants(_ section: String) -> Bool { only.isEmpty || only.contains(section) }

    func run() async throws {
        // The raw reference's server side, in a process of its own (started by the requests section).
        if let rawServer { RawZMQ.serveForever(endpoint: rawServer, replySize: rawReplySize) }
        if let profileCalls {
            try await ProfileCalls.run(mode: profileCalls, seconds: webSeconds)
            return
        }
        var rows: [ReportRow] = []
        // A section that fails is reported in the table; the others still run and print.
        func section(_ name: String, _ body: (inout [ReportRow]) async throws -> Void) async {
            guard wants(name) else { return }
            do {
                try await body(&rows)
            } catch {
                log("section \(name) failed: \(error)")
                rows.append(ReportRow(section: name, name: "FAILED: \(error)"))
            }
        }
        await section("requests") {
            try await LatencyBench(runs: runs, calls: calls, pipelinedCalls: pipelinedCalls ?? calls * 10, window: window, grpcBinary: grpc)
                .run(into: &$0)
        }
        await section("ingest") {
            try await IngestBench(
                runs: runs, readings: readings, inFlight: inFlight, postgres: !noPostgres,
                batches: batch.isEmpty ? [1, 100, 1000, 10_000] : batch
            )
            .run(into: &$0)
        }
        await section("events") { try await FanOutBench(runs: runs, events: events, subscriberCounts: [1, 10, 50]).run(into: &$0) }
        await section("footprint") { try await FootprintBench(runs: runs).run(into: &$0) }
        await section("curve") { try await CurveBench(runs: runs, calls: calls / 2).run(into: &$0) }
        await section("fairness") { try await FairnessBench(runs: runs).run(into: &$0) }
        await section("web") {
            try await WebBench(
                runs: runs, cases: webCases, screens: screens, seconds: webSeconds, concurrency: webClients, reports: webReports
            ).run(into: &$0)
        }
        print(table(rows))
        try FileManager.default.createDirectory(atPath: (json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let document = Document(
            date: ISO8601DateFormatter().string(from: Date()), runs: runs, host: ProcessInfo.processInfo.hostName,
            cores: ProcessInfo.processInfo.activeProcessorCount, rows: rows)
        try encoder.encode(document).write(to: URL(fileURLWithPath: json))
        print("\nfigures written to \(json)")
    }

    struct Document: Codable {
        var date: String
        var runs: Int
        var host: String
        var cores: Int
        var rows: [ReportRow]
    }

    func table(_ rows: [ReportRow]) -> String {
        var lines: [String] = []
        let header = ["measure", "Duban: median [min–max]", "reference: median [min–max]", "ratio", "target"]
        var body: [[String]] = []
        var section = ""
        for row in rows {
            if row.section != section {
                section = row.section
                body.append(["— \(section) —", "", "", "", ""])
            }
            let ratio = row.ratio.map { String(format: "%.2f×", $0) } ?? ""
            let target = row.target.map { "\($0) \(row.met == true ? "met" : row.met == false ? "MISSED" : "")" } ?? ""
            body.append([
                row.name, row.duban?.text ?? "", row.reference.map { "\($0.text)  (\(row.referenceName ?? ""))" } ?? "", ratio, target,
            ])
        }
        var widths = header.map(\.count)
        for cells in body {
            for (column, cell) in cells.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
        }
        lines.append(render(header))
        lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for cells in body { lines.append(render(cells)) }
        return "\n" + lines.joined(separator: "\n")
    }
}
