import ArgumentParser
import DubanConfig
import DubanTesting
import Foundation
import Messaging
import Schema
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Readings through the broker into several ingest instances sharing PostgreSQL, first quietly, then
/// while an instance is SIGKILLed at random every few seconds and restarted, PostgreSQL is restarted
/// once, the broker is restarted once, and the subscribers are killed and restarted at random. The
/// client retries every batch with its idempotency key until it is acknowledged. At the end:
/// - every acknowledged reading is stored exactly once, and nothing is stored twice (the table
///   holds exactly the readings sent, and the replies accepted each of them once: no duplicates);
/// - each stream's events are numbered 1…head with no gap;
/// - each subscriber delivered every event of every stream exactly once, in order, across its kills.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chaos", abstract: "The chaos run (see docs/operations.md).")

    @Option(help: "Readings sent during the chaos.") var readings = 1_000_000
    @Option(help: "Readings sent before it, quietly, for the throughput beside it.") var quietReadings = 100_000
    @Option(help: "Readings per reading.submit.") var batch = 1_000
    @Option(help: "Batches in flight.") var inFlight = 4
    @Option(help: "Ingest instances behind the broker.") var instances = 2
    @Option(help: "Subscribers, each killed and restarted at random.") var subscribers = 3
    @Option(help: "Seconds between instance kills: the least.") var killMin = 5.0
    @Option(help: "Seconds between instance kills: the most.") var killMax = 15.0
    @Option(help: "Kill instances this many times in all, spread over the run (default: no limit).") var maxKills: Int?
    @Option(help: "Seconds between subscriber kills: the least.") var subscriberKillMin = 3.0
    @Option(help: "Seconds between subscriber kills: the most.") var subscriberKillMax = 10.0
    @Option(help: "PostgreSQL restarts (spread over the run).") var postgresRestarts = 1
    @Option(help: "Broker restarts (spread over the run).") var brokerRestarts = 1
    @Option(help: "Seconds a request waits for its reply before it is sent again.") var timeout = 8.0
    @Option(help: "Random seed (the kills' timing and targets).") var seed: UInt64 = 19

    func run() async throws {
        var generator = SeededGenerator(seed: seed)
        let lab = try await ChaosLab.start(instances: instances)
        var subscriberProcesses: [SubscriberProcess] = []
        do {
            for index in 1...max(subscribers, 1) where subscribers > 0 {
                subscriberProcesses.append(try await SubscriberProcess.start(index: index, lab: lab))
            }
            let client = try await RPCClient.connect(to: lab.front.rpc, from: "chaos")
            defer { Task { await client.close() } }
            let submitter = Submitter(client: client, batch: batch, inFlight: inFlight, timeout: .milliseconds(Int(timeout * 1000)))

            note("quiet run: \(quietReadings) readings")
            let quiet = try await submitter.submit(range: 0..<quietReadings)
            note("quiet run: \(Int(quiet.rate)) readings/s")

            note("chaos run: \(readings) readings")
            submitter.progress.store(0, ordering: .relaxed)
            let chaos = ChaosSchedule(
                lab: lab, subscribers: subscriberProcesses, submitter: submitter, total: readings,
                killRange: killMin...max(killMin, killMax), maxKills: maxKills,
                subscriberKillRange: subscriberKillMin...max(subscriberKillMin, subscriberKillMax),
                postgresRestarts: postgresRestarts, brokerRestarts: brokerRestarts, generator: generator.split())
            let chaotic: Submitter.Outcome
            let faults: ChaosSchedule.Tally
            (chaotic, faults) = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await chaos.run() }
                let outcome = try await submitter.submit(range: quietReadings..<(quietReadings + readings))
                chaos.stop()
                try await group.waitForAll()
                return (outcome, chaos.tally)
            }
            note("chaos run: \(Int(chaotic.rate)) readings/s; settling")
            try await lab.ensureAllRunning()
            for subscriber in subscriberProcesses where !subscriber.process.process.isRunning { try await subscriber.restart(lab: lab) }

            // What was stored, and each stream's events.
            let total = quietReadings + readings
            let stored = Int(try lab.cluster.psql("SELECT count(*) FROM readings")) ?? -1
            let ours = Int(try lab.cluster.psql("SELECT count(*) FROM readings WHERE station = '\(Readings.station)'")) ?? -1
            var heads: [String: Int] = [:]
            var eventGaps = 0
            for row in try lab.cluster.psql("SELECT stream, max(seq), count(*) FROM duban_events GROUP BY stream").split(separator: "\n") {
                let fields = row.split(separator: "|").map(String.init)
                guard fields.count == 3, let head = Int(fields[1]), let count = Int(fields[2]) else { continue }
                heads[fields[0]] = head
                eventGaps += head - count
            }
            // Every subscriber reaches every head (the heartbeat fills the tail), then is audited.
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline {
                let behind = subscriberProcesses.filter { subscriber in
                    let at = SubscriberCommand.positions(subscriber.log)
                    return heads.contains { at[$0.key, default: 0] < $0.value }
                }
                if behind.isEmpty { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            var audits: [SubscriberCommand.Audit] = []
            for subscriber in subscriberProcesses {
                _ = await subscriber.process.terminate()
                audits.append(SubscriberCommand.audit(subscriber.log, heads: heads))
            }

            let accepted = quiet.accepted + chaotic.accepted
            let duplicates = quiet.duplicates + chaotic.duplicates
            let rejected = quiet.rejected + chaotic.rejected
            var failures: [String] = []
            if stored != total || ours != total {
                failures.append("stored \(stored) readings (\(ours) of the run's station), sent \(total)")
            }
            if accepted != total { failures.append("the replies accepted \(accepted) readings, sent \(total)") }
            if duplicates != 0 { failures.append("\(duplicates) readings answered as duplicates (a retry applied twice?)") }
            if rejected != 0 { failures.append("\(rejected) readings rejected") }
            if eventGaps != 0 { failures.append("\(eventGaps) gaps in the event streams") }
            for (index, audit) in audits.enumerated() where audit.missing + audit.repeated + audit.outOfOrder > 0 {
                failures.append(
                    "subscriber \(index + 1): \(audit.missing) events missing, \(audit.repeated) repeated, \(audit.outOfOrder) out of order"
                )
            }

            say(
                "chaos run (\(lab.instanceCount) ingest instances on PostgreSQL behind duban-broker; "
                    + "batches of \(batch), \(inFlight) in flight)")
            say("  quiet:  \(quietReadings) readings in \(String(format: "%.1f", quiet.seconds)) s = \(Int(quiet.rate)) readings/s")
            say(
                "  chaos:  \(readings) readings in \(String(format: "%.1f", chaotic.seconds)) s = \(Int(chaotic.rate)) readings/s "
                    + "(\(String(format: "%.0f", 100 * chaotic.rate / max(quiet.rate, 1))) % of quiet)")
            say(
                "  faults: \(faults.instanceKills) instance kills (SIGKILL), \(faults.postgresRestarts) PostgreSQL restarts, "
                    + "\(faults.brokerRestarts) broker restarts, \(faults.subscriberKills) subscriber kills")
            say(
                "  client: \(quiet.attempts + chaotic.attempts) attempts for \(quiet.batches + chaotic.batches) batches "
                    + "(\(quiet.timeouts + chaotic.timeouts) timed out, \(quiet.unavailable + chaotic.unavailable) unavailable, retried)")
            say("  stored: \(stored) of \(total) readings; accepted \(accepted), duplicates \(duplicates), rejected \(rejected)")
            say("          losses \(max(0, total - stored)), doubles \(max(0, stored - total) + duplicates)")
            say(
                "  events: \(heads.sorted { $0.key < $1.key }.map { "\($0.key) 1…\($0.value)" }.joined(separator: ", ")); gaps \(eventGaps)"
            )
            for (index, audit) in audits.enumerated() {
                say(
                    "  subscriber \(index + 1): \(audit.delivered) delivered across \(subscriberProcesses[index].starts) starts; "
                        + "missing \(audit.missing), repeated \(audit.repeated), out of order \(audit.outOfOrder)")
            }
            await lab.stop()
            if !failures.isEmpty {
                say("FAILED: " + failures.joined(separator: "; "))
                throw ExitCode.failure
            }
            say("ok")
        } catch {
            for subscriber in subscriberProcesses { subscriber.process.kill() }
            await lab.stop()
            throw error
        }
    }
}

