import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import CaseTracking

/// The ledger counted in the tasks (issue #15): a registry and a case tracker, both real, each
/// given the other's endpoints by the test; the registry follows the ledger's events.
@Suite struct LedgerInTasksTests {
    static let photo = EvidenceRef(name: "整改照片", uri: "https://files.example/hcj.jpg")
    static let report = EvidenceRef(name: "验收报告", uri: "https://files.example/hcj-ys.pdf")
    static let start = date("2026-11-20T10:00:00+08:00")

    static func registry(_ dir: String, at endpoints: Endpoints, cases: Endpoints, clock: ServiceClock) async throws -> InProcessService {
        try await InProcessService.start(RegistryService.self, dataDirectory: dir, endpoints: endpoints, clock: clock) {
            $0.endpoints[.cases] = cases
        }
    }

    /// Starts a service again on the endpoints it had: the sockets just closed may hold the ports a moment longer.
    static func again(_ start: () async throws -> InProcessService) async throws -> InProcessService {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try await start()
            } catch  where "\(error)".contains("Address already in use") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    static func ledger(_ client: RPCClient, _ task: String = "10") async throws -> TaskLedger? {
        try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: task), as: PlanTask.self).ledger
    }

    /// Waits until task `task`'s figures are `expected` (registered, closed, open, overdue), and returns the task.
    @discardableResult
    static func figures(
        _ client: RPCClient, _ expected: (Int, Int, Int, Int), task: String = "10", timeout: Duration = .seconds(20)
    ) async throws -> PlanTask {
        var last: PlanTask?
        let reached = try await TestSupport.eventually(timeout: timeout) {
            last = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: task), as: PlanTask.self)
            guard let l = last?.ledger else { return false }
            return (l.registered, l.closed, l.open, l.overdue) == expected
        }
        #expect(reached, "task \(task): \(String(describing: last?.ledger)), want \(expected)")
        return last!
    }

    /// Walks cases to `accepted` (the office's 验收): start and submit by the unit, accept by the office.
    static func accept(_ ids: some Sequence<String>, unit: RPCClient, office: RPCClient) async throws {
        for id in ids {
            _ = try await unit.call(CaseTypes.transition, CaseTransitionRequest(id: id, action: .start), as: Case.self)
            _ = try await unit.call(
                CaseTypes.transition, CaseTransitionRequest(id: id, action: .submit, comment: "已分流改造", evidence: [photo]), as: Case.self)
            _ = try await office.call(
                CaseTypes.transition, CaseTransitionRequest(id: id, action: .accept, comment: "验收合格", evidence: [report]), as: Case.self)
        }
    }

    @Test func twoHundredThirtySevenPointsClosedMoveTaskTenAndOnlyTheOfficesAcceptanceCompletesIt() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: Self.start)
        let registryEndpoints = TestSupport.freeEndpoints()
        let casesEndpoints = TestSupport.freeEndpoints()
        var registry = try await Self.registry(dir, at: registryEndpoints, cases: casesEndpoints, clock: clock)
        var cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, endpoints: casesEndpoints, clock: clock) {
            $0.endpoints[.registry] = registryEndpoints
        }
        let office = try await RPCClient.connect(to: casesEndpoints.rpc, from: officeUnit)
        let unit = try await RPCClient.connect(to: casesEndpoints.rpc, from: "区城乡建设局")
        let reader = try await RPCClient.connect(to: registryEndpoints.rpc, from: "test")
        let registryOffice = try await RPCClient.connect(to: registryEndpoints.rpc, from: officeUnit)
        let registryUnit = try await RPCClient.connect(to: registryEndpoints.rpc, from: "区城乡建设局")

        // The plan's number is data before any case exists; the other linked tasks say no number.
        let before = try #require(try await Self.ledger(reader))
        #expect(before == TaskLedger(sources: [.sewerMisconnection], expected: 237, registered: 0, closed: 0, open: 0, overdue: 0))
        #expect(try await Self.ledger(reader, "7.3")?.expected == nil)
        #expect(try await Self.ledger(reader, "5")?.sources == [.evaporationPond])
        #expect(try await Self.ledger(reader, "12") == nil)

        // 237 points in one import: 3 due on 2026-11-25, the rest at the year's end; 20 name task 10,
        // the others only their source. An outfall and a point filed under 11.1 do not count for 10.
        var rows: [JSONValue] = []
        for n in 1...237 {
            let point = CaseOpenRequest(
                source: .sewerMisconnection, title: "主城区混错接点位 \(n) 号", unit: "区城乡建设局", deadline: n <= 3 ? "2026-11-25" : "2026-12-31",
                task: n <= 20 ? "10" : nil, batch: "第一批", externalRef: "HCJ-\(n)")
            rows.append(try JSONDecoder().decode(JSONValue.self, from: WireCoding.encode(point)))
        }
        for other in [
            CaseOpenRequest(source: .outfall, title: "湟水河某排污口", unit: "区生态环境局", deadline: "2026-12-31"),
            CaseOpenRequest(source: .sewerMisconnection, title: "老旧小区错接", unit: "区城乡建设局", task: "11.1"),
        ] {
            rows.append(try JSONDecoder().decode(JSONValue.self, from: WireCoding.encode(other)))
        }
        var imported: CaseImportReply?
        let directoryReady = try await TestSupport.eventually {
            imported = try? await office.call(CaseTypes.import, CaseImportRequest(cases: rows), as: CaseImportReply.self)
            return imported != nil
        }
        #expect(directoryReady)
        let ids = try #require(imported).imported
        #expect(ids.count == 239 && imported?.rejected.isEmpty == true)
        let points = Array(ids.prefix(237))

        var task = try await Self.figures(reader, (237, 0, 237, 0))
        #expect(task.reasons?.contains { $0.code == "ledger_open" && $0.text == "台账未销号 237 / 237" && $0.open == 237 } == true)
        #expect(try await Self.ledger(reader, "7.3")?.registered == 1)

        // The unit says it is done; the office may not accept while any point is open.
        _ = try await registryUnit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-11", unit: "区城乡建设局", percent: 100, summary: "点线面治理全面完成"),
            as: ProgressReport.self)
        task = try await reader.call(RegistryTypes.taskGet, TaskGetRequest(id: "10"), as: PlanTask.self)
        #expect(task.status == .onTrack && task.reasons?.first?.code == "ledger_open")
        let early = try await refusal(registryOffice, RegistryTypes.taskAccept, TaskAcceptRequest(task: "10", comment: "同意验收"))
        #expect(early.code == .conflict && early.message.contains("237 处问题未销号"), "\(early.message)")

        // Assigned as a batch, then closed in steps: the figures follow each step.
        _ = try await office.call(CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第一批"), as: CaseAssignBatchReply.self)
        try await Self.accept(points[0..<100], unit: unit, office: office)
        task = try await Self.figures(reader, (237, 100, 137, 0))
        #expect(task.reasons?.contains { $0.text == "台账未销号 137 / 237" } == true)
        // 销号 after acceptance changes nothing in the counts: accepted already counts as closed.
        for id in points[0..<10] {
            _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: id, action: .close, comment: "销号"), as: Case.self)
        }
        try await Self.accept(points[100..<200], unit: unit, office: office)
        try await Self.figures(reader, (237, 200, 37, 0))

        // Past 2026-11-25 the three early points still open are overdue, by the registry's clock alone.
        let reopened = points[0]
        _ = try await office.call(
            CaseTypes.transition, CaseTransitionRequest(id: reopened, action: .reopen, comment: "复查发现反弹"), as: Case.self)
        try await Self.figures(reader, (237, 199, 38, 0))
        clock.set(date("2026-11-26T10:00:00+08:00"))
        task = try await Self.figures(reader, (237, 199, 38, 1))
        #expect(task.reasons?.contains { $0.text == "台账未销号 38 / 237（逾期 1）" } == true)

        // The office reads them in Chinese: `duban task 10`, and the ledger section of `duban status`.
        let both = Ledger(registry: registry, cases: cases, dataDirectory: dir, clock: clock)
        let shown = try duban(both, ["task", "10"])
        #expect(shown.ok && shown.output.contains("台账      台账登记 237 / 237，销号 199，未销号 38，逾期 1（混错接点位）"), "\(shown.output)")
        #expect(shown.output.contains("原因      台账未销号 38 / 237（逾期 1）（ledger_open）"), "\(shown.output)")
        // ingest and notify are not running here: status says so and exits 1, after printing what it has.
        let status = try duban(both, ["status"]).output
        #expect(status.contains("应有") && status.contains("未销号") && status.contains("混错接点位"), "\(status)")
        #expect(status.split(separator: "\n").contains { $0.contains("混错接点位") && $0.contains("237") && $0.contains("38") }, "\(status)")

        // A restart keeps the figures: with the case tracker down the registry can only have them from its database.
        try await cases.stop()
        try await registry.stop()
        registry = try await Self.again { try await Self.registry(dir, at: registryEndpoints, cases: casesEndpoints, clock: clock) }
        let afterRestart = try await RPCClient.connect(to: registryEndpoints.rpc, from: "test")
        #expect(
            try await Self.ledger(afterRestart)
                == TaskLedger(
                    sources: [.sewerMisconnection], expected: 237, registered: 237, closed: 199, open: 38, overdue: 1))

        // Closed while the registry is down: it catches up from its cursor once it is back.
        cases = try await Self.again {
            try await InProcessService.start(CasesService.self, dataDirectory: dir, endpoints: casesEndpoints, clock: clock) {
                $0.endpoints[.registry] = registryEndpoints
            }
        }
        try await registry.stop()
        let office2 = try await RPCClient.connect(to: casesEndpoints.rpc, from: officeUnit)
        let unit2 = try await RPCClient.connect(to: casesEndpoints.rpc, from: "区城乡建设局")
        // A reopened case is back in 整改中: submitted and accepted again.
        _ = try await unit2.call(
            CaseTypes.transition, CaseTransitionRequest(id: reopened, action: .submit, comment: "再次整改", evidence: [Self.photo]),
            as: Case.self)
        _ = try await office2.call(
            CaseTypes.transition, CaseTransitionRequest(id: reopened, action: .accept, comment: "验收合格", evidence: [Self.report]),
            as: Case.self)
        try await Self.accept(points[200..<236], unit: unit2, office: office2)
        // The last point was registered by mistake: voided, it is no longer counted, and 236 of 237 is not done.
        _ = try await office2.call(CaseTypes.void, CaseVoidRequest(id: points[236], reason: "与 HCJ-12 为同一点位，重复登记"), as: Case.self)
        registry = try await Self.again { try await Self.registry(dir, at: registryEndpoints, cases: casesEndpoints, clock: clock) }
        let reader2 = try await RPCClient.connect(to: registryEndpoints.rpc, from: "test")
        let office3 = try await RPCClient.connect(to: registryEndpoints.rpc, from: officeUnit)
        task = try await Self.figures(reader2, (236, 236, 0, 0))
        #expect(task.status == .onTrack && task.reasons?.first?.code == "ledger_incomplete", "\(String(describing: task.reasons))")
        let short = try await refusal(office3, RegistryTypes.taskAccept, TaskAcceptRequest(task: "10", comment: "同意验收"))
        #expect(short.code == .conflict && short.message.contains("已销号 236 / 237，尚有 1 处未登记"), "\(short.message)")

        // The real 237th point, registered and closed: the task waits for the office, which completes it.
        let last = try await office2.call(
            CaseTypes.open,
            CaseOpenRequest(source: .sewerMisconnection, title: "主城区混错接点位 12-1 号", unit: "区城乡建设局", deadline: "2026-12-31"),
            as: Case.self)
        _ = try await office2.call(CaseTypes.transition, CaseTransitionRequest(id: last.id, action: .assign), as: Case.self)
        try await Self.accept([last.id], unit: unit2, office: office2)
        task = try await Self.figures(reader2, (237, 237, 0, 0))
        #expect(task.status == .awaitingAcceptance, "\(String(describing: task.status)) \(String(describing: task.reasons))")
        // An ongoing task owes its monthly report until the office has accepted it.
        #expect(try await Self.owing(reader2, "2026-12").contains(TaskUnit(task: "10", unit: "区城乡建设局")))
        let review = try await office3.call(
            RegistryTypes.taskAccept, TaskAcceptRequest(task: "10", comment: "237 处混错接点位全部验收销号", evidence: [Self.report]),
            as: TaskReview.self)
        #expect(review.status == .completed)
        #expect(try await reader2.call(RegistryTypes.taskGet, TaskGetRequest(id: "10"), as: PlanTask.self).status == .completed)
        // Accepted, it owes nothing more: no 未报 in the dispatch, so no reminder and no proposal either.
        #expect(!(try await Self.owing(reader2, "2026-12").contains { $0.task == "10" }))

        // The ledger moves a point filed under 11.1 to task 10 (a round-trip edit, `cases.case.edited`):
        // one open again, and the task is no longer complete.
        let moved = try await office2.call(
            CaseTypes.import, CaseImportRequest(cases: [.object(["id": .string(ids[238]), "task": .string("10")])]),
            as: CaseImportReply.self)
        #expect(moved.updated?.map(\.id) == [ids[238]])
        task = try await Self.figures(reader2, (238, 237, 1, 0))
        #expect(task.status == .onTrack && task.reasons?.map(\.code) == ["ledger_open"], "\(String(describing: task.reasons))")
        // No longer complete, it owes its reports again.
        #expect(try await Self.owing(reader2, "2026-12").contains(TaskUnit(task: "10", unit: "区城乡建设局")))

        // A registry started after all this, with a database of its own, reads the ledger from its start.
        let lateEndpoints = TestSupport.freeEndpoints()
        let late = try await Self.registry(
            try TestSupport.temporaryDirectory(), at: lateEndpoints, cases: casesEndpoints, clock: clock)
        let lateReader = try await RPCClient.connect(to: lateEndpoints.rpc, from: "test")
        try await Self.figures(lateReader, (238, 237, 1, 0))
        #expect(try await Self.ledger(lateReader, "7.3")?.registered == 1)

        for client in [office, unit, reader, registryOffice, registryUnit, afterRestart, office2, unit2, reader2, office3, lateReader] {
            await client.close()
        }
        try await late.stop()
        try await cases.stop()
        try await registry.stop()
    }

    /// Who owes a report for `month`, by the registry's dispatch overview.
    static func owing(_ client: RPCClient, _ month: String) async throws -> [TaskUnit] {
        try await client.call(RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: month), as: DispatchOverviewReply.self)
            .missing
    }

    /// With CURVE on, the registry follows the ledger with its own certificate (a `service` principal
    /// the case tracker admits as a reader), as every other peer does.
    @Test func withKeysTheRegistryFollowsTheLedgerWithItsOwnCertificate() async throws {
        let keys = try TestKeys.make()
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: Self.start)
        let registryEndpoints = TestSupport.freeEndpoints()
        let casesEndpoints = TestSupport.freeEndpoints()
        let registry = try await InProcessService.start(
            RegistryService.self, dataDirectory: dir, endpoints: registryEndpoints, clock: clock
        ) {
            $0.keysDirectory = keys.path
            $0.endpoints[.cases] = casesEndpoints
        }
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, endpoints: casesEndpoints, clock: clock) {
            $0.keysDirectory = keys.path
            $0.endpoints[.registry] = registryEndpoints
        }
        let office = try await keys.client("office", .cases, at: casesEndpoints.rpc)
        let reader = try await keys.client("admin", .registry, at: registryEndpoints.rpc)
        var opened: Case?
        let ready = try await TestSupport.eventually {
            opened = try? await office.call(
                CaseTypes.open, CaseOpenRequest(source: .sewerMisconnection, title: "南川东路混接", unit: "区城乡建设局", deadline: "2026-12-31"),
                as: Case.self)
            return opened != nil
        }
        #expect(ready)
        try await Self.figures(reader, (1, 0, 1, 0))
        for client in [office, reader] { await client.close() }
        try await cases.stop()
        try await registry.stop()
    }
}
