import DubanTesting
import Foundation
import Schema
import Synchronization
import Testing

@testable import Messaging

/// A quick read is sent and answered on the caller's own thread (`DirectLane`); a slow one is
/// handed to the poll loop and still answered; writes and a service not up yet take the loop's socket.
@Suite struct DirectLaneTests {
    /// A ROUTER that answers every request with its id as `re`, `slow.*` types after `delay`.
    final class Server: Sendable {
        let endpoint: String
        let loop = ZMQPollLoop(name: "lane-server")

        init(endpoint: String = "tcp://127.0.0.1:\(TestSupport.freePort())", delay: Duration = .milliseconds(30)) async throws {
            self.endpoint = endpoint
            let loop = self.loop
            let socket = SocketSlot()
            socket.id = try await loop.addSocket(
                .router, setup: { try $0.bind(endpoint) },
                replying: { frames in
                    let payload = frames.last!
                    let id = FastJSON.topLevelString("id", in: payload) ?? ""
                    let type = FastJSON.topLevelString("type", in: payload) ?? ""
                    let reply = Array(frames.dropLast()) + [
                        Data(#"{"v":1,"id":"r-\#(id)","type":"\#(type)","re":"\#(id)","ts":"t","ok":true,"body":{"echo":"\#(id)"}}"#.utf8)
                    ]
                    guard type.hasPrefix("slow.") else { return reply }
                    Task {
                        try? await Task.sleep(for: delay)
                        if let id = socket.id { loop.send(id, reply) }
                    }
                    return nil
                })
        }

        func stop() async { await loop.shutdown() }
    }

    final class SocketSlot: @unchecked Sendable {
        var id: SocketID?
    }

    struct Echo: Codable, Sendable { var echo: String }

    @Test func quickReadsAreAnsweredOnTheCallersThread() async throws {
        let server = try await Server()
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        for _ in 0..<200 { _ = try await client.call("sys.ping", Empty(), as: Echo.self, timeout: .seconds(5)) }
        // Generous: a call whose reply is later than 2 ms (a busy machine) is handed to the loop.
        #expect(client.direct.answeredHere.load(ordering: .relaxed) >= 150)
        // Many at once: one at a time on the lane, the rest through the loop, each its own reply.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    for _ in 0..<25 {
                        let frame = try await client.callRaw("sys.ping", Empty(), timeout: .seconds(5))
                        let envelope = try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: frame)
                        #expect(envelope.re == envelope.body?.echo)
                    }
                }
            }
            try await group.waitForAll()
        }
        await client.close()
        await server.stop()
    }

    @Test func aSlowReadIsHandedToTheLoopAndStillAnswered() async throws {
        let server = try await Server(delay: .milliseconds(30))
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        _ = try await client.call("sys.ping", Empty(), as: Echo.self)  // the connection has answered once
        for _ in 0..<4 {
            let frame = try await client.callRaw("slow.read", Empty(), timeout: .seconds(5), retries: 0)
            let envelope = try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: frame)
            #expect(envelope.re == envelope.body?.echo)
        }
        // Late twice in a row: the type is off the lane, so the last two went through the loop.
        #expect(client.direct.handedOverInAll.load(ordering: .relaxed) == 2)
        // Quick reads still take the lane.
        let before = client.direct.answeredHere.load(ordering: .relaxed)
        for _ in 0..<20 { _ = try await client.call("sys.ping", Empty(), as: Echo.self) }
        #expect(client.direct.answeredHere.load(ordering: .relaxed) > before)
        await client.close()
        await server.stop()
    }

    @Test func writesAndCallsFromTheSocketThreadNeverTakeTheLane() async throws {
        let server = try await Server()
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        let write = try #require(MutatingTypes.all.first)
        for _ in 0..<20 { _ = try await client.callRaw(write, Empty(), timeout: .seconds(5)) }
        _ = try await client.withSocketThread { _ in try await client.callRaw("sys.ping", encodedBody: Data("{}".utf8)) }
        #expect(client.direct.answeredHere.load(ordering: .relaxed) == 0)
        await client.close()
        await server.stop()
    }

    @Test func aServiceNotUpYetAnswersOnceItIs() async throws {
        let endpoint = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let client = try await RPCClient.connect(to: endpoint, from: "test")
        // Nobody there: the lane gives up after its 2 ms, the loop's socket waits out the timeout.
        let started = ContinuousClock.now
        await #expect(throws: RPCClientError.self) {
            _ = try await client.callRaw("sys.ping", Empty(), timeout: .milliseconds(300), retries: 0)
        }
        #expect(started.duration(to: .now) < .seconds(2))
        let server = try await Server(endpoint: endpoint)
        let frame = try await client.callRaw("sys.ping", Empty(), timeout: .seconds(5), retries: 2)
        #expect(try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: frame).ok)
        for _ in 0..<50 { _ = try await client.call("sys.ping", Empty(), as: Echo.self) }
        #expect(client.direct.answeredHere.load(ordering: .relaxed) > 0, "once the service answered, the lane is used")
        await client.close()
        await server.stop()
    }
}
