import DubanTesting
import Formats
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import CaseTracking

func date(_ text: String) -> Date { Timestamp.parse(text)! }

/// A registry and a case tracker, both real, on free ports.
struct Ledger {
    let registry: InProcessService
    let cases: InProcessService
    let dataDirectory: String
    let clock: ServiceClock

    static func start(
        dataDirectory: String? = nil, clock: ServiceClock = .starting(at: date("2026-11-20T10:00:00+08:00")), tickSeconds: Double = 30
    )
        async throws -> Ledger
    {
        let dir = try dataDirectory ?? TestSupport.temporaryDirectory()
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock, tickSeconds: tickSeconds) {
            $0.endpoints[.registry] = registry.endpoints
        }
        return Ledger(registry: registry, cases: cases, dataDirectory: dir, clock: clock)
    }

    func client(_ from: String) async throws -> RPCClient { try await RPCClient.connect(to: cases.endpoints.rpc, from: from) }

    func stop() async throws {
        try await cases.stop()
        try await registry.stop()
    }
}

@Suite struct CaseLifecycleTests {
    static let photo = EvidenceRef(name: "整改照片", uri: "https://files.example/1.jpg", sha256: String(repeating: "a", count: 64))
    static let report = EvidenceRef(name: "验收报告", uri: "https://files.example/ys.pdf")

