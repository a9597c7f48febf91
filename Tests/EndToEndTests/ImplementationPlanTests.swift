import DubanTesting
import Foundation
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// 具体实施方案 (issue #15) and working days, on a real registry and notifier with the clock set:
/// plans due three months after go-live, moved off the National Day holiday; reminders before the
/// day; a notice and a 建议通报 proposal once a unit is late, ended by its submission; a return
/// that makes the plan owed again; and the monthly reports' due day moved the same way.
@Suite(.serialized) struct ImplementationPlanTests {
    typealias Bench = NotifyEndToEndTests.RhythmBench
    func date(_ text: String) -> Date { Timestamp.parse(text)! }
    let document = EvidenceRef(
        name: "区城乡建设局具体实施方案.pdf", uri: "https://files.example/chengjian-plan.pdf", sha256: String(repeating: "ab", count: 32))

    func notice(_ bench: Bench, _ kind: NoticeKind, _ key: String) async throws -> Notice? {
        try await bench.notices(kind).first { $0.dedupKey == key }
    }

    @Test func aLateUnitGetsANoticeAndAProposalASubmissionEndsThemAndAReturnReopensIt() async throws {
        // A fresh install on Sunday 2026-07-05: go-live that day; plans are due three months on,
        // 2026-10-05, in the National Day holiday (10-01…07): the next working day is Thursday 10-08.
        let bench = try await Bench.start(at: "2026-07-05T10:00:00+08:00", supervisionStart: nil)
        let office = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: officeUnit)
        let construction = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区城乡建设局")
        let ecology = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区生态环境局")
        let court = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区人民法院")

