import ArgumentParser
import DubanConfig
import DubanTesting
import Foundation
import Logging
import Messaging
import Schema
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Every service, as its own process with its metrics port, at about half the peak this machine
/// measured a moment before, with two subscribers and a webhook channel, for a given time. Every
/// interval it prints each service's RSS, open file descriptors and queue depth (from its metrics
/// port), the requests' p50/p99, events delivered and webhook posts. It fails when a service's RSS
/// after the warm-up grows by more than 10 %, or a figure trends up (see `Trend`).
struct SoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "soak", abstract: "The soak (see docs/operations.md).")

    @Option(help: "How long the load runs, in minutes.") var minutes = 10.0
    @Option(help: "Seconds between figure lines.") var interval = 60.0
    @Option(help: "Seconds of warm-up before the figures are judged (default: one interval, at least a fifth of the run).")
    var warmup: Double?
    @Option(help: "Seconds of the closed-loop peak measurement.") var peakSeconds = 10.0
    @Option(help: "The load, as a fraction of the measured peak.") var fraction = 0.5
    @Option(help: "Clients in the loop.") var clients = 8
    @Option(help: "How much p50 and p99 may rise, as a fraction of their first value, before they trend up.") var latencyMargin = 0.5
    @Option(help: "The webhook receiver script (Tests/clients/webhook_receiver.py).") var receiver = "Tests/clients/webhook_receiver.py"

    func run() async throws {
        let lab = try await SoakLab.start(receiverScript: receiver)
        do {
            let load = try await SoakLoad.connect(lab: lab)
            let peak = try await load.run(clients: clients, seconds: peakSeconds, rate: nil, stop: nil)
            let target = peak.rate * fraction
            say(
                "soak: peak \(Int(peak.rate)) requests/s (\(clients) clients, closed loop, \(Int(peakSeconds)) s); "
                    + "running at \(Int(target)) requests/s for \(minutes) min")
            _ = load.takeLatencies()

            let events = Counter()
            let subscribers = try await lab.subscribers()
            let total = Duration.milliseconds(Int(minutes * 60_000))
            let warm = warmup ?? max(interval, minutes * 60 / 5)
            var samples: [Sample] = []
            let stop = Flag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for subscriber in subscribers {
                    group.addTask {
                        for await _ in subscriber.events { events.add(1) }
                    }
                }
                group.addTask { _ = try await load.run(clients: clients, seconds: nil, rate: target, stop: stop) }
                group.addTask { try await load.openCases(every: .seconds(5), stop: stop) }
                let started = ContinuousClock.now
                var tick = 1
                while ContinuousClock.now - started < total {
                    try await Task.sleep(until: started + .milliseconds(Int(Double(tick) * interval * 1000)))
                    let at = seconds(ContinuousClock.now - started)
                    let sample = try await lab.sample(at: at, latencies: load.takeLatencies(), events: events.value)
                    samples.append(sample)
                    say(sample.line(warm: at <= warm))
                    tick += 1
                }
                stop.set()
                for subscriber in subscribers { await subscriber.stop() }
                try await group.waitForAll()
            }
            let verdict = Trend.judge(samples.filter { $0.at > warm }, latencyMargin: latencyMargin)
            say(
                "soak: \(load.completed.value) requests, \(load.failed.value) failed; "
                    + "\(events.value) events delivered; \(lab.webhookPosts()) webhook posts")
            await lab.stop()
            if !verdict.isEmpty {
                say("FAILED: " + verdict.joined(separator: "; "))
                throw ExitCode.failure
            }
            if load.failed.value > 0 {
                say("FAILED: \(load.failed.value) requests failed")
                throw ExitCode.failure
            }
            say("ok")
        } catch {
            await lab.stop()
            throw error
        }
    }
}

/// One interval's figures.
struct Sample: Sendable {
    struct Service: Sendable {
        var name: String
        var rssMB: Double
        var fds: Int
        var queued: Double
    }

    var at: Double
    var services: [Service]
    var p50: Double
    var p99: Double
    var requests: Int
    var events: Int
    var webhookPosts: Int
    /// The request type with the worst p99, and that p99.
    var slowest: String

    func line(warm: Bool) -> String {
        let each = services.map { "\($0.name) \(String(format: "%.1f", $0.rssMB)) MB \($0.fds) fd q\(Int($0.queued))" }
        return String(format: "%5.0f s%@ ", at, warm ? " (warm-up)" : "") + each.joined(separator: " | ")
            + String(
                format: " | p50 %.2f ms p99 %.2f ms (worst %@), %d req, %d events, %d posts", p50 * 1000, p99 * 1000, slowest, requests,
                events, webhookPosts)
    }
}