    @Test func aCaseWalksTheWholeLifecycleAndEveryOtherMoveChangesNothing() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let unit = try await ledger.client("区城市管理局")
        let stranger = try await ledger.client("区教育局")
        let opened = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(
                source: .centralInspection, title: "南川河沿岸垃圾堆放", unit: "区城市管理局", deadline: "2026-12-20", description: "河道管理范围内堆放生活垃圾",
                task: "12", location: "南川河总寨段", coordinates: Coordinates(lat: 36.55, lon: 101.76), externalRef: "ZY-2024-017",
                supervisingUnit: "区生态环境局",
                acceptanceUnit: "区生态环境局", measures: "清运垃圾，设置围挡"),
            as: Case.self)
        #expect(opened.id == "ZYDC-2026-0001" && opened.state == .registered)

        // Each step: first every illegal action and every forbidden actor, and the case is unchanged; then the legal move.
        let path: [(CaseAction, RPCClient, [EvidenceRef]?, String?)] = [
            (.assign, office, nil, nil), (.start, unit, nil, nil), (.submit, unit, [Self.photo], "已清运"), (.reject, office, nil, "围挡未设置"),
            (.submit, unit, [Self.photo], "已补设围挡"), (.accept, office, [Self.report], "验收合格"), (.close, office, nil, "销号"),
            (.reopen, office, nil, "垃圾反弹"),
        ]
        var expectedHistory = 1
        for (action, legalActor, evidence, comment) in path {
            let before = try await office.call(CaseTypes.get, CaseGetRequest(id: opened.id), as: Case.self)
            for illegal in CaseAction.allCases where illegal != .void && illegal.target(from: before.state) == nil {
                let error = try await refusal(
                    office, CaseTypes.transition,
                    CaseTransitionRequest(id: opened.id, action: illegal, comment: "x", evidence: [Self.report]))
                #expect(error.code == .conflict, "\(illegal) from \(before.state)")
            }
            for actor in [office, unit, stranger] where actor !== legalActor {
                // The acceptance unit may also accept, reject and close; the stranger may do nothing.
                if [.accept, .reject, .close].contains(action), actor === office { continue }
                let error = try await refusal(
                    actor, CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: action, comment: "x", evidence: [Self.report])
                )
                #expect(error.code == .permissionDenied, "\(action) by \(actor.from ?? "")")
            }
            let unchanged = try await office.call(CaseTypes.get, CaseGetRequest(id: opened.id), as: Case.self)
            #expect(unchanged == before, "refused moves changed nothing")
            let moved = try await legalActor.call(
                CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: action, comment: comment, evidence: evidence),
                as: Case.self)
            #expect(moved.state == action.target(from: before.state))
            expectedHistory += 1
            #expect(moved.history?.count == expectedHistory)
        }
        let file = try await office.call(CaseTypes.get, CaseGetRequest(id: opened.id), as: Case.self)
        #expect(file.history?.map(\.action) == ["open", "assign", "start", "submit", "reject", "submit", "accept", "close", "reopen"])
        #expect(
            file.history?.map(\.actor) == [
                officeUnit, officeUnit, "区城市管理局", "区城市管理局", officeUnit, "区城市管理局", officeUnit, officeUnit, officeUnit,
            ])
        #expect(file.state == .rectifying && file.closedAt == nil)
        #expect(file.evidence.map(\.name) == ["整改照片", "整改照片", "验收报告"])
        #expect(file.history?[4].comment == "围挡未设置")

        // The designated acceptance unit may accept; acceptance without evidence is refused.
        let acceptor = try await ledger.client("区生态环境局")
        _ = try await unit.call(
            CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .submit, evidence: [Self.photo]), as: Case.self)
        let noEvidence = try await refusal(acceptor, CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .accept))
        #expect(noEvidence.code == .invalidArgument && noEvidence.field == "body.evidence")
        let noReason = try await refusal(acceptor, CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .reject))
        #expect(noReason.field == "body.comment")
        let accepted = try await acceptor.call(
            CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .accept, evidence: [Self.report]), as: Case.self)
        #expect(accepted.state == .accepted)

        // Events: opened, then one transitioned per move.
        let events = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0), as: EventsSinceReply<AnyEvent>.self)
        #expect(events.events.map(\.type) == [CaseTypes.opened] + Array(repeating: CaseTypes.transitioned, count: 10))
        let last = try events.events.last!.body(as: CaseTransitioned.self)
        #expect(last.action == .accept && last.actor == "区生态环境局" && last.from == .pendingAcceptance)
        for client in [office, unit, stranger, acceptor] { await client.close() }
        try await ledger.stop()
    }

    @Test func openingIsTheOfficesAndChecksUnitsAndTasksWithTheRegistry() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let unit = try await ledger.client("区城乡建设局")
        #expect(
            try await refusal(unit, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局")).code
                == .permissionDenied)
        let unknownUnit = try await refusal(office, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区不存在局"))
        #expect(unknownUnit.code == .notFound && unknownUnit.field == "body.unit")
        let unknownTask = try await refusal(
            office, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局", task: "42"))
        #expect(unknownTask.field == "body.task")
        let badDate = try await refusal(
            office, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局", deadline: "2026-02-30"))
        #expect(badDate.field == "body.deadline")
        let badSource = try await refusal(
            office, CaseTypes.open.name, JSONValue.object(["source": .string("rumour"), "title": .string("x"), "unit": .string("区城乡建设局")]))
        #expect(badSource.code == .invalidArgument && badSource.field == "body.source")
        let first = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .outfall, title: "排污口 A", unit: "区生态环境局", task: "7.3", externalRef: "PWK-17"),
            as: Case.self)
        let second = try await office.call(CaseTypes.open, CaseOpenRequest(source: .outfall, title: "排污口 B", unit: "区生态环境局"), as: Case.self)
        #expect([first.id, second.id] == ["PWK-2026-0001", "PWK-2026-0002"])
        let duplicate = try await refusal(
            office, CaseTypes.open, CaseOpenRequest(source: .outfall, title: "again", unit: "区生态环境局", externalRef: "PWK-17"))
        #expect(duplicate.code == .conflict && duplicate.message.contains("已在整改台账中，编号 PWK-2026-0001"))
        await office.close()
        await unit.close()
        try await ledger.stop()
    }

    @Test func aCaseOverdueIsPublishedOnceAndAgainOnlyAfterAReopen() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let ledger = try await Ledger.start(clock: clock, tickSeconds: 0.1)
        let office = try await ledger.client(officeUnit)
        let item = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(source: .sewerMisconnection, title: "点位 17", unit: "区城乡建设局", deadline: "2026-11-30", batch: "第一批"),
            as: Case.self)
        _ = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .sewerMisconnection, title: "点位 18", unit: "区城乡建设局", deadline: "2027-06-30"),
            as: Case.self)
        try await Task.sleep(for: .milliseconds(400))
        func overdueEvents() async throws -> [CaseOverdue] {
            try await office.call(
                SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0), as: EventsSinceReply<AnyEvent>.self
            ).events
                .filter { $0.type == CaseTypes.overdue }.map { try $0.body(as: CaseOverdue.self) }
        }
        #expect(try await overdueEvents().isEmpty, "not before the deadline day has ended")
        clock.set(date("2026-12-01T00:00:05+08:00"))
        #expect(try await TestSupport.eventually { try await overdueEvents().count == 1 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await overdueEvents().map(\.id) == [item.id], "once, for the case whose deadline passed")
        let listed = try await office.call(CaseTypes.list, CaseListRequest(overdue: true), as: ListReply<Case>.self)
        #expect(listed.items.map(\.id) == [item.id])
        await office.close()
        try await ledger.stop()
    }
}