/// The run's readings: reading `i` is one of the air station's six parameters at its own minute of
/// 2026, so every reading has its own (station, parameter, ts) and values stay in plausible ranges.
enum Readings {
    static let station = "chengzhong_air"
    static let parameters: [(id: String, base: Double, swing: Double)] = [
        ("pm25", 35, 20), ("pm10", 60, 30), ("so2", 10, 5), ("no2", 30, 15), ("o3", 80, 40), ("co", 0.8, 0.4),
    ]
    static let start = Timestamp.parse("2026-01-01T00:00:00+08:00")!.timeIntervalSince1970

    static func batch(_ range: Range<Int>) -> ReadingSubmitRequest {
        ReadingSubmitRequest(
            readings: range.map { index in
                let parameter = parameters[index % parameters.count]
                let minute = index / parameters.count
                let value = parameter.base + parameter.swing * sin(Double(minute) / 240)
                return SubmittedReading(
                    station: station, parameter: parameter.id,
                    ts: Timestamp.format(Date(timeIntervalSince1970: start + Double(minute) * 60), fractional: false),
                    value: (value * 100).rounded() / 100)
            })
    }
}

/// Sends readings in keyed batches, each retried with its key until acknowledged.
final class Submitter: Sendable {
    struct Outcome: Sendable {
        var batches = 0
        var attempts = 0
        var timeouts = 0
        var unavailable = 0
        var accepted = 0
        var duplicates = 0
        var rejected = 0
        var seconds = 0.0
        var rate: Double { seconds > 0 ? Double(accepted + duplicates) / seconds : 0 }
    }

