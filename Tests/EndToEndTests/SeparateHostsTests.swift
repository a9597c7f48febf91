import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// The deployment the user runs: every service on its own host, two ingest instances behind the
/// broker sharing PostgreSQL on a host of its own, an external tool subscribing from another host,
/// and the office's CLI on yet another, all configured by one file, with CURVE on: each host holds
/// only its own secret certificate, and a host with a key nobody admitted gets nothing. Hosts are
/// network namespaces joined by a bridge (`NetworkLab`); nothing listens on loopback.
@Suite(.serialized) struct SeparateHostsTests {
    static let hostNames = [
        "postgres", "broker", "ingest-1", "ingest-2", "registry", "cases", "notify", "subscriber", "office", "stranger",
    ]

    /// Skipped only where namespaces cannot be made at all (not root, no iproute2); CI runs as root.
    static let canMakeHosts: Bool = {
        guard let reason = NetworkLab.unavailableReason else { return true }
        print("separate-hosts test skipped: \(reason)")
        return false
    }()

    @Test(.enabled(if: canMakeHosts, "needs root and `ip netns` to make hosts (CI runs as root)"))
    func aScenarioAcrossTenHostsLosesNothingAndAdmitsNoStranger() async throws {
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
        let keys = try TestKeys.make()
        let configFile = "\(dir)/duban.json"
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: configFile))
        let deployment = try await DeploymentConfiguration.load(configFile: configFile, environment: [:])

        // Each host has its own data directory, as separate machines would.
        var processes: [ServiceProcess] = []
        defer { for process in processes { process.kill() } }
        func start(
            _ executable: String, on host: String, _ arguments: [String] = [], secrets: [String], pingAt: (ServiceName, String)?
        ) async throws -> ServiceProcess {
            let dataDir = "\(dir)/\(host)"
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            let process = try await ServiceProcess.start(
                executable,
                arguments: ["--config", configFile, "--keys", try keys.hostDirectory(holding: secrets)]
                    + (executable == "duban-broker" ? [] : ["--data-dir", dataDir]) + arguments,
                endpoints: Endpoints(rpc: pingAt?.1 ?? "", events: ""),
                // The scenario's day on every host: its readings and deadlines stay where they are in any year.
                environment: ["DUBAN_NOW": "2026-11-22T10:00:00+08:00"], waitForPing: pingAt != nil, passEndpoints: false,
                namespace: lab.namespace(host), curve: try pingAt.map { try keys.curve("admin", toward: $0.0) })
            processes.append(process)
            return process
        }
        _ = try await start("duban-registry", on: "registry", secrets: ["registry"], pingAt: (.registry, deployment[.registry].rpc))
        _ = try await start("duban-cases", on: "cases", secrets: ["cases"], pingAt: (.cases, deployment[.cases].rpc))
        _ = try await start("duban-broker", on: "broker", secrets: ["broker", "ingest"], pingAt: nil)
        for index in 1...2 {
            _ = try await start(
                "duban-ingest", on: "ingest-\(index)", ["--behind-broker", "--instance", "ingest-\(index)"], secrets: ["ingest-\(index)"],
                pingAt: (.ingest, deployment[.ingest].rpc))
        }
        _ = try await start("duban-notify", on: "notify", secrets: ["notify"], pingAt: (.notify, deployment[.notify].rpc))
        func client(_ service: ServiceName, as certificate: String) async throws -> RPCClient {
            try await keys.client(certificate, service, at: deployment[service].rpc)
        }

        // Both instances answer through the broker's one endpoint, to the station's own certificate.
        let ingest = try await client(.ingest, as: "station-chengzhong_air")
        let stationLiuyiqiao = try await client(.ingest, as: "station-liuyiqiao")
        var instancesSeen: Set<String> = []
        #expect(
            try await TestSupport.eventually(timeout: .seconds(20)) {
                instancesSeen.insert(try await ingest.call(SystemTypes.ping, Empty(), as: PingReply.self).instance)
                return instancesSeen == ["ingest-1", "ingest-2"]
            }, "instances seen: \(instancesSeen)")

        // A responsible unit reports progress from this (the driver's) host.
        let registry = try await client(.registry, as: try keys.certificate(ofUnit: "区城乡建设局"))
        _ = try await registry.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 40, summary: "完成第一批 60 处混错接点位整治"),
            as: ProgressReport.self, key: "report-10-2026-10")

        // The external tool (examples/tail_events.py) on its own host reads one event and stops,
        // keeping its position, as a tool that is restarted would.
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/tail_events.py").path
        let readerKeys = try keys.hostDirectory(holding: ["reader"])
        let state = "\(dir)/subscriber.state.json"
        func subscriber(count: Int) async throws -> ServiceProcess {
            try await ServiceProcess.start(
                "/usr/bin/env",
                arguments: [
                    "python3", examples, "--rpc", deployment[.registry].rpc, "--events", deployment[.registry].events, "--state", state,
                    "--count", "\(count)", "--cert", "\(readerKeys)/reader.key_secret", "--server-cert", "\(readerKeys)/registry.key",
                ],
                endpoints: Endpoints(rpc: "", events: ""), waitForPing: false, passEndpoints: false, namespace: lab.namespace("subscriber"))
        }
        let first = try await subscriber(count: 1)
        #expect(await first.waitForExit(timeout: .seconds(30)), "subscriber did not finish: \(first.log)")

        // More reports while the tool is down, readings through the broker, a case past its deadline.
        for (task, unit, percent) in [("8", "区生态环境局", 55.0), ("12", "区城市管理局", 30.0)] {
            let client = try await client(.registry, as: try keys.certificate(ofUnit: unit))
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
        let stored = try await ingest.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self, key: "hosts-batch-1")
        #expect(stored.accepted == readings.count && stored.rejected.isEmpty)
        let again = try await ingest.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self, key: "hosts-batch-1")
        #expect(again == stored, "a retried key gets the first reply, whichever instance answers")
        let water = [SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T08:00:00+08:00", value: 1.2)]
        // Through the broker the instance still knows who asks: one station may not submit for another.
        let foreign = try await refusal(stationLiuyiqiao, IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings))
        #expect(foreign.code == .permissionDenied, "\(foreign)")
        _ = try await stationLiuyiqiao.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: water), as: ReadingSubmitReply.self)
        #expect(try cluster.psql("SELECT count(*) FROM readings") == "\(readings.count + 1)")

        let cases = try await client(.cases, as: "office")
        let overdueCase = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "南川河岸倾倒建筑垃圾", unit: "区城市管理局", deadline: "2026-11-10", task: "12"),
            as: Case.self)

        // The notifier, on its own host, follows the other hosts' events.
        let notify = try await client(.notify, as: "office")
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
        let officeKeys = try keys.hostDirectory(holding: ["office"])
        let status = try lab.run(
            on: "office", "\(TestSupport.binDirectory)/duban", ["--config", configFile, "--keys", officeKeys, "status"])
        #expect(status.contains("■ 任务") && status.contains("■ 整改台账") && !status.contains("DOWN"), "\(status)")
        #expect(status.contains("共 1 件"), "\(status)")

        // A host with a key nobody admitted: no reply, no event, from a service or through the broker.
        let strangerDir = try TestSupport.temporaryDirectory("duban-stranger")
        let pair = try ZMQCurve.generateKeyPair()
        try Certificate(publicKey: pair.publicKey, secretKey: pair.secretKey, metadata: ["role": "reader"]).secretText.write(
            toFile: "\(strangerDir)/stranger.key_secret", atomically: true, encoding: .utf8)
        let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "clients/curve_client.py"
        ).path
        for (service, certificate) in [(ServiceName.registry, "registry"), (.ingest, "ingest")] {
            let stranger = try await ServiceProcess.start(
                "/usr/bin/env",
                arguments: [
                    "python3", clients, deployment[service].rpc, deployment[service].events,
                    keys.directory.publicCertificatePath(certificate),
                    "\(strangerDir)/stranger.key_secret", "refused",
                ],
                endpoints: Endpoints(rpc: "", events: ""), waitForPing: false, passEndpoints: false, namespace: lab.namespace("stranger"))
            // Events go on meanwhile, so "no event" means refused, not quiet.
            _ = try await registry.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: "10", period: "2026-11", unit: "区城乡建设局", percent: 45, summary: "推进中"),
                as: ProgressReport.self)
            _ = try await ingest.call(
                IngestTypes.readingSubmit,
                ReadingSubmitRequest(readings: [
                    SubmittedReading(station: "chengzhong_air", parameter: "pm25", ts: "2026-11-23T00:00:00+08:00", value: 30)
                ]),
                as: ReadingSubmitReply.self)
            #expect(await stranger.waitForExit(timeout: .seconds(15)))
            #expect(stranger.terminationStatus == 0, "\(service): \(stranger.log)")
        }

        // Every service stops cleanly on SIGTERM.
        for process in processes.reversed() { #expect(await process.terminate() == 0, "\(process.log)") }
    }
}
