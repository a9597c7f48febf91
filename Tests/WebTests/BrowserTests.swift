import AsyncHTTPClient
import DubanTesting
import Foundation
import Logging
import Messaging
import Schema
import ServiceLifecycle
import Testing
import WebConsole

/// The console as people use it: a real server on a free port, in front of the four services,
/// driven by headless Chromium (scripts/setup.sh installs chromium, chromium-driver, CJK fonts
/// and Selenium).
@Suite(.serialized) struct BrowserTests {
    /// The console served on a free port until `stop()`.
    final class RunningConsole: Sendable {
        let group: ServiceGroup
        let runner: Task<Void, any Error>
        let port: Int

        init(_ console: WebConsole, port: Int) {
            self.port = port
            var logger = Logger(label: "test.web.group")
            logger.logLevel = .warning
            let app: any Service = console.application()
            group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            let group = group
            runner = Task { try await group.run() }
        }

        func waitUntilServing() async throws {
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let ok = await TestSupport.eventually(timeout: .seconds(10)) {
                let response = try? await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(self.port)/healthz"), timeout: .seconds(1))
                return response?.status == .ok
            }
            try await client.shutdown()
            guard ok else { throw TestFailure("duban-web did not answer on port \(port)") }
        }

        func stop() async throws {
            await group.triggerGracefulShutdown()
            try await runner.value
        }
    }

    static func harness() async throws -> (WebHarness, RunningConsole) {
        let port = TestSupport.freePort()
        let harness = try await WebHarness.start(port: port)
        let running = RunningConsole(harness.console, port: port)
        try await running.waitUntilServing()
        return (harness, running)
    }

    /// Where a person can look at the screenshots afterwards.
    static var outputDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["DUBAN_TEST_OUTPUT"] { return (dir as NSString).appendingPathComponent("web") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/test-output/web").path
    }

