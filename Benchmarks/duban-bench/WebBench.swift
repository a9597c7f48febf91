import AsyncHTTPClient
import DubanConfig
import DubanTesting
import Foundation
import Messaging
import NIOCore
import Schema

/// The web console under load: the four services and `duban-web` as processes, the full bundled
/// plan and `cases` ledger cases. The office's dashboard (`/`: five service calls and the whole
/// ledger's counts, rendered per request) against a static file from the same server, by a few
/// clients in a closed loop; then `screens` open live streams (`/events`) while progress reports
/// stream in: events per second to each screen, and how many any screen missed (must be none).
struct WebBench {
    let runs: Int
    let cases: Int
    let screens: Int
    let seconds: Double
    let concurrency: Int
    let reports: Int

    static let password = "bench-password-0123"

    func run(into rows: inout [ReportRow]) async throws {
        let stack = try await Stack.start(cases: cases)
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(120)))
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: screens + concurrency + 8)
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let cookie = try await login(client, base: stack.base)
            var dashboardP50: [Double] = []
            var dashboardP99: [Double] = []
            var dashboardRate: [Double] = []
            var staticP50: [Double] = []
            var staticP99: [Double] = []
            var staticRate: [Double] = []
            var size = 0
            for _ in 0..<runs {
                let dashboard = try await load(client, url: stack.base + "/", cookie: cookie)
                let file = try await load(client, url: stack.base + "/static/app.css", cookie: cookie)
                size = dashboard.bytes
                dashboardP50.append(dashboard.p50)
                dashboardP99.append(dashboard.p99)
                dashboardRate.append(dashboard.perSecond)
                staticP50.append(file.p50)
                staticP99.append(file.p99)
                staticRate.append(file.perSecond)
                log(
                    "web: dashboard p50 \(dashboard.p50) ms p99 \(dashboard.p99) ms \(Int(dashboard.perSecond))/s (\(dashboard.bytes) B); "
                        + "static p50 \(file.p50) ms p99 \(file.p99) ms \(Int(file.perSecond))/s")
            }
            let reference = "static file, same server"
            func row(_ name: String, _ duban: [Double], _ ref: [Double], unit: String) -> ReportRow {
                let a = Measured(duban, unit: unit)
                let b = Measured(ref, unit: unit)
                return ReportRow(section: "web", name: name, duban: a, reference: b, referenceName: reference, ratio: a.median / b.median)
            }
            let label = "dashboard of the full plan and \(cases) cases (\(size / 1024) KB), \(concurrency) clients"
            rows.append(row("\(label): p50", dashboardP50, staticP50, unit: "ms"))
            rows.append(row("\(label): p99", dashboardP99, staticP99, unit: "ms"))
            rows.append(row("\(label): pages/s", dashboardRate, staticRate, unit: "/s"))

            var coldP50: [Double] = []
            var coldP99: [Double] = []
            for _ in 0..<runs {
                let cold = try await afterChange(client, stack: stack, cookie: cookie)
                coldP50.append(cold.p50)
                coldP99.append(cold.p99)
                log("web: dashboard right after a ledger change p50 \(cold.p50) ms p99 \(cold.p99) ms")
            }
            rows.append(
                ReportRow(
                    section: "web", name: "dashboard right after a ledger change (the ledger asked again), 1 client: p50",
                    duban: Measured(coldP50, unit: "ms")))
            rows.append(ReportRow(section: "web", name: "dashboard right after a ledger change: p99", duban: Measured(coldP99, unit: "ms")))

            var rates: [Double] = []
            var missed: [Double] = []
            var delivered = 0
            for _ in 0..<runs {
                let figures = try await live(client, stack: stack, cookie: cookie)
                rates.append(figures.perSecond)
                missed.append(Double(figures.missed))
                delivered = figures.events
                log(
                    "web: \(screens) screens, \(figures.events) events each, \(Int(figures.perSecond)) events/s each, "
                        + "missed \(figures.missed)"
                )
            }
            let lost = Measured(missed, unit: "events")
            rows.append(
                ReportRow(
                    section: "web", name: "live updates to \(screens) screens: events/s each (\(delivered) events per run)",
                    duban: Measured(rates, unit: "events/s")))
            rows.append(
                ReportRow(
                    section: "web", name: "live updates to \(screens) screens: events missed by any screen", duban: lost, target: "0",
                    met: lost.max == 0))
        } catch {
            try? await client.shutdown()
            stack.stop()
            throw error
        }
        // The stack stops whatever the client's shutdown says (a run once left its five services
        // running when the shutdown threw after cancelled streams).
        do {
            try await client.shutdown()
        } catch {
            stack.stop()
            throw error
        }
        stack.stop()
    }

    // MARK: The stack

    final class Stack: @unchecked Sendable {
        var processes: [ServiceProcess] = []
        var web: Process?
        var base = ""
        var registry: Endpoints!
        var cases: Endpoints!

        static func start(cases count: Int) async throws -> Stack {
            let stack = Stack()
            do {
                try await stack.boot(cases: count)
            } catch {
                stack.stop()
                throw error
            }
            return stack
        }

        func boot(cases count: Int) async throws {
            let dir = try TestSupport.temporaryDirectory("bench-web")
            let quiet = ["LOG_LEVEL": "warning"]
            let registry = try await ServiceProcess.start(
                "duban-registry", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(), environment: quiet)
            processes.append(registry)
            self.registry = registry.endpoints
            let peers = [
                "DUBAN_REGISTRY_RPC": registry.endpoints.rpc, "DUBAN_REGISTRY_EVENTS": registry.endpoints.events,
            ]
            let ingest = try await ServiceProcess.start(
                "duban-ingest", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(),
                environment: quiet.merging(peers) { a, _ in a })
            processes.append(ingest)
            let cases = try await ServiceProcess.start(
                "duban-cases", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(),
                environment: quiet.merging(peers) { a, _ in a })
            processes.append(cases)
            self.cases = cases.endpoints
            var all = peers
            all["DUBAN_INGEST_RPC"] = ingest.endpoints.rpc
            all["DUBAN_INGEST_EVENTS"] = ingest.endpoints.events
            all["DUBAN_CASES_RPC"] = cases.endpoints.rpc
            all["DUBAN_CASES_EVENTS"] = cases.endpoints.events
            let notify = try await ServiceProcess.start(
                "duban-notify", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(),
                environment: quiet.merging(all) { a, _ in a })
            processes.append(notify)
            all["DUBAN_NOTIFY_RPC"] = notify.endpoints.rpc
            all["DUBAN_NOTIFY_EVENTS"] = notify.endpoints.events

            // The ledger: `count` cases spread over the units that own cases in the plan, in chunks of 500.
            let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
            let units = ["区生态环境局", "区城乡建设局", "区自然资源和林业局", "区农业农村局", "区发展改革和工业信息化局"]
            let sources = ["self_inspection", "sewer_misconnection", "outfall", "central_inspection"]
            var made = 0
            while made < count {
                let chunk = (made..<min(count, made + 500)).map { index -> JSONValue in
                    .object([
                        "source": .string(sources[index % sources.count]), "title": .string("排查问题 \(index + 1)"),
                        "unit": .string(units[index % units.count]),
                        "deadline": .string(index % 7 == 0 ? "2026-01-31" : "2026-12-31"),
                    ])
                }
                let reply = try await office.call(CaseTypes.import, CaseImportRequest(cases: chunk), timeout: .seconds(60))
                // A unit the plan does not know is refused: the rest still make the count up.
                made += chunk.count
                if !reply.rejected.isEmpty { log("web: \(reply.rejected.count) cases refused: \(reply.rejected.first!)") }
            }
            await office.close()

            let password = (dir as NSString).appendingPathComponent("bench-password")
            try WebBench.password.write(toFile: password, atomically: true, encoding: .utf8)
            let add = Process()
            add.executableURL = URL(fileURLWithPath: (TestSupport.binDirectory as NSString).appendingPathComponent("duban-web"))
            add.arguments = [
                "users", "add", "bench", "--unit", officeUnit, "--role", "office", "--password-file", password, "--data-dir", dir,
                "--bcrypt-cost", "4",
            ]
            try add.run()
            add.waitUntilExit()
            guard add.terminationStatus == 0 else { throw TestFailure("duban-web users add failed") }

            let port = TestSupport.freePort()
            let web = Process()
            web.executableURL = add.executableURL
            web.arguments = ["--http", "127.0.0.1:\(port)", "--data-dir", dir, "--heartbeat-seconds", "15"]
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DUBAN_") }
            for (key, value) in all { environment[key] = value }
            environment["LOG_LEVEL"] = "warning"
            web.environment = environment
            let logPath = (dir as NSString).appendingPathComponent("web.log")
            FileManager.default.createFile(atPath: logPath, contents: nil)
            web.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            web.standardError = web.standardOutput
            try web.run()
            self.web = web
            base = "http://127.0.0.1:\(port)"
            let probe = HTTPClient(eventLoopGroupProvider: .singleton)
            let up = await TestSupport.eventually(timeout: .seconds(20)) {
                (try? await probe.execute(HTTPClientRequest(url: self.base + "/healthz"), timeout: .seconds(1)))?.status == .ok
            }
            try await probe.shutdown()
            guard up else { throw TestFailure("duban-web did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")") }
            // The live hub follows the three streams before the figures start.
            try await Task.sleep(for: .seconds(1))
        }

        func stop() {
            if let web, web.isRunning {
                web.terminate()
                web.waitUntilExit()
            }
            for process in processes.reversed() { process.kill() }
        }
    }

    // MARK: Dashboard and static file

    func login(_ client: HTTPClient, base: String) async throws -> String {
        let page = try await client.execute(HTTPClientRequest(url: base + "/login"), timeout: .seconds(10))
        let html = String(buffer: try await page.body.collect(upTo: 1 << 20))
        let cookies = page.headers["set-cookie"].map { $0.split(separator: ";")[0] }.joined(separator: "; ")
        guard let range = html.range(of: "name=\"_login\" value=\"") else { throw TestFailure("no login form") }
        let token = html[range.upperBound...].prefix { $0 != "\"" }
        var request = HTTPClientRequest(url: base + "/login")
        request.method = .POST
        request.headers.add(name: "Cookie", value: cookies)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "_login=\(token)&next=%2F&name=bench&password=\(Self.password)"))
        let response = try await client.execute(request, timeout: .seconds(10))
        guard let session = response.headers["set-cookie"].first(where: { $0.hasPrefix("duban_session=") }) else {
            throw TestFailure("login failed: \(response.status)")
        }
        return String(session.split(separator: ";")[0])
    }

    struct Load {
        var p50: Double
        var p99: Double
        var perSecond: Double
        var bytes: Int
    }

    /// `concurrency` clients, each fetching `url` again as soon as it has the whole page, for `seconds`.
    func load(_ client: HTTPClient, url: String, cookie: String) async throws -> Load {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var bytes = 0
                    while ContinuousClock.now < deadline {
                        var request = HTTPClientRequest(url: url)
                        request.headers.add(name: "Cookie", value: cookie)
                        let begin = ContinuousClock.now
                        let response = try await client.execute(request, timeout: .seconds(60))
                        let body = try await response.body.collect(upTo: 64 << 20)
                        guard response.status == .ok else { throw TestFailure("\(url): \(response.status)") }
                        latencies.append(Benchmarks.seconds(ContinuousClock.now - begin) * 1000)
                        bytes = body.readableBytes
                    }
                    return (latencies, bytes)
                }
            }
            var all: [([Double], Int)] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = Benchmarks.seconds(ContinuousClock.now - started)
        let latencies = results.flatMap(\.0).sorted()
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        let round = { (value: Double) in (value * 100).rounded() / 100 }
        return Load(
            p50: round(percentile(0.5)), p99: round(percentile(0.99)), perSecond: Double(latencies.count) / elapsed,
            bytes: results.first?.1 ?? 0)
    }

    /// One client: a progress update on a case (a `cases` event), a pause for the event to reach the
    /// console, then the dashboard: the ledger's answer is fetched again, the others are still shared.
    func afterChange(_ client: HTTPClient, stack: Stack, cookie: String) async throws -> Load {
        let office = try await RPCClient.connect(to: stack.cases.rpc, from: officeUnit)
        let some = try await office.call(CaseTypes.list, CaseListRequest(status: .registered), timeout: .seconds(30))
        guard let item = some.items.first else { throw TestFailure("no registered case") }
        var latencies: [Double] = []
        for index in 0..<20 {
            _ = try await office.call(CaseTypes.update, CaseUpdateRequest(id: item.id, text: "进展 \(index)"), timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(100))
            var request = HTTPClientRequest(url: stack.base + "/")
            request.headers.add(name: "Cookie", value: cookie)
            let begin = ContinuousClock.now
            let response = try await client.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 64 << 20)
            latencies.append(Benchmarks.seconds(ContinuousClock.now - begin) * 1000)
        }
        await office.close()
        latencies.sort()
        let round = { (value: Double) in (value * 100).rounded() / 100 }
        return Load(
            p50: round(latencies[latencies.count / 2]), p99: round(latencies[latencies.count - 1]), perSecond: 0, bytes: 0)
    }

    // MARK: Live updates

    struct Live {
        var events: Int
        var perSecond: Double
        var missed: Int
    }

    /// One screen's stream: counts `data:` messages and keeps the first and last `id:` (every stream's position).
    final class Screen: @unchecked Sendable {
        let lock = NSLock()
        var messages = 0
        var first: [String: Int]?
        var last: [String: Int] = [:]
        var lastAt = ContinuousClock.now
        var pending = ""

        func take(_ text: String) {
            lock.lock()
            defer { lock.unlock() }
            pending += text
            while let end = pending.range(of: "\n\n") {
                let message = pending[..<end.lowerBound]
                pending.removeSubrange(..<end.upperBound)
                var positions: [String: Int]?
                var data = false
                for line in message.split(separator: "\n") {
                    if line.hasPrefix("id: ") {
                        var parsed: [String: Int] = [:]
                        for item in line.dropFirst(4).split(separator: ",") {
                            let kv = item.split(separator: ":")
                            if kv.count == 2, let seq = Int(kv[1]) { parsed[String(kv[0])] = seq }
                        }
                        positions = parsed
                    }
                    if line.hasPrefix("data: ") { data = true }
                }
                if let positions {
                    if first == nil { first = positions }
                    last = positions
                }
                if data {
                    messages += 1
                    lastAt = .now
                }
            }
        }

        var snapshot: (messages: Int, first: [String: Int]?, last: [String: Int], lastAt: ContinuousClock.Instant) {
            lock.lock()
            defer { lock.unlock() }
            return (messages, first, last, lastAt)
        }
    }

    func live(_ client: HTTPClient, stack: Stack, cookie: String) async throws -> Live {
        let screens = (0..<self.screens).map { _ in Screen() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for screen in screens {
                group.addTask {
                    var request = HTTPClientRequest(url: stack.base + "/events")
                    request.headers.add(name: "Cookie", value: cookie)
                    let response = try await client.execute(request, timeout: .seconds(600))
                    for try await buffer in response.body { screen.take(String(buffer: buffer)) }
                }
            }
            // Every screen connected (its first id line) before the reports start.
            let connected = await TestSupport.eventually(timeout: .seconds(60)) { screens.allSatisfy { $0.snapshot.first != nil } }
            guard connected else { throw TestFailure("only \(screens.filter { $0.snapshot.first != nil }.count) screens connected") }
            let registry = try await RPCClient.connect(to: stack.registry.rpc, from: "区生态环境局")
            let tasks = try await registry.callAll(RegistryTypes.taskList, TaskListRequest(unit: "区生态环境局"), timeout: .seconds(10))
            let leaves = tasks.filter { $0.subtasks.isEmpty && $0.leadUnits.contains("区生态环境局") }
            let started = ContinuousClock.now
            for index in 0..<reports {
                _ = try await registry.call(
                    RegistryTypes.progressReport,
                    ProgressReportRequest(
                        task: leaves[index % leaves.count].id, period: "2026-11", unit: "区生态环境局", percent: Double(index % 100),
                        summary: "第 \(index + 1) 次报送"), timeout: .seconds(10))
            }
            let heads = try await registry.call(SystemTypes.ping, Empty(), as: PingReply.self).streams
            await registry.close()
            // Delivered: every screen has reached the registry's head (and nothing more arrives for a second).
            _ = await TestSupport.eventually(timeout: .seconds(60)) {
                screens.allSatisfy { ($0.snapshot.last["registry"] ?? 0) >= (heads["registry"] ?? 0) }
            }
            let finished = screens.map(\.snapshot.lastAt).max() ?? .now
            try await Task.sleep(for: .seconds(1))
            group.cancelAll()
            // What each screen should have had: every stream's advance between its first and last position.
            var missed = 0
            var counts: [Int] = []
            for screen in screens {
                let snapshot = screen.snapshot
                let first = snapshot.first ?? [:]
                var expected = 0
                for (stream, seq) in snapshot.last { expected += seq - (first[stream] ?? 0) }
                // Events it never got at all: those between its last position and the registry's head.
                let behind = max(0, (heads["registry"] ?? 0) - (snapshot.last["registry"] ?? 0))
                missed += max(0, expected - snapshot.messages) + behind
                counts.append(snapshot.messages)
            }
            let events = counts.min() ?? 0
            let elapsed = max(0.001, Benchmarks.seconds(finished - started))
            return Live(events: events, perSecond: Double(events) / elapsed, missed: missed)
        }
    }
}

/// Where `seconds(_:)` lives, named so the bench's own `seconds` properties do not hide it.
enum Benchmarks {
    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
