import DubanTesting
import Formats
import Foundation
import GRDB
import Messaging
import Schema
import ServiceKit
import Testing

@testable import CaseTracking

/// A case that is worked, not only moved: progress updates, site visits, extensions, voiding,
/// batch assignment and links, each kept in the case's file and its export.
@Suite struct CaseFollowThroughTests {
    static let photo = EvidenceRef(name: "现场照片1", uri: "https://files.example/visit-1.jpg", sha256: String(repeating: "b", count: 64))

    func events(_ client: RPCClient, _ type: String) async throws -> [AnyEvent] {
        try await client.call(SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0), as: EventsSinceReply<AnyEvent>.self)
            .events.filter { $0.type == type }
    }

    @Test func updatesAVisitAndAnExtensionShowInTheHistoryAndTheExport() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let unit = try await ledger.client("区城市管理局")
        let stranger = try await ledger.client("区教育局")
        let item = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(
                source: .provincialInspection, title: "南川河沿岸垃圾堆放", unit: "区城市管理局", deadline: "2026-12-20", task: "12",
                location: "南川河总寨段", supervisingUnit: "区生态环境局"),
            as: Case.self)
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: item.id, action: .assign), as: Case.self)
        _ = try await unit.call(CaseTypes.transition, CaseTransitionRequest(id: item.id, action: .start), as: Case.self)

        // Progress updates: the responsible unit (or the office) only, a percent within 0…100, a text.
        #expect(
            try await refusal(stranger, CaseTypes.update, CaseUpdateRequest(id: item.id, text: "已清运", progress: 50)).code
                == .permissionDenied)
        #expect(
            try await refusal(unit, CaseTypes.update, CaseUpdateRequest(id: item.id, text: "已清运", progress: 120)).field == "body.progress")
        #expect(try await refusal(unit, CaseTypes.update, CaseUpdateRequest(id: item.id, text: "  ")).field == "body.text")
        let updated = try await unit.call(
            CaseTypes.update, CaseUpdateRequest(id: item.id, text: "已清运垃圾 40 吨，围挡施工中", progress: 40), as: Case.self)
        #expect(updated.latestUpdate?.progress == 40 && updated.latestUpdate?.text == "已清运垃圾 40 吨，围挡施工中")
        #expect(updated.state == .rectifying, "an update does not move the state")

        // A site visit by the supervising unit, with photos (hashed) and one follow-up problem.
        #expect(
            try await refusal(
                unit, CaseTypes.visit,
                CaseVisitRequest(id: item.id, date: "2026-11-19", inspectors: ["张三"], findings: "围挡未完成", evidence: [Self.photo])
            ).code == .permissionDenied, "the unit does not inspect itself")
        #expect(
            try await refusal(
                office, CaseTypes.visit,
                CaseVisitRequest(
                    id: item.id, date: "2026-11-19", inspectors: ["张三"], findings: "围挡未完成",
                    evidence: [EvidenceRef(name: "照片", uri: "https://files.example/x.jpg")])
            ).field == "body.evidence[0].sha256")
        #expect(
            try await refusal(
                office, CaseTypes.visit, CaseVisitRequest(id: item.id, date: "2026-11-21", inspectors: ["张三"], findings: "围挡未完成")
            ).field == "body.date", "not a day in the future")
        let supervisor = try await ledger.client("区生态环境局")
        let visited = try await supervisor.call(
            CaseTypes.visit,
            CaseVisitRequest(
                id: item.id, date: "2026-11-19", inspectors: ["张三", "李四"], findings: "垃圾已清运，下游 200 米处另有建筑垃圾", evidence: [Self.photo],
                followUp: [CaseFollowUp(title: "南川河总寨段下游建筑垃圾", deadline: "2026-12-31")]),
            as: CaseVisitReply.self)
        #expect(visited.opened == ["SDDD-2026-0001"])
        #expect(visited.case.related == ["SDDD-2026-0001"])
        let followUp = try await office.call(CaseTypes.get, CaseGetRequest(id: "SDDD-2026-0001"), as: Case.self)
        #expect(followUp.source == .siteVisit && followUp.unit == "区城市管理局" && followUp.task == "12" && followUp.related == [item.id])

        // An extension: the unit asks, the office decides; the original deadline is kept.
        #expect(
            try await refusal(
                unit, CaseTypes.extend, CaseExtendRequest(id: item.id, action: .request, deadline: "2026-12-10", reason: "雨雪")
            )
            .field == "body.deadline", "an extension moves the deadline later")
        let asked = try await unit.call(
            CaseTypes.extend, CaseExtendRequest(id: item.id, action: .request, deadline: "2027-03-31", reason: "冬季冻土无法施工"), as: Case.self)
        #expect(asked.pendingExtension?.deadline == "2027-03-31" && asked.deadline == "2026-12-20")
        #expect(
            try await refusal(
                unit, CaseTypes.extend, CaseExtendRequest(id: item.id, action: .request, deadline: "2027-04-30", reason: "再延")
            )
            .code == .conflict, "one request at a time")
        #expect(
            try await refusal(unit, CaseTypes.extend, CaseExtendRequest(id: item.id, action: .grant, reason: "同意")).code
                == .permissionDenied)
        let granted = try await office.call(
            CaseTypes.extend, CaseExtendRequest(id: item.id, action: .grant, reason: "同意，开春后一个月内完成"), as: Case.self)
        #expect(granted.deadline == "2027-03-31" && granted.originalDeadline == "2026-12-20" && granted.pendingExtension == nil)
        #expect(
            try await refusal(office, CaseTypes.extend, CaseExtendRequest(id: item.id, action: .refuse, reason: "不同意")).code == .conflict,
            "nothing left to refuse")

        let file = try await office.call(CaseTypes.get, CaseGetRequest(id: item.id), as: Case.self)
        let steps = (file.history ?? []).map(\.action)
        #expect(steps == ["open", "assign", "start", "update", "visit", "extend_request", "extend_grant"])
        let history = file.history ?? []
        #expect(history[3].progress == 40)
        #expect(history[4].visit == SiteVisit(date: "2026-11-19", inspectors: ["张三", "李四"], followUp: ["SDDD-2026-0001"]))
        #expect(history[4].evidence == [Self.photo])
        #expect(history[6].deadlineChange == DeadlineChange(from: "2026-12-20", to: "2027-03-31"))
        let changed = try await events(office, CaseTypes.deadlineChanged).map { try $0.body(as: CaseDeadlineChanged.self) }
        #expect(changed.map(\.to) == ["2027-03-31"] && changed.first?.by == "extension")
        #expect(try await events(office, CaseTypes.updated).count == 1)
        #expect(try await events(office, CaseTypes.visited).count == 1)
        #expect(try await events(office, CaseTypes.extensionRequested).count == 1)

        let export = try await office.call(CaseTypes.export, CaseExportRequest(), as: CaseExportReply.self)
        let records = try LedgerCSV.parse(export.content)
        let header = records[0].fields
        let row = try #require(records.first { $0.fields.first == item.id }).fields
        func cell(_ name: String) -> String { row[header.firstIndex(of: name)!] }
        #expect(cell("完成时限") == "2027-03-31" && cell("原完成时限") == "2026-12-20")
        #expect(cell("最新进展") == "2026-11-20 40% 已清运垃圾 40 吨，围挡施工中")
        #expect(cell("关联问题") == "SDDD-2026-0001")
        #expect(cell("来源") == "省级生态环境保护例行督察")
        for client in [office, unit, stranger, supervisor] { await client.close() }
        try await ledger.stop()
    }

    @Test func aBatchOf300IsAssignedInOneRequestAndAVoidedCaseStaysWithItsReason() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let unit = try await ledger.client("区城乡建设局")
        let points = (1...300).map { index in
            JSONValue.object([
                "source": .string("sewer_misconnection"), "title": .string("混错接点位\(index)"), "unit": .string("区城乡建设局"),
                "task": .string("10"), "batch": .string("第一批"), "external_ref": .string("P\(index)"),
            ])
        }
        let imported = try await office.call(CaseTypes.import, CaseImportRequest(cases: points), as: CaseImportReply.self)
        #expect(imported.imported.count == 300)
        let mistaken = imported.imported[299]

        // Voiding: the office's, with a reason; not through case.transition; kept, never counted.
        #expect(try await refusal(unit, CaseTypes.void, CaseVoidRequest(id: mistaken, reason: "重复登记")).code == .permissionDenied)
        #expect(try await refusal(office, CaseTypes.void, CaseVoidRequest(id: mistaken, reason: " ")).field == "body.reason")
        #expect(
            try await refusal(office, CaseTypes.transition, CaseTransitionRequest(id: mistaken, action: .void, comment: "x")).field
                == "body.action")
        let voided = try await office.call(CaseTypes.void, CaseVoidRequest(id: mistaken, reason: "与点位 299 重复登记"), as: Case.self)
        #expect(voided.state == .voided && voided.voidReason == "与点位 299 重复登记")
        #expect(try await refusal(office, CaseTypes.void, CaseVoidRequest(id: mistaken, reason: "再次")).code == .conflict)
        #expect(
            try await refusal(unit, CaseTypes.update, CaseUpdateRequest(id: mistaken, text: "进展")).code == .conflict,
            "a voided case takes no updates")

        #expect(
            try await refusal(unit, CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第一批")).code == .permissionDenied)
        #expect(
            try await refusal(office, CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第九批")).code == .notFound)
        #expect(
            try await refusal(office, CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第一批", deadline: "2026-11-01")).field
                == "body.deadline", "not a deadline already past")
        let reply = try await office.call(
            CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第一批", deadline: "2027-06-30", comment: "按“点线面”模式分批整治"),
            as: CaseAssignBatchReply.self)
        #expect(reply.assigned.count == 299 && reply.skipped == 1 && !reply.assigned.contains(mistaken))
        let listed: [Case] = try await office.callAll(CaseTypes.list, CaseListRequest(batch: "第一批"))
        let assignedWithDeadline = listed.filter { (item: Case) -> Bool in item.state == .assigned && item.deadline == "2027-06-30" }
        #expect(assignedWithDeadline.count == 299)
        let one = try await office.call(CaseTypes.get, CaseGetRequest(id: reply.assigned[0]), as: Case.self)
        #expect(one.history?.last?.action == "assign" && one.history?.last?.deadlineChange == DeadlineChange(from: nil, to: "2027-06-30"))
        let again = try await office.call(CaseTypes.assignBatch, CaseAssignBatchRequest(batch: "第一批"), as: CaseAssignBatchReply.self)
        #expect(again.assigned.isEmpty && again.skipped == 300, "a second run assigns nothing")
        let batches = try await office.call(CaseTypes.batches, CaseBatchesRequest(), as: ListReply<BatchProgress>.self)
        #expect(batches.items.first { $0.batch == "第一批" }?.total == 299, "the voided case is not one of the batch's problems")

        // Similar cases linked (举一反三), both ways, once.
        _ = try await office.call(
            CaseTypes.link, CaseLinkRequest(id: reply.assigned[0], related: reply.assigned[1], comment: "同一管线"), as: Case.self)
        let linked = try await office.call(
            CaseTypes.link, CaseLinkRequest(id: reply.assigned[1], related: reply.assigned[0]), as: Case.self)
        #expect(linked.related == [reply.assigned[0]])
        #expect(linked.history?.filter { $0.action == "link" }.count == 1, "linking twice records once")
        #expect(
            try await refusal(unit, CaseTypes.link, CaseLinkRequest(id: reply.assigned[0], related: reply.assigned[2])).code
                == .permissionDenied)
        await office.close()
        await unit.close()
        try await ledger.stop()
    }

    @Test func aGrantedExtensionEndsOverdueAndTheCaseIsAnnouncedAgainWhenLateAgain() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let ledger = try await Ledger.start(clock: clock, tickSeconds: 0.1)
        let office = try await ledger.client(officeUnit)
        let item = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .outfall, title: "排污口 3", unit: "区城乡建设局", deadline: "2026-11-30"), as: Case.self)
        clock.set(date("2026-12-01T09:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await events(office, CaseTypes.overdue).count == 1 })
        let granted = try await office.call(
            CaseTypes.extend, CaseExtendRequest(id: item.id, action: .grant, deadline: "2026-12-15", reason: "办公室调整时限"), as: Case.self)
        #expect(!granted.overdue && granted.originalDeadline == "2026-11-30")
        clock.set(date("2026-12-16T09:00:00+08:00"))
        #expect(try await TestSupport.eventually { try await events(office, CaseTypes.overdue).count == 2 })
        await office.close()
        try await ledger.stop()
    }

    @Test func aLedgerWrittenBeforeTheFollowThroughMigrationOpensWithEveryCase() async throws {
        let directory = try TestSupport.temporaryDirectory()
        // A ledger as the wave-1 schema (cases-v2) left it: one case, its history.
        do {
            let pool = try DatabasePool(path: (directory as NSString).appendingPathComponent("cases.sqlite"))
            var migrator = DatabaseMigrator()
            CasesStore.migrations(&migrator)
            try migrator.migrate(pool, upTo: "cases-v2-principals")
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO cases (id, source, year, number, title, unit, deadline, state, opened_at, updated_at)
                        VALUES ('ZYDC-2026-0001', 'central_inspection', 2026, 1, '问题甲', '区城乡建设局', '2026-12-31', 'assigned',
                        '2026-11-01T09:00:00+08:00', '2026-11-01T09:00:00+08:00');
                        INSERT INTO case_history (case_id, step, action, from_state, to_state, actor, at, evidence)
                        VALUES ('ZYDC-2026-0001', 1, 'open', NULL, 'registered', '专项工作组办公室', '2026-11-01T09:00:00+08:00', '[]');
                        """)
            }
            try pool.close()
        }
        let ledger = try await Ledger.start(dataDirectory: directory)
        let office = try await ledger.client(officeUnit)
        let kept = try await office.call(CaseTypes.get, CaseGetRequest(id: "ZYDC-2026-0001"), as: Case.self)
        #expect(kept.title == "问题甲" && kept.state == .assigned && kept.deadline == "2026-12-31" && kept.history?.count == 1)
        let voided = try await office.call(CaseTypes.void, CaseVoidRequest(id: kept.id, reason: "登记错误"), as: Case.self)
        #expect(voided.state == .voided && voided.history?.map(\.action) == ["open", "void"])
        let next = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .centralInspection, title: "问题乙", unit: "区城乡建设局"), as: Case.self)
        #expect(next.id == "ZYDC-2026-0002", "numbering goes on from the rebuilt table")
        await office.close()
        try await ledger.stop()
    }

    /// A permission decided on the case as read before the write lane took the request does not
    /// survive the case changing hands meanwhile: inside the transaction the parties are read again.
    @Test func aWriteDecidedOnACaseThatChangedHandsMeanwhileIsRefused() async throws {
        let directory = try TestSupport.temporaryDirectory()
        let ledger = try await Ledger.start(dataDirectory: directory)
        let office = try await ledger.client(officeUnit)
        let item = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .centralInspection, title: "问题丙", unit: "区城乡建设局"), as: Case.self)
        // The running service writes too (its events, its clock): wait for its lock rather than fail.
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let pool = try DatabasePool(path: (directory as NSString).appendingPathComponent("cases.sqlite"), configuration: configuration)
        try await pool.read { db in try CasesService.sameParties(db, item) }
        // As an import queued ahead of the request would: the case goes to another unit.
        try await pool.write { db in try db.execute(sql: "UPDATE cases SET unit = '区城市管理局' WHERE id = ?", arguments: [item.id]) }
        let refusal = await #expect(throws: ErrorBody.self) { try await pool.read { db in try CasesService.sameParties(db, item) } }
        #expect(refusal?.code == .conflict && refusal?.message.contains("区城市管理局") == true)
        try pool.close()
        await office.close()
        try await ledger.stop()
    }

    @Test func anInspectionByTheDisciplineCommissionOpensACaseForEachFinding() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let unit = try await ledger.client("区城乡建设局")
        let findings = [
            InspectionFinding(title: "渣土车未覆盖夜间运输", unit: "区城市管理局", deadline: "2026-12-31", location: "南川东路"),
            InspectionFinding(title: "混错接点位整改台账与现场不符", unit: "区城乡建设局", task: "10"),
        ]
        let request = InspectionRecordRequest(kind: .unannounced, date: "2026-11-18", summary: "明察暗访发现问题2个", findings: findings)
        #expect(try await refusal(unit, InspectionTypes.record, request).code == .permissionDenied)
        var broken = request
        broken.findings[1].unit = "区农业局"
        #expect(try await refusal(office, InspectionTypes.record, broken).field == "body.findings[1].unit")
        #expect(try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items.isEmpty, "nothing stored")
        let record = try await office.call(InspectionTypes.record, request)
        #expect(record.id == "JWDC-2026-01" && record.agency == "区纪委监委" && record.cases == ["JWDC-2026-0001", "JWDC-2026-0002"])
        let cases = try await office.call(CaseTypes.list, CaseListRequest(batch: record.batch), as: ListReply<Case>.self).items
        #expect(cases.map(\.source) == [.disciplineInspection, .disciplineInspection] && cases.map(\.unit) == ["区城市管理局", "区城乡建设局"])
        #expect(try await office.call(InspectionTypes.list, Empty()).items.map(\.id) == [record.id])
        await office.close()
        await unit.close()
        try await ledger.stop()
    }
}
