import DubanTesting
import Foundation
import Messaging
import Notifications
import Schema
import ServiceKit
import Synchronization
import Testing

/// No peer can stall the others: a client that floods a service and never reads its replies, or
/// one that queues more than its share, costs only itself. The flood is a second process (pyzmq,
/// Tests/clients/flood.py), as a hostile peer on loopback would be.
@Suite(.serialized) struct FairnessTests {
    /// Starts flood.py against `endpoint` and returns it with the file it writes when it has sent all.
    static func flood(_ endpoint: String, count: Int, kind: String, directory: String, stay: Double = 30) throws -> (Process, String) {
        let done = "\(directory)/flood-\(UUID().uuidString).done"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/flood.py")
        process.arguments = ["python3", script.path, endpoint, "\(count)", kind, done, "\(stay)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, done)
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
        let finishedAt = Mutex<ContinuousClock.Instant?>(nil)
        let times = await Self.pingWhile(client) {
            guard FileManager.default.fileExists(atPath: done) else { return false }
            let first = finishedAt.withLock { value in
                if value == nil { value = .now }
                return value!
            }
            return first.duration(to: .now) > .seconds(2)
        }
        #expect(FileManager.default.fileExists(atPath: done), "the flood was sent")
        #expect(times.count >= 20)
        #expect(times.allSatisfy { $0 != nil }, "every ping answered")
        let slowest = times.compactMap { $0 }.max() ?? .zero
        #expect(slowest < .seconds(1), "slowest ping \(slowest)")
        await client.close()
        try await service.stop()
    }
}