    let client: RPCClient
    let batch: Int
    let inFlight: Int
    let timeout: Duration
    /// Readings acknowledged since it was last set to 0, for the chaos schedule's "when".
    let progress = Atomic<Int>(0)

    init(client: RPCClient, batch: Int, inFlight: Int, timeout: Duration) {
        self.client = client
        self.batch = batch
        self.inFlight = inFlight
        self.timeout = timeout
    }

    func submit(range: Range<Int>) async throws -> Outcome {
        let starts = Array(stride(from: range.lowerBound, to: range.upperBound, by: batch))
        let run = UUID().uuidString.prefix(8)
        let started = ContinuousClock.now
        var total = Outcome()
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var next = 0
            func add() {
                let start = starts[next]
                let end = min(start + batch, range.upperBound)
                group.addTask { try await self.one(Readings.batch(start..<end), key: "chaos-\(run)-\(start)") }
                next += 1
            }
            while next < min(inFlight, starts.count) { add() }
            while let outcome = try await group.next() {
                total.batches += 1
                total.attempts += outcome.attempts
                total.timeouts += outcome.timeouts
                total.unavailable += outcome.unavailable
                total.accepted += outcome.accepted
                total.duplicates += outcome.duplicates
                total.rejected += outcome.rejected
                progress.add(outcome.accepted + outcome.duplicates, ordering: .relaxed)
                if next < starts.count { add() }
            }
        }
        total.seconds = seconds(ContinuousClock.now - started)
        return total
    }

    /// One batch until acknowledged: a timeout or `unavailable` is retried with the same key (the
    /// service applies a key once); anything else is a failure of the run.
    private func one(_ body: ReadingSubmitRequest, key: String) async throws -> Outcome {
        var outcome = Outcome(batches: 1)
        let encoded = try WireCoding.encode(body)
        while true {
            outcome.attempts += 1
            do {
                let frame = try await client.callRaw(
                    IngestTypes.readingSubmit, encodedBody: encoded, key: key, timeout: timeout, retries: 0)
                let reply = try WireCoding.decoder().decode(ReplyEnvelope<ReadingSubmitReply>.self, from: frame)
                if !reply.ok, let error = reply.error, error.code == .unavailable || error.code == .internal {
                    outcome.unavailable += 1
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                let result = try reply.result()
                outcome.accepted = result.accepted
                outcome.duplicates = result.duplicates
                outcome.rejected = result.rejected.count
                return outcome
            } catch RPCClientError.timeout {
                outcome.timeouts += 1
            }
        }
    }
}

