import Foundation
import PlanFormat
import Schema
import WorkCalendar

/// A month, `YYYY-MM`.
public struct Month: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var year: Int
    public var month: Int

    public init(year: Int, month: Int) {
        self.year = year
        self.month = month
    }

    /// Parses `YYYY-MM`.
    public init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let y = Int(parts[0]), let m = Int(parts[1]), (1...12).contains(m)
        else {
            return nil
        }
        self.init(year: y, month: m)
    }

    /// The month of a `YYYY-MM-DD` date.
    public init?(date: String) { self.init(String(date.prefix(7))) }

    /// The district's month at an instant.
    public init(_ instant: Date) {
        let civil = Timestamp.districtCivil(instant)
        self.init(year: civil.year, month: civil.month)
    }

    public var description: String { String(Timestamp.dateString(year, month, 1).prefix(7)) }
    public var next: Month { month == 12 ? Month(year: year + 1, month: 1) : Month(year: year, month: month + 1) }
    public var previous: Month { month == 1 ? Month(year: year - 1, month: 12) : Month(year: year, month: month - 1) }
    public static func < (a: Month, b: Month) -> Bool { (a.year, a.month) < (b.year, b.month) }

    /// Local midnight at the start of `day` of this month.
    public func start(day: Int = 1) -> Date {
        Timestamp.startOfDistrictDay(year: year, month: month, day: day)
    }
}

/// What the status rules need to know about a task's reports.
public struct TaskReports: Sendable {
    /// Each unit's latest reported percent (latest month, latest revision), by canonical unit name.
    public var latestPercent: [String: Double] = [:]
    /// Months each unit reported for.
    public var monthsReported: [String: Set<Month>] = [:]
    /// When each unit's latest report was made (its `reported_at`).
    public var latestReportedAt: [String: String] = [:]
    /// The office's latest decision on the task: `accepted` or `returned`, and when.
    public var review: (decision: String, at: String)?
    /// For a task linked to ledger cases: their counts.
    public var ledger: LedgerTally?
    public init() {}
}

/// The rules that turn deadlines, milestones, reports and the clock into a task's status.
/// docs/registry.md states them for people; the tests exercise each one.
public enum TaskStatusRules {
    /// The last month whose report is due by now: reports for month M are due by the plan's
    /// dispatch day of M+1 (月调度). Nil before the first report falls due; never past the plan's end.
    public static func lastDueMonth(plan: PlanDocument, now: Date) -> Month? {
        guard let first = firstCountedMonth(plan), let last = Month(date: plan.end) else { return nil }
        var candidate = Month(now).previous
        // Until the dispatch day (moved to a working day) has passed, last month's reports are not yet due.
        if now < reportsDueEnd(plan: plan, dispatchMonth: Month(now)) { candidate = candidate.previous }
        if candidate > last { candidate = last }
        return candidate < first ? nil : candidate
    }

    /// The day reports for the month before `dispatchMonth` are due: the plan's dispatch day of
    /// `dispatchMonth`, or the next working day when it falls on a weekend or a holiday (a 调休
    /// Saturday is a working day).
    public static func reportsDueDay(plan: PlanDocument, dispatchMonth: Month) -> String {
        let day = Timestamp.districtDate(dispatchMonth.start(day: plan.dispatchDay))
        return plan.workCalendar.nextWorkingDay(onOrAfter: day)
    }

    /// The instant the due day above ends (local midnight after it).
    static func reportsDueEnd(plan: PlanDocument, dispatchMonth: Month) -> Date {
        let day = reportsDueDay(plan: plan, dispatchMonth: dispatchMonth)
        return (Timestamp.startOfDistrictDay(day) ?? dispatchMonth.start(day: plan.dispatchDay)).addingTimeInterval(86_400)
    }

    /// The first month whose report counts: the plan's first, or the month supervision started
    /// in when that is later (go-live: months before it are never missing; 补报 is welcome).
    public static func firstCountedMonth(_ plan: PlanDocument) -> Month? {
        guard let first = Month(date: plan.start) else { return nil }
        guard let goLive = plan.supervisionStart.flatMap({ Month(date: $0) }) else { return first }
        return max(first, goLive)
    }

