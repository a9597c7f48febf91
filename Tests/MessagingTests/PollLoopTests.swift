import DubanTesting
import Foundation
import Schema
import Testing

@testable import Messaging

@Suite struct PollLoopTests {
    @Test(arguments: ["tcp", "ipc"])
    func multipartMessagesArriveWholeAndInOrder(transport: String) async throws {
        let endpoint =
            transport == "tcp" ? "tcp://127.0.0.1:\(TestSupport.freePort())" : "ipc://\(try TestSupport.temporaryDirectory())/pull.sock"
        let loop = ZMQPollLoop(name: "test")
        let (stream, continuation) = AsyncStream.makeStream(of: [Data].self)
        _ = try await loop.addSocket(.pull, setup: { try $0.bind(endpoint) }, onMessage: { continuation.yield($0) })
        let push = try await loop.addSocket(.push, setup: { try $0.connect(endpoint) })
        for index in 0..<500 { loop.send(push, [Data("part-a-\(index)".utf8), Data(), Data("part-c".utf8)]) }
        var received = 0
        for await frames in stream {
            #expect(frames == [Data("part-a-\(received)".utf8), Data(), Data("part-c".utf8)])
            received += 1
            if received == 500 { break }
        }
        await loop.shutdown()
    }

    /// The loop waits on a quiet socket's descriptor instead of `zmq_poll` (`waitOnDescriptors`):
    /// a message must wake it at once whatever touched the socket before, a receive, a reply sent
    /// from its handler, a send queued from another thread, or the other socket's traffic. With a
    /// poll timeout of 5 s, a wait that missed its signal would show as a reply seconds late.
    @Test func aQuietSocketWakesTheLoopForEveryMessage() async throws {
        let loop = ZMQPollLoop(name: "test", pollTimeoutMilliseconds: 5_000)
        let endpoints = ["tcp://127.0.0.1:\(TestSupport.freePort())", "tcp://127.0.0.1:\(TestSupport.freePort())"]
        var routers: [SocketID] = []
        for endpoint in endpoints {
            routers.append(try await loop.addSocket(.router, setup: { try $0.bind(endpoint) }, replying: { $0 }))
        }
        let context = ZMQContext()
        var clients: [ZMQSocket] = []
        for endpoint in endpoints {
            let client = try ZMQSocket(context: context, type: .dealer)
            var options = ZMQSocketOptions(linger: 0)
            options.receiveTimeout = 3_000
            try client.apply(options)
            try client.connect(endpoint)
            clients.append(client)
        }
        var slowest = Duration.zero
        for round in 0..<1_000 {
            let which = round % 2
            // Every third round a send reaches the socket from another thread first (to a peer
            // that does not exist, dropped): a send may take the signal a wait needs.
            if round % 3 == 0 { loop.send(routers[which], [Data("nobody".utf8), Data("x".utf8)]) }
            if round % 7 == 0 { try await Task.sleep(for: .milliseconds(2)) }
            let started = ContinuousClock.now
            try clients[which].send([Data("\(round)".utf8)], dontWait: false)
            let reply = try clients[which].receive(dontWait: false)
            slowest = max(slowest, ContinuousClock.now - started)
            #expect(reply == [Data("\(round)".utf8)])
        }
        #expect(slowest < .seconds(2), "slowest round trip \(slowest)")
        for client in clients { client.close() }
        await loop.shutdown()
    }

    /// A peer with more requests in flight than its reply pipe holds (a pipelining client) fills
    /// the pipe faster than libzmq's I/O thread reports room in it: its replies park. They must go
    /// as soon as the socket hears of room (its commands) or, when that word was read unseen, on
    /// the 1 ms timer of a peer still taking its replies; never at the full retry interval, which
    /// this test sets to 2 s. Before, a 64-deep pipeline to the registry waited 10 ms each time and
    /// ran at a third of its speed. (With the 1 ms timer off too, this test took 4–18 s: a word of
    /// room is read unseen often, between the loop's look at the descriptor and its receive.)
    @Test(arguments: [false, true])
    func repliesParkedForAPipeliningPeerGoWhenItsPipeHasRoom(withAnotherSocket: Bool) async throws {
        let loop = ZMQPollLoop(name: "test", pollTimeoutMilliseconds: 10_000, parkedRetryInterval: .seconds(2))
        let endpoint = "tcp://127.0.0.1:\(TestSupport.freePort())"
        _ = try await loop.addSocket(
            .router, options: ZMQSocketOptions(sendHighWaterMark: 4, routerMandatory: true), setup: { try $0.bind(endpoint) },
            replying: { $0 })
        if withAnotherSocket {
            // Not a ROUTER: the loop waits in `zmq_poll`, not on the ROUTER's descriptor alone.
            _ = try await loop.addSocket(.pull, setup: { try $0.bind("inproc://other") }, onMessage: { _ in })
        }
        let context = ZMQContext()
        let client = try ZMQSocket(context: context, type: .dealer)
        var options = ZMQSocketOptions(linger: 0)
        options.receiveTimeout = 5_000
        try client.apply(options)
        try client.connect(endpoint)
        let started = ContinuousClock.now
        for round in 0..<5 {
            for index in 0..<200 { try client.send([Data("\(round).\(index)".utf8)], dontWait: false) }
            for index in 0..<200 {
                let reply = try #require(try client.receive(dontWait: false), "reply \(index) of round \(round) within 5 s")
                #expect(reply == [Data("\(round).\(index)".utf8)])
            }
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(5), "1,000 pipelined replies took \(elapsed)")
        #expect(loop.parkedInAll.load(ordering: .relaxed) > 0, "no reply was parked: the test tested nothing")
        client.close()
        await loop.shutdown()
    }

