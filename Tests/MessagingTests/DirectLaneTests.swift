import DubanTesting
import Foundation
import Schema
import Synchronization
import Testing

@testable import Messaging

/// A quick read is sent and answered on the caller's own thread (`DirectLane`); a slow one is
/// handed to the poll loop and still answered; writes and a service not up yet take the loop's socket.
@Suite struct DirectLaneTests {
    /// A declared read the fake server answers late.
    static let slowRead = RequestCatalog.all.first { $0.kind == .read && $0.name != SystemTypes.ping.name }!.name

    /// A ROUTER that answers every request with its id as `re`, `slowRead` after `delay`.
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
                    let reply =
                        Array(frames.dropLast()) + [
                            Data(
                                #"{"v":1,"id":"r-\#(id)","type":"\#(type)","re":"\#(id)","ts":"t","ok":true,"body":{"echo":"\#(id)"}}"#.utf8
                            )
                        ]
                    guard type == DirectLaneTests.slowRead else { return reply }
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

    /// Calls until the lane has answered one (its connection is up), at most a few seconds.
    static func untilTheLaneAnswers(_ client: RPCClient) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while client.direct!.answeredHere.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
            _ = try await client.call(SystemTypes.ping.name, Empty(), as: Echo.self, timeout: .seconds(5))
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(client.direct!.answeredHere.load(ordering: .relaxed) > 0, "the lane answers once its connection is up")
    }

    @Test func quickReadsAreAnsweredOnTheCallersThread() async throws {
        let server = try await Server()
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        try await Self.untilTheLaneAnswers(client)
        for _ in 0..<200 { _ = try await client.call(SystemTypes.ping.name, Empty(), as: Echo.self, timeout: .seconds(5)) }
        // Many at once: one at a time on the lane, the rest through the loop, each its own reply.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    for _ in 0..<25 {
                        let frame = try await client.callRaw(SystemTypes.ping.name, Empty(), timeout: .seconds(5))
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
        let server = try await Server(delay: .milliseconds(50))
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        try await Self.untilTheLaneAnswers(client)
        let first = try await client.callRaw(Self.slowRead, Empty(), timeout: .seconds(5), retries: 0)
        #expect(try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: first).ok)
        #expect(client.direct!.handedOverInAll.load(ordering: .relaxed) == 1, "late on the lane: handed to the loop, answered there")
        for _ in 0..<4 {
            let frame = try await client.callRaw(Self.slowRead, Empty(), timeout: .seconds(5), retries: 0)
            let envelope = try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: frame)
            #expect(envelope.re == envelope.body?.echo)
        }
        // Late twice in a row at most: then the type keeps off the lane.
        #expect(client.direct!.handedOverInAll.load(ordering: .relaxed) <= 2)
        await client.close()
        await server.stop()
    }

    @Test func aReadWaitingForItsReplyIsNotLostWhenItsCallTimesOut() async throws {
        let server = try await Server(delay: .seconds(2))
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        try await Self.untilTheLaneAnswers(client)
        await #expect(throws: RPCClientError.self) {
            _ = try await client.callRaw(Self.slowRead, Empty(), timeout: .milliseconds(100), retries: 0)
        }
        // The socket it was handed over on is closed with the call, and the lane goes on.
        #expect(client.direct!.handedOverInAll.load(ordering: .relaxed) == 1)
        let before = client.direct!.answeredHere.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(200))
        for _ in 0..<20 { _ = try await client.call(SystemTypes.ping.name, Empty(), as: Echo.self) }
        #expect(client.direct!.answeredHere.load(ordering: .relaxed) > before)
        await client.close()
        await server.stop()
    }

    @Test func writesAndCallsFromTheSocketThreadNeverTakeTheLane() async throws {
        let server = try await Server()
        let client = try await RPCClient.connect(to: server.endpoint, from: "test")
        try await Self.untilTheLaneAnswers(client)
        let answered = client.direct!.answeredHere.load(ordering: .relaxed)
        let write = try #require(MutatingTypes.all.first)
        for _ in 0..<20 { _ = try await client.callRaw(write, Empty(), timeout: .seconds(5)) }
        _ = try await client.withSocketThread { _ in try await client.callRaw(SystemTypes.ping.name, encodedBody: Data("{}".utf8)) }
        // A type this build does not declare (the CLI's `duban request`) may be a write: not on the lane either.
        _ = try await client.callRaw("x.unknown", Empty(), timeout: .seconds(5))
        #expect(client.direct!.answeredHere.load(ordering: .relaxed) == answered)
        await client.close()
        await server.stop()
    }

    @Test func aServiceNotUpYetAnswersOnceItIs() async throws {
        let endpoint = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let client = try await RPCClient.connect(to: endpoint, from: "test")
        // Nobody there: nothing goes out on the lane (it queues only to a finished connection); the
        // loop's socket waits out the timeout.
        let started = ContinuousClock.now
        await #expect(throws: RPCClientError.self) {
            _ = try await client.callRaw(SystemTypes.ping.name, Empty(), timeout: .milliseconds(300), retries: 0)
        }
        #expect(started.duration(to: .now) < .seconds(2))
        #expect(client.direct!.handedOverInAll.load(ordering: .relaxed) == 0)
        let server = try await Server(endpoint: endpoint)
        let frame = try await client.callRaw(SystemTypes.ping.name, Empty(), timeout: .seconds(5), retries: 2)
        #expect(try WireCoding.decoder().decode(ReplyEnvelope<Echo>.self, from: frame).ok)
        try await Self.untilTheLaneAnswers(client)
        await client.close()
        await server.stop()
    }
}