    /// Units that must report on `task` (its lead units), by canonical name.
    public static func expectedReporters(_ task: PlanDocument.TaskEntry, plan: PlanDocument) -> [String] {
        task.lead.map { canonical($0, plan: plan) }
    }

    /// A unit's own name, or the name it is an alias of.
    public static func canonical(_ unit: String, plan: PlanDocument) -> String {
        plan.unit(unit)?.aliasOf ?? unit
    }

    /// Progress of a leaf task: the mean of its lead units' latest percents (0 for a unit that never reported).
    public static func progress(_ task: PlanDocument.TaskEntry, plan: PlanDocument, reports: TaskReports) -> Double {
        let units = expectedReporters(task, plan: plan)
        guard !units.isEmpty else { return 0 }
        return units.map { reports.latestPercent[$0] ?? 0 }.reduce(0, +) / Double(units.count)
    }

    /// The status of every task, parents rolled up from their sub-items.
    public static func statuses(plan: PlanDocument, reports: [String: TaskReports], now: Date) -> [String: TaskStatus] {
        var result: [String: TaskStatus] = [:]
        for task in plan.tasks where !task.isParent {
            result[task.id] = leafStatus(task, plan: plan, reports: reports[task.id] ?? TaskReports(), now: now)
        }
        for task in plan.tasks where task.isParent {
            result[task.id] = rollUp(task.subtasks.compactMap { result[$0] })
        }
        return result
    }

    /// One leaf task, rules in order of precedence:
    /// 1. `completed` once the office accepted it, `awaiting_acceptance` before: it has a deadline and
    ///    every lead unit's latest report says 100 % (after a return, reports made since). Ongoing
    ///    tasks (持续推进) are never completed, except one whose ledger has the plan's number; a task
    ///    linked to the ledger also needs its ledger done (no case open, the plan's number closed).
    /// 2. `overdue`: its deadline day has ended (local midnight) and it is not completed.
    /// 3. `lagging`, any of: a lead unit has no report for the last month that is due; a milestone
    ///    date has passed with progress below the milestone's percent; progress is more than the
    ///    plan's tolerance behind the straight line from the plan's start to the deadline.
    /// 4. `not_started`: no unit has reported on it yet.
    /// 5. `on_track`: otherwise.
    public static func leafStatus(_ task: PlanDocument.TaskEntry, plan: PlanDocument, reports: TaskReports, now: Date) -> TaskStatus {
        evaluate(task, plan: plan, reports: reports, now: now).status
    }

    /// A leaf task's status and why, by the rules above; the first reason is the one that decided.
    /// A task linked to ledger cases also says, after the rest, how many are open (`ledger_open`).
    public static func evaluate(_ task: PlanDocument.TaskEntry, plan: PlanDocument, reports: TaskReports, now: Date) -> (
        status: TaskStatus, reasons: [StatusReason]
    ) {
        let ledger = reports.ledger?.figures(today: Timestamp.districtDate(now))
        let (status, decided) = evaluateReports(task, plan: plan, reports: reports, ledger: ledger, now: now)
        var reasons = decided
        // Open cases are always said; fewer registered than the plan's number only once the units
        // say they are done (before, registering is simply under way).
        let leads = expectedReporters(task, plan: plan)
        let reportedComplete = !leads.isEmpty && leads.allSatisfy { (reports.latestPercent[$0] ?? 0) >= 100 }
        if let ledger, status != .completed, let reason = ledgerReason(ledger), reason.code == "ledger_open" || reportedComplete {
            reasons.append(reason)
        }
        return (status, reasons)
    }

    /// Progress as the straight line and the milestones judge it: the lead units' reported
    /// progress, or the ledger's closed share when that is higher (a linked task whose cases are
    /// closing is not behind for a unit's late report).
    public static func effectiveProgress(_ task: PlanDocument.TaskEntry, plan: PlanDocument, reports: TaskReports) -> Double {
        max(progress(task, plan: plan, reports: reports), reports.ledger?.figures(today: "").closedPercent ?? 0)
    }

