import CZeroMQ
import DubanTesting
import Foundation
import Histogram
import Messaging
import Schema
import ServiceKit

/// Events from the registry to 1, 10 and 50 subscribers while progress reports stream in unpaced:
/// what a plain SUB socket gets (PUB drops at its high-water mark) next to what Duban's catch-up
/// subscriber delivers (must be everything), and raw PUB→SUB of the same event size for reference.
struct FanOutBench {
    let runs: Int
    let events: Int
    let subscriberCounts: [Int]

    func run(into rows: inout [ReportRow]) async throws {
        for count in subscriberCounts {
            var delivered: [Double] = []
            var lostLive: [Double] = []
            var lostAfter: [Double] = []
            var rawRate: [Double] = []
            var rawLost: [Double] = []
            var eventSize = 400
            for _ in 0..<runs {
                let figures = try await measure(subscribers: count)
                delivered.append(figures.perSecond)
                lostLive.append(figures.lostLive)
                lostAfter.append(figures.lostAfter)
                eventSize = figures.eventSize
                let raw = RawZMQ.fanOut(subscribers: count, size: eventSize, count: events)
                rawRate.append(raw.perSecond)
                rawLost.append(raw.lost * Double(events))
                log(
                    "fan-out ×\(count): \(Int(figures.perSecond)) events/s to each, live SUB lost \(Int(figures.lostLive)), "
                        + "after catch-up lost \(Int(figures.lostAfter)); "
                        + "raw PUB/SUB \(Int(raw.perSecond))/s, lost \(Int(raw.lost * Double(events)))"
                )
            }
            rows.append(
                ReportRow(
                    section: "events", name: "fan-out to \(count): events/s each (as fast as reports commit), all delivered",
                    duban: Measured(delivered, unit: "events/s"),
                    reference: Measured(rawRate, unit: "msg/s"), referenceName: "raw ZeroMQ PUB→SUB capacity, \(eventSize) B, unpaced"))
            rows.append(
                ReportRow(
                    section: "events", name: "fan-out to \(count): lost by a plain SUB (before catch-up), of \(events)",
                    duban: Measured(lostLive, unit: "events"),
                    reference: Measured(rawLost, unit: "msg"), referenceName: "raw ZeroMQ PUB→SUB, lost"))
            let after = Measured(lostAfter, unit: "events")
            rows.append(
                ReportRow(
                    section: "events", name: "fan-out to \(count): lost after catch-up", duban: after, target: "0", met: after.max == 0))
        }
    }

    struct Figures {
        var perSecond: Double
        var lostLive: Double
        var lostAfter: Double
        var eventSize: Int
    }