@Suite struct LedgerImportExportTests {
    /// 237 sewer misconnection points (task 10) in batches of 50, with four broken lines.
    static func pointsCSV() -> (csv: String, broken: [Int: String]) {
        var lines = ["来源,问题标题,责任单位,完成时限,所属任务,批次,位置,经度,纬度,外部编号,整改措施"]
        var broken: [Int: String] = [:]
        for index in 1...237 {
            let line = lines.count + 1
            let batch = "第\(["一", "二", "三", "四", "五"][(index - 1) / 50])批"
            var row = [
                "混错接点位", "主城区混错接点位\(index)", "区城乡建设局", "2026-12-31", "10", batch, "\"南川东路\(index)号,雨污混接\"", "101.7\(index % 10)",
                "36.6\(index % 10)",
                "HCJ-P\(String(format: "%03d", index))", "雨污分流改造",
            ]
            switch index {
            case 17:
                row[2] = "区不存在局"
                broken[line] = "unit"
            case 58:
                row[3] = "2026-13-01"
                broken[line] = "「完成时限」：「2026-13-01」不是日期"
            case 101:
                row[7] = "东经"
                broken[line] = "经度"
            case 200:
                row = Array(row.prefix(5))
                broken[line] = "有 5 格，表头只有 11 列"
            default: break
            }
            lines.append(row.joined(separator: ","))
        }
        return ("\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n", broken)
    }

