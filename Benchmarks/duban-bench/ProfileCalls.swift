import DubanTesting
import Foundation
import Messaging
import Schema

/// Calls one registry in a loop for a while, in one way, so that a profiler attached to this
/// process sees one client path alone (`--profile-calls MODE`): `typed` and `typed-task` (typed
/// `sys.ping` / `task.get` from the shared pool), `pooled` (bytes from the pool), `socket` (bytes
/// on the client's socket thread), `pipelined` (64 in flight, or `PROFILE_WINDOW`),
/// `raw-pipelined` (a raw DEALER as deep, real requests: the server's share alone), `ab` and
/// `ab-task` (a raw REQ client, bytes and typed calls in alternating chunks), `split`, and
/// `decode` and `decode-task` (the client's encoding and decoding alone, no calls timed).
enum ProfileCalls {
    static func run(mode: String, seconds duration: Double) async throws {
        let dir = try TestSupport.temporaryDirectory("bench-profile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(), environment: ["LOG_LEVEL": "warning"])
        defer { registry.kill() }
        // How many calls the pipelined modes keep in flight.
        let window = Int(ProcessInfo.processInfo.environment["PROFILE_WINDOW"] ?? "") ?? 64
        try await RPCClient.withClient(to: registry.endpoints.rpc, from: "bench") { client in
            let end = ContinuousClock.now + .seconds(duration)
            var calls = 0
            log("profiling \(mode) calls, pid \(getpid())")
            switch mode {
            case "decode":
                let ping = try await client.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8))
                let task = try await client.callRaw(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"))
                for (name, run) in [
                    ("ping fast", { _ = FastJSONDecoding.decode(ReplyEnvelope<PingReply>.self, from: ping) }),
                    ("ping JSONDecoder", { _ = try? WireCoding.decoder().decode(ReplyEnvelope<PingReply>.self, from: ping) }),
                    ("ping parse only", { _ = FastJSON.parse(ping) }),
                    ("ping re only", { _ = FastJSON.topLevelString("re", in: ping) }),
                    ("task fast", { _ = FastJSONDecoding.decode(ReplyEnvelope<PlanTask>.self, from: task) }),
                    ("task JSONDecoder", { _ = try? WireCoding.decoder().decode(ReplyEnvelope<PlanTask>.self, from: task) }),
                    (
                        "request envelope",
                        {
                            _ = EnvelopeWriter.request(
                                id: MessageID.next(), type: "sys.ping", from: "bench", key: nil, body: Data("{}".utf8))
                        }
                    ),
                    ("message id", { _ = MessageID.next() }),
                    ("task.get body, JSONEncoder", { _ = try? WireCoding.encode(TaskGetRequest(id: "7.3")) }),
                    ("task.get body, the client's encoder", { _ = FastJSONEncoding.encode(TaskGetRequest(id: "7.3")) }),
                ] as [(String, () -> Void)] {
                    let start = ContinuousClock.now
                    for _ in 0..<20_000 { run() }
                    log("\(name): \(String(format: "%.2f", seconds(ContinuousClock.now - start) * 1e6 / 20_000)) µs")
                }
            case "decode-task":
                // The task reply's decoding alone, for a profiler.
                let task = try await client.callRaw(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"))
                while ContinuousClock.now < end {
                    for _ in 0..<1_000 { _ = FastJSONDecoding.replyBody(PlanTask.self, from: task) }
                    calls += 1_000
                }
            case "socket":
                calls = try await client.withSocketThread { thread in
                    var calls = 0
                    while ContinuousClock.now < end {
                        _ = try await client.callRaw(SystemTypes.ping.name, encodedBody: Data("{}".utf8), isolation: thread)
                        calls += 1
                    }
                    return calls
                }
            case "pipelined":
                let body = try WireCoding.encode(TaskGetRequest(id: "7.3"))
                calls = try await client.withSocketThread { _ in
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<window {
                            group.addTask {
                                var calls = 0
                                while ContinuousClock.now < end {
                                    _ = try await client.callRaw(RegistryTypes.taskGet, encodedBody: body, timeout: .seconds(30))
                                    calls += 1
                                }
                                return calls
                            }
                        }
                        return try await group.reduce(0, +)
                    }
                }
            case "ab", "ab-task":
                // A raw REQ client, the direct lane's bytes and typed calls, alternating in chunks
                // against one registry: `ab` with `sys.ping`, `ab-task` with `task.get`.
                let task = mode == "ab-task"
                let request =
                    task
                    ? try WireCoding.encode(
                        RequestEnvelope(type: RegistryTypes.taskGet.name, from: "bench", key: nil, body: TaskGetRequest(id: "7.3")))
                    : try WireCoding.encode(RequestEnvelope(type: SystemTypes.ping.name, from: "bench", key: nil, body: Empty()))
                let taskBody = try WireCoding.encode(TaskGetRequest(id: "7.3"))
                let reference = RawZMQ.REQClient(endpoint: registry.endpoints.rpc)
                defer { reference.close() }
                reference.warmUp([UInt8](request))
                var rawTimes: [UInt64] = []
                var dubanTimes: [UInt64] = []
                var typedTimes: [UInt64] = []
                while ContinuousClock.now < end {
                    rawTimes += reference.roundTrips([UInt8](request), calls: 500)
                    for _ in 0..<500 {
                        let start = DispatchTime.now().uptimeNanoseconds
                        if task {
                            _ = try await client.callRaw(RegistryTypes.taskGet, encodedBody: taskBody)
                        } else {
                            _ = try await client.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8))
                        }
                        dubanTimes.append(DispatchTime.now().uptimeNanoseconds - start)
                    }
                    for _ in 0..<500 {
                        let start = DispatchTime.now().uptimeNanoseconds
                        if task {
                            _ = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"))
                        } else {
                            _ = try await client.call(SystemTypes.ping, Empty())
                        }
                        typedTimes.append(DispatchTime.now().uptimeNanoseconds - start)
                    }
                    calls += 1500
                }
                func median(_ values: [UInt64]) -> UInt64 { values.sorted()[values.count / 2] / 1000 }
                log(
                    "\(mode): raw REQ → registry p50 \(median(rawTimes)) µs, direct bytes \(median(dubanTimes)) µs, "
                        + "typed \(median(typedTimes)) µs"
                )
            case "raw-pipelined":
                // A raw DEALER client, `window` real `task.get` requests in flight against the registry:
                // the server's share of a pipelined call without the Swift client's.
                let request = try WireCoding.encode(
                    RequestEnvelope(type: RegistryTypes.taskGet.name, from: "bench", key: nil, body: TaskGetRequest(id: "7.3")))
                // In chunks until the time is up, so that the calls counted are the calls made.
                var rates: [Double] = []
                while ContinuousClock.now < end {
                    rates.append(
                        RawZMQ.pipelinedClient(endpoint: registry.endpoints.rpc, request: [UInt8](request), calls: 20_000, window: window))
                    calls += 20_000
                }
                log("raw-pipelined: \(Int(rates.reduce(0, +) / Double(max(rates.count, 1)))) replies/s")
            case "split":
                var raw = Duration.zero
                var decode = Duration.zero
                while ContinuousClock.now < end {
                    let start = ContinuousClock.now
                    let frame = try await client.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8))
                    let mid = ContinuousClock.now
                    _ = try FastJSONDecoding.decodeOrFallBack(ReplyEnvelope<PingReply>.self, from: frame).result()
                    decode += ContinuousClock.now - mid
                    raw += mid - start
                    calls += 1
                }
                log("split: call \(raw / calls), decode \(decode / calls)")
            case "typed-task":
                while ContinuousClock.now < end {
                    _ = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"))
                    calls += 1
                }
            case "pooled":
                while ContinuousClock.now < end {
                    _ = try await client.callRaw(SystemTypes.ping, encodedBody: Data("{}".utf8))
                    calls += 1
                }
            default:
                while ContinuousClock.now < end {
                    _ = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
                    calls += 1
                }
            }
            log("\(mode): \(calls) calls, \(String(format: "%.1f", duration * 1e6 / Double(calls))) µs each")
        }
    }
}
