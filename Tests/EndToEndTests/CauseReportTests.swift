import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// 发现水质异常情况，迅速查找原因并及时报告: a breach at 六一桥 opens a cause report its lead units
/// owe within three days; late, it raises a notice and a proposal; reported, both are resolved.
@Suite(.serialized) struct CauseReportTests {
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func aBreachsCauseReportIsRemindedWhenLateAndEndsWhenEveryLeadUnitReports() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.endpoints[.cases] = TestSupport.freeEndpoints()
        }
        let station = try await RPCClient.connect(to: ingest.endpoints.rpc, from: "station")
        let office = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        func notices(_ kind: NoticeKind) async throws -> [Notice] {
            try await office.callAll(NotifyTypes.noticeList, NoticeListRequest(kind: kind))
        }

        let readings = ["ph": 7.8, "do": 6.5, "codmn": 3.5, "cod": 14, "nh3n": 1.3, "tp": 0.08].map {
            SubmittedReading(station: "liuyiqiao", parameter: $0.key, ts: "2026-11-20T08:00:00+08:00", value: $0.value)
        }
        _ = try await station.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(try await TestSupport.eventually { try await !office.callAll(CauseReportTypes.list, CauseListRequest()).isEmpty })
        let report = try #require(try await office.callAll(CauseReportTypes.list, CauseListRequest()).first)
        #expect(report.id == "YY-2026-0001" && report.alert == "class_exceeded:liuyiqiao:nh3n" && report.due == "2026-11-23")
        #expect(!report.units.isEmpty && report.state == .owed && report.pendingUnits == report.units)
        let due = try #require(try await notices(.causeReportDue).first)
        #expect(Set(due.units) == Set(report.units + [officeUnit]) && due.text.contains("2026-11-23前报告原因"))

        // Three days on and not reported: a notice and a proposal, once.
        clock.set(date("2026-11-24T09:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await notices(.causeReportOverdue).count == 1 })
        #expect(try await notices(.escalationProposal).contains { $0.dedupKey == "proposal-cause:\(report.id)" })

        // Only an owing unit reports; when all have, every notice about it is resolved.
        let stranger = try await RPCClient.connect(to: notify.endpoints.rpc, from: "区教育局")
        #expect(
            try await refusal(stranger, CauseReportTypes.report, CauseReportRequest(id: report.id, cause: "不明")).code == .permissionDenied)
        #expect(try await refusal(office, CauseReportTypes.report, CauseReportRequest(id: report.id, cause: " ")).field == "body.cause")
        var last: CauseReport?
        for unit in report.units {
            let client = try await RPCClient.connect(to: notify.endpoints.rpc, from: unit)
            last = try await client.call(
                CauseReportTypes.report,
                CauseReportRequest(
                    id: report.id, cause: "上游生活污水管网破损溢流", measures: "已临时封堵并抽排",
                    evidence: [
                        EvidenceRef(name: "现场照片", uri: "https://files.example/yl.jpg")
                    ]))
            await client.close()
        }
        #expect(last?.state == .reported && last?.pendingUnits == [] && last?.entries.count == report.units.count)
        for kind in [NoticeKind.causeReportDue, .causeReportOverdue] {
            #expect(try await notices(kind).allSatisfy { $0.state == .resolved }, "\(kind)")
        }
        #expect(try await notices(.escalationProposal).first { $0.dedupKey == "proposal-cause:\(report.id)" }?.state == .resolved)
        for client in [station, office, stranger] { await client.close() }
        try await notify.stop()
        try await ingest.stop()
        try await registry.stop()
    }
}
