import Foundation
import PlanFormat
import Schema
import Testing

@testable import TaskRegistry

/// The ledger in the plan file and in the status rules (docs/registry.md, "The ledger in the tasks").
@Suite struct LedgerRuleTests {
    let plan = try! PlanLoader.load(path: PlanLoader.bundledPlanPath!)

    func reports(_ percent: [(String, String, Double)], ledger: LedgerTally?) -> TaskReports {
        var reports = TaskReports()
        for (unit, month, value) in percent.sorted(by: { $0.1 < $1.1 }) {
            reports.latestPercent[unit] = value
            reports.monthsReported[unit, default: []].insert(Month(month)!)
        }
        reports.ledger = ledger
        return reports
    }

    func evaluate(_ id: String, _ reports: TaskReports, at now: String) -> (status: TaskStatus, reasons: [StatusReason]) {
        TaskStatusRules.evaluate(plan.task(id)!, plan: plan, reports: reports, now: date(now))
    }

    @Test func theBundledPlanLinksTheLedgerTasksAndStatesOnlyTheNumberThePlanGives() {
        let linked = plan.tasks.filter { $0.ledger != nil }
        #expect(linked.map(\.id) == ["5", "7.3", "10", "17", "18", "19"])
        #expect(plan.task("10")?.ledger?.sources == ["sewer_misconnection"] && plan.task("10")?.ledger?.expected == 237)
        #expect(linked.filter { $0.ledger?.expected != nil }.map(\.id) == ["10"])
        // The plan's text is where 237 comes from.
        #expect(plan.task("10")!.text.contains("237 处混错接点位"))
    }

    @Test func aPlanFileWithABadLedgerIsRefusedNamingEachProblem() throws {
        let text = try String(contentsOfFile: PlanLoader.bundledPlanPath!, encoding: .utf8)
        let broken = text.replacingOccurrences(
            of: "ledger: {sources: [evaporation_pond]}", with: "ledger: {sources: [outfall, 蒸发池], expected: 2.5, total: 3}")
        #expect(broken != text)
        do {
            _ = try PlanLoader.parse(broken, file: "plan.yaml")
            Issue.record("accepted a bad ledger")
        } catch {
            let messages = error.problems.map(\.description).joined(separator: "\n")
            #expect(messages.contains("未知的问题来源 「蒸发池」") || messages.contains("未知的问题来源"), "\(messages)")
            #expect(messages.contains("已关联任务"), "\(messages)")
            #expect(messages.contains("应为整数"), "\(messages)")
            #expect(messages.contains("未知的台账字段"), "\(messages)")
            #expect(error.problems.allSatisfy { $0.line != nil }, "\(messages)")
        }
    }

    @Test func aLinkedTaskIsNotAwaitingAcceptanceWhileItsCasesAreOpen() {
        let unit = "区生态环境局"
        // Task 5 is past its deadline (2024-12-31): with a case open it stays overdue and says why.
        let open = LedgerTally(sources: ["evaporation_pond"], expected: nil, registered: 3, closed: 2, openDeadlines: ["2025-01-31": 1])
        let blocked = evaluate("5", reports([(unit, "2025-02", 100)], ledger: open), at: "2025-03-01T10:00:00+08:00")
        #expect(blocked.status == .overdue)
        #expect(blocked.reasons.map(\.code) == ["deadline_passed", "ledger_open"])
        #expect(blocked.reasons.last?.text == "台账未销号 1 / 3（逾期 1）")
        #expect(blocked.reasons.last?.open == 1 && blocked.reasons.last?.total == 3)
        let done = LedgerTally(sources: ["evaporation_pond"], expected: nil, registered: 3, closed: 3)
        #expect(
            evaluate("5", reports([(unit, "2025-02", 100)], ledger: done), at: "2025-03-01T10:00:00+08:00").status == .awaitingAcceptance)
    }

    @Test func taskTenIsFinishedByItsTwoHundredThirtySevenPointsThoughOngoing() {
        let unit = "区城乡建设局"
        let complete = [(unit, "2026-09", 100.0)]
        let at = "2026-11-02T10:00:00+08:00"
        // Ongoing and unlinked it could never wait for acceptance; with its number it can, once all are closed.
        #expect(evaluate("10", reports(complete, ledger: nil), at: at).status != .awaitingAcceptance)
        let all = LedgerTally(sources: ["sewer_misconnection"], expected: 237, registered: 237, closed: 237)
        #expect(evaluate("10", reports(complete, ledger: all), at: at).status == .awaitingAcceptance)
        let short = LedgerTally(sources: ["sewer_misconnection"], expected: 237, registered: 236, closed: 236)
        let incomplete = evaluate("10", reports(complete, ledger: short), at: at)
        #expect(incomplete.status == .onTrack && incomplete.reasons.map(\.code) == ["ledger_incomplete"])
        #expect(incomplete.reasons.first?.text == "台账已销号 236 / 237，尚有 1 处未登记")
        // Registering under way, units not done: nothing said about the number yet.
        let underway = LedgerTally(sources: ["sewer_misconnection"], expected: 237, registered: 100, closed: 100)
        #expect(evaluate("10", reports([(unit, "2026-09", 60)], ledger: underway), at: at).reasons.isEmpty)
    }

    @Test func theStraightLineAndMilestonesFollowTheClosedShare() {
        // 7.3: 50 % by 2024-12-31 (all outfalls traced). Reported 45 %: lagging, unless the ledger is further.
        let unit = "区生态环境局"
        let reported = [(unit, "2024-12", 40.0), (unit, "2025-01", 45.0)]
        let at = "2025-02-01T00:00:00+08:00"
        let behind = evaluate(
            "7.3", reports(reported, ledger: LedgerTally(sources: ["outfall"], expected: nil, registered: 10, closed: 4)), at: at)
        #expect(behind.status == .lagging && behind.reasons.first?.code == "milestone_missed")
        let ahead = evaluate(
            "7.3", reports(reported, ledger: LedgerTally(sources: ["outfall"], expected: nil, registered: 10, closed: 8)), at: at)
        #expect(ahead.status == .onTrack, "\(ahead.reasons)")
        #expect(ahead.reasons.map(\.text) == ["台账未销号 2 / 10"])
        // Where the share decides, the reason says both.
        let later = evaluate(
            "7.3", reports(reported, ledger: LedgerTally(sources: ["outfall"], expected: nil, registered: 10, closed: 5)),
            at: "2025-10-01T00:00:00+08:00")
        #expect(later.reasons.contains { $0.text.contains("台账销号50%（报送45%）") }, "\(later.reasons)")
    }

    @Test func anOpenCasesDeadlineEndingIsAnInstantTheViewsMustBeRecomputed() {
        let now = date("2026-11-20T10:00:00+08:00")
        var reports: [String: TaskReports] = [:]
        let before = TaskStatusRules.nextChange(plan: plan, reports: reports, now: now)
        reports["10"] = self.reports(
            [], ledger: LedgerTally(sources: ["sewer_misconnection"], expected: 237, registered: 1, openDeadlines: ["2026-11-22": 1]))
        let after = TaskStatusRules.nextChange(plan: plan, reports: reports, now: now)
        #expect(after == date("2026-11-23T00:00:00+08:00") && after < before)
        #expect(reports["10"]!.ledger!.figures(today: "2026-11-22").overdue == 0)
        #expect(reports["10"]!.ledger!.figures(today: "2026-11-23").overdue == 1)
    }
}
