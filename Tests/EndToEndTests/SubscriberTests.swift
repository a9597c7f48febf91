import DubanTesting
import Foundation
import Logging
import Messaging
import Schema
import ServiceKit
import Testing

/// Gaps on the live feed, made on purpose.
@Suite struct SubscriberTests {
    @Test func aGapIsFilledAndTheEventThatRevealedItIsNotDeliveredTwice() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let path = "\(dir)/gap.sqlite"
        let store = try ServiceStore(path: path, stream: "gap", origin: "gap")
        let server = try await RPCServer.bind(
            identity: ServerIdentity(service: .notify, instance: "gap"), endpoints: Endpoints(rpc: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"),
            store: store, handlers: HandlerTable(), topics: [], maxPayloadBytes: 1 << 20, clock: ServiceClock(), logger: Logger(label: "test"))
        let runner = Task { try await server.run() }
        let subscriber = try await EventSubscriber.start(
            events: server.endpoints.events, rpc: server.endpoints.rpc, from: .beginning, heartbeat: .seconds(60))
        try await Task.sleep(for: .milliseconds(300))

        // Events 1…10 are stored but never published (a second handle on the same database has no
        // publisher): to a subscriber that is exactly what PUB dropping them looks like.
        let silent = try ServiceStore(path: path, stream: "gap", origin: "gap")
        for index in 1...10 { try await silent.write { _, events in try events.emit("gap.n", ["n": index]) } }
        // Event 11 is published live; it reveals the gap, and the fill reads 1…11.
        try await store.write { _, events in try events.emit("gap.n", ["n": 11]) }
        try await Task.sleep(for: .milliseconds(300))
        try await store.write { _, events in try events.emit("gap.n", ["n": 12]) }

        var seqs: [Int] = []
        for await event in subscriber.events {
            seqs.append(event.seq)
            if event.seq == 12 { break }
        }
        #expect(seqs == Array(1...12))
        await subscriber.stop()
        runner.cancel()
        try? await runner.value
    }

    @Test func theTailOfABurstIsFoundByTheHeartbeat() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let path = "\(dir)/tail.sqlite"
        let store = try ServiceStore(path: path, stream: "tail", origin: "tail")
        let server = try await RPCServer.bind(
            identity: ServerIdentity(service: .notify, instance: "tail"), endpoints: Endpoints(rpc: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"),
            store: store, handlers: HandlerTable(), topics: [], maxPayloadBytes: 1 << 20, clock: ServiceClock(), logger: Logger(label: "test"))
        let runner = Task { try await server.run() }
        let subscriber = try await EventSubscriber.start(
            events: server.endpoints.events, rpc: server.endpoints.rpc, from: .beginning, heartbeat: .milliseconds(200))
        try await Task.sleep(for: .milliseconds(300))
        // Nothing live reveals these: only the heartbeat's heads do.
        let silent = try ServiceStore(path: path, stream: "tail", origin: "tail")
        for index in 1...5 { try await silent.write { _, events in try events.emit("tail.n", ["n": index]) } }
        var seqs: [Int] = []
        for await event in subscriber.events {
            seqs.append(event.seq)
            if event.seq == 5 { break }
        }
        #expect(seqs == Array(1...5))
        await subscriber.stop()
        runner.cancel()
        try? await runner.value
    }
}