    static func evaluateReports(
        _ task: PlanDocument.TaskEntry, plan: PlanDocument, reports: TaskReports, ledger: TaskLedger?, now: Date
    ) -> (status: TaskStatus, reasons: [StatusReason]) {
        let leads = expectedReporters(task, plan: plan)
        let reported = progress(task, plan: plan, reports: reports)
        let progress = effectiveProgress(task, plan: plan, reports: reports)
        let shown = (reported * 10).rounded() / 10
        // What the straight line and milestones compare: the ledger's share said where it decides.
        let judged =
            progress > reported
            ? "台账销号\(format((progress * 10).rounded() / 10))%（报送\(format(shown))%）" : "\(format(shown))%"
        // Reported complete: the office accepts it (completed) or returns it; after a return only
        // reports made since count as complete again. A linked task is complete only with its
        // ledger done (every case closed, the plan's number reached), and then even when ongoing
        // (task 10: 全面完成 the 237 points).
        var returned: StatusReason?
        if task.deadline != nil || ledger?.expected != nil, ledger?.isDone ?? true, !leads.isEmpty,
            leads.allSatisfy({ (reports.latestPercent[$0] ?? 0) >= 100 })
        {
            if let review = reports.review, review.decision == "accepted" {
                return (
                    .completed, [StatusReason(code: "accepted", text: "专项工作组办公室已验收", progress: 100, date: String(review.at.prefix(10)))]
                )
            }
            if let review = reports.review, review.decision == "returned",
                !leads.allSatisfy({ (reports.latestReportedAt[$0] ?? "") > review.at })
            {
                returned = StatusReason(code: "returned", text: "专项工作组办公室已退回，待责任单位重新报送", date: String(review.at.prefix(10)))
            } else {
                return (
                    .awaitingAcceptance,
                    [StatusReason(code: "all_reported_complete", text: "责任单位均已报送完成（100%），待专项工作组办公室验收", progress: 100)]
                )
            }
        }
        if let deadline = task.deadline, let deadlineStart = Timestamp.startOfDistrictDay(deadline),
            now >= deadlineStart.addingTimeInterval(86_400)
        {
            return (
                .overdue,
                [
                    StatusReason(
                        code: "deadline_passed", text: "已过完成时限\(task.deadlineText ?? deadline)，进度\(format(shown))%", progress: shown,
                        date: deadline)
                ] + (returned.map { [$0] } ?? [])
            )
        }
        var reasons: [StatusReason] = []
        let due = lastDueMonth(plan: plan, now: now)
        if let due {
            let missing = leads.filter { !(reports.monthsReported[$0]?.contains(due) ?? false) }
            if !missing.isEmpty {
                reasons.append(
                    StatusReason(
                        code: "report_missing", text: "\(missing.joined(separator: "、"))未报送\(due)进展", period: due.description,
                        units: missing))
            }
        }
        // Go-live: until its units have reported, or a month since go-live has fallen due, a task
        // is not judged by where a straight line says it should be (nobody could report before).
        if reports.latestPercent.isEmpty && due == nil {
            return (.notStarted, [StatusReason(code: "before_first_due", text: "督办启动后尚无到期的月度报送")])
        }
        for milestone in task.milestones {
            if let day = Timestamp.startOfDistrictDay(milestone.date), now >= day.addingTimeInterval(86_400), progress < milestone.percent {
                reasons.append(
                    StatusReason(
                        code: "milestone_missed",
                        text: "节点\(milestone.date)（\(milestone.text)）应达\(format(milestone.percent))%，实际\(judged)",
                        progress: shown, expected: milestone.percent, date: milestone.date))
            }
        }
        if let deadline = task.deadline, let end = Timestamp.startOfDistrictDay(deadline)?.addingTimeInterval(86_400),
            let start = Timestamp.startOfDistrictDay(plan.start), end > start
        {
            let elapsed = min(max(now.timeIntervalSince(start) / end.timeIntervalSince(start), 0), 1)
            let expected = (elapsed * 1000).rounded() / 10
            if progress < elapsed * 100 - plan.lagTolerance {
                reasons.append(
                    StatusReason(
                        code: "behind_schedule",
                        text: "进度\(judged)，按时序应达\(format(expected))%（容差\(format(plan.lagTolerance))个百分点）", progress: shown,
                        expected: expected))
            }
        }
        // A return is said after what decided the status (on track: it is the only thing to say).
        if !reasons.isEmpty { return (.lagging, reasons + (returned.map { [$0] } ?? [])) }
        if let returned { return (.onTrack, [returned]) }
        if reports.latestPercent.isEmpty { return (.notStarted, [StatusReason(code: "no_report_yet", text: "责任单位尚未报送进展")]) }
        return (.onTrack, [])
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    /// Every task's status and reasons; a parent's reasons are its sub-items' that are not on track.
    public static func evaluations(plan: PlanDocument, reports: [String: TaskReports], now: Date) -> [String: (
        status: TaskStatus, reasons: [StatusReason]
    )] {
        var result: [String: (status: TaskStatus, reasons: [StatusReason])] = [:]
        for task in plan.tasks where !task.isParent {
            result[task.id] = evaluate(task, plan: plan, reports: reports[task.id] ?? TaskReports(), now: now)
        }
        for task in plan.tasks where task.isParent {
            let children = task.subtasks.compactMap { id in result[id].map { (id, $0) } }
            let status = rollUp(children.map(\.1.status))
            let reasons = children.filter { [.lagging, .overdue].contains($0.1.status) }.map { id, child in
                StatusReason(
                    code: "subtask", text: "子项\(id)：\(child.reasons.first?.text ?? child.status.rawValue)", task: id, status: child.status)
            }
            result[task.id] = (status, reasons)
        }
        return result
    }

    /// The first instant after `now` at which the clock alone could change a status, the reports
    /// staying as they are: a deadline's or a milestone's day ending, a month's reports falling
    /// due (the dispatch day ending, a new month), a task's progress falling behind the straight
    /// line. Statuses computed at `now` hold until then (a test compares them at instants between);
    /// `now` itself when a change is too close to call.
    public static func nextChange(plan: PlanDocument, reports: [String: TaskReports], now: Date) -> Date {
        var next = Date.distantFuture
        func consider(_ instant: Date) {
            if instant > now && instant < next { next = instant }
        }
        let month = Month(now)
        consider(reportsDueEnd(plan: plan, dispatchMonth: month))
        consider(month.next.start())
        let planStart = Timestamp.startOfDistrictDay(plan.start)
        for task in plan.tasks where !task.isParent {
            if let deadline = task.deadline, let day = Timestamp.startOfDistrictDay(deadline) { consider(day.addingTimeInterval(86_400)) }
            for milestone in task.milestones {
                if let day = Timestamp.startOfDistrictDay(milestone.date) { consider(day.addingTimeInterval(86_400)) }
            }
            // A ledger case's deadline day ending makes it overdue in the task's figures.
            if let deadline = reports[task.id]?.ledger?.nextDeadline(today: Timestamp.districtDate(now)),
                let day = Timestamp.startOfDistrictDay(deadline)
            {
                consider(day.addingTimeInterval(86_400))
            }
            if let deadline = task.deadline, let end = Timestamp.startOfDistrictDay(deadline)?.addingTimeInterval(86_400),
                let start = planStart, end > start
            {
                // Lagging once elapsed > (progress + tolerance) / 100. The instant is computed in
                // floating point, so the moments around it are not trusted to any snapshot.
                let threshold = (effectiveProgress(task, plan: plan, reports: reports[task.id] ?? TaskReports()) + plan.lagTolerance) / 100
                if threshold < 1 {
                    let crossing = start.addingTimeInterval(max(threshold, 0) * end.timeIntervalSince(start))
                    if abs(now.timeIntervalSince(crossing)) <= 0.001 { return now }
                    consider(crossing.addingTimeInterval(-0.001))
                }
            }
        }
        return next
    }

    /// A parent's status from its sub-items': all completed → completed; any overdue → overdue;
    /// any lagging → lagging; all not started → not_started; otherwise on_track.
    public static func rollUp(_ children: [TaskStatus]) -> TaskStatus {
        if children.isEmpty { return .notStarted }
        if children.allSatisfy({ $0 == .completed }) { return .completed }
        if children.contains(.overdue) { return .overdue }
        if children.contains(.lagging) { return .lagging }
        // Every sub-item done or waiting for the office: the parent waits with them.
        if children.allSatisfy({ $0 == .completed || $0 == .awaitingAcceptance }) { return .awaitingAcceptance }
        if children.allSatisfy({ $0 == .notStarted }) { return .notStarted }
        return .onTrack
    }
}