    @Test func importing237PointsStoresTheGoodLinesAndNamesEveryBadOne() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let (csv, broken) = Self.pointsCSV()
        let rows = try LedgerCSV.importRows(try LedgerCSV.parse(csv))
        #expect(rows.count == 237)
        var problems: [Int: String] = [:]
        for row in rows where row.problem != nil { problems[row.line] = row.problem }
        let good = rows.filter { $0.body != nil }
        let reply = try await office.call(CaseTypes.import, CaseImportRequest(cases: good.map { $0.body! }), as: CaseImportReply.self)
        for rejected in reply.rejected { problems[good[rejected.index].line] = "\(rejected.field ?? ""): \(rejected.message)" }
        #expect(reply.imported.count == 233)
        #expect(Set(problems.keys) == Set(broken.keys))
        for (line, what) in broken {
            #expect(
                problems[line]?.contains(what) == true,
                "line \(line): \(problems[line] ?? "")")
        }

        // Importing the same file again stores nothing twice: each point is already in the ledger.
        let again = try await office.call(CaseTypes.import, CaseImportRequest(cases: good.map { $0.body! }), as: CaseImportReply.self)
        #expect(again.imported.isEmpty && again.rejected.count == 234 && again.rejected.filter { $0.code == .conflict }.count == 233)

        // Batches: how many of the points are closed.
        let first = reply.imported[0]
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: first, action: .assign), as: Case.self)
        let unit = try await ledger.client("区城乡建设局")
        _ = try await unit.call(CaseTypes.transition, CaseTransitionRequest(id: first, action: .start), as: Case.self)
        _ = try await unit.call(CaseTypes.transition, CaseTransitionRequest(id: first, action: .submit), as: Case.self)
        _ = try await office.call(
            CaseTypes.transition, CaseTransitionRequest(id: first, action: .accept, evidence: [CaseLifecycleTests.report]), as: Case.self)
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: first, action: .close), as: Case.self)
        let batches = try await office.call(
            CaseTypes.batches, CaseBatchesRequest(source: .sewerMisconnection), as: ListReply<BatchProgress>.self
        ).items
        #expect(batches.map(\.batch) == ["第一批", "第三批", "第二批", "第五批", "第四批"].sorted())
        #expect(batches.map(\.total).reduce(0, +) == 233)
        #expect(batches.first { $0.batch == "第一批" }?.closed == 1)

        // Export and read back: every stored case, every field, in the office's columns.
        let export = try await office.call(CaseTypes.export, CaseExportRequest(source: .sewerMisconnection), as: CaseExportReply.self)
        #expect(export.content.hasPrefix("\u{FEFF}编号,来源,问题标题"))
        let records = try LedgerCSV.parse(export.content)
        #expect(records.count == 234 && records[0].fields == LedgerCSV.headers)
        let listed = try await office.call(CaseTypes.list, CaseListRequest(source: .sewerMisconnection), as: ListReply<Case>.self).items
        for (record, item) in zip(records.dropFirst(), listed) {
            let f = Dictionary(uniqueKeysWithValues: zip(LedgerCSV.headers, record.fields))
            #expect(f["编号"] == item.id && f["问题标题"] == item.title && f["责任单位"] == item.unit && f["位置"] == item.location)
            #expect(f["批次"] == item.batch && f["外部编号"] == item.externalRef && f["状态"] == item.state.label && f["所属任务"] == "10")
            #expect(f["经度"] == item.coordinates.map { "\($0.lon)" } && f["完成时限"] == "2026-12-31")
        }
        #expect(records.dropFirst().first { $0.fields[0] == first }?.fields[15] == "已销号")
        let filtered = try await office.call(CaseTypes.export, CaseExportRequest(status: .closed), as: CaseExportReply.self)
        #expect(filtered.count == 1)
        #expect(try await refusal(office, CaseTypes.export, CaseExportRequest(format: "xlsx")).field == "body.format")
        await office.close()
        await unit.close()
        try await ledger.stop()
    }

    @Test func aRestartFindsEveryCaseAndItsHistoryIntact() async throws {
        let dir = try TestSupport.temporaryDirectory()
        var ledger = try await Ledger.start(dataDirectory: dir)
        var office = try await ledger.client(officeUnit)
        let (csv, _) = Self.pointsCSV()
        let good = try LedgerCSV.importRows(try LedgerCSV.parse(csv)).compactMap(\.body)
        _ = try await office.call(CaseTypes.import, CaseImportRequest(cases: good), as: CaseImportReply.self)
        let first = try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items[0].id
        _ = try await office.call(
            CaseTypes.transition, CaseTransitionRequest(id: first, action: .assign, comment: "请于年底前完成"), as: Case.self)
        let before = try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items
        let beforeFile = try await office.call(CaseTypes.get, CaseGetRequest(id: first), as: Case.self)
        await office.close()
        try await ledger.stop()

        ledger = try await Ledger.start(dataDirectory: dir)
        office = try await ledger.client(officeUnit)
        #expect(try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items == before)
        #expect(try await office.call(CaseTypes.get, CaseGetRequest(id: first), as: Case.self) == beforeFile)
        // Numbering goes on where it was.
        let next = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .sewerMisconnection, title: "新增点位", unit: "区城乡建设局"), as: Case.self)
        #expect(next.id == "HCJ-2026-0234")
        await office.close()
        try await ledger.stop()
    }

    @Test func casesGoOnWhenTheRegistryIsDownUsingTheUnitsLastFetched() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let ledger = try await Ledger.start(dataDirectory: dir)
        let office = try await ledger.client(officeUnit)
        _ = try await office.call(CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "举报 1", unit: "区城乡建设局"), as: Case.self)
        try await ledger.registry.stop()
        let item = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "举报 2", unit: "区城乡建设局"), as: Case.self)
        #expect(item.id == "JB-2026-0002")
        #expect(
            try await refusal(office, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区不存在局")).code == .notFound)
        await office.close()
        try await ledger.cases.stop()

        // A case tracker that has never reached a registry says so: unavailable, safe to retry.
        let lonely = try await InProcessService.start(CasesService.self, dataDirectory: try TestSupport.temporaryDirectory()) {
            $0.endpoints[.registry] = TestSupport.freeEndpoints()
        }
        let client = try await RPCClient.connect(to: lonely.endpoints.rpc, from: officeUnit)
        #expect(
            try await refusal(client, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局")).code
                == .unavailable)
        await client.close()
        try await lonely.stop()
    }

    /// No handler waits on the registry: with it stopped, an import naming a unit the directory
    /// has never heard of (each row once asked the registry, for seconds) finishes at once, and
    /// another client's pings are answered throughout.
    @Test func withTheRegistryStoppedALargeImportAndPingsAllFinishAtOnce() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let ledger = try await Ledger.start(dataDirectory: dir)
        let office = try await ledger.client(officeUnit)
        try await ledger.registry.stop()
        let rows: [JSONValue] = (0..<5_000).map { index in
            .object([
                "source": .string("sewer_misconnection"), "title": .string("混错接点位 \(index)"),
                "unit": .string(index % 2 == 0 ? "区城乡建设局" : "区不存在局"),
            ])
        }
        let pinger = try await ledger.client("test")
        let clock = ContinuousClock()
        let started = clock.now
        async let imported = office.call(CaseTypes.import, CaseImportRequest(cases: rows), timeout: .seconds(60), retries: 0)
        let pings = try await withThrowingTaskGroup(of: Duration.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    let start = clock.now
                    _ = try await pinger.call(SystemTypes.ping, Empty(), timeout: .seconds(5), retries: 0)
                    return start.duration(to: clock.now)
                }
            }
            return try await group.reduce(into: [Duration]()) { $0.append($1) }
        }
        let reply = try await imported
        #expect(reply.imported.count == 2_500)
        #expect(reply.rejected.count == 2_500)
        #expect(reply.rejected.allSatisfy { $0.code == .notFound })
        #expect(started.duration(to: clock.now) < .seconds(20), "the import did not wait on the registry")
        #expect(pings.count == 100)
        #expect(pings.allSatisfy { $0 < .milliseconds(100) }, "slowest ping \(pings.max() ?? .zero)")
        // 2,500 cases come a page at a time; the client reads on with the cursor.
        let firstPage = try await office.call(CaseTypes.list, CaseListRequest())
        #expect(firstPage.items.count == 1_000 && firstPage.next != nil)
        // A link between a case on the first page and one on the third: each page carries its cases' links.
        let (early, late) = (firstPage.items[10].id, "HCJ-2026-2400")
        _ = try await office.call(CaseTypes.link, CaseLinkRequest(id: early, related: late, comment: "同一管段"))
        // A case registered between pages lands at the end, shifting nothing already read.
        let added = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .sewerMisconnection, title: "混错接点位 补登", unit: "区城乡建设局"))
        func page(_ cursor: String?) async throws -> ListReply<Case> {
            try await office.call("case.list", JSONValue.object(["cursor": .string(cursor ?? "")]), as: ListReply<Case>.self)
        }
        let second = try await page(firstPage.next)
        #expect(second.items.first?.id == "HCJ-2026-1001" && second.items.count == 1_000, "\(second.items.first?.id ?? "none")")
        let third = try await page(second.next)
        #expect(third.items.count == 501 && third.next == nil && third.items.last?.id == added.id)
        #expect(third.items.first { $0.id == late }?.related == [early])
        let all = try await office.callAll(CaseTypes.list, CaseListRequest())
        #expect(all.count == 2_501)
        #expect(Set(all.map(\.id)).count == 2_501, "no case twice")
        #expect(all.map(\.id) == (firstPage.items + second.items + third.items).map(\.id))
        #expect(all.first { $0.id == early }?.related == [late])
        // The same pages with a filter, and a cursor this service did not write is refused.
        #expect(try await office.callAll(CaseTypes.list, CaseListRequest(unit: "区城乡建设局")).count == 2_501)
        let forged = try await refusal(office, "case.list", JSONValue.object(["cursor": .string("bm90IGEgY3Vyc29y")]))
        #expect(forged.code == .invalidArgument && forged.field == "body.cursor")
        await pinger.close()
        await office.close()
        try await ledger.cases.stop()
    }
}