    func measure(subscribers count: Int) async throws -> Figures {
        let dir = try TestSupport.temporaryDirectory("bench-fanout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(), environment: ["LOG_LEVEL": "warning"])
        defer { registry.kill() }
        let client = try await RPCClient.connect(to: registry.endpoints.rpc, from: "区城乡建设局")
        defer { Task { await client.close() } }
        let startHead = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self).streams["registry"] ?? 0

        // Plain SUB sockets: what a tool without catch-up would see.
        nonisolated(unsafe) let context = zmq_ctx_new()!
        let stopLive = Locked(false)
        let liveCounts = Locked<[Int]>([])
        let liveDone = DispatchSemaphore(value: 0)
        let liveReady = DispatchSemaphore(value: 0)
        let maxSize = Locked(0)
        for _ in 0..<count {
            _ = RawZMQ.thread {
                let socket = RawZMQ.Socket(context, ZMQ_SUB)
                socket.set(ZMQ_SUBSCRIBE, "")
                socket.set(ZMQ_RCVTIMEO, 200)
                socket.connect(registry.endpoints.events)
                liveReady.signal()
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                var got = 0
                while true {
                    let n = socket.receive(&buffer)
                    if n < 0 {
                        if stopLive.withLock({ $0 }) { break }
                        continue
                    }
                    if !socket.more {
                        got += 1
                        maxSize.withLock { $0 = max($0, n) }
                    }
                }
                liveCounts.withLock { $0.append(got) }
                socket.close()
                liveDone.signal()
            }
        }
        for _ in 0..<count { liveReady.wait() }
        // Duban's subscribers, from now.
        var subscribers: [EventSubscriber] = []
        for index in 0..<count {
            subscribers.append(
                try await EventSubscriber.start(
                    events: registry.endpoints.events, rpc: registry.endpoints.rpc, from: .now, heartbeat: .milliseconds(500),
                    name: "bench-sub-\(index)"))
        }
        try await Task.sleep(for: .milliseconds(300))
        let deliveredCounts = Locked<[Int]>(Array(repeating: 0, count: count))
        let target = events
        let consumers = subscribers.enumerated().map { index, subscriber in
            Task {
                for await _ in subscriber.events {
                    let done = deliveredCounts.withLock { counts -> Bool in
                        counts[index] += 1
                        return counts[index] >= target
                    }
                    if done { break }
                }
            }
        }

        // Unpaced: 32 reports in flight, each a new event.
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let perWorker = events / 32
            for worker in 0..<32 {
                group.addTask {
                    for index in 0..<perWorker {
                        _ = try await client.call(
                            RegistryTypes.progressReport,
                            ProgressReportRequest(
                                task: "10", period: "2026-10", unit: "区城乡建设局", percent: Double((worker * perWorker + index) % 100),
                                summary: "压测 \(worker)-\(index)"),
                            as: ProgressReport.self, timeout: .seconds(30))
                    }
                }
            }
            try await group.waitForAll()
        }
        let endHead = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self).streams["registry"] ?? 0
        let published = endHead - startHead
        // Every Duban subscriber must reach the head.
        _ = await TestSupport.eventually(timeout: .seconds(60)) {
            deliveredCounts.withLock { $0.allSatisfy { $0 >= min(target, published) } }
        }
        let elapsed = seconds(ContinuousClock.now - started)
        stopLive.withLock { $0 = true }
        for _ in 0..<count { liveDone.wait() }
        zmq_ctx_term(context)
        for consumer in consumers { consumer.cancel() }
        for subscriber in subscribers { await subscriber.stop() }
        let delivered = deliveredCounts.withLock { $0 }
        let live = liveCounts.withLock { $0 }
        return Figures(
            perSecond: Double(delivered.min() ?? 0) / elapsed,
            lostLive: Double(live.map { max(0, published - $0) }.max() ?? 0),
            lostAfter: Double(delivered.map { max(0, min(target, published) - $0) }.max() ?? 0),
            eventSize: maxSize.withLock { $0 })
    }
}

/// Memory (RSS) of each service idle and after load, and the time from start to the first
/// answered `sys.ping`, first start (empty data directory) and restart.
struct FootprintBench {
    let runs: Int