/// The broker, the ingest instances and PostgreSQL, each restartable on its own addresses.
final class ChaosLab: @unchecked Sendable {
    // @unchecked: the processes are replaced only by the chaos schedule's one task, or after it ended.
    let cluster: PostgresCluster
    let front: Endpoints
    let backend: String
    let eventsIn: String
    let instanceCount: Int
    private(set) var broker: ServiceProcess
    private(set) var instances: [ServiceProcess]
    private let dataDirectories: [String]

    static func start(instances count: Int) async throws -> ChaosLab {
        let cluster = try PostgresCluster.start()
        let front = TestSupport.freeEndpoints()
        let backend = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let eventsIn = "tcp://127.0.0.1:\(TestSupport.freePort())"
        let broker = try await startBroker(front: front, backend: backend, eventsIn: eventsIn)
        let directories = try (1...count).map { _ in try TestSupport.temporaryDirectory("duban-chaos") }
        let lab = ChaosLab(cluster: cluster, front: front, backend: backend, eventsIn: eventsIn, broker: broker, directories: directories)
        for index in 0..<count { lab.instances.append(try await lab.startInstance(index)) }
        return lab
    }

    private init(
        cluster: PostgresCluster, front: Endpoints, backend: String, eventsIn: String, broker: ServiceProcess, directories: [String]
    ) {
        self.cluster = cluster
        self.front = front
        self.backend = backend
        self.eventsIn = eventsIn
        self.broker = broker
        self.instances = []
        self.dataDirectories = directories
        self.instanceCount = directories.count
    }

    static func startBroker(front: Endpoints, backend: String, eventsIn: String) async throws -> ServiceProcess {
        try await ServiceProcess.start(
            "duban-broker",
            arguments: ["--frontend", front.rpc, "--backend", backend, "--events-in", eventsIn, "--events-out", front.events],
            endpoints: front, environment: ["LOG_LEVEL": "warning"], waitForPing: false, passEndpoints: false)
    }

    func startInstance(_ index: Int) async throws -> ServiceProcess {
        try await ServiceProcess.start(
            "duban-ingest",
            arguments: ["--instance", "ingest-\(index + 1)", "--database-url", cluster.url, "--data-dir", dataDirectories[index]],
            endpoints: Endpoints(rpc: ">\(backend)", events: ">\(eventsIn)"), environment: ["LOG_LEVEL": "warning"], pingAt: front.rpc)
    }

    func killInstance(_ index: Int) { instances[index].kill() }

    func restartInstance(_ index: Int) async throws { instances[index] = try await startInstance(index) }

    func restartBroker() async throws {
        broker.kill()
        broker = try await Self.startBroker(front: front, backend: backend, eventsIn: eventsIn)
    }

    func ensureAllRunning() async throws {
        if !broker.process.isRunning { broker = try await Self.startBroker(front: front, backend: backend, eventsIn: eventsIn) }
        for index in instances.indices where !instances[index].process.isRunning { try await restartInstance(index) }
    }

    func stop() async {
        for instance in instances { _ = await instance.terminate() }
        _ = await broker.terminate()
        cluster.stop()
    }
}

/// One `duban-chaos subscriber` process and its log.
final class SubscriberProcess: @unchecked Sendable {
    // @unchecked: replaced only by the chaos schedule's task, or after it ended.
    let index: Int
    let log: String
    private(set) var process: ServiceProcess
    private(set) var starts = 1

    static func start(index: Int, lab: ChaosLab) async throws -> SubscriberProcess {
        let log = (try TestSupport.temporaryDirectory("duban-chaos-sub")) + "/delivered.log"
        return SubscriberProcess(index: index, log: log, process: try await launch(index: index, log: log, lab: lab))
    }

    private init(index: Int, log: String, process: ServiceProcess) {
        self.index = index
        self.log = log
        self.process = process
    }

    static func launch(index: Int, log: String, lab: ChaosLab) async throws -> ServiceProcess {
        // This very executable, wherever it was started from.
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return try await ServiceProcess.start(
            path,
            arguments: ["subscriber", "--events", lab.front.events, "--rpc", lab.front.rpc, "--log", log, "--name", "chaos-sub-\(index)"],
            endpoints: lab.front, waitForPing: false, passEndpoints: false)
    }

    func kill() { process.kill() }

    func restart(lab: ChaosLab) async throws {
        process = try await Self.launch(index: index, log: log, lab: lab)
        starts += 1
    }
}

