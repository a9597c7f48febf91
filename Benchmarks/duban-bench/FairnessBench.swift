import DubanTesting
import Foundation
import Histogram
import Messaging
import Schema
import ServiceKit

/// One client floods a registry with 250,000 malformed requests and never reads a reply (a second
/// process, pyzmq, as a hostile peer would be) while another client pings: the pings' latency
/// during the flood, against the same pings with nobody flooding. Also the service's peak memory
/// while twenty such clients send 50 MiB each.
struct FairnessBench {
    let runs: Int
    /// Benchmarks/run.sh runs from the package's root.
    static let flooder = "Tests/clients/flood.py"

    func run(into rows: inout [ReportRow]) async throws {
        var quiet: [Latency] = []
        var flooded: [Latency] = []
        var peaks: [Double] = []
        for run in 1...runs {
            let dir = try TestSupport.temporaryDirectory("bench-fairness")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let registry = try await ServiceProcess.start(
                "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(),
                environment: ["LOG_LEVEL": "error"])
            defer { registry.kill() }
            try await RPCClient.withClient(to: registry.endpoints.rpc, from: "bench") { client in
                quiet.append(try await Self.pings(client, for: .seconds(3)))
                let flood = try HostileClients.flood(
                    registry.endpoints.rpc, count: 250_000, kind: "malformed", directory: dir, script: Self.flooder)
                defer { kill(flood.process.processIdentifier, SIGKILL) }
                flooded.append(try await Self.pings(client, until: flood.done))
                var flooders: [(process: Process, done: String)] = []
                defer { for flooder in flooders { kill(flooder.process.processIdentifier, SIGKILL) } }
                for _ in 0..<20 {
                    flooders.append(
                        try HostileClients.flood(
                            registry.endpoints.rpc, count: 50, kind: "garbage:1048576", directory: dir, script: Self.flooder))
                }
                while !flooders.allSatisfy({ FileManager.default.fileExists(atPath: $0.done) }) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .seconds(1))
            }
            peaks.append(HostileClients.peakResidentMiB(registry.process.processIdentifier) ?? .nan)
            log("fairness run \(run): ping p99 quiet \(quiet.last!.p99) µs, during a 250,000-request flood \(flooded.last!.p99) µs")
        }
        for (name, pick) in [("p50", \Latency.p50), ("p99", \Latency.p99), ("p99.9", \Latency.p999)] {
            let duban = Measured(flooded.map { $0[keyPath: pick] / 1000 }, unit: "ms")
            let reference = Measured(quiet.map { $0[keyPath: pick] / 1000 }, unit: "ms")
            let met = name == "p99" ? duban.median < 100 : nil
            rows.append(
                ReportRow(
                    section: "fairness", name: "sys.ping \(name) while another client floods 250,000 requests, never reading",
                    duban: duban, reference: reference, referenceName: "the same pings, nobody flooding",
                    ratio: duban.median / reference.median, target: name == "p99" ? "< 100 ms" : nil, met: met))
        }
        rows.append(
            ReportRow(
                section: "fairness", name: "peak RSS while 20 clients send 50 MiB each, never reading", duban: Measured(peaks, unit: "MiB"),
                target: "< 512 MiB", met: (peaks.max() ?? .infinity) < 512))
    }

    static func pings(_ client: RPCClient, for duration: Duration) async throws -> Latency {
        let end = ContinuousClock.now + duration
        return try await pings(client) { ContinuousClock.now >= end }
    }

    static func pings(_ client: RPCClient, until file: String) async throws -> Latency {
        var finished: ContinuousClock.Instant?
        return try await pings(client) {
            if finished == nil, FileManager.default.fileExists(atPath: file) { finished = .now }
            return finished.map { ContinuousClock.now - $0 > .seconds(2) } ?? false
        }
    }

    /// Typed pings every 5 ms until `stop` says so.
    static func pings(_ client: RPCClient, until stop: () -> Bool) async throws -> Latency {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        while !stop() {
            let start = ContinuousClock.now
            _ = try await client.call(SystemTypes.ping, Empty(), timeout: .seconds(10), retries: 0)
            let elapsed = ContinuousClock.now - start
            histogram.record(UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000))
            try await Task.sleep(for: .milliseconds(5))
        }
        return Latency(histogram)
    }
}