/// The verdict on the samples after the warm-up.
enum Trend {
    /// A figure trends up when both its least-squares line and the mean of its last third against its
    /// first third rise by more than `relative` of its first value and by more than `floor`: one spike
    /// on a shared machine does not fail a soak, a steady climb does.
    static func rising(_ values: [Double], relative: Double, floor: Double) -> Bool {
        guard values.count >= 3 else { return false }
        let n = Double(values.count)
        let xs = (0..<values.count).map(Double.init)
        let meanX = xs.reduce(0, +) / n
        let meanY = values.reduce(0, +) / n
        var covariance = 0.0
        var variance = 0.0
        for (x, y) in zip(xs, values) {
            covariance += (x - meanX) * (y - meanY)
            variance += (x - meanX) * (x - meanX)
        }
        let slope = covariance / variance
        let fitted = slope * (n - 1)
        let third = max(1, values.count / 3)
        let early = values.prefix(third).reduce(0, +) / Double(third)
        let late = values.suffix(third).reduce(0, +) / Double(third)
        let margin = max(abs(values[0]) * relative, floor)
        return fitted > margin && late - early > margin
    }

    static func judge(_ samples: [Sample], latencyMargin: Double) -> [String] {
        guard let first = samples.first, let last = samples.last else { return [] }
        var problems: [String] = []
        for (index, service) in first.services.enumerated() {
            let rss = samples.map { $0.services[index].rssMB }
            if let end = rss.last, end > service.rssMB * 1.10 {
                problems.append(
                    "\(service.name): RSS grew from \(String(format: "%.1f", service.rssMB)) to \(String(format: "%.1f", end)) MB")
            }
            if rising(samples.map { Double($0.services[index].fds) }, relative: 0.10, floor: 5) {
                problems.append("\(service.name): open file descriptors trend up (\(samples.map { $0.services[index].fds }))")
            }
            if rising(samples.map { $0.services[index].queued }, relative: 0.5, floor: 50) {
                problems.append("\(service.name): queue depth trends up")
            }
        }
        if rising(samples.map(\.p50), relative: latencyMargin, floor: 0.002) { problems.append("p50 trends up") }
        if rising(samples.map(\.p99), relative: latencyMargin, floor: 0.010) { problems.append("p99 trends up") }
        _ = last
        return problems
    }
}

/// The four services as processes, each with a metrics port, a webhook receiver, and what reads them.
final class SoakLab: Sendable {
    struct Running: Sendable {
        var name: String
        var process: ServiceProcess
        var metricsPort: Int
    }

    let services: [Running]
    let endpoints: [String: Endpoints]
    let receiver: Process
    let receiverLog: String

    static let names = ["registry", "ingest", "cases", "notify"]

    static func start(receiverScript: String) async throws -> SoakLab {
        let directory = try TestSupport.temporaryDirectory("duban-soak")
        var endpoints: [String: Endpoints] = [:]
        var environment = ["LOG_LEVEL": "warning", "DUBAN_NOTIFY_WEBHOOK_ALLOW": "127.0.0.1/32"]
        for name in names {
            let pair = TestSupport.freeEndpoints()
            endpoints[name] = pair
            environment["DUBAN_\(name.uppercased())_RPC"] = pair.rpc
            environment["DUBAN_\(name.uppercased())_EVENTS"] = pair.events
        }
        let receiverPort = TestSupport.freePort()
        let receiverLog = "\(directory)/webhook.jsonl"
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", receiverScript, "\(receiverPort)", receiverLog, "0"]
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        var services: [Running] = []
        for name in names {
            let port = TestSupport.freePort()
            let dataDirectory = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            let process = try await ServiceProcess.start(
                "duban-\(name)", arguments: ["--data-dir", dataDirectory, "--metrics", "127.0.0.1:\(port)"], endpoints: endpoints[name]!,
                environment: environment)
            services.append(Running(name: name, process: process, metricsPort: port))
        }
        let lab = SoakLab(services: services, endpoints: endpoints, receiver: receiver, receiverLog: receiverLog)
        // A webhook channel for the water unit's breaches: the soak's readings cross the limit now and then.
        try await RPCClient.withClient(to: endpoints["notify"]!.rpc, from: officeUnit) { client in
            let body =
                #"{"channel":{"name":"soak","kind":"webhook","target":"http://127.0.0.1:\#(receiverPort)/hook","#
                + #""kinds":["indicator_breach"]}}"#
            let reply = try await client.callRaw(NotifyTypes.channelSet.name, encodedBody: Data(body.utf8), timeout: .seconds(10))
            guard (try WireCoding.decoder().decode(ReplyEnvelope<JSONValue>.self, from: reply)).ok else {
                throw TestFailure("channel.set refused: \(String(decoding: reply, as: UTF8.self))")
            }
        }
        return lab
    }