@Suite struct LedgerCSVTests {
    @Test func quotedFieldsWithCommasQuotesAndLineBreaksKeepTheirLines() throws {
        let records = try LedgerCSV.parse("\u{FEFF}a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",z\n\nlast,1")
        #expect(records.map(\.line) == [1, 2, 3, 6])
        #expect(records[1].fields == ["x, y", "say \"hi\""])
        #expect(records[2].fields == ["two\nlines", "z"])
        #expect(throws: LedgerCSV.SyntaxError.self) { try LedgerCSV.parse("a,b\n\"open,x\n") }
    }

    @Test func exportedFieldsRoundTrip() throws {
        let row = LedgerCSV.row(["普通", "a,b", "he said \"ok\"", "line\nbreak"])
        #expect(try LedgerCSV.parse(row).first?.fields == ["普通", "a,b", "he said \"ok\"", "line\nbreak"])
        // A cell starting with a byte-order mark, a Windows line break in a cell ("\r\n" is one
        // Character) and a quote carrying a combining mark: each is quoted and comes back whole
        // (fuzz-csv found the first two).
        let awkward = ["\u{FEFF}编号", "整改措施：\r\n1. 改接", "引\"\u{301}号", "末"]
        let written = LedgerCSV.row(awkward)
        #expect(written.hasPrefix("\"\u{FEFF}编号\",\"整改措施"), "\(written)")
        #expect(try LedgerCSV.parse(written).map(\.fields) == [awkward])
    }
}

/// The client's tree decoder reads every reply as JSONDecoder does: real replies of the registry
/// and the ledger (tasks with reasons and milestones, cases with history and evidence, events),
/// decoded both ways and compared by their canonical encoding; what it is unsure of goes to JSONDecoder.
@Suite struct ReplyDecodingTests {
    static func same<T: Codable & Sendable>(_ type: T.Type, _ frame: Data, _ what: String) throws {
        let fast = try #require(FastJSONDecoding.decode(ReplyEnvelope<T>.self, from: frame), "\(what): the fast path gave up")
        let slow = try WireCoding.decoder().decode(ReplyEnvelope<T>.self, from: frame)
        #expect(try WireCoding.canonical(fast.result()) == WireCoding.canonical(slow.result()), "\(what)")
        #expect(fast.id == slow.id && fast.re == slow.re && fast.ok == slow.ok && fast.ts == slow.ts, "\(what)")
        // What a typed call reads: the body alone, straight from the tree.
        let body = try #require(FastJSONDecoding.replyBody(T.self, from: frame), "\(what): the body path gave up")
        #expect(try WireCoding.canonical(body) == WireCoding.canonical(slow.result()), "\(what)")
    }

