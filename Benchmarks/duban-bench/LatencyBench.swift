import DubanTesting
import Foundation
import Histogram
import Messaging
import Schema
import ServiceKit

/// Request latency and pipelined throughput of the real registry process, next to raw ZeroMQ
/// REQ/REP with the same message sizes and to gRPC-swift 2 answering the same `task.get`.
struct LatencyBench {
    let runs: Int
    let calls: Int
    let pipelinedCalls: Int
    let window: Int
    let grpcBinary: String?

    struct Sizes {
        var pingRequest = 0, pingReply = 0, taskRequest = 0, taskReply = 0
    }

    func run(into rows: inout [ReportRow]) async throws {
        let dir = try TestSupport.temporaryDirectory("bench-latency")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(), environment: ["LOG_LEVEL": "warning"])
        defer { registry.kill() }
        let client = try await RPCClient.connect(to: registry.endpoints.rpc, from: "bench")
        defer { Task { await client.close() } }

        // The sizes on the wire, for the raw references.
        var sizes = Sizes()
        let ping = try WireCoding.encode(RequestEnvelope(type: SystemTypes.ping.name, from: "bench", key: nil, body: Empty()))
        let taskGet = try WireCoding.encode(
            RequestEnvelope(type: RegistryTypes.taskGet.name, from: "bench", key: nil, body: TaskGetRequest(id: "7.3")))
        sizes.pingRequest = ping.count
        sizes.taskRequest = taskGet.count
        sizes.pingReply = try await client.callRaw(SystemTypes.ping, Empty()).count
        sizes.taskReply = try await client.callRaw(RegistryTypes.taskGet, TaskGetRequest(id: "7.3")).count
        log("message sizes: sys.ping \(sizes.pingRequest)/\(sizes.pingReply) B, task.get \(sizes.taskRequest)/\(sizes.taskReply) B")