    @Test func shutdownDoesNotHangWithUnsentMessages() async throws {
        let loop = ZMQPollLoop(name: "test")
        // A PUSH connected to nobody cannot send: its messages stay queued.
        let push = try await loop.addSocket(.push, setup: { try $0.connect("tcp://127.0.0.1:\(TestSupport.freePort())") })
        for _ in 0..<1000 { loop.send(push, [Data(repeating: 7, count: 1000)]) }
        let started = ContinuousClock.now
        await loop.shutdown()
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func bindErrorsReachTheCaller() async throws {
        let loop = ZMQPollLoop(name: "test")
        let endpoint = "tcp://127.0.0.1:\(TestSupport.freePort())"
        _ = try await loop.addSocket(.pull, setup: { try $0.bind(endpoint) })
        await #expect(throws: ZMQError.self) { _ = try await loop.addSocket(.pull, setup: { try $0.bind(endpoint) }) }
        await #expect(throws: ZMQError.self) { _ = try await loop.addSocket(.pull, setup: { try $0.bind("nonsense://x") }) }
        await loop.shutdown()
    }

    @Test func curveKeysCanBeGenerated() throws {
        let pair = try ZMQCurve.generateKeyPair()
        #expect(pair.publicKey.count == 40 && pair.secretKey.count == 40)
    }

    @Test func clientTimesOutWhenNobodyAnswers() async throws {
        let client = try await RPCClient.connect(to: "tcp://127.0.0.1:\(TestSupport.freePort())", from: "test")
        await #expect(throws: RPCClientError.self) {
            _ = try await client.callRaw("sys.ping", ["x": 1], timeout: .milliseconds(200), retries: 1)
        }
        await client.close()
    }
}

@Suite struct EndpointTests {
    /// One configuration names services by the host clients reach them at; the service binds that port.
    @Test func hostNamesBindEveryInterfaceAndAddressesBindThemselves() {
        #expect(ZMQEndpoint.bindable("tcp://registry:7101") == "tcp://*:7101")
        #expect(ZMQEndpoint.bindable("tcp://duban-registry.duban.svc.cluster.local:7101") == "tcp://*:7101")
        #expect(ZMQEndpoint.bindable("tcp://localhost:7101") == "tcp://127.0.0.1:7101")
        #expect(ZMQEndpoint.bindable("tcp://10.0.0.4:7101") == "tcp://10.0.0.4:7101")
        #expect(ZMQEndpoint.bindable("tcp://*:7101") == "tcp://*:7101")
        #expect(ZMQEndpoint.bindable("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*")
        #expect(ZMQEndpoint.bindable("tcp://[::1]:7101") == "tcp://[::1]:7101")
        #expect(ZMQEndpoint.bindable("ipc:///run/duban/registry") == "ipc:///run/duban/registry")
    }

    @Test func aServiceNamedByHostNameIsReachable() async throws {
        let port = TestSupport.freePort()
        let loop = ZMQPollLoop(name: "bind-test")
        let (stream, continuation) = AsyncStream.makeStream(of: [Data].self)
        _ = try await loop.addSocket(.pull, setup: { try $0.bind("tcp://localhost:\(port)") }, onMessage: { continuation.yield($0) })
        let push = try await loop.addSocket(.push, setup: { try $0.connect("tcp://127.0.0.1:\(port)") })
        loop.send(push, [Data("hello".utf8)])
        for await frames in stream {
            #expect(frames == [Data("hello".utf8)])
            break
        }
        await loop.shutdown()
    }

    /// A task that prefers the loop as its executor runs on the loop's thread, and keeps running
    /// (on the global executor) once the loop has stopped: no task is stranded by a shutdown.
    @Test func tasksPreferringTheLoopRunOnItsThreadAndSurviveItsShutdown() async throws {
        let loop = ZMQPollLoop(name: "test")
        let onLoop = await withTaskExecutorPreference(loop) { loop.isLoopThread }
        #expect(onLoop)
        #expect(!loop.isLoopThread)
        let finished = await withTaskExecutorPreference(loop) { () async -> Bool in
            await loop.shutdown()
            try? await Task.sleep(for: .milliseconds(10))
            return !loop.isLoopThread
        }
        #expect(finished)
    }

    /// Calls made from the client's socket thread (`withSocketThread`) get their replies, also many at once.
    @Test func callsFromTheSocketThreadGetTheirReplies() async throws {
        let endpoint = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let server = ZMQPollLoop(name: "echo")
        _ = try await server.addSocket(
            .router, setup: { try $0.bind(endpoint) },
            replying: { frames in
                // Echo the request's id back as `re`.
                let id = FastJSON.topLevelString("id", in: frames.last!) ?? ""
                return Array(frames.dropLast()) + [Data(#"{"v":1,"id":"x","type":"t","re":"\#(id)","ts":"t","ok":true,"body":{}}"#.utf8)]
            })
        let client = try await RPCClient.connect(to: endpoint)
        // One caller on the socket thread's actor, then many at once as tasks preferring the loop.
        let first = try await client.withSocketThread { _ in
            let reply = try await client.callRaw("t", encodedBody: Data("{}".utf8), timeout: .seconds(10))
            return (reply.count, client.loop.isLoopThread)
        }
        #expect(first.0 > 0 && first.1)
        let answered = try await client.withSocketThread { _ in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<32 {
                    group.addTask {
                        var count = 0
                        for _ in 0..<50 {
                            _ = try await client.callRaw("t", encodedBody: Data("{}".utf8), timeout: .seconds(10))
                            count += 1
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        #expect(answered == 32 * 50)
        await client.close()
        await server.shutdown()
    }
}