        let plans = try await office.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest())
        #expect(plans.count >= 10 && plans.allSatisfy { $0.due == "2026-10-08" && $0.state == .pending && !$0.overdue })
        let units = Set(plans.map(\.unit))
        #expect(units.isSuperset(of: ["区城乡建设局", "区生态环境局", "区委宣传部", "区市场监督管理局", "城中公安分局"]))
        #expect(units.isDisjoint(with: ["区人民法院", "区人民检察院", officeUnit, "区市场监管局"]), "\(units)")

        // 30 days before the day: a reminder to every unit that owes its plan.
        bench.clock.set(date("2026-09-10T10:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await notice(bench, .implementationPlanDue, "implementation_plan_due:2026-10-08:30") != nil
            })
        let reminder = try #require(try await notice(bench, .implementationPlanDue, "implementation_plan_due:2026-10-08:30"))
        #expect(reminder.units.contains("区城乡建设局") && reminder.title == "请于2026-10-08前报送具体实施方案")

        // On the moved day itself nobody is late yet (the 5th was a holiday), only reminded.
        bench.clock.set(date("2026-10-08T10:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await notice(bench, .implementationPlanDue, "implementation_plan_due:2026-10-08:7") != nil
            })
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await bench.notices(.implementationPlanOverdue).isEmpty)
        #expect(try await office.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(overdue: true)).isEmpty)

        // The day after: a notice to the unit and the office, a proposal to the office.
        bench.clock.set(date("2026-10-09T09:00:00+08:00"))
        let overdueKey = "implementation_plan_overdue:区城乡建设局"
        let proposalKey = "proposal-implementation-plan:区城乡建设局"
        #expect(try await TestSupport.eventually { try await notice(bench, .implementationPlanOverdue, overdueKey) != nil })
        let overdue = try #require(try await notice(bench, .implementationPlanOverdue, overdueKey))
        #expect(overdue.units == ["区城乡建设局", officeUnit] && overdue.state == .open && overdue.text.contains("2026-10-08"))
        #expect(try await TestSupport.eventually { try await notice(bench, .escalationProposal, proposalKey) != nil })
        let proposal = try #require(try await notice(bench, .escalationProposal, proposalKey))
        #expect(proposal.title == "建议通报：区城乡建设局" && proposal.units == [officeUnit])
        let late = try await office.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(overdue: true))
        #expect(late.count == plans.count && late.allSatisfy { $0.overdue })

        // Only the unit itself submits, only with the document and its digest; only the office reviews.
        let request = ImplementationPlanSubmitRequest(unit: "区城乡建设局", title: "区城乡建设局巩固提升生态环境保护成效三年行动具体实施方案", evidence: [document])
        #expect(try await RangeTests.refusal(ecology, ImplementationPlanTypes.submit, request)?.code == .permissionDenied)
        var unsigned = request
        unsigned.evidence = [EvidenceRef(name: "方案.pdf", uri: "https://files.example/x.pdf")]
        #expect(try await RangeTests.refusal(construction, ImplementationPlanTypes.submit, unsigned)?.field == "body.evidence[0].sha256")
        unsigned.evidence = []
        #expect(try await RangeTests.refusal(construction, ImplementationPlanTypes.submit, unsigned)?.field == "body.evidence")
        unsigned.evidence = Array(repeating: document, count: 21)
        #expect(try await RangeTests.refusal(construction, ImplementationPlanTypes.submit, unsigned)?.field == "body.evidence")
        var courts = request
        courts.unit = "区人民法院"
        #expect(try await RangeTests.refusal(court, ImplementationPlanTypes.submit, courts)?.code == .notFound, "the court is not bound")
        #expect(
            try await RangeTests.refusal(
                construction, ImplementationPlanTypes.review, ImplementationPlanReviewRequest(unit: "区城乡建设局", action: .accept, comment: "")
            )?.code == .permissionDenied)
        #expect(
            try await RangeTests.refusal(
                office, ImplementationPlanTypes.review, ImplementationPlanReviewRequest(unit: "区城乡建设局", action: .accept, comment: "")
            )?.code == .conflict, "nothing submitted yet")

        // The submission ends the notice and the proposal.
        let submitted = try await construction.call(ImplementationPlanTypes.submit, request)
        #expect(submitted.state == .submitted && submitted.submission?.late == true && submitted.submission?.evidence == [document])
        #expect(try await TestSupport.eventually { try await notice(bench, .implementationPlanOverdue, overdueKey)?.state == .resolved })
        #expect(try await notice(bench, .escalationProposal, proposalKey)?.state == .resolved)
        #expect(try await RangeTests.refusal(construction, ImplementationPlanTypes.submit, request)?.code == .conflict)

        // A return needs its reason and makes the plan owed again 15 days on: 10-24 is a Saturday, so 10-26.
        #expect(
            try await RangeTests.refusal(
                office, ImplementationPlanTypes.review, ImplementationPlanReviewRequest(unit: "区城乡建设局", action: .return, comment: " ")
            )?.field == "body.comment")
        let returned = try await office.call(
            ImplementationPlanTypes.review, ImplementationPlanReviewRequest(unit: "区城乡建设局", action: .return, comment: "未明确各项任务的完成时限和责任科室"))
        #expect(returned.state == .returned && returned.due == "2026-10-26" && returned.review?.due == "2026-10-26" && !returned.overdue)

        // Still owed after the new day: late again, noticed and proposed anew.
        bench.clock.set(date("2026-10-27T09:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.implementationPlanOverdue).contains { $0.dedupKey == overdueKey && $0.state == .open }
            })
        let again = try #require(
            try await bench.notices(.implementationPlanOverdue).first { $0.dedupKey == overdueKey && $0.state == .open })
        #expect(again.text.contains("2026-10-26") && again.text.contains("退回修改后"))
        #expect(try await bench.notices(.escalationProposal).contains { $0.dedupKey == proposalKey && $0.state == .open })

        // Submitted again and accepted: every step kept, nothing left open.
        var revised = request
        revised.title = "区城乡建设局具体实施方案（修订稿）"
        revised.note = "已补充各项任务完成时限和责任科室"
        _ = try await construction.call(ImplementationPlanTypes.submit, revised)
        let accepted = try await office.call(
            ImplementationPlanTypes.review, ImplementationPlanReviewRequest(unit: "区城乡建设局", action: .accept, comment: "同意"))
        #expect(accepted.state == .accepted && accepted.submissions.count == 2 && accepted.reviews.map(\.action) == [.return, .accept])
        #expect(
            try await TestSupport.eventually {
                try await !bench.notices(.implementationPlanOverdue).contains { $0.dedupKey == overdueKey && $0.state == .open }
            })
        #expect(try await !bench.notices(.escalationProposal).contains { $0.dedupKey == proposalKey && $0.state == .open })
        let mine = try await office.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(unit: "区城乡建设局"))
        #expect(mine.map(\.state) == [.accepted])
        #expect(
            try await office.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(state: .accepted)).map(\.unit) == [
                "区城乡建设局"
            ])
        for client in [office, construction, ecology, court] { await client.close() }
        try await bench.stop()
    }

    /// The monthly reports' due day moves like any other: 2026-10-05 is in the National Day holiday,
    /// so September's reports are due on the 8th and nobody is reminded of missing them before the 9th.
    @Test func septembersMissingReportsWaitForTheMovedDueDay() async throws {
        let bench = try await Bench.start(at: "2026-10-08T10:00:00+08:00", supervisionStart: "2026-09-01")
        let office = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: officeUnit)
        #expect(try await office.call(RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: "2026-09")).due == "2026-10-08")
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.monthlyDispatch).contains {
                    $0.dedupKey == "monthly_dispatch:2026-09" && $0.text.contains("2026-10-08前")
                }
            }, "the call for reports names the moved day")
        try await Task.sleep(for: .milliseconds(800))
        #expect(try await bench.notices(.reportMissing).isEmpty, "the due day has not passed")
        #expect(try await !bench.notices(.monthlyDispatch).contains { $0.dedupKey == "monthly_summary:2026-09" })

        bench.clock.set(date("2026-10-09T09:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.reportMissing).contains { $0.dedupKey.hasPrefix("report_missing:2026-09:") }
            })
        #expect(try await bench.notices(.monthlyDispatch).contains { $0.dedupKey == "monthly_summary:2026-09" })
        await office.close()
        try await bench.stop()
    }

    /// `holidaysFile` replaces the bundled calendar; a broken file stops the registry with one error
    /// naming the file's field.
    @Test func aConfiguredHolidayFileReplacesTheBundledOneAndABrokenOneStopsTheStart() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let file = (dir as NSString).appendingPathComponent("holidays.json")
        // A deployment that also takes Thursday 10-08 off: September's reports fall due on Friday 10-09.
        try Data(
            (#"{"years": [{"year": 2026, "notice": "test", "confirmed": true, "#
                + #""holidays": [{"name": "国庆节", "from": "2026-10-01", "to": "2026-10-08"}], "workdays": []}]}"#).utf8
        ).write(to: URL(fileURLWithPath: file))
        let clock = ServiceClock.starting(at: date("2026-10-08T10:00:00+08:00"))
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock) { $0.holidaysFile = file }
        let client = try await RPCClient.connect(to: registry.endpoints.rpc, from: officeUnit)
        #expect(try await client.call(RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: "2026-09")).due == "2026-10-09")
        await client.close()
        try await registry.stop()

        try Data(
            #"{"years": [{"year": 2026, "notice": "test", "confirmed": true, "holidays": [], "workdays": ["2026-10-09"]}]}"#.utf8
        ).write(to: URL(fileURLWithPath: file))
        do {
            let started = try await InProcessService.start(
                RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock
            ) {
                $0.holidaysFile = file
            }
            try await started.stop()
            Issue.record("a holiday file with a weekday as a 调休 day was accepted")
        } catch {
            #expect("\(error)".contains("years[0].workdays[0]") && "\(error)".contains("不是周末"), "\(error)")
        }
    }

    /// `duban plan-impl`: a unit submits its document (the CLI computes the digest), the list shows
    /// it waiting for review, the office returns it and is told the new day.
    @Test func theCLISubmitsWithTheFilesDigestListsAndReturns() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: date("2026-10-09T10:00:00+08:00"))
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock) {
            $0.supervisionStart = "2026-07-05"
        }
        let config = """
            {"registry": {"rpc": "\(registry.endpoints.rpc)", "events": "\(registry.endpoints.events)"}, "keysDir": ""}
            """
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        try "区城乡建设局具体实施方案（正文）".write(toFile: "\(dir)/方案.pdf", atomically: true, encoding: .utf8)
        let duban = (TestSupport.binDirectory as NSString).appendingPathComponent("duban")
        let submitted = try TestSupport.run(
            duban,
            [
                "--config", "\(dir)/config.json", "plan-impl", "submit", "区城乡建设局", "区城乡建设局具体实施方案", "--file", "\(dir)/方案.pdf",
                "--uri", "https://files.example/cj.pdf", "--as", "区城乡建设局",
            ])
        #expect(submitted.contains("已报送：区城乡建设局"), "\(submitted)")
        let listed = try TestSupport.run(duban, ["--config", "\(dir)/config.json", "plan-impl", "--unit", "区城乡建设局"])
        #expect(listed.contains("已报送待审核") && listed.contains("2026-10-08"), "\(listed)")
        let digest = try TestSupport.run("/usr/bin/env", ["sha256sum", "\(dir)/方案.pdf"]).prefix(64)
        let client = try await RPCClient.connect(to: registry.endpoints.rpc, from: officeUnit)
        let stored = try await client.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(unit: "区城乡建设局"))
        #expect(stored.first?.submission?.evidence.first?.sha256 == String(digest) && stored.first?.submission?.late == true)
        let returned = try TestSupport.run(
            duban, ["--config", "\(dir)/config.json", "plan-impl", "review", "区城乡建设局", "退回", "--comment", "未明确完成时限"])
        #expect(returned.contains("已退回待重新报送，请于2026-10-26前重新报送"), "\(returned)")
        await client.close()
        try await registry.stop()
    }
}
