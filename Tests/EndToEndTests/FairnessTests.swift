import CaseTracking
import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import Synchronization
import TaskRegistry
import Testing

/// No peer can stall the others: a client that floods a service and never reads its replies, or
/// one that queues more than its share, costs only itself. The flood is a second process (pyzmq,
/// Tests/clients/flood.py), as a hostile peer on loopback would be.
@Suite(.serialized) struct FairnessTests {
    /// Starts flood.py against `endpoint` and returns it with the file it writes when it has sent all.
    static func flood(_ endpoint: String, count: Int, kind: String, directory: String, stay: Double = 30) throws -> (Process, String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/flood.py")
        return try HostileClients.flood(endpoint, count: count, kind: kind, directory: directory, stay: stay, script: script.path)
    }

    /// Pings every 20 ms until `until` says stop; returns each ping's time (nil: no answer in 5 s).
    static func pingWhile(_ client: RPCClient, until stop: @Sendable () -> Bool) async -> [Duration?] {
        var times: [Duration?] = []
        let clock = ContinuousClock()
        while !stop() {
            let start = clock.now
            do {
                _ = try await client.callRaw(SystemTypes.ping, Empty(), timeout: .seconds(5), retries: 0)
                times.append(start.duration(to: clock.now))
            } catch {
                times.append(nil)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return times
    }

    /// Pings through a flood: until every file in `done` exists (each flood was sent), and for two
    /// seconds after, while the flooders stay connected with their pipes full.
    static func pingThroughFlood(_ client: RPCClient, done: [String]) async -> [Duration?] {
        let finishedAt = Mutex<ContinuousClock.Instant?>(nil)
        return await pingWhile(client) {
            guard done.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else { return false }
            let first = finishedAt.withLock { value in
                if value == nil { value = .now }
                return value!
            }
            return first.duration(to: .now) > .seconds(2)
        }
    }

    @Test func aClientThatFloodsAndNeverReadsDoesNotDelayAnotherClientsPings() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let service = try await InProcessService.start(NotifyService.self, dataDirectory: dir) { deployment in
            // Hermetic: every peer at a closed port of this test's own.
            for peer in [ServiceName.registry, .ingest, .cases] { deployment.endpoints[peer] = TestSupport.freeEndpoints() }
        }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let (flooder, done) = try Self.flood(service.endpoints.rpc, count: 250_000, kind: "malformed", directory: dir)
        defer { kill(flooder.processIdentifier, SIGKILL) }

        // Ping through the whole flood and for two seconds after it has all been sent, while the
        // flooder stays connected with its pipe full.
        let times = await Self.pingThroughFlood(client, done: [done])
        #expect(FileManager.default.fileExists(atPath: done), "the flood was sent")
        #expect(times.count >= 20)
        #expect(times.allSatisfy { $0 != nil }, "every ping answered")
        let slowest = times.compactMap { $0 }.max() ?? .zero
        #expect(slowest < .seconds(1), "slowest ping \(slowest)")
        await client.close()
        try await service.stop()
    }

    /// Twenty clients each send 50 MiB of requests (1 MiB each) and never read a reply: the
    /// service (its own process, so its memory can be read) stays under 512 MiB at its peak, and
    /// another client's pings are answered throughout.
    @Test func aFloodOfLargeRequestsFromClientsThatNeverReadKeepsMemoryBounded() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let service = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(), environment: ["LOG_LEVEL": "error"])
        defer { service.kill() }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        var flooders: [(Process, String)] = []
        defer { for (process, _) in flooders { kill(process.processIdentifier, SIGKILL) } }
        for _ in 0..<20 {
            flooders.append(try Self.flood(service.endpoints.rpc, count: 50, kind: "garbage:\(1 << 20)", directory: dir, stay: 20))
        }
        let times = await Self.pingThroughFlood(client, done: flooders.map(\.1))
        #expect(flooders.allSatisfy { FileManager.default.fileExists(atPath: $0.1) }, "every flood was sent")
        #expect(times.allSatisfy { $0 != nil }, "every ping answered")
        // Generous: twenty flooding processes share this machine's two cores with the service.
        let slowest = times.compactMap { $0 }.max() ?? .zero
        #expect(slowest < .seconds(3), "slowest ping \(slowest)")
        let peak = try #require(HostileClients.peakResidentMiB(service.process.processIdentifier))
        #expect(peak < 512, "peak resident memory \(peak) MiB")
        await client.close()
    }

    /// Behind the broker every client is one peer of the instances: a client that floods the
    /// broker with requests and never reads its replies delays nobody else's pings through it.
    @Test func aClientFloodingTheBrokerDoesNotDelayAnotherClientsPings() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let front = TestSupport.freeEndpoints()
        let backend = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let eventsIn = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let broker = try await ServiceProcess.start(
            "duban-broker",
            arguments: ["--frontend", front.rpc, "--backend", backend, "--events-in", eventsIn, "--events-out", front.events],
            endpoints: front, waitForPing: false, passEndpoints: false)
        defer { broker.kill() }
        let instance = try await ServiceProcess.start(
            "duban-ingest", arguments: ["--instance", "ingest-1", "--data-dir", "\(dir)/ingest"],
            endpoints: Endpoints(rpc: ">\(backend)", events: ">\(eventsIn)"), environment: ["LOG_LEVEL": "error"], pingAt: front.rpc)
        defer { instance.kill() }
        let client = try await RPCClient.connect(to: front.rpc, from: "test")
        let (flooder, done) = try Self.flood(front.rpc, count: 50_000, kind: "ping", directory: dir, stay: 20)
        defer { kill(flooder.processIdentifier, SIGKILL) }
        let times = await Self.pingThroughFlood(client, done: [done])
        #expect(FileManager.default.fileExists(atPath: done), "the flood was sent")
        #expect(times.count >= 20)
        #expect(times.allSatisfy { $0 != nil }, "every ping answered")
        let slowest = times.compactMap { $0 }.max() ?? .zero
        #expect(slowest < .seconds(1), "slowest ping \(slowest)")
        await client.close()
    }

    /// Forty pipelined annual reports (each asks three other services) keep neither reads nor
    /// pings waiting: they run beside the write lane, a bounded number at once.
    @Test func pipelinedSlowReportsDoNotStarvePings() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: "\(dir)/registry")
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: "\(dir)/ingest")
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: "\(dir)/cases") {
            $0.endpoints[.registry] = registry.endpoints
        }
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: "\(dir)/notify") {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.endpoints[.cases] = cases.endpoints
        }
        let client = try await RPCClient.connect(to: notify.endpoints.rpc, from: "test")
        let (flooder, done) = try Self.flood(notify.endpoints.rpc, count: 40, kind: "annual-report", directory: dir, stay: 20)
        defer { kill(flooder.processIdentifier, SIGKILL) }
        let started = ContinuousClock.now
        let times = await Self.pingWhile(client) { started.duration(to: .now) > .seconds(4) }
        #expect(FileManager.default.fileExists(atPath: done))
        #expect(times.allSatisfy { $0 != nil }, "every ping answered")
        let slowest = times.compactMap { $0 }.max() ?? .zero
        #expect(slowest < .seconds(1), "slowest ping \(slowest)")
        // A read that is not answered on the socket thread (it reads SQLite in the read group) too.
        let readStart = ContinuousClock.now
        _ = try await client.call(NotifyTypes.channelList, Empty(), timeout: .seconds(5), retries: 0)
        #expect(readStart.duration(to: .now) < .seconds(2))
        await client.close()
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }
}
