import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// The deployment the user runs: every service on its own host, two ingest instances behind the
/// broker sharing PostgreSQL on a host of its own, an external tool subscribing from another host,
/// and the office's CLI on yet another, all configured by one file. Hosts are network namespaces
/// joined by a bridge (`NetworkLab`); nothing listens on loopback.
@Suite(.serialized) struct SeparateHostsTests {
    static let hostNames = ["postgres", "broker", "ingest-1", "ingest-2", "registry", "cases", "notify", "subscriber", "office"]

    /// Skipped only where namespaces cannot be made at all (not root, no iproute2); CI runs as root.
    static let canMakeHosts: Bool = {
        guard let reason = NetworkLab.unavailableReason else { return true }
        print("separate-hosts test skipped: \(reason)")
        return false
    }()

    @Test(.enabled(if: canMakeHosts, "needs root and `ip netns` to make hosts (CI runs as root)"))
    func aScenarioAcrossNineHostsLosesNothing() async throws {
        let lab = try NetworkLab.create(hosts: Self.hostNames)
        defer { lab.destroy() }
        let cluster = try PostgresCluster.start(host: lab.address("postgres"), namespace: lab.namespace("postgres"))
        defer { cluster.stop() }

        // One configuration file for every host and the CLI.
        let dir = try TestSupport.temporaryDirectory("duban-hosts")
        func endpoints(_ host: String, _ base: Int) -> [String: String] {
            ["rpc": "tcp://\(lab.address(host)):\(base + 1)", "events": "tcp://\(lab.address(host)):\(base + 2)"]
        }
        let configuration: [String: Any] = [
            "registry": endpoints("registry", 7100), "ingest": endpoints("broker", 7200), "cases": endpoints("cases", 7300),
            "notify": endpoints("notify", 7400),
            "broker": ["backend": "tcp://\(lab.address("broker")):7211", "eventsIn": "tcp://\(lab.address("broker")):7212"],
            "databaseURL": cluster.url, "tickSeconds": 0.5,
        ]
        let configFile = "\(dir)/duban.json"
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: configFile))
        let deployment = try await DeploymentConfiguration.load(configFile: configFile, environment: [:])

        // Each host has its own data directory, as separate machines would.
        var processes: [ServiceProcess] = []
        defer { for process in processes { process.kill() } }
        func start(_ executable: String, on host: String, _ arguments: [String] = [], pingAt: String?) async throws -> ServiceProcess {
            let dataDir = "\(dir)/\(host)"
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            let process = try await ServiceProcess.start(
                executable,
                arguments: ["--config", configFile] + (executable == "duban-broker" ? [] : ["--data-dir", dataDir]) + arguments,
                endpoints: Endpoints(rpc: pingAt ?? "", events: ""), waitForPing: pingAt != nil, passEndpoints: false,
                namespace: lab.namespace(host))
            processes.append(process)
            return process
        }
        _ = try await start("duban-registry", on: "registry", pingAt: deployment[.registry].rpc)
        _ = try await start("duban-cases", on: "cases", pingAt: deployment[.cases].rpc)
        _ = try await start("duban-broker", on: "broker", pingAt: nil)
        for index in 1...2 {
            _ = try await start(
                "duban-ingest", on: "ingest-\(index)", ["--behind-broker", "--instance", "ingest-\(index)"], pingAt: deployment[.ingest].rpc
            )
        }
        _ = try await start("duban-notify", on: "notify", pingAt: deployment[.notify].rpc)

        // Both instances answer through the broker's one endpoint.
        let ingest = try await RPCClient.connect(to: deployment[.ingest].rpc, from: "六一桥自动站")
        var instancesSeen: Set<String> = []
        #expect(
            try await TestSupport.eventually(timeout: .seconds(20)) {
                instancesSeen.insert(try await ingest.call(SystemTypes.ping, Empty(), as: PingReply.self).instance)
                return instancesSeen == ["ingest-1", "ingest-2"]
            }, "instances seen: \(instancesSeen)")

        // A responsible unit reports progress from this (the driver's) host.
        let registry = try await RPCClient.connect(to: deployment[.registry].rpc, from: "区城乡建设局")
        _ = try await registry.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 40, summary: "完成第一批 60 处混错接点位整治"),
            as: ProgressReport.self, key: "report-10-2026-10")

        // The external tool (examples/tail_events.py) on its own host reads one event and stops,
        // keeping its position, as a tool that is restarted would.
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/tail_events.py").path
        let state = "\(dir)/subscriber.state.json"
        func subscriber(count: Int) async throws -> ServiceProcess {
            try await ServiceProcess.start(
                "/usr/bin/env",
                arguments: [
                    "python3", examples, "--rpc", deployment[.registry].rpc, "--events", deployment[.registry].events, "--state", state,
                    "--count", "\(count)",
                ],
                endpoints: Endpoints(rpc: "", events: ""), waitForPing: false, passEndpoints: false, namespace: lab.namespace("subscriber"))
        }
        let first = try await subscriber(count: 1)
        #expect(await first.waitForExit(timeout: .seconds(30)), "subscriber did not finish: \(first.log)")

        // More reports while the tool is down, readings through the broker, a case past its deadline.
        for (task, unit, percent) in [("8", "区生态环境局", 55.0), ("12", "区城市管理局", 30.0)] {
            let client = try await RPCClient.connect(to: deployment[.registry].rpc, from: unit)
            _ = try await client.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: task, period: "2026-10", unit: unit, percent: percent, summary: "按计划推进"),
                as: ProgressReport.self)
            await client.close()
        }
        var readings: [SubmittedReading] = []
        for hour in 0..<48 {
            let ts = String(format: "2026-11-%02dT%02d:00:00+08:00", 20 + hour / 24, hour % 24)
            readings.append(SubmittedReading(station: "chengzhong_air", parameter: "pm25", ts: ts, value: Double(25 + hour % 10)))
        }
        readings.append(SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T08:00:00+08:00", value: 1.2))
        let stored = try await ingest.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self, key: "hosts-batch-1")
        #expect(stored.accepted == readings.count && stored.rejected.isEmpty)
        let again = try await ingest.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self, key: "hosts-batch-1")
        #expect(again == stored, "a retried key gets the first reply, whichever instance answers")
        #expect(try cluster.psql("SELECT count(*) FROM readings") == "\(readings.count)")

        let cases = try await RPCClient.connect(to: deployment[.cases].rpc, from: "专项工作组办公室")
        let overdueCase = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "南川河岸倾倒建筑垃圾", unit: "区城市管理局", deadline: "2026-11-10", task: "12"),
            as: Case.self)

        // The notifier, on its own host, follows the other hosts' events.
        let notify = try await RPCClient.connect(to: deployment[.notify].rpc, from: "专项工作组办公室")
        func notices(_ kind: NoticeKind) async throws -> [Notice] {
            try await notify.call(NotifyTypes.noticeList, NoticeListRequest(kind: kind), as: ListReply<Notice>.self).items
        }
        #expect(
            try await TestSupport.eventually(timeout: .seconds(20)) {
                try await notices(.indicatorBreach).contains { $0.refs.indicator == "water_quality_liuyiqiao" }
            })
        #expect(
            try await TestSupport.eventually(timeout: .seconds(20)) {
                try await notices(.caseOverdue).contains { $0.refs.case == overdueCase.id }
            })

        // The tool comes back and reads to the registry's head: every event once, in order, no gap.
        let head = try await registry.call(SystemTypes.ping, Empty(), as: PingReply.self).streams["registry"] ?? 0
        let second = try await subscriber(count: head - 1)
        #expect(await second.waitForExit(timeout: .seconds(30)), "subscriber did not finish: \(second.log)")
        let events = (first.log + second.log).split(whereSeparator: \.isNewline).filter { $0.hasPrefix("{") }.compactMap {
            try? JSONDecoder().decode(AnyEvent.self, from: Data($0.utf8))
        }
        #expect(events.map(\.seq) == Array(1...head), "seqs: \(events.map(\.seq))")
        #expect(events.filter { $0.type == RegistryTypes.progressReported }.count == 3)

        // The office's CLI on its own host finds every service through the same file.
        let status = try lab.run(on: "office", "\(TestSupport.binDirectory)/duban", ["--config", configFile, "status"])
        #expect(status.contains("■ 任务") && status.contains("■ 整改台账") && !status.contains("DOWN"), "\(status)")
        #expect(status.contains("共 1 件"), "\(status)")

        // Every service stops cleanly on SIGTERM.
        for process in processes.reversed() { #expect(await process.terminate() == 0, "\(process.log)") }
    }
}