/// The faults, on one task: an instance killed every `killRange` seconds and started again after a
/// moment, PostgreSQL and the broker restarted at even fractions of the readings, a subscriber killed
/// every `subscriberKillRange` seconds and started again.
final class ChaosSchedule: @unchecked Sendable {
    // @unchecked: `tally` and the generator are used by the one task that runs the schedule, and
    // `tally` is read after it ended.
    struct Tally: Sendable {
        var instanceKills = 0
        var postgresRestarts = 0
        var brokerRestarts = 0
        var subscriberKills = 0
    }

    let lab: ChaosLab
    let subscribers: [SubscriberProcess]
    let submitter: Submitter
    let total: Int
    let killRange: ClosedRange<Double>
    let maxKills: Int?
    let subscriberKillRange: ClosedRange<Double>
    let postgresRestarts: Int
    let brokerRestarts: Int
    private var generator: SeededGenerator
    private let stopped = Atomic<Bool>(false)
    private(set) var tally = Tally()

    init(
        lab: ChaosLab, subscribers: [SubscriberProcess], submitter: Submitter, total: Int, killRange: ClosedRange<Double>, maxKills: Int?,
        subscriberKillRange: ClosedRange<Double>, postgresRestarts: Int, brokerRestarts: Int, generator: SeededGenerator
    ) {
        self.lab = lab
        self.subscribers = subscribers
        self.submitter = submitter
        self.total = total
        self.killRange = killRange
        self.maxKills = maxKills
        self.subscriberKillRange = subscriberKillRange
        self.postgresRestarts = postgresRestarts
        self.brokerRestarts = brokerRestarts
        self.generator = generator
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func pause(_ range: ClosedRange<Double>) async throws {
        try await Task.sleep(for: .milliseconds(Int(Double.random(in: range, using: &generator) * 1000)))
    }

    func run() async throws {
        let clock = ContinuousClock()
        var nextKill = clock.now + .milliseconds(Int(Double.random(in: killRange, using: &generator) * 1000))
        var nextSubscriberKill = clock.now + .milliseconds(Int(Double.random(in: subscriberKillRange, using: &generator) * 1000))
        while !stopped.load(ordering: .relaxed) {
            let fraction = Double(submitter.progress.load(ordering: .relaxed)) / Double(max(total, 1))
            // PostgreSQL at a third of each of its shares of the run, the broker at two thirds.
            if tally.postgresRestarts < postgresRestarts, fraction >= (Double(tally.postgresRestarts) + 1.0 / 3) / Double(postgresRestarts)
            {
                note("chaos: restarting PostgreSQL")
                try lab.cluster.pause()
                try await pause(1...3)
                try lab.cluster.resume()
                tally.postgresRestarts += 1
                continue
            }
            if tally.brokerRestarts < brokerRestarts, fraction >= (Double(tally.brokerRestarts) + 2.0 / 3) / Double(brokerRestarts) {
                note("chaos: restarting the broker")
                try await lab.restartBroker()
                tally.brokerRestarts += 1
                continue
            }
            // With a cap on kills (a short run), each is also due at its share of the readings, so
            // that all of them happen however fast the run goes.
            let dueByProgress = maxKills.map { fraction >= (Double(tally.instanceKills) + 0.25) / Double(max($0, 1)) } ?? false
            if clock.now >= nextKill || dueByProgress, tally.instanceKills < (maxKills ?? Int.max) {
                let index = Int.random(in: 0..<lab.instanceCount, using: &generator)
                note("chaos: SIGKILL ingest-\(index + 1)")
                lab.killInstance(index)
                tally.instanceKills += 1
                try await pause(0.5...2)
                try await lab.restartInstance(index)
                nextKill = clock.now + .milliseconds(Int(Double.random(in: killRange, using: &generator) * 1000))
                continue
            }
            if !subscribers.isEmpty, clock.now >= nextSubscriberKill {
                let subscriber = subscribers[Int.random(in: 0..<subscribers.count, using: &generator)]
                subscriber.kill()
                tally.subscriberKills += 1
                try await pause(0.2...1)
                try await subscriber.restart(lab: lab)
                nextSubscriberKill = clock.now + .milliseconds(Int(Double.random(in: subscriberKillRange, using: &generator) * 1000))
                continue
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
