import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// `duban backup DIR` while the services run, `duban restore DIR` into a fresh data directory, and
/// the services started on it read back everything: reports, cases, readings, the event streams.
@Suite(.serialized) struct BackupTests {
    static let services: [(ServiceName, String)] = [
        (.registry, "duban-registry"), (.ingest, "duban-ingest"), (.cases, "duban-cases"), (.notify, "duban-notify"),
    ]

    /// A configuration naming fresh endpoints for every service and `dataDir`.
    static func configuration(_ path: String, dataDir: String) throws -> [ServiceName: Endpoints] {
        let endpoints = Dictionary(uniqueKeysWithValues: services.map { ($0.0, TestSupport.freeEndpoints()) })
        let entries = services.map {
            "\"\($0.0.rawValue)\": {\"rpc\": \"\(endpoints[$0.0]!.rpc)\", \"events\": \"\(endpoints[$0.0]!.events)\"}"
        }
        try ("{" + entries.joined(separator: ", ") + ", \"dataDir\": \"\(dataDir)\", \"keysDir\": \"\"}")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return endpoints
    }

    static func start(config: String, endpoints: [ServiceName: Endpoints]) async throws -> [ServiceProcess] {
        var started: [ServiceProcess] = []
        for (service, executable) in services {
            started.append(try await ServiceProcess.start(executable, arguments: ["--config", config], endpoints: endpoints[service]!))
        }
        return started
    }

    @Test func aBackupTakenWhileServicesRunRestoresIntoAFreshDataDirectoryWithEverything() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let duban = (TestSupport.binDirectory as NSString).appendingPathComponent("duban")
        let endpoints = try Self.configuration("\(dir)/live.json", dataDir: "\(dir)/data")
        let running = try await Self.start(config: "\(dir)/live.json", endpoints: endpoints)

        let unit = try await RPCClient.connect(to: endpoints[.registry]!.rpc, from: "区城乡建设局")
        let month = String(Timestamp.districtDate(Date()).prefix(7))
        let report = try await unit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: month, unit: "区城乡建设局", percent: 35, summary: "完成第一批混错接点位整治"),
            as: ProgressReport.self)
        await unit.close()
        let office = try await RPCClient.connect(to: endpoints[.cases]!.rpc, from: officeUnit)
        let item = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "南川河岸垃圾倾倒", unit: "区城市管理局", deadline: "2030-01-31"),
            as: Case.self)
        await office.close()
        let station = try await RPCClient.connect(to: endpoints[.ingest]!.rpc, from: "六一桥自动站")
        let reading = Timestamp.format(Date().addingTimeInterval(-600), fractional: false)
        _ = try await station.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: reading, value: 0.62)]),
            as: ReadingSubmitReply.self)
        await station.close()

        // The backup, while every service runs.
        let backedUp = try TestSupport.run(duban, ["--config", "\(dir)/live.json", "backup", "\(dir)/backup"])
        for (service, _) in Self.services { #expect(backedUp.contains("\(service.rawValue)：已备份到"), "\(backedUp)") }
        let manifest = try JSONDecoder().decode(
            DataBackup.Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/backup/registry/registry.manifest.json")))
        #expect(manifest.migrations.contains("servicekit-v1") && (manifest.heads["registry"] ?? 0) > 0)
        for process in running { #expect(await process.terminate() == 0, "\(process.log)") }

        // Restored into a fresh data directory; a second restore over it is refused.
        let fresh = try Self.configuration("\(dir)/restored.json", dataDir: "\(dir)/restored")
        let restored = try TestSupport.run(duban, ["--config", "\(dir)/restored.json", "restore", "\(dir)/backup"])
        for (service, _) in Self.services { #expect(restored.contains("\(service.rawValue)：已恢复"), "\(restored)") }
        #expect(throws: (any Error).self) {
            try TestSupport.run(duban, ["--config", "\(dir)/restored.json", "restore", "\(dir)/backup", "--services", "cases"])
        }
        let again = try await Self.start(config: "\(dir)/restored.json", endpoints: fresh)
        let reader = try await RPCClient.connect(to: fresh[.registry]!.rpc)
        let reports = try await reader.call(RegistryTypes.progressList, ProgressListRequest(task: "10"), as: ListReply<ProgressReport>.self)
        #expect(reports.items.map(\.summary) == [report.summary])
        let ping = try await reader.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["registry"] ?? 0 >= manifest.heads["registry"] ?? 0)
        await reader.close()
        let cases = try await RPCClient.connect(to: fresh[.cases]!.rpc)
        #expect(try await cases.call(CaseTypes.get, CaseGetRequest(id: item.id), as: Case.self).title == "南川河岸垃圾倾倒")
        await cases.close()
        let ingest = try await RPCClient.connect(to: fresh[.ingest]!.rpc)
        let series = try await ingest.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(
                station: "liuyiqiao", parameters: ["nh3n"], from: Timestamp.format(Date().addingTimeInterval(-7200), fractional: false),
                to: Timestamp.format(Date(), fractional: false), every: .hour),
            as: ReadingsQueryReply.self)
        #expect(series.series.first?.points.contains { abs($0.mean - 0.62) < 1e-9 } == true, "\(series)")
        await ingest.close()
        for process in again { #expect(await process.terminate() == 0, "\(process.log)") }
    }
}