        var rawPing: [Latency] = []
        var rawTask: [Latency] = []
        var rawPipelined: [Double] = []
        var localPing: [Latency] = []
        var localTask: [Latency] = []
        var localPipelined: [Double] = []
        // The reference with Duban's topology: the server is another process, with its own I/O thread.
        let pingServer = try RawZMQ.startServerProcess(replySize: sizes.pingReply)
        defer {
            pingServer.process.terminate()
            pingServer.process.waitUntilExit()
        }
        let taskServer = try RawZMQ.startServerProcess(replySize: sizes.taskReply)
        defer {
            taskServer.process.terminate()
            taskServer.process.waitUntilExit()
        }
        var dubanPing: [Latency] = []
        var dubanTask: [Latency] = []
        var dubanPipelined: [Double] = []
        // Four times as deep: more replies in flight than the server's pipe to the client holds.
        var deepPipelined: [Double] = []
        var grpc: [Latency] = []
        var grpcPipelined: [Double] = []
        var serverPing: [Latency] = []
        var serverTask: [Latency] = []
        var typedPing: [Latency] = []
        var typedTask: [Latency] = []
        var typedPingReference: [Latency] = []
        var typedTaskReference: [Latency] = []
        var pooledPing: [Latency] = []
        var pollingPing: [Latency] = []
        let taskGetBody = try WireCoding.encode(TaskGetRequest(id: "7.3"))
        for run in 1...runs {
            // Duban and raw REQ/REP in alternating chunks: drift on a shared machine, and whatever
            // ran just before, fall on both alike (a phase measured first was ~20 µs slower).
            let pingPair = try await interleaved(
                client, calls: calls, reference: pingServer.endpoint, referencePayload: [UInt8](repeating: 120, count: sizes.pingRequest)
            ) {
                try await $0.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8), isolation: $1)
            }
            dubanPing.append(pingPair.duban)
            rawPing.append(pingPair.reference)
            let taskPair = try await interleaved(
                client, calls: calls, reference: taskServer.endpoint, referencePayload: [UInt8](repeating: 120, count: sizes.taskRequest)
            ) {
                try await $0.callRaw(RegistryTypes.taskGet, encodedBody: taskGetBody, isolation: $1)
            }
            dubanTask.append(taskPair.duban)
            rawTask.append(taskPair.reference)
            rawPipelined.append(
                RawZMQ.pipelinedClient(endpoint: taskServer.endpoint, requestSize: sizes.taskRequest, calls: calls * 5, window: window))
            pollingPing.append(
                Latency(
                    RawZMQ.pollingClient(
                        endpoint: pingServer.endpoint, payload: [UInt8](repeating: 120, count: sizes.pingRequest), calls: calls)))
            localPing.append(Latency(RawZMQ.requestReply(requestSize: sizes.pingRequest, replySize: sizes.pingReply, calls: calls)))
            localTask.append(Latency(RawZMQ.requestReply(requestSize: sizes.taskRequest, replySize: sizes.taskReply, calls: calls)))
            localPipelined.append(
                RawZMQ.pipelined(requestSize: sizes.taskRequest, replySize: sizes.taskReply, calls: calls * 5, window: window))
            dubanPipelined.append(try await pipelined(client, calls: pipelinedCalls, body: taskGetBody))
            deepPipelined.append(try await pipelined(client, calls: pipelinedCalls, body: taskGetBody, window: window * 4))
            // What an ordinary caller sees: a task on the shared pool, the reply decoded into its
            // type; in chunks alternating with the raw reference, as above (a wake-up's cost here
            // changes by twice from minute to minute with where the scheduler puts the threads).
            pooledPing.append(
                try await latency(client, calls: calls) { try await $0.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8)) })
            let typedPingPair = try await interleavedOnPool(
                client, calls: calls, reference: pingServer.endpoint, referencePayload: [UInt8](repeating: 120, count: sizes.pingRequest)
            ) { try await $0.call(SystemTypes.ping, Empty(), as: PingReply.self) }
            typedPing.append(typedPingPair.duban)
            typedPingReference.append(typedPingPair.reference)
            let typedTaskPair = try await interleavedOnPool(
                client, calls: calls, reference: taskServer.endpoint, referencePayload: [UInt8](repeating: 120, count: sizes.taskRequest)
            ) { try await $0.call(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"), as: PlanTask.self) }
            typedTask.append(typedTaskPair.duban)
            typedTaskReference.append(typedTaskPair.reference)
            if let lane = client.directLaneCounts {
                log("direct lane so far: \(lane.answeredHere) answered on the caller's thread, \(lane.handedOver) handed over")
            }
            // The same service asked by a raw REQ socket: what the server side costs without Duban's client.
            serverPing.append(Latency(RawZMQ.requestReplyClient(endpoint: registry.endpoints.rpc, payload: [UInt8](ping), calls: calls)))
            serverTask.append(Latency(RawZMQ.requestReplyClient(endpoint: registry.endpoints.rpc, payload: [UInt8](taskGet), calls: calls)))
            if let grpcBinary {
                let figures = try await GRPCReference.measure(
                    binary: grpcBinary,
                    replyBody: try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"), as: JSONValue.self), calls: calls,
                    window: window)
                grpc.append(figures.latency)
                grpcPipelined.append(figures.perSecond)
            }
            log(
                "latency run \(run): raw REQ/REP p50 \(rawPing.last!.p50) µs, sys.ping p50 \(dubanPing.last!.p50) µs, "
                    + "task.get p50 \(dubanTask.last!.p50) µs"
                    + (grpc.last.map { ", gRPC p50 \($0.p50) µs" } ?? ""))
        }

        func add(
            _ name: String, _ duban: [Double], _ reference: [Double]?, _ referenceName: String?, unit: String, target: Double?,
            higherIsBetter: Bool = false, targetText: String? = nil
        ) {
            let d = Measured(duban, unit: unit)
            let r = reference.map { Measured($0, unit: unit) }
            let ratio = r.map { d.median / $0.median }
            let met = target.flatMap { t in ratio.map { higherIsBetter ? $0 >= t : $0 <= t } }
            rows.append(
                ReportRow(
                    section: "requests", name: name, duban: d, reference: r, referenceName: referenceName, ratio: ratio, target: targetText,
                    met: met))
        }
        let raw = "raw ZeroMQ REQ→ROUTER, server in another process, same sizes"
        let rawPipe = "raw ZeroMQ DEALER→ROUTER, server in another process, same sizes"
        let local = "raw ZeroMQ REQ/REP, one process, one I/O thread for both ends"
        // The headline rows: what users get, a typed call from an ordinary task, its reply decoded.
        add(
            "sys.ping p50, typed call, reply decoded", typedPing.map(\.p50), typedPingReference.map(\.p50), raw, unit: "µs", target: 1.5,
            targetText: "≤ 1.5×")
        add(
            "task.get p50, typed call, reply decoded", typedTask.map(\.p50), typedTaskReference.map(\.p50), raw, unit: "µs", target: 1.8,
            targetText: "≤ 1.8×")
        add("sys.ping p50, socket-thread caller, bytes", dubanPing.map(\.p50), rawPing.map(\.p50), raw, unit: "µs", target: nil)
        add("sys.ping p99, socket-thread caller, bytes", dubanPing.map(\.p99), rawPing.map(\.p99), raw, unit: "µs", target: nil)
        add("sys.ping p99.9", dubanPing.map(\.p999), rawPing.map(\.p999), raw, unit: "µs", target: nil)
        add("sys.ping p50, raw REQ client → duban-registry", serverPing.map(\.p50), rawPing.map(\.p50), raw, unit: "µs", target: nil)
        add(
            "raw DEALER + zmq_poll client (a poll loop's floor, no Swift concurrency, no JSON)", pollingPing.map(\.p50), rawPing.map(\.p50),
            raw, unit: "µs", target: nil)
        add("sys.ping p50, caller on the shared pool", pooledPing.map(\.p50), rawPing.map(\.p50), raw, unit: "µs", target: nil)
        add("task.get p50, socket-thread caller, bytes", dubanTask.map(\.p50), rawTask.map(\.p50), raw, unit: "µs", target: nil)
        add("task.get p50, raw REQ client → duban-registry", serverTask.map(\.p50), rawTask.map(\.p50), raw, unit: "µs", target: nil)
        add("task.get p99", dubanTask.map(\.p99), rawTask.map(\.p99), raw, unit: "µs", target: nil)
        add("task.get p99.9", dubanTask.map(\.p999), rawTask.map(\.p999), raw, unit: "µs", target: nil)
        add("task.get pipelined (\(window) in flight)", dubanPipelined, rawPipelined, rawPipe, unit: "req/s", target: nil)
        add(
            "task.get pipelined (\(window * 4) in flight)", deepPipelined, dubanPipelined, "Duban, \(window) in flight", unit: "req/s",
            target: nil)
        add("sys.ping p50", dubanPing.map(\.p50), localPing.map(\.p50), local, unit: "µs", target: nil)
        add("task.get p50", dubanTask.map(\.p50), localTask.map(\.p50), local, unit: "µs", target: nil)
        add(
            "task.get pipelined (\(window) in flight)", dubanPipelined, localPipelined, "raw ZeroMQ DEALER/ROUTER, one process",
            unit: "req/s", target: nil)
        if !grpc.isEmpty {
            add(
                "task.get p50, typed call, reply decoded", typedTask.map(\.p50), grpc.map(\.p50), "gRPC-swift 2 unary, same reply",
                unit: "µs", target: 0.25, targetText: "≤ 0.25×")
            add("task.get p99", dubanTask.map(\.p99), grpc.map(\.p99), "gRPC-swift 2 unary, same reply", unit: "µs", target: nil)
            add(
                "task.get pipelined (\(window) in flight)", dubanPipelined, grpcPipelined, "gRPC-swift 2, same concurrency", unit: "req/s",
                target: 10, higherIsBetter: true, targetText: "≥ 10×")
        }
    }

    /// Calls one at a time and records each round trip.
    func latency(
        _ client: RPCClient, calls: Int, isolation: isolated (any Actor)? = #isolation, _ call: (RPCClient) async throws -> some Sendable
    ) async throws -> Latency {
        // Warm up for a second (and at least 1,000 calls), as the raw references do: the first
        // thousands of calls after other work were ~20 µs slower, whichever type went first.
        let warmUntil = ContinuousClock.now + .seconds(1)
        var warmed = 0
        while warmed < 1_000 || ContinuousClock.now < warmUntil {
            _ = try await call(client)
            warmed += 1
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<calls {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await call(client)
            histogram.record(DispatchTime.now().uptimeNanoseconds - start)
        }
        return Latency(histogram)
    }

    /// Duban's calls (bytes in, bytes out, nothing decoded, like the reference; the caller on the
    /// client's socket thread, `RPCClient.withSocketThread`) and raw REQ/REP round trips to the
    /// reference server, each warmed up for a second, then timed in ten alternating chunks.
    func interleaved(
        _ client: RPCClient, calls: Int, reference endpoint: String, referencePayload: [UInt8],
        _ call: @escaping @Sendable (RPCClient, isolated SocketThread) async throws -> Data
    ) async throws -> (duban: Latency, reference: Latency) {
        let reference = RawZMQ.REQClient(endpoint: endpoint)
        defer { reference.close() }
        reference.warmUp(referencePayload)
        let chunks = 10
        var dubanHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var referenceHistogram = dubanHistogram
        _ = try await client.withSocketThread { thread in try await latency(client, calls: 1_000) { try await call($0, thread) } }
        for _ in 0..<chunks {
            for value in reference.roundTrips(referencePayload, calls: calls / chunks) { referenceHistogram.record(value) }
            let timed = try await client.withSocketThread { thread in
                var values: [UInt64] = []
                values.reserveCapacity(calls / chunks)
                for _ in 0..<(calls / chunks) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try await call(client, thread)
                    values.append(DispatchTime.now().uptimeNanoseconds - start)
                }
                return values
            }
            for value in timed { dubanHistogram.record(value) }
        }
        return (Latency(dubanHistogram), Latency(referenceHistogram))
    }

    /// Typed calls from this task (on the shared pool, as an ordinary caller makes them) and raw
    /// REQ/REP round trips to the reference server, warmed up, then timed in ten alternating chunks.
    func interleavedOnPool(
        _ client: RPCClient, calls: Int, reference endpoint: String, referencePayload: [UInt8],
        _ call: (RPCClient) async throws -> some Sendable
    ) async throws -> (duban: Latency, reference: Latency) {
        let reference = RawZMQ.REQClient(endpoint: endpoint)
        defer { reference.close() }
        reference.warmUp(referencePayload)
        let chunks = 10
        var dubanHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var referenceHistogram = dubanHistogram
        _ = try await latency(client, calls: 1_000, call)
        for _ in 0..<chunks {
            for value in reference.roundTrips(referencePayload, calls: calls / chunks) { referenceHistogram.record(value) }
            for _ in 0..<(calls / chunks) {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try await call(client)
                dubanHistogram.record(DispatchTime.now().uptimeNanoseconds - start)
            }
        }
        return (Latency(dubanHistogram), Latency(referenceHistogram))
    }

    /// `window` calls in flight on one client, each a task on the client's socket thread; calls
    /// answered per second.
    func pipelined(_ client: RPCClient, calls: Int, body: Data, window: Int? = nil) async throws -> Double {
        let window = window ?? self.window
        let perWorker = calls / window
        return try await client.withSocketThread { _ in
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<window {
                    group.addTask {
                        for _ in 0..<perWorker {
                            _ = try await client.callRaw(RegistryTypes.taskGet, encodedBody: body, timeout: .seconds(30))
                        }
                    }
                }
                try await group.waitForAll()
            }
            return Double(perWorker * window) / seconds(ContinuousClock.now - start)
        }
    }
}

