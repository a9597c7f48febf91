import CaseTracking
import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// All four services, and what the notifier makes of what happens in the others.
@Suite(.serialized) struct NotifyEndToEndTests {
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    /// The receiver's log: one line per request.
    struct Received: Decodable {
        var n: Int
        var status: Int
        var delivery: String?
        var body: JSONValue
    }

    func received(_ path: String) -> [Received] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONDecoder().decode(Received.self, from: Data($0.utf8))
        }
    }

    @Test func noticesReachTheRightUnitsAndTheWebhookGetsItOnceThroughFailuresAndARestart() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        // Supervised since the plan began: every month counts, so missing reports are noticed.
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.supervisionStart = "2024-01-01"
        }
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
        }
        let notifyEndpoints = TestSupport.freeEndpoints()
        func startNotify() async throws -> InProcessService {
            try await InProcessService.start(
                NotifyService.self, dataDirectory: dir, endpoints: notifyEndpoints, clock: clock, tickSeconds: 0.2
            ) {
                $0.endpoints[.registry] = registry.endpoints
                $0.endpoints[.ingest] = ingest.endpoints
                $0.endpoints[.cases] = cases.endpoints
                // The receiver is on loopback: only a CIDR in the allow-list lets a webhook reach it.
                $0.notifyWebhookAllow = ["127.0.0.1/32"]
            }
        }
        var notify = try await startNotify()

        // A webhook receiver that fails its first two requests.
        let port = TestSupport.freePort()
        let log = "\(dir)/webhook.jsonl"
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "clients/webhook_receiver.py")
        receiver.arguments = ["python3", script.path, "\(port)", log, "2"]
        // Not the test's own output: `swift test` waits for every holder of its pipe to close it.
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        defer { kill(receiver.processIdentifier, SIGKILL) }
        try await Task.sleep(for: .milliseconds(500))

        let office = try await RPCClient.connect(to: notifyEndpoints.rpc, from: officeUnit)
        _ = try await office.call(
            NotifyTypes.channelSet,
            ChannelSetRequest(
                channel: Channel(
                    name: "水环境群", kind: .webhook, target: "http://127.0.0.1:\(port)/hook", units: ["区生态环境局"], kinds: [.indicatorBreach])),
            as: ListReply<Channel>.self)

        // What happens in the other services: a report for October, an out-of-limit reading, a case past its deadline.
        let registryClient = try await RPCClient.connect(to: registry.endpoints.rpc, from: "区城乡建设局")
        _ = try await registryClient.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 40, summary: "完成第一批 60 处混错接点位整治"),
            as: ProgressReport.self)
        let ingestClient = try await RPCClient.connect(to: ingest.endpoints.rpc, from: "六一桥自动站")
        _ = try await ingestClient.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-20T08:00:00+08:00", value: 1.2)
            ]),
            as: ReadingSubmitReply.self)
        let casesClient = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        let overdueCase = try await casesClient.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "南川河岸倾倒建筑垃圾", unit: "区城市管理局", deadline: "2026-11-10", task: "12"),
            as: Case.self)

        func notices(_ kind: NoticeKind) async throws -> [Notice] {
            try await office.call(NotifyTypes.noticeList, NoticeListRequest(kind: kind), as: ListReply<Notice>.self).items
        }
        // An out-of-limit reading at liuyiqiao: indicator_breach for the units that own the water task (7.1).
        #expect(try await TestSupport.eventually { try await !notices(.indicatorBreach).isEmpty })
        let breach = try #require(try await notices(.indicatorBreach).first { $0.dedupKey == "alert:class_exceeded:liuyiqiao:nh3n" })
        #expect(breach.units.contains("区自然资源和林业局") && breach.units.contains("区生态环境局"))
        #expect(breach.refs.task == "7.1" && breach.refs.indicator == "water_quality_liuyiqiao")
        // A case past its deadline: case_overdue for its unit.
        #expect(try await TestSupport.eventually { try await !notices(.caseOverdue).isEmpty })
        let caseNotice = try #require(try await notices(.caseOverdue).first)
        #expect(caseNotice.units.first == "区城市管理局" && caseNotice.refs.case == overdueCase.id)
        // A month without a report: report_missing, and not for the unit that did report.
        #expect(try await TestSupport.eventually { try await !notices(.reportMissing).isEmpty })
        let missing = try await notices(.reportMissing)
        #expect(missing.contains { $0.units.first == "区委组织部" && $0.refs.period == "2026-10" })
        #expect(!missing.contains { $0.units.first == "区城乡建设局" && $0.text.contains("：10（") })

        // The webhook fails twice; the notifier is restarted in between; the notice arrives once.
        #expect(try await TestSupport.eventually(timeout: .seconds(10)) { received(log).count >= 1 })
        try await notify.stop()
        notify = try await startNotify()
        #expect(try await TestSupport.eventually(timeout: .seconds(20)) { received(log).contains { $0.status == 200 } })
        try await Task.sleep(for: .seconds(2))
        let requests = received(log)
        #expect(requests.filter { $0.status == 500 }.count == 2)
        var deliveredOK: [String: Int] = [:]
        for request in requests where request.status == 200 {
            for notice in request.body["notices"]?.arrayValue ?? [] { deliveredOK[notice["id"]?.stringValue ?? "", default: 0] += 1 }
        }
        #expect(deliveredOK[breach.id] == 1, "delivered once: \(deliveredOK)")
        #expect(deliveredOK.values.allSatisfy { $0 == 1 })
        #expect(!deliveredOK.keys.contains(caseNotice.id), "the channel takes the water unit's breaches only")
        // Every attempt is in the history.
        let office2 = try await RPCClient.connect(to: notifyEndpoints.rpc, from: officeUnit)
        let attempts = try await office2.call(
            NotifyTypes.deliveryList, DeliveryListRequest(notice: breach.id), as: ListReply<DeliveryAttempt>.self
        ).items
        #expect(attempts.contains { !$0.ok } && attempts.filter(\.ok).count == 1)
        // Events for external tools.
        let issued = try await office2.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "notify", after: 0, limit: 10_000), as: EventsSinceReply<AnyEvent>.self)
        #expect(issued.events.contains { $0.type == NotifyTypes.noticeIssued && (try? $0.body(as: Notice.self).id) == breach.id })

        // Acknowledge: each unit for itself; the office's acknowledgement leaves the lead units to acknowledge theirs.
        let acked = try await office2.call(NotifyTypes.noticeAck, NoticeAckRequest(id: breach.id, comment: "已安排排查"), as: Notice.self)
        #expect(acked.state == .open && !acked.acknowledged && acked.ackBy == nil)
        #expect(acked.acks.map(\.unit) == [officeUnit] && acked.acks.first?.comment == "已安排排查" && acked.acks.first?.by == officeUnit)
        #expect(Set(acked.pendingUnits) == ["区自然资源和林业局", "区生态环境局"])
        // Acknowledging again changes nothing and is not an error.
        let again = try await office2.call(NotifyTypes.noticeAck, NoticeAckRequest(id: breach.id, comment: "再次确认"), as: Notice.self)
        #expect(again == acked)
        let found = try await office2.call(NotifyTypes.noticeList, NoticeListRequest(unit: "区城市管理局", q: "倾倒"), as: ListReply<Notice>.self)
            .items
        #expect(found.map(\.id) == [caseNotice.id])

        // The monthly report for October, against what the test put in.
        let report = try await office2.call(
            NotifyTypes.reportGenerate, ReportGenerateRequest(kind: .monthly, period: "2026-10"), as: ReportGenerateReply.self)
        #expect(report.title.contains("2026年10月"))
        #expect(report.markdown.contains("| 10 | 加快推进湟河流域治污设施建设 |"))
        #expect(report.markdown.contains("#### 区委组织部（已报 0 项，未报（已逾期）"))
        #expect(report.markdown.contains("#### 区城乡建设局（已报 1 项，"))
        #expect(report.markdown.contains("| 六一桥入湟断面年均水质 |") && report.markdown.contains("| IV | 2026 | 未达标 |"))
        #expect(report.markdown.contains("| 群众举报 | 1 |") && report.markdown.contains("共 1 件，逾期 1 件"))
        #expect(report.markdown.contains("## 六、督办事项\n\n本期无。"), "no 督办单 issued in October")
        #expect(report.csv.hasPrefix("\u{FEFF}部分,编号,名称,状态,单位,数值,说明"))
        #expect(report.csv.contains("未报送,1,2026-10,未报（已逾期）,区委组织部"))
        let refusal: ErrorBody? = await {
            do {
                _ = try await office2.call(
                    NotifyTypes.reportGenerate, ReportGenerateRequest(kind: .monthly, period: "2026-13"), as: ReportGenerateReply.self)
                return nil
            } catch { return error as? ErrorBody }
        }()
        #expect(refusal?.field == "body.period")

        for client in [office, office2, registryClient, ingestClient, casesClient] { await client.close() }
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }

    /// A registry and a notifier on the test's clock (the notifier's other peers at closed ports of
    /// the test's own), and the office's client of the notifier: what the rhythm tests need.
    struct RhythmBench {
        let clock: ServiceClock
        let registry: InProcessService
        let notify: InProcessService
        let office: RPCClient

        /// `supervisionStart` nil: go-live is the registry's first start.
        static func start(at instant: String, supervisionStart: String?) async throws -> RhythmBench {
            let dir = try TestSupport.temporaryDirectory()
            let clock = ServiceClock.starting(at: Timestamp.parse(instant)!)
            let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.supervisionStart = supervisionStart
            }
            let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.endpoints[.registry] = registry.endpoints
            }
            let office = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
            return RhythmBench(clock: clock, registry: registry, notify: notify, office: office)
        }

        func notices(_ kind: NoticeKind? = nil) async throws -> [Notice] {
            try await office.callAll(NotifyTypes.noticeList, NoticeListRequest(kind: kind))
        }

        func stop() async throws {
            await office.close()
            try await notify.stop()
            try await registry.stop()
        }
    }

    @Test func unitsWhoseTasksStayLaggingAreProposedForEscalation() async throws {
        // Supervised since the plan began: every month counts, so missing reports are noticed.
        let bench = try await RhythmBench.start(at: "2026-09-10T10:00:00+08:00", supervisionStart: "2024-01-01")
        func proposals() async throws -> [Notice] {
            try await bench.notices(.escalationProposal).filter { $0.dedupKey.hasPrefix("proposal-lagging:") }
        }
        // September's dispatch (for August): tasks lag, one month so far: no proposal yet.
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.monthlyDispatch).contains { $0.dedupKey == "monthly_summary:2026-08" }
            })
        #expect(try await proposals().isEmpty)
        // October's dispatch (for September): still lagging, two months in a row: propose 通报.
        bench.clock.set(date("2026-10-10T10:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await !proposals().isEmpty })
        let proposal = try #require(try await proposals().first { $0.title == "建议通报：区委组织部" })
        #expect(proposal.units == [officeUnit] && proposal.text.contains("连续2个月") && proposal.refs.period == "2026-09")
        try await bench.stop()
    }

    /// Issue #15's first-week finding: a fresh install in November 2026 proposed 问责 against every
    /// unit for months before it existed. With go-live (the registry's first start here), nothing
    /// before it is missing or proposed, and tasks already past their deadlines get their notices.
    @Test func aFreshInstallProposesNothingForBeforeGoLiveAndNoticesTasksAlreadyOverdue() async throws {
        let bench = try await RhythmBench.start(at: "2026-11-20T10:00:00+08:00", supervisionStart: nil)
        let registryClient = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: officeUnit)
        #expect(try await registryClient.call(RegistryTypes.planGet, Empty()).supervisionStart == "2026-11-20")
        let statuses = try await registryClient.callAll(RegistryTypes.taskList, TaskListRequest())
        #expect(!statuses.contains { $0.status == .lagging }, "\(statuses.filter { $0.status == .lagging }.map(\.id))")
        #expect(
            try await TestSupport.eventually {
                Set(try await bench.notices(.overdue).compactMap(\.refs.task)).isSuperset(of: ["5", "6", "7.3", "16"])
            }, "tasks past their deadlines at go-live get their overdue notices")
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await bench.notices(.escalationProposal).isEmpty)
        #expect(try await bench.notices(.reportMissing).isEmpty)
        #expect(
            try await !bench.notices(.monthlyDispatch).contains { $0.dedupKey == "monthly_summary:2026-10" }, "October was before go-live")
        // 补报: a month before go-live may still be reported, and says so.
        let unit = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区城乡建设局")
        let late = try await unit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 55, summary: "补报十月进展"))
        #expect(late.backfill == true)
        let current = try await unit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-11", unit: "区城乡建设局", percent: 60, summary: "十一月进展"))
        #expect(current.backfill == nil)
        await unit.close()
        // After December's dispatch day (the 5th, a Saturday: Monday the 7th), November (the first month
        // since go-live) is due: units that did not report are reminded, and still nothing is proposed after one month.
        bench.clock.set(date("2026-12-08T10:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await bench.notices(.reportMissing).contains { $0.refs.period == "2026-11" } })
        #expect(try await !bench.notices(.reportMissing).contains { $0.refs.period != "2026-11" })
        #expect(try await bench.notices(.escalationProposal).isEmpty)
        await registryClient.close()
        try await bench.stop()
    }

    /// Issue #15: after the plan's last month nothing more is asked: no call for 2027's reports, no
    /// reminder or proposal for a month past the end.
    @Test func afterThePlansEndNoMonthIsAskedFor() async throws {
        let bench = try await RhythmBench.start(at: "2027-03-10T10:00:00+08:00", supervisionStart: "2024-01-01")
        #expect(try await TestSupport.eventually { try await bench.notices().contains { $0.dedupKey == "monthly_summary:2026-12" } })
        try await Task.sleep(for: .milliseconds(600))
        // Periods are months (2026-12), quarters (2026-Q4) or years: none may be in 2027.
        let past = try await bench.notices().filter { ($0.refs.period ?? "").hasPrefix("2027") }
        #expect(past.isEmpty, "\(past.map(\.title))")
        // The plan's last dispatch brings the closing report, once.
        let closing = try await bench.notices().filter { $0.dedupKey == "closing:2024-2026" }
        #expect(closing.count == 1 && closing.first?.kind == .annualNotification && closing.first?.refs.period == "2024-2026")
        try await bench.stop()
    }
}