    private init(services: [Running], endpoints: [String: Endpoints], receiver: Process, receiverLog: String) {
        self.services = services
        self.endpoints = endpoints
        self.receiver = receiver
        self.receiverLog = receiverLog
    }

    /// Two subscribers: ingest's events and notify's.
    func subscribers() async throws -> [EventSubscriber] {
        var logger = Logger(label: "duban.soak.subscriber")
        logger.logLevel = .warning
        var out: [EventSubscriber] = []
        for name in ["ingest", "notify"] {
            out.append(
                try await EventSubscriber.start(
                    events: endpoints[name]!.events, rpc: endpoints[name]!.rpc, from: .now, name: "soak-\(name)", logger: logger))
        }
        return out
    }

    func webhookPosts() -> Int {
        ((try? String(contentsOfFile: receiverLog, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func sample(at: Double, latencies: [(type: String, seconds: Double)], events: Int) async throws -> Sample {
        var figures: [Sample.Service] = []
        for service in services {
            let pid = service.process.process.processIdentifier
            guard service.process.process.isRunning else { throw TestFailure("duban-\(service.name) exited; log:\n\(service.process.log)") }
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let rssKB =
                status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.flatMap {
                    Double($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
                } ?? 0
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
            let metrics =
                (try? TestSupport.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(service.metricsPort)/metrics"])) ?? ""
            let queued =
                metrics.split(separator: "\n").first { $0.hasPrefix("duban_requests_queued ") }.flatMap {
                    Double($0.split(separator: " ").last ?? "")
                } ?? -1
            figures.append(Sample.Service(name: service.name, rssMB: rssKB / 1024, fds: fds, queued: queued))
        }
        func percentile(_ sorted: [Double], _ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        let sorted = latencies.map(\.seconds).sorted()
        // The request type with the worst p99, to say where a rise comes from.
        let slowest = Dictionary(grouping: latencies, by: \.type).map { type, samples in
            (type: type, p99: percentile(samples.map(\.seconds).sorted(), 0.99))
        }.max { $0.p99 < $1.p99 }
        return Sample(
            at: at, services: figures, p50: percentile(sorted, 0.50), p99: percentile(sorted, 0.99), requests: sorted.count, events: events,
            webhookPosts: webhookPosts(), slowest: slowest.map { "\($0.type) \(String(format: "%.1f", $0.p99 * 1000)) ms" } ?? "-")
    }

    func stop() async {
        for service in services { _ = await service.process.terminate() }
        receiver.terminate()
    }
}

/// The request mix: reads and writes on every service, as the district's offices and stations send them.
final class SoakLoad: Sendable {
    struct Operation: Sendable {
        var client: RPCClient
        var type: String
        var body: @Sendable (Int) -> Data
    }

    struct Outcome: Sendable {
        var requests: Int
        var rate: Double
    }

    let operations: [Operation]
    /// Each request's type and seconds since the last `takeLatencies`.
    let latencies = Mutex<[(type: String, seconds: Double)]>([])
    let completed = Counter()
    let failed = Counter()

    static func connect(lab: SoakLab) async throws -> SoakLoad {
        let office = officeUnit
        let registry = try await RPCClient.connect(to: lab.endpoints["registry"]!.rpc, from: office)
        let station = try await RPCClient.connect(to: lab.endpoints["ingest"]!.rpc, from: "六一桥自动站")
        let ingestReader = try await RPCClient.connect(to: lab.endpoints["ingest"]!.rpc, from: office)
        let cases = try await RPCClient.connect(to: lab.endpoints["cases"]!.rpc, from: office)
        let notify = try await RPCClient.connect(to: lab.endpoints["notify"]!.rpc, from: office)
        let empty: @Sendable (Int) -> Data = { _ in Data("{}".utf8) }
        // The ledger grows by the trickle of `openCase` only: a write in the mix itself would grow it by
        // dozens of cases a second, and case.list reads the whole ledger, so its cost would climb
        // with the data rather than with time.
        let opened = try await cases.call(
            CaseTypes.open.name, JSONValue.object(Self.caseBody(0)), as: JSONValue.self, timeout: .seconds(10))
        guard let caseID = opened["id"]?.stringValue else { throw TestFailure("case.open gave no id") }
        let origin = Date()
        let operations = [
            Operation(client: registry, type: "sys.ping", body: empty),
            Operation(client: registry, type: RegistryTypes.taskList.name, body: empty),
            // The station's current reading: over the class III limit for half a minute in every
            // three minutes, so that alerts are raised and cleared, and the webhook hears of the breaches.
            Operation(client: station, type: IngestTypes.readingSubmit.name) { _ in
                let now = Date()
                // From 15 s to 45 s of every three minutes since the load began.
                let phase = Int(now.timeIntervalSince(origin)) % 180
                let breach = phase >= 15 && phase < 45
                let ts = Timestamp.format(now, fractional: false)
                let reading = #"{"station":"liuyiqiao","parameter":"nh3n","ts":"\#(ts)","value":\#(breach ? 1.6 : 0.4)}"#
                return Data(#"{"readings":[\#(reading)]}"#.utf8)
            },
            Operation(client: ingestReader, type: IngestTypes.indicatorList.name, body: empty),
            Operation(client: cases, type: CaseTypes.list.name, body: empty),
            Operation(client: cases, type: CaseTypes.get.name) { _ in Data(#"{"id":"\#(caseID)"}"#.utf8) },
            Operation(client: notify, type: NotifyTypes.noticeList.name, body: empty),
            Operation(client: notify, type: "sys.ping", body: empty),
        ]
        return SoakLoad(operations: operations, cases: cases)
    }

    private init(operations: [Operation], cases: RPCClient) {
        self.operations = operations
        self.cases = cases
    }

    let cases: RPCClient

    static func caseBody(_ index: Int) -> [String: JSONValue] {
        [
            "source": .string("public_report"), "title": .string("南川河岸倾倒建筑垃圾 \(index)"), "unit": .string("区城市管理局"),
            "deadline": .string("2027-03-01"), "task": .string("12"),
        ]
    }

    /// A case opened every `every` until `stop`: the ledger's own growth, as a district's would.
    func openCases(every: Duration, stop: Flag) async throws {
        var index = 1
        while !stop.isSet {
            try await Task.sleep(for: every)
            let begun = ContinuousClock.now
            do {
                _ = try await cases.call(
                    CaseTypes.open.name, JSONValue.object(Self.caseBody(index)), as: JSONValue.self, timeout: .seconds(10))
            } catch {
                if failed.add(1) <= 5 { note("soak: case.open: \(error)") }
            }
            latencies.withLock { $0.append((CaseTypes.open.name, seconds(ContinuousClock.now - begun))) }
            completed.add(1)
            index += 1
        }
    }

    func takeLatencies() -> [(type: String, seconds: Double)] {
        latencies.withLock { values in
            defer { values = [] }
            return values
        }
    }

    /// `clients` loops over the mix: as fast as replies come (`rate` nil), or paced to `rate` in all,
    /// for `seconds` or until `stop`.
    func run(clients: Int, seconds duration: Double?, rate: Double?, stop: Flag?) async throws -> Outcome {
        let started = ContinuousClock.now
        let end = duration.map { started + .milliseconds(Int($0 * 1000)) }
        let done = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<clients {
                group.addTask {
                    var index = worker
                    var next = ContinuousClock.now
                    let spacing = rate.map { Duration.milliseconds(Int(Double(clients) / $0 * 1000)) }
                    while true {
                        if let end, ContinuousClock.now >= end { return }
                        if let stop, stop.isSet { return }
                        if let spacing {
                            next += spacing
                            if next > ContinuousClock.now { try await Task.sleep(until: next) }
                        }
                        let operation = self.operations[index % self.operations.count]
                        let begun = ContinuousClock.now
                        do {
                            let frame = try await operation.client.callRaw(
                                operation.type, encodedBody: operation.body(index), timeout: .seconds(10), retries: 0)
                            let reply = try WireCoding.decoder().decode(ReplyEnvelope<JSONValue>.self, from: frame)
                            if !reply.ok {
                                if self.failed.add(1) <= 5 {
                                    note("soak: \(operation.type) refused: \(reply.error?.message ?? "?")")
                                }
                            }
                        } catch {
                            if self.failed.add(1) <= 5 { note("soak: \(operation.type): \(error)") }
                        }
                        let elapsed = seconds(ContinuousClock.now - begun)
                        self.latencies.withLock { $0.append((operation.type, elapsed)) }
                        self.completed.add(1)
                        done.add(1)
                        index += clients
                    }
                }
            }
            try await group.waitForAll()
        }
        let count = done.value
        return Outcome(requests: count, rate: Double(count) / max(seconds(ContinuousClock.now - started), 0.001))
    }
}

/// A counter shared by tasks.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .relaxed) }
    /// Adds `amount` and returns the new value.
    @discardableResult func add(_ amount: Int) -> Int { atomic.add(amount, ordering: .relaxed).newValue }
}

/// A flag set once, read by tasks.
final class Flag: Sendable {
    private let atomic = Atomic<Bool>(false)
    var isSet: Bool { atomic.load(ordering: .relaxed) }
    func set() { atomic.store(true, ordering: .relaxed) }
}
