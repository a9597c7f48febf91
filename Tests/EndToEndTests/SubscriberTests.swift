import DubanTesting
import Foundation
import Logging
import Messaging
import Schema
import ServiceKit
import Testing

/// Gaps on the live feed, made on purpose.
@Suite struct SubscriberTests {
    /// A bare server on `path` (no handlers but the runtime's) and a subscriber to it; events
    /// written with `publishing: false` are logged but never sent live: to a subscriber, exactly
    /// what PUB dropping them looks like.
    struct Rig {
        let store: ServiceStore
        let subscriber: EventSubscriber
        let runner: Task<Void, any Error>

        init(stream: String, heartbeat: Duration) async throws {
            let path = "\(try TestSupport.temporaryDirectory())/\(stream).sqlite"
            store = try ServiceStore(path: path, stream: stream, origin: stream)
            let server = try await RPCServer.bind(
                identity: ServerIdentity(service: .notify, instance: stream),
                endpoints: Endpoints(rpc: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"), store: store, handlers: HandlerTable(),
                topics: [],
                maxPayloadBytes: 1 << 20, clock: ServiceClock(), logger: Logger(label: "test"))
            runner = Task { try await server.run() }
            subscriber = try await EventSubscriber.start(
                events: server.endpoints.events, rpc: server.endpoints.rpc, from: .beginning, heartbeat: heartbeat)
            try await Task.sleep(for: .milliseconds(300))
        }

        func seqs(until last: Int) async -> [Int] {
            var seqs: [Int] = []
            for await event in subscriber.events {
                seqs.append(event.seq)
                if event.seq == last { break }
            }
            return seqs
        }

        func stop() async {
            await subscriber.stop()
            runner.cancel()
            try? await runner.value
        }
    }

    @Test func aGapIsFilledAndTheEventThatRevealedItIsNotDeliveredTwice() async throws {
        let rig = try await Rig(stream: "gap", heartbeat: .seconds(60))
        for index in 1...10 { try await rig.store.write(publishing: false) { _, events in try events.emit("gap.n", ["n": index]) } }
        // Event 11 is published live; it reveals the gap, and the fill reads 1…11.
        try await rig.store.write { _, events in try events.emit("gap.n", ["n": 11]) }
        try await Task.sleep(for: .milliseconds(300))
        try await rig.store.write { _, events in try events.emit("gap.n", ["n": 12]) }
        #expect(await rig.seqs(until: 12) == Array(1...12))
        await rig.stop()
    }

    @Test func theTailOfABurstIsFoundByTheHeartbeat() async throws {
        let rig = try await Rig(stream: "tail", heartbeat: .milliseconds(200))
        // Nothing live reveals these: only the heartbeat's heads do.
        for index in 1...5 { try await rig.store.write(publishing: false) { _, events in try events.emit("tail.n", ["n": index]) } }
        #expect(await rig.seqs(until: 5) == Array(1...5))
        await rig.stop()
    }
}
