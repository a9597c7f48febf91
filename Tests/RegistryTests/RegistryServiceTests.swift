import DubanTesting
import Foundation
import Messaging
import PlanFormat
import Schema
import ServiceKit
import Testing

@testable import TaskRegistry

/// The registry through its socket.
@Suite struct RegistryServiceTests {
    static func report(_ task: String, _ period: String, _ unit: String, _ percent: Double, _ summary: String = "本月推进情况")
        -> ProgressReportRequest
    {
        ProgressReportRequest(task: task, period: period, unit: unit, percent: percent, summary: summary)
    }

    /// Issue #15: task 10 reported 60 % for November and still lagged because October was missing,
    /// and nothing said so. Every status now carries its reasons.
    @Test func aStatusSaysWhy() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock
        ) { $0.supervisionStart = "2024-01-01" }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区城乡建设局")
        _ = try await client.call(RegistryTypes.progressReport, Self.report("10", "2026-11", "区城乡建设局", 60))
        let task = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "10"))
        #expect(task.status == .lagging)
        let missing = try #require(task.reasons?.first)
        #expect(missing.code == "report_missing" && missing.period == "2026-10" && missing.units == ["区城乡建设局"], "\(missing)")
        #expect(missing.text == "区城乡建设局未报送2026-10进展")
        // An overdue task says since when; a parent names its sub-items that hold it back.
        let overdue = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "5"))
        #expect(overdue.status == .overdue && overdue.reasons?.first?.code == "deadline_passed")
        let listed = try await client.callAll(RegistryTypes.taskList, TaskListRequest())
        #expect(listed.allSatisfy { $0.status == .onTrack || !($0.reasons ?? []).isEmpty }, "every status but on-track has a reason")
        let parent = try #require(listed.first { !$0.subtasks.isEmpty && [.lagging, .overdue].contains($0.status) })
        #expect(parent.reasons?.allSatisfy { $0.code == "subtask" && $0.task.map(parent.subtasks.contains) == true } == true)
        await client.close()
        try await service.stop()
    }

    /// Issue #15: a unit's own 100 % no longer completes a task; the office accepts it or returns it.
    @Test func aTaskReportedCompleteWaitsForTheOfficesAcceptance() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock)
        let unit = try await RPCClient.connect(to: service.endpoints.rpc, from: "区自然资源和林业局")
        let office = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        _ = try await unit.call(RegistryTypes.progressReport, Self.report("6", "2026-11", "区自然资源和林业局", 100, "全部完成"))
        var task = try await office.call(RegistryTypes.taskGet, TaskGetRequest(id: "6"))
        #expect(task.status == .awaitingAcceptance && task.reasons?.first?.code == "all_reported_complete")
        // Returned: not complete after all (and past its deadline, overdue again), with the return as the reason.
        let returned = try await office.call(RegistryTypes.taskReturn, TaskReturnRequest(task: "6", reason: "现场核查尚有 2 处未整改"))
        #expect(returned.decision == "returned" && returned.status == .overdue)
        task = try await office.call(RegistryTypes.taskGet, TaskGetRequest(id: "6"))
        #expect(task.status == .overdue && task.reasons?.map(\.code) == ["deadline_passed", "returned"])
        let again = try await refusal(office, RegistryTypes.taskAccept, TaskAcceptRequest(task: "6", comment: "通过"))
        #expect(again.code == .conflict)
        // The unit reports again; the office accepts with its evidence: completed.
        clock.set(date("2026-11-20T10:01:00+08:00"))
        _ = try await unit.call(RegistryTypes.progressReport, Self.report("6", "2026-11", "区自然资源和林业局", 100, "整改完毕"))
        #expect(try await office.call(RegistryTypes.taskGet, TaskGetRequest(id: "6")).status == .awaitingAcceptance)
        let accepted = try await office.call(
            RegistryTypes.taskAccept,
            TaskAcceptRequest(task: "6", comment: "现场核查通过", evidence: [EvidenceRef(name: "验收意见", uri: "https://example.cn/6.pdf")]))
        #expect(accepted.status == .completed)
        task = try await office.call(RegistryTypes.taskGet, TaskGetRequest(id: "6"))
        #expect(task.status == .completed && task.reasons?.first?.code == "accepted")
        let parent = try await refusal(office, RegistryTypes.taskAccept, TaskAcceptRequest(task: "7", comment: "通过"))
        #expect(parent.code == .invalidArgument)
        await unit.close()
        await office.close()
        try await service.stop()
    }

    @Test func reportsAreCheckedAndRevisionsKeepTheirHistory() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock
        ) {
            // Supervised since the plan began: every month counts.
            $0.supervisionStart = "2024-01-01"
        }
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区生态环境局")

        var error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区教育局", 50))
        #expect(error.code == .permissionDenied && error.field == "body.unit")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区生态环境局", 140))
        #expect(error.code == .invalidArgument && error.field == "body.percent")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("99", "2026-10", "区生态环境局", 10))
        #expect(error.code == .notFound && error.field == "body.task")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7", "2026-10", "区生态环境局", 10))
        #expect(error.code == .invalidArgument && error.message.contains("子项") && error.message.contains("7.1"))
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-13", "区生态环境局", 10))
        #expect(error.field == "body.period")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-12", "区生态环境局", 10))
        #expect(error.field == "body.period" && error.message.contains("2026-12 尚未开始"))
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2023-12", "区生态环境局", 10))
        #expect(error.field == "body.period")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区生态环境局", 10, "  "))
        #expect(error.field == "body.summary")
        error = try await refusal(client, RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区不存在局", 10))
        #expect(error.code == .notFound && error.field == "body.unit")

        // A cooperating unit may report; a member of a collective may report for it; an alias counts.
        _ = try await client.call(RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区城乡建设局", 60), as: ProgressReport.self)
        _ = try await client.call(
            RegistryTypes.progressReport, Self.report("1", "2026-10", "区教育局", 100, "区直各单位之一"), as: ProgressReport.self)
        _ = try await client.call(RegistryTypes.progressReport, Self.report("12", "2026-10", "区市场监督管理局", 70), as: ProgressReport.self)

        let first = try await client.call(
            RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区生态环境局", 80, "第一次报送"), as: ProgressReport.self)
        let second = try await client.call(
            RegistryTypes.progressReport, Self.report("7.3", "2026-10", "区生态环境局", 85, "更正"), as: ProgressReport.self)
        #expect(first.revision == 1 && second.revision == 2)
        let latest = try await client.call(
            RegistryTypes.progressList, ProgressListRequest(task: "7.3", period: "2026-10", unit: "区生态环境局"),
            as: ListReply<ProgressReport>.self)
        #expect(latest.items.map(\.percent) == [85])
        let history = try await client.call(
            RegistryTypes.progressList, ProgressListRequest(task: "7.3", unit: "区生态环境局", history: true), as: ListReply<ProgressReport>.self)
        #expect(history.items.map(\.summary) == ["第一次报送", "更正"])
        let task = try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "7.3"), as: PlanTask.self)
        #expect(task.progress == 85 && task.status == .overdue)
        #expect(task.latestReports?.map(\.unit).sorted() == ["区城乡建设局", "区生态环境局"])

        // The dispatch for October: who reported, who still owes.
        let overview = try await client.call(
            RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: "2026-10"), as: DispatchOverviewReply.self)
        #expect(overview.due == "2026-11-05")
        #expect(overview.reported.contains(TaskUnit(task: "7.3", unit: "区生态环境局")))
        #expect(overview.reported.contains(TaskUnit(task: "1", unit: "区教育局")))
        #expect(!overview.missing.contains(TaskUnit(task: "7.3", unit: "区生态环境局")))
        #expect(overview.missing.contains(TaskUnit(task: "1", unit: "区委组织部")), "a cooperating unit's report does not excuse the lead units")
        #expect(overview.missing.contains(TaskUnit(task: "12", unit: "区城市管理局")))
        #expect(!overview.missing.contains(TaskUnit(task: "12", unit: "区市场监管局")), "区市场监督管理局 reported under its full name")
        #expect(!overview.missing.contains { $0.task == "7" }, "parents owe nothing of their own")
        await client.close()
        try await service.stop()
    }

    /// Reads are answered on the socket thread when nothing waits ahead of them; a read pipelined
    /// right behind a write must still wait for it: it sees the write, and its reply comes second.
    @Test func aReadPipelinedBehindAWriteSeesItAndIsAnsweredAfterIt() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock)
        let loop = ZMQPollLoop(name: "pipeline")
        let (replies, continuation) = AsyncStream.makeStream(of: Data.self)
        let dealer = try await loop.addSocket(
            .dealer, setup: { try $0.connect(service.endpoints.rpc) }, onMessage: { continuation.yield($0.last!) })
        var iterator = replies.makeAsyncIterator()
        for round in 1...20 {
            let percent = Double(round * 4)
            let report = EnvelopeWriter.request(
                id: "report-\(round)", type: RegistryTypes.progressReport.name, from: "区生态环境局", key: "k-\(round)",
                body: try WireCoding.encode(Self.report("7.3", "2026-10", "区生态环境局", percent)))
            let read = EnvelopeWriter.request(
                id: "read-\(round)", type: RegistryTypes.taskGet.name, from: "区生态环境局", key: nil, body: Data(#"{"id":"7.3"}"#.utf8))
            // Both leave in one go, in this order, on the loop's thread.
            loop.send(dealer, [Data(), report])
            loop.send(dealer, [Data(), read])
            let first = try #require(await iterator.next())
            let second = try #require(await iterator.next())
            #expect(FastJSON.topLevelString("re", in: first) == "report-\(round)")
            #expect(FastJSON.topLevelString("re", in: second) == "read-\(round)")
            let task = try WireCoding.decoder().decode(ReplyEnvelope<PlanTask>.self, from: second).result()
            #expect(
                task.progress == percent, "round \(round): the read saw \(task.progress ?? -1) %, the write before it said \(percent) %")
        }
        await loop.shutdown()
        try await service.stop()
    }

    @Test func escalationsAreTheOfficesToRecordAndListPerUnit() async throws {
        let service = try await InProcessService.start(RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let unitClient = try await RPCClient.connect(to: service.endpoints.rpc, from: "区农业农村局")
        let request = EscalationRecordRequest(unit: "区农业农村局", level: .interview, reason: "9.2 连续两月未报送", tasks: ["9.2"])
        let denied = try await refusal(unitClient, RegistryTypes.escalationRecord, request)
        #expect(denied.code == .permissionDenied)
        let office = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        let recorded = try await office.call(RegistryTypes.escalationRecord, request, as: Escalation.self)
        #expect(recorded.level == .interview && recorded.recordedBy == officeUnit)
        _ = try await office.call(
            RegistryTypes.escalationRecord, EscalationRecordRequest(unit: "区城乡建设局", level: .notice, reason: "进度明显滞后"), as: Escalation.self)
        let forUnit = try await office.call(
            RegistryTypes.escalationList, EscalationListRequest(unit: "区农业农村局"), as: ListReply<Escalation>.self)
        #expect(forUnit.items.map(\.reason) == ["9.2 连续两月未报送"])
        #expect(
            try await refusal(
                office, RegistryTypes.escalationRecord, EscalationRecordRequest(unit: "区农业农村局", level: .notice, reason: "x", tasks: ["42"])
            ).field == "body.tasks[0]")
        #expect(
            try await refusal(office, RegistryTypes.escalationRecord, EscalationRecordRequest(unit: "无此单位", level: .notice, reason: "x"))
                .code == .notFound)
        // Events: subscribers see it.
        let since = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "registry", after: 0, limit: 1000), as: EventsSinceReply<AnyEvent>.self)
        #expect(since.events.filter { $0.type == RegistryTypes.escalationRecorded }.count == 2)
        await unitClient.close()
        await office.close()
        try await service.stop()
    }

    @Test func theClockAloneMovesATaskToOverdueAndPublishesIt() async throws {
        // Task 6 (deadline 2025-12-31) with reports on pace, an hour before its deadline ends.
        let clock = ServiceClock.starting(at: date("2025-12-15T10:00:00+08:00"))
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock, tickSeconds: 0.1)
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区自然资源和林业局")
        _ = try await client.call(RegistryTypes.progressReport, Self.report("6", "2025-11", "区自然资源和林业局", 95), as: ProgressReport.self)
        #expect(try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "6"), as: PlanTask.self).status == .onTrack)
        let subscriber = try await EventSubscriber.start(
            events: service.endpoints.events, rpc: service.endpoints.rpc, topics: [RegistryTypes.taskStatusChanged], from: .now,
            heartbeat: .milliseconds(200))
        clock.set(date("2026-01-01T00:00:01+08:00"))
        var change: TaskStatusChanged?
        for await event in subscriber.events {
            let body = try event.body(as: TaskStatusChanged.self)
            if body.task == "6" {
                change = body
                break
            }
        }
        #expect(change?.from == .onTrack && change?.to == .overdue && change?.leadUnits == ["区自然资源和林业局"])
        #expect(try await client.call(RegistryTypes.taskGet, TaskGetRequest(id: "6"), as: PlanTask.self).status == .overdue)
        await subscriber.stop()
        await client.close()
        try await service.stop()
    }

    @Test func thePlanLoadsOnFirstStartAndReloadsOnlyWhenAsked() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let bundled = try String(contentsOfFile: try #require(PlanLoader.bundledPlanPath), encoding: .utf8)
        let renamed = bundled.replacingOccurrences(of: "title: \"城中区巩固提升生态环境保护成效三年行动实施方案（2024—2026年）\"", with: "title: \"修订版方案\"")
        #expect(renamed != bundled)
        let otherFile = "\(dir)/revised.yaml"
        try renamed.write(toFile: otherFile, atomically: true, encoding: .utf8)

        var service = try await InProcessService.start(RegistryService.self, dataDirectory: dir)
        var client = try await RPCClient.connect(to: service.endpoints.rpc, from: "区生态环境局")
        _ = try await client.call(RegistryTypes.progressReport, Self.report("10", "2026-10", "区城乡建设局", 40), as: ProgressReport.self)
        await client.close()
        try await service.stop()

        // Restarted with another plan file configured: the plan in force stays, and so do reports.
        service = try await InProcessService.start(RegistryService.self, dataDirectory: dir, planFile: otherFile)
        client = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        #expect(try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self).title.hasPrefix("城中区"))
        #expect(
            try await client.call(RegistryTypes.progressList, ProgressListRequest(task: "10"), as: ListReply<ProgressReport>.self).items
                .count == 1)

        // An explicit reload replaces it; a broken one is refused with its problems named.
        let broken = try await refusal(
            client, RegistryTypes.planLoad, PlanLoadRequest(content: "title: x\nstart: 2024-01-01\n", name: "other.yaml"))
        #expect(broken.code == .invalidArgument && broken.message.contains("other.yaml") && broken.message.contains("缺少 units"))
        #expect(try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self).title.hasPrefix("城中区"))
        let loaded = try await client.call(
            RegistryTypes.planLoad, PlanLoadRequest(content: renamed, name: "revised.yaml"), as: PlanLoadReply.self)
        #expect(loaded.title == "修订版方案" && loaded.tasks == 26)
        #expect(try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self).title == "修订版方案")
        await client.close()
        try await service.stop()
        service = try await InProcessService.start(RegistryService.self, dataDirectory: dir)
        client = try await RPCClient.connect(to: service.endpoints.rpc, from: officeUnit)
        #expect(try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self).title == "修订版方案", "the reload was stored")
        await client.close()
        try await service.stop()
    }

    @Test func filtersOnTheTaskList() async throws {
        let service = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(),
            clock: .starting(at: date("2026-11-20T10:00:00+08:00")))
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let water = try await client.call(RegistryTypes.taskList, TaskListRequest(category: "三"), as: ListReply<PlanTask>.self)
        #expect(water.items.map(\.id) == ["7", "7.1", "7.2", "7.3", "8", "9", "9.1", "9.2"])
        let byTitle = try await client.call(
            RegistryTypes.taskList, TaskListRequest(category: "持续深入打好污染防治攻坚战"), as: ListReply<PlanTask>.self)
        #expect(byTitle.items.count == 8)
        let court = try await client.call(RegistryTypes.taskList, TaskListRequest(unit: "区人民法院"), as: ListReply<PlanTask>.self)
        #expect(court.items.map(\.id) == ["16"])
        let overdue = try await client.call(RegistryTypes.taskList, TaskListRequest(status: .overdue), as: ListReply<PlanTask>.self)
        #expect(Set(overdue.items.map(\.id)) == ["5", "6", "7", "7.3", "16"])
        #expect(try await refusal(client, RegistryTypes.taskList, TaskListRequest(unit: "无此单位")).code == .notFound)
        #expect(try await refusal(client, RegistryTypes.taskList, TaskListRequest(category: "七")).code == .notFound)
        await client.close()
        try await service.stop()
    }
}