/// Runs Benchmarks/grpc-reference (its own package, built by run.sh) as a server and a client.
enum GRPCReference {
    struct Figures {
        var latency: Latency
        var perSecond: Double
    }

    static func measure(binary: String, replyBody: JSONValue, calls: Int, window: Int) async throws -> Figures {
        let dir = try TestSupport.temporaryDirectory("bench-grpc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let replyFile = "\(dir)/task.json"
        try WireCoding.encode(replyBody).write(to: URL(fileURLWithPath: replyFile))
        let port = TestSupport.freePort()
        let server = try await ServiceProcess.start(
            binary, arguments: ["serve", "--port", "\(port)", "--reply-file", replyFile], endpoints: Endpoints(rpc: "", events: ""),
            waitForPing: false,
            passEndpoints: false)
        defer { server.kill() }
        guard await TestSupport.eventually(timeout: .seconds(10), { server.log.contains("port ") }) else {
            throw TestFailure("grpc-reference did not start: \(server.log)")
        }
        let output = try TestSupport.run(
            binary, ["client", "--port", "\(port)", "--calls", "\(calls)", "--pipelined-calls", "\(calls)", "--concurrency", "\(window)"])
        guard let line = output.split(whereSeparator: \.isNewline).last(where: { $0.hasPrefix("{") }),
            let figures = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double]
        else { throw TestFailure("grpc-reference client printed: \(output)") }
        return Figures(
            latency: Latency(p50: figures["p50_us"] ?? .nan, p99: figures["p99_us"] ?? .nan, p999: figures["p999_us"] ?? .nan),
            perSecond: figures["calls_per_s"] ?? .nan)
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("  \(message)\n".utf8))
}