    func run(into rows: inout [ReportRow]) async throws {
        // The ledger asks the registry which units exist, and notifications follow every service:
        // a registry runs beside them, as in a deployment.
        let registryDir = try TestSupport.temporaryDirectory("bench-footprint-registry")
        defer { try? FileManager.default.removeItem(atPath: registryDir) }
        let registry = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", registryDir], endpoints: TestSupport.freeEndpoints(),
            environment: ["LOG_LEVEL": "warning"])
        defer { registry.kill() }
        let environment = [
            "LOG_LEVEL": "warning", "DUBAN_REGISTRY_RPC": registry.endpoints.rpc, "DUBAN_REGISTRY_EVENTS": registry.endpoints.events,
        ]
        for service in ServiceName.allCases {
            var firstStart: [Double] = []
            var restart: [Double] = []
            var idle: [Double] = []
            var loaded: [Double] = []
            for _ in 0..<runs {
                let dir = try TestSupport.temporaryDirectory("bench-footprint")
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let endpoints = TestSupport.freeEndpoints()
                var (process, millis) = try await start(service, dir: dir, endpoints: endpoints, environment: environment)
                firstStart.append(millis)
                try await Task.sleep(for: .seconds(1))
                idle.append(rss(process))
                try await load(service, endpoints: endpoints)
                loaded.append(rss(process))
                _ = await process.terminate()
                (process, millis) = try await start(service, dir: dir, endpoints: endpoints, environment: environment)
                restart.append(millis)
                _ = await process.terminate()
            }
            log("\(service.rawValue): start \(firstStart) ms, restart \(restart) ms, RSS idle \(idle) MB, loaded \(loaded) MB")
            let name = "duban-\(service.rawValue)"
            let idleFigure = Measured(idle, unit: "MB")
            rows.append(
                ReportRow(section: "footprint", name: "\(name) RSS idle", duban: idleFigure, target: "< 40 MB", met: idleFigure.max < 40))
            rows.append(ReportRow(section: "footprint", name: "\(name) RSS after load", duban: Measured(loaded, unit: "MB")))
            let first = Measured(firstStart, unit: "ms")
            rows.append(
                ReportRow(
                    section: "footprint", name: "\(name) start → first ping (empty data dir)", duban: first, target: "< 300 ms",
                    met: first.median < 300))
            let again = Measured(restart, unit: "ms")
            rows.append(
                ReportRow(
                    section: "footprint", name: "\(name) restart → first ping", duban: again, target: "< 300 ms", met: again.median < 300))
        }
    }

    /// Starts the service and times spawn → first answered ping: it polls the rpc port with plain TCP
    /// connects every millisecond (ZeroMQ's own reconnect interval, 100 ms, would blur the figure),
    /// then asks `sys.ping`.
    func start(_ service: ServiceName, dir: String, endpoints: Endpoints, environment: [String: String]) async throws -> (
        ServiceProcess, Double
    ) {
        let started = ContinuousClock.now
        let process = try await ServiceProcess.start(
            "duban-\(service.rawValue)", arguments: ["--data-dir", dir], endpoints: endpoints, environment: environment, waitForPing: false)
        let port = Int(endpoints.rpc.split(separator: ":").last!)!
        while !HostileClients.accepts(port: port) {
            guard process.process.isRunning, ContinuousClock.now - started < .seconds(30) else {
                throw TestFailure("\(service) did not start: \(process.log)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        let client = try await RPCClient.connect(to: endpoints.rpc, from: "bench")
        _ = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(10), retries: 0)
        let elapsed = seconds(ContinuousClock.now - started) * 1000
        await client.close()
        return (process, elapsed)
    }

    /// Resident set size, MB, from /proc.
    func rss(_ process: ServiceProcess) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(process.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(whereSeparator: \.isNewline).first { $0.hasPrefix("VmRSS:") } ?? ""
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") ?? .nan
        return kilobytes / 1024
    }

    /// A representative load for each service.
    func load(_ service: ServiceName, endpoints: Endpoints) async throws {
        let client = try await RPCClient.connect(to: endpoints.rpc, from: service == .registry ? "区城乡建设局" : "专项工作组办公室")
        defer { Task { await client.close() } }
        switch service {
        case .registry:
            for index in 0..<2_000 {
                _ = try await client.call(
                    RegistryTypes.taskGet, TaskGetRequest(id: ["3", "7.3", "10", "12"][index % 4]), as: PlanTask.self)
            }
            for index in 0..<300 {
                _ = try await client.call(
                    RegistryTypes.progressReport,
                    ProgressReportRequest(
                        task: "10", period: "2026-10", unit: "区城乡建设局", percent: Double(index % 100), summary: "负载 \(index)"),
                    as: ProgressReport.self)
            }
            _ = try await client.call(RegistryTypes.taskList, TaskListRequest(), as: ListReply<PlanTask>.self)
        case .ingest:
            for batch in 0..<50 {
                _ = try await client.call(
                    IngestTypes.readingSubmit, ReadingSubmitRequest(readings: IngestBench.readings(1000, offset: batch * 1000)),
                    as: ReadingSubmitReply.self, timeout: .seconds(60))
            }
            _ = try await client.call(IngestTypes.indicatorList, Empty(), as: ListReply<Indicator>.self)
        case .cases:
            for index in 0..<300 {
                _ = try await client.call(
                    CaseTypes.open,
                    CaseOpenRequest(source: .publicReport, title: "群众举报 \(index)", unit: "区城市管理局", deadline: "2026-12-31", task: "12"),
                    as: Case.self)
            }
            _ = try await client.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self)
        case .notify:
            for _ in 0..<500 { _ = try await client.call(NotifyTypes.noticeList, NoticeListRequest(), as: ListReply<Notice>.self) }
        }
    }
}

/// What switching CURVE on costs (issue #14's targets): a typed `sys.ping` to the registry and
/// ingestion at 1,000 readings a message, each against the same service without keys, measured in
/// alternating runs of the same process pair; and raw REQ/REP with and without CURVE + ZAP for
/// what libzmq alone costs.
struct CurveBench {
    let runs: Int
    let calls: Int

