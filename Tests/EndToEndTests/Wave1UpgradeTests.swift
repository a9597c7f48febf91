import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// Databases written by the wave-1 release open with the current executables and keep everything:
/// the fixture (Tests/Fixtures/wave1) is a data directory the wave-1 services left; the current
/// services migrate it on start and answer with every report, case, reading, notice and event.
@Suite(.serialized) struct Wave1UpgradeTests {
    @Test func aWave1DataDirectoryOpensWithTheCurrentServicesAndKeepsEverything() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/wave1/wave1-data.tar.gz").path
        _ = try TestSupport.run("/usr/bin/tar", ["-xzf", fixture, "-C", dir])
        let services: [(ServiceName, String)] = [
            (.registry, "duban-registry"), (.ingest, "duban-ingest"), (.cases, "duban-cases"), (.notify, "duban-notify"),
        ]
        let endpoints = Dictionary(uniqueKeysWithValues: services.map { ($0.0, TestSupport.freeEndpoints()) })
        let entries = services.map {
            "\"\($0.0.rawValue)\": {\"rpc\": \"\(endpoints[$0.0]!.rpc)\", \"events\": \"\(endpoints[$0.0]!.events)\"}"
        }
        try ("{" + entries.joined(separator: ", ") + ", \"dataDir\": \"\(dir)/data\", \"keysDir\": \"\"}")
            .write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        var running: [ServiceProcess] = []
        for (service, executable) in services {
            running.append(
                try await ServiceProcess.start(
                    executable, arguments: ["--config", "\(dir)/config.json"], endpoints: endpoints[service]!,
                    environment: ["DUBAN_NOW": "2026-11-20T12:00:00+08:00"]))
        }

        let office = officeUnit
        let registry = try await RPCClient.connect(to: endpoints[.registry]!.rpc, from: office)
        let reports = try await registry.call(RegistryTypes.progressList, ProgressListRequest(), as: ListReply<ProgressReport>.self).items
        #expect(reports.count == 6 && reports.allSatisfy { $0.problems == "资金到位慢" && $0.evidence.count == 1 }, "\(reports)")
        #expect(Set(reports.map(\.task)) == ["10", "1", "8"])
        let escalations = try await registry.call(RegistryTypes.escalationList, EscalationListRequest()).items
        #expect(escalations.map(\.reason) == ["混错接整治滞后"])
        let ten = try await registry.call(RegistryTypes.taskGet, TaskGetRequest(id: "10"), as: PlanTask.self)
        #expect(ten.progress == 40 && ten.status != nil)
        await registry.close()

        let cases = try await RPCClient.connect(to: endpoints[.cases]!.rpc, from: office)
        let ledger = try await cases.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items
        #expect(
            Set(ledger.map(\.id))
                == ["JB-2026-0001", "JB-2026-0002", "JB-2026-0003", "HCJ-2026-0001", "HCJ-2026-0002", "HCJ-2026-0003"])
        let started = try await cases.call(CaseTypes.get, CaseGetRequest(id: "JB-2026-0002"), as: Case.self)
        #expect(started.state == .rectifying && started.history?.map(\.action) == ["open", "assign", "start"])
        #expect(ledger.first { $0.id == "HCJ-2026-0001" }?.batch == "第一批")
        // The wave-1 ledger goes on: the next public report is the fourth.
        let next = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "升级后的举报", unit: "区城市管理局"), as: Case.self)
        #expect(next.id == "JB-2026-0004")
        await cases.close()

        let ingest = try await RPCClient.connect(to: endpoints[.ingest]!.rpc, from: office)
        let series = try await ingest.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(
                station: "liuyiqiao", parameters: ["nh3n"], from: "2026-11-15T00:00:00+08:00", to: "2026-11-20T12:00:00+08:00",
                every: .day),
            as: ReadingsQueryReply.self)
        #expect(series.series.first?.points.reduce(0) { $0 + $1.count } == 34, "\(series)")
        await ingest.close()
        // The rebuilt readings table (ingest-v4-marks) takes quality marks beside the wave-1 rows.
        let station = try await RPCClient.connect(to: endpoints[.ingest]!.rpc, from: "六一桥自动站")
        let marked = try await station.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(
                    station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T11:30:00+08:00", value: .nan, mark: "below_detection",
                    detectionLimit: 0.025),
                SubmittedReading(station: "liuyiqiao", parameter: "tp", ts: "2026-11-20T11:30:00+08:00", value: .nan, mark: "maintenance"),
            ]), as: ReadingSubmitReply.self)
        #expect(marked.accepted == 2 && marked.rejected.isEmpty, "\(marked)")
        let after = try await station.call(
            ReadingsTypes.query,
            ReadingsQueryRequest(
                station: "liuyiqiao", parameters: ["nh3n", "tp"], from: "2026-11-15T00:00:00+08:00", to: "2026-11-20T12:00:00+08:00",
                every: .day),
            as: ReadingsQueryReply.self)
        #expect(after.series[0].points.reduce(0) { $0 + $1.count } == 35 && after.series[0].points.last?.belowDetection == 1)
        #expect(after.series[1].marked?.map(\.mark) == ["maintenance"])
        await station.close()

        let notify = try await RPCClient.connect(to: endpoints[.notify]!.rpc, from: office)
        #expect(try await notify.call(NotifyTypes.noticeList, NoticeListRequest(), as: ListReply<Notice>.self).items.count >= 33)
        #expect(try await notify.call(NotifyTypes.channelList, Empty(), as: ListReply<Channel>.self).items.map(\.name).contains("办公室群"))
        await notify.close()

        // Every stream keeps its wave-1 events, from seq 1.
        for (service, head) in [(ServiceName.registry, 34), (.cases, 9), (.ingest, 3), (.notify, 34)] {
            let client = try await RPCClient.connect(to: endpoints[service]!.rpc, from: office)
            let events = try await client.call(
                SystemTypes.eventsSince, EventsSinceRequest(stream: service.rawValue, after: 0, limit: 1000),
                as: EventsSinceReply<AnyEvent>.self)
            #expect(events.events.first?.seq == 1 && events.events.count >= head, "\(service)")
            await client.close()
        }
        for process in running { #expect(await process.terminate() == 0, "\(process.log)") }
    }
}