    @Test func theOfficeDashboardShowsAUnitsReportLiveAndTheUnitCannotTakeTheOfficesActions() async throws {
        let (harness, running) = try await Self.harness()
        let task = try await WebRouteTests.ecologyTask(harness)
        let cases = try await harness.rpc(.cases)
        let opened = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "六一桥排口排查", unit: WebHarness.ecology, deadline: "2026-12-31"))
        let notice = try await WebRouteTests.pendingNotice(harness)
        // Readings for the 监测 page's charts (the shot shows them).
        try await MonitoringSupervisionTests.submitReadings(harness, breach: false)
        try? FileManager.default.removeItem(atPath: Self.outputDirectory)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/web_browser.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "http://127.0.0.1:\(running.port)", Self.outputDirectory, task.id, opened.id, notice.id]
        var environment = ProcessInfo.processInfo.environment
        environment["WEB_PASSWORD"] = WebHarness.password
        environment["SE_AVOID_STATS"] = "true"
        process.environment = environment
        let outputPath = (harness.directory as NSString).appendingPathComponent("browser.log")
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Waited for without blocking a thread of the cooperative pool: the console serves the browser meanwhile.
        let finished = await TestSupport.eventually(timeout: .seconds(90)) { !process.isRunning }
        if !finished { process.terminate() }
        try output.close()
        let log = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let resultLine = log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        let result = (try? JSONSerialization.jsonObject(with: Data(resultLine.utf8))) as? [String: Any]
        #expect(finished && process.terminationStatus == 0, "browser test failed: \(log)")
        #expect(result?["ok"] as? Bool == true, "\(log)")
        #expect((result?["dashboard_seconds"] as? Double ?? 99) <= 2.0)
        #expect(result?["forged_status"] as? Int == 403)
        let shots = (result?["screenshots"] as? [String]) ?? []
        #expect(shots.contains { $0.hasSuffix("1920x1080.png") } && shots.contains { $0.hasSuffix("360x800.png") })
        for shot in shots { #expect(FileManager.default.fileExists(atPath: shot)) }
        #expect(try await cases.call(CaseTypes.get, CaseGetRequest(id: opened.id)).state == .registered)
        // The public's report is in the ledger as one, under the number the phone showed.
        let reference = try #require(result?["public_reference"] as? String)
        #expect(try await cases.call(CaseTypes.get, CaseGetRequest(id: reference)).source == .publicReport)
        #expect(
            shots.contains { $0.hasSuffix("report-status-360x800.png") }
                && shots.contains { $0.hasSuffix("monitoring-office-1920x1080.png") })
        // The ledger import: both broken lines named in the preview, the two good ones in the ledger once.
        #expect((result?["preview_refused"] as? [String])?.count == 2)
        let imported = try await cases.callAll(CaseTypes.list, CaseListRequest()).filter { $0.title.hasPrefix("浏览器导入点位") }
        #expect(imported.map(\.title).sorted() == ["浏览器导入点位丙", "浏览器导入点位甲"])
        #expect(shots.contains { $0.hasSuffix("ledger-import-preview-1920x1080.png") })
        let notify = try await harness.rpc(.notify)
        #expect(try await notify.call(NotifyTypes.noticeGet, NoticeGetRequest(id: notice.id)).acks.map(\.unit) == [WebHarness.ecology])
        await notify.close()
        await cases.close()
        try await running.stop()
        try await harness.stop()
    }

    /// A kiosk's page keeps its Last-Event-ID across a restart of duban-web: the new process has
    /// none of the events in memory, reads what the page missed from the service (`events.since`),
    /// and the session cookie still works (sessions are in SQLite).
    @Test func aScreenReconnectingAfterTheConsoleRestartsMissesNoEvent() async throws {
        let (harness, first) = try await Self.harness()
        let task = try await WebRouteTests.ecologyTask(harness)
        let registry = try await RPCClient.connect(to: harness.deployment[.registry].rpc, from: WebHarness.ecology)
        let screen = try await harness.console.store.createSession(
            user: try #require(try harness.console.store.user(named: "leader")), address: nil)
        let cookie = "duban_session=\(screen.token)"
        try await Task.sleep(for: .milliseconds(500))
        func report(_ percent: Double) async throws {
            _ = try await registry.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(
                    task: task.id, period: "2026-11", unit: WebHarness.ecology, percent: percent, summary: "报送 \(percent)"))
        }
        let before = try await SSEReader.open(port: first.port, cookie: cookie, lastEventID: nil)
        try await report(10)
        #expect(try await before.read(until: "10%", timeout: .seconds(3)))
        let seen = try #require(before.lastID)
        try await first.stop()
        #expect(await TestSupport.eventually(timeout: .seconds(5)) { before.isEnded })
        await before.close()

        // While the console is down, two more reports.
        try await report(20)
        try await report(30)
        var logger = Logger(label: "test.web.restarted")
        logger.logLevel = .warning
        let restarted = try WebConsole(deployment: harness.deployment, settings: harness.console.settings, logger: logger)
        let second = RunningConsole(restarted, port: first.port)
        try await second.waitUntilServing()
        let after = try await SSEReader.open(port: second.port, cookie: cookie, lastEventID: seen)
        #expect(try await after.read(until: "30%", timeout: .seconds(5)))
        #expect(after.text.contains("20%") && !after.text.contains("10%"), "\(after.text) after \(seen)")
        let text = after.text
        if let twenty = text.range(of: "20%"), let thirty = text.range(of: "30%") { #expect(twenty.lowerBound < thirty.lowerBound) }
        await after.close()
        await registry.close()
        try await second.stop()
        try await harness.stop()
    }

    @Test func openLiveStreamsEndOnGracefulShutdown() async throws {
        let (harness, running) = try await Self.harness()
        let office = try await harness.console.store.createSession(
            user: try #require(try harness.console.store.user(named: "office1")), address: nil)
        let reader = try await SSEReader.open(port: running.port, cookie: "duban_session=\(office.token)", lastEventID: nil)
        #expect(try await reader.read(until: "retry: 2000", timeout: .seconds(3)))
        let started = ContinuousClock.now
        try await running.stop()
        #expect(await TestSupport.eventually(timeout: .seconds(5)) { reader.isEnded })
        #expect(ContinuousClock.now - started < .seconds(5))
        await reader.close()
        try await harness.stop()
    }
}