    @Test func everyReplyReadsTheSameAsWithJSONDecoder() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let registry = try await RPCClient.connect(to: ledger.registry.endpoints.rpc, from: "区城乡建设局")
        let opened = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(
                source: .sewerMisconnection, title: "南川东路「12」号\n雨污混接 \\ \"引号\"", unit: "区城乡建设局", deadline: "2026-12-31",
                task: "10", batch: "第一批", coordinates: Coordinates(lat: 36.61, lon: 101.75), externalRef: "HCJ-P001"))
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .assign, comment: "交办"))
        _ = try await office.call(
            CaseTypes.update,
            CaseUpdateRequest(
                id: opened.id, text: "已改造 60%", progress: 60,
                evidence: [EvidenceRef(name: "照片", uri: "https://files.example/1.jpg", sha256: String(repeating: "a", count: 64))]))
        _ = try await registry.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 42.5, summary: "推进中", problems: "资金缺口"))

        try Self.same(PingReply.self, try await registry.callRaw(SystemTypes.ping, Empty()), "sys.ping")
        try Self.same(PlanReply.self, try await registry.callRaw(RegistryTypes.planGet, Empty()), "plan.get")
        try Self.same(ListReply<PlanUnit>.self, try await registry.callRaw(RegistryTypes.unitList, Empty()), "unit.list")
        try Self.same(ListReply<PlanTask>.self, try await registry.callRaw(RegistryTypes.taskList, TaskListRequest()), "task.list")
        for id in ["7.3", "10", "5"] {
            try Self.same(PlanTask.self, try await registry.callRaw(RegistryTypes.taskGet, TaskGetRequest(id: id)), "task.get \(id)")
        }
        try Self.same(
            ListReply<ProgressReport>.self, try await registry.callRaw(RegistryTypes.progressList, ProgressListRequest()), "progress.list")
        try Self.same(Case.self, try await office.callRaw(CaseTypes.get, CaseGetRequest(id: opened.id)), "case.get")
        try Self.same(ListReply<Case>.self, try await office.callRaw(CaseTypes.list, CaseListRequest()), "case.list")
        try Self.same(ListReply<BatchProgress>.self, try await office.callRaw(CaseTypes.batches, CaseBatchesRequest()), "case.batches")
        try Self.same(
            EventsSinceReply<AnyEvent>.self,
            try await office.callRaw(SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0)),
            "events.since")
        // An error reply: no body, the error read the same.
        let missing = try await office.callRaw(CaseTypes.get, CaseGetRequest(id: "HCJ-2099-0001"))
        let fast = try #require(FastJSONDecoding.decode(ReplyEnvelope<Case>.self, from: missing))
        let slow = try WireCoding.decoder().decode(ReplyEnvelope<Case>.self, from: missing)
        #expect(!fast.ok && fast.error == slow.error)
        #expect(FastJSONDecoding.replyBody(Case.self, from: missing) == nil)

        // Numbers as JSONDecoder takes them for an Int (2.0, 1e3, -0.0), and what the tree decoder is
        // unsure of left to JSONDecoder: 1.5 for an Int, a number past 2^53 written as a float, a Date.
        struct Counted: Codable, Equatable { var count: Int }
        for (text, count) in [(#"{"count":2.0}"#, 2), (#"{"count":1e3}"#, 1_000), (#"{"count":-0.0}"#, 0)] {
            #expect(FastJSONDecoding.decode(Counted.self, from: Data(text.utf8)) == Counted(count: count))
            #expect(try WireCoding.decoder().decode(Counted.self, from: Data(text.utf8)) == Counted(count: count))
        }
        #expect(FastJSONDecoding.decode(Counted.self, from: Data(#"{"count":1.5}"#.utf8)) == nil)
        #expect(FastJSONDecoding.decode(Counted.self, from: Data(#"{"count":1e300}"#.utf8)) == nil)
        #expect(try FastJSONDecoding.decodeOrFallBack(Counted.self, from: Data(#"{"count":2}"#.utf8)) == Counted(count: 2))
        #expect(FastJSONDecoding.decode(Date.self, from: Data("1.5".utf8)) == nil)
        #expect(FastJSONDecoding.decode(Counted.self, from: Data(#"{"count":"2"}"#.utf8)) == nil)
        await office.close()
        await registry.close()
        try await ledger.stop()
    }
}