    func run(into rows: inout [ReportRow]) async throws {
        let keys = try TestKeys.make()
        var plain: [Latency] = []
        var curve: [Latency] = []
        var rawPlain: [Latency] = []
        var rawCurve: [Latency] = []
        var ingestPlain: [Double] = []
        var ingestCurve: [Double] = []
        let ingest = IngestBench(runs: 1, readings: 100_000, inFlight: 4, postgres: false, batches: [1000])
        for run in 1...runs {
            // The two services side by side, asked in alternating chunks, so drift falls on both alike.
            let dir = try TestSupport.temporaryDirectory("bench-curve")
            let open = try await ServiceProcess.start(
                "duban-registry", arguments: ["--data-dir", "\(dir)/open"], endpoints: TestSupport.freeEndpoints(),
                environment: ["LOG_LEVEL": "warning"])
            let secured = try await ServiceProcess.start(
                "duban-registry", arguments: ["--data-dir", "\(dir)/secured", "--keys", keys.path], endpoints: TestSupport.freeEndpoints(),
                environment: ["LOG_LEVEL": "warning"], curve: try keys.curve("reader", toward: .registry))
            let openClient = try await RPCClient.connect(to: open.endpoints.rpc, from: "bench")
            let securedClient = try await keys.client("reader", .registry, at: secured.endpoints.rpc)
            var openHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var securedHistogram = openHistogram
            for client in [openClient, securedClient] {
                for _ in 0..<2_000 { _ = try await client.call(SystemTypes.ping, Empty()) }
            }
            for chunk in 0..<20 {
                let client = chunk % 2 == 0 ? openClient : securedClient
                for _ in 0..<(calls / 10) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try await client.call(SystemTypes.ping, Empty())
                    let elapsed = DispatchTime.now().uptimeNanoseconds - start
                    if chunk % 2 == 0 { openHistogram.record(elapsed) } else { securedHistogram.record(elapsed) }
                }
            }
            plain.append(Latency(openHistogram))
            curve.append(Latency(securedHistogram))
            await openClient.close()
            await securedClient.close()
            open.kill()
            secured.kill()
            ingestPlain.append(try await ingest.dubanRate(batch: 1000, instances: 1, postgres: false))
            ingestCurve.append(try await ingest.dubanRate(batch: 1000, instances: 1, postgres: false, keys: keys))
            rawPlain.append(Latency(RawZMQ.requestReply(requestSize: 120, replySize: 2500, calls: calls)))
            rawCurve.append(Latency(RawZMQ.requestReply(requestSize: 120, replySize: 2500, calls: calls, curve: true)))
            log(
                "curve run \(run): sys.ping p50 \(plain.last!.p50) µs plain, \(curve.last!.p50) µs CURVE; "
                    + "ingest \(Int(ingestPlain.last!)) / \(Int(ingestCurve.last!)) readings/s")
        }
        func add(
            _ name: String, _ duban: [Double], _ reference: [Double], _ referenceName: String, unit: String, target: Double?,
            higherIsBetter: Bool = false, targetText: String? = nil
        ) {
            let d = Measured(duban, unit: unit)
            let r = Measured(reference, unit: unit)
            let ratio = d.median / r.median
            rows.append(
                ReportRow(
                    section: "curve", name: name, duban: d, reference: r, referenceName: referenceName, ratio: ratio, target: targetText,
                    met: target.map { higherIsBetter ? ratio >= $0 : ratio <= $0 }))
        }
        add(
            "sys.ping p50 with CURVE, typed call, reply decoded", curve.map(\.p50), plain.map(\.p50), "the same registry without keys",
            unit: "µs", target: 1.2, targetText: "≤ 1.2×")
        add("sys.ping p99 with CURVE", curve.map(\.p99), plain.map(\.p99), "the same registry without keys", unit: "µs", target: nil)
        add(
            "ingestion with CURVE, 1,000 readings/message, SQLite", ingestCurve, ingestPlain, "the same without keys", unit: "readings/s",
            target: 0.9, higherIsBetter: true, targetText: "≥ 0.9×")
        add(
            "REQ/REP p50 with CURVE + ZAP (raw libzmq)", rawCurve.map(\.p50), rawPlain.map(\.p50), "same without CURVE", unit: "µs",
            target: nil)
    }
}
