import Foundation
import Logging
import Messaging
import Schema
import ServiceKit
import WorkCalendar

/// The supervision rhythm (月调度、季督办、年通报) and the reminders that only time brings.
/// Each notice here is issued once for its key (kept in `schedule_runs`), whatever happens to it later.
struct Rhythm: Sendable {
    /// The registry's long-lived client.
    let registry: RPCClient
    let rules: NotifyRules
    let logger: Logger
    /// Working days: due days on a weekend or holiday move to the next working day.
    let calendar: WorkCalendar

    /// The month whose reports are due by now (the due day in the next month has passed).
    static func lastDueMonth(now: Date, dispatchDay: Int, calendar: WorkCalendar) -> String? {
        let today = Timestamp.districtDate(now)
        guard let year = Int(today.prefix(4)), let month = Int(today.dropFirst(5).prefix(2)) else { return nil }
        var (y, m) = month == 1 ? (year - 1, 12) : (year, month - 1)
        if today <= dueDay(dispatchMonth: String(today.prefix(7)), dispatchDay: dispatchDay, calendar: calendar) {
            (y, m) = m == 1 ? (y - 1, 12) : (y, m - 1)
        }
        return String(format: "%04d-%02d", y, m)
    }

    /// The day the previous month's reports are due in `dispatchMonth` (`YYYY-MM`): the plan's
    /// dispatch day, or the next working day when it is a weekend or a holiday. The registry's
    /// `dispatch.overview` computes the same day from the same configuration (`holidaysFile`).
    static func dueDay(dispatchMonth: String, dispatchDay: Int, calendar: WorkCalendar) -> String {
        calendar.nextWorkingDay(onOrAfter: "\(dispatchMonth)-\(String(format: "%02d", dispatchDay))")
    }

    /// How many months in a row, ending with `due`, `holds` is true for.
    static func consecutiveMonths(endingAt due: String, where holds: (String) throws -> Bool) rethrows -> Int {
        var months = 0
        var month = due
        while try holds(month) {
            months += 1
            month = previous(month)
        }
        return months
    }

    static func previous(_ month: String) -> String {
        let y = Int(month.prefix(4))!
        let m = Int(month.suffix(2))!
        return m == 1 ? String(format: "%04d-12", y - 1) : String(format: "%04d-%02d", y, m - 1)
    }

    /// The plan's key dates for task 2 (紧密结合六五环境日、全国生态日、生物多样性日等重要节点), month-day and name.
    static let keyDates = [("05-22", "生物多样性日"), ("06-05", "六五环境日"), ("08-15", "全国生态日")]

    /// Reminders of a key date `daysBefore` days ahead, to the lead units of the tasks that name it,
    /// within the plan's years.
    static func keyDateReminders(today: String, directory: Directory.Snapshot, daysBefore: Int) -> [NoticeDraft] {
        guard daysBefore > 0, let year = Int(today.prefix(4)) else { return [] }
        var drafts: [NoticeDraft] = []
        for (monthDay, name) in keyDates {
            let day = "\(year)-\(monthDay)"
            guard let date = Timestamp.startOfDistrictDay(day), today <= day,
                today >= Timestamp.districtDate(date.addingTimeInterval(-Double(daysBefore) * 86_400)),
                directory.lastMonth.map({ String(day.prefix(7)) <= $0 }) ?? true
            else { continue }
            let tasks = directory.tasks.values.filter { $0.subtasks.isEmpty && $0.text.contains(name) }.sorted { $0.id < $1.id }
            let units = EventRules.unique(tasks.flatMap(\.leadUnits))
            guard !units.isEmpty else { continue }
            let left = Int(
                ((date.timeIntervalSince1970 - (Timestamp.startOfDistrictDay(today)?.timeIntervalSince1970 ?? 0)) / 86_400).rounded())
            drafts.append(
                NoticeDraft(
                    kind: .keyDate, severity: .info, units: units,
                    title: "重要节点提醒：\(name)（\(Int(monthDay.prefix(2))!)月\(Int(monthDay.suffix(2))!)日）",
                    text: "任务\(tasks.map(\.id).joined(separator: "、"))要求紧密结合\(name)等重要节点，组织开展线上、线下生态科普宣传活动。"
                        + "距\(name)还有\(left)天，请\(units.joined(separator: "、"))提前谋划，活动后随月调度报送开展情况。",
                    refs: NoticeRefs(task: tasks.first?.id, period: day), dedupKey: "key_date:\(day)"))
        }
        return drafts
    }

    /// The notices time calls for now.
    func drafts(now: Date, directory: Directory.Snapshot) async -> [NoticeDraft] {
        var drafts: [NoticeDraft] = []
        let today = Timestamp.districtDate(now)
        let office = directory.office

        // Deadlines approaching: 30 and 7 days before, to the lead units.
        for task in directory.tasks.values.sorted(by: { $0.id < $1.id }) {
            guard let deadline = task.deadline, task.subtasks.isEmpty, task.status != .completed, today <= deadline,
                let end = Timestamp.startOfDistrictDay(deadline)
            else { continue }
            for days in rules.deadlineDays.sorted(by: >) {
                let from = Timestamp.districtDate(end.addingTimeInterval(-Double(days) * 86_400))
                guard today >= from else { continue }
                drafts.append(
                    NoticeDraft(
                        kind: .deadlineApproaching, severity: days <= 7 ? .warning : .info, units: task.leadUnits,
                        title: "临近完成时限：\(task.id)、\(task.title)",
                        text: "任务\(task.id)（\(task.title)）将于\(deadline)到期，距今不足\(days)天，当前进度\(Int(task.progress ?? 0))%。",
                        refs: NoticeRefs(task: task.id), dedupKey: "deadline:\(task.id):\(days)"))
                break
            }
        }

        drafts += Self.keyDateReminders(today: today, directory: directory, daysBefore: rules.keyDateDays)

        drafts += await implementationPlanReminders(today: today, office: office)

        guard var due = Self.lastDueMonth(now: now, dispatchDay: directory.dispatchDay, calendar: calendar) else { return drafts }
        // Nothing is asked for a month after the plan's last (its reports are refused), nor before go-live.
        if let last = directory.lastMonth, due > last { due = last }
        let month = String(today.prefix(7))
        let reportingMonth = Self.previous(month)
        let inPlan =
            (directory.lastMonth.map { reportingMonth <= $0 } ?? true) && (directory.firstMonth.map { reportingMonth >= $0 } ?? true)
        // 月调度: the call for reports on the first day of the month, then who has not reported.
        let leads = EventRules.unique(directory.tasks.values.filter { $0.subtasks.isEmpty }.flatMap(\.leadUnits)).sorted()
        if inPlan {
            drafts.append(
                NoticeDraft(
                    kind: .monthlyDispatch, severity: .info, units: leads + [office], title: "月调度：请报送\(reportingMonth)进展",
                    text: "请各责任单位于\(Self.dueDay(dispatchMonth: month, dispatchDay: directory.dispatchDay, calendar: calendar))前"
                        + "通过督办系统报送\(reportingMonth)"
                        + "任务进展（进度、措施、问题、下步计划及佐证材料）。",
                    refs: NoticeRefs(period: reportingMonth), dedupKey: "monthly_dispatch:\(reportingMonth)"))
        }

        // The dispatch's summary, reminders, proposals and the quarter's and year's notices concern
        // months since go-live only.
        guard directory.firstMonth.map({ due >= $0 }) ?? true else { return drafts }
        var overviews: [String: DispatchOverviewReply] = [:]
        // A month the registry does not answer for ends the look back (the proposals count fewer months).
        var lookedAt = due
        for _ in 0..<max(rules.proposeAccountabilityAfter, 1) {
            guard
                let overview = try? await registry.call(
                    RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: lookedAt), as: DispatchOverviewReply.self,
                    timeout: .seconds(3), retries: 0)
            else { break }
            overviews[lookedAt] = overview
            lookedAt = Self.previous(lookedAt)
        }
        if let overview = overviews[due] {
            let byUnit = Dictionary(grouping: overview.missing, by: \.unit)
            for (unit, pairs) in byUnit.sorted(by: { $0.key < $1.key }) {
                let tasks = pairs.map(\.task)
                drafts.append(
                    NoticeDraft(
                        kind: .reportMissing, severity: .warning, units: [unit, office], title: "未报送\(due)进展：\(unit)",
                        text: "\(unit)未按时报送\(due)以下任务进展：\(tasks.joined(separator: "、"))（截止\(overview.due)），请立即补报。",
                        refs: NoticeRefs(task: tasks.first, period: due), dedupKey: "report_missing:\(due):\(unit)"))
            }
            // Proposals to escalate a unit whose reports stay missing month after month, for the office to decide.
            for unit in byUnit.keys.sorted() {
                let months = Self.consecutiveMonths(endingAt: due) { overviews[$0]?.missing.contains { $0.unit == unit } ?? false }
                guard let (level, label) = rules.proposal(afterMonths: months) else { continue }
                drafts.append(
                    NoticeDraft(
                        kind: .escalationProposal, severity: .critical, units: [office], title: "建议\(label)：\(unit)",
                        text: "\(unit)已连续\(months)个月未按时报送任务进展（至\(due)），建议予以\(label)，请专项工作组办公室研究决定。",
                        refs: NoticeRefs(period: due), dedupKey: "proposal:\(unit):\(due):\(level)"))
            }
            drafts.append(
                NoticeDraft(
                    kind: .monthlyDispatch, severity: .info, units: [office], title: "\(due)月调度情况",
                    text: "\(due)月调度：已报送\(overview.reported.count)项，未报送\(overview.missing.count)项（涉及\(byUnit.count)个单位）。",
                    refs: NoticeRefs(period: due), dedupKey: "monthly_summary:\(due)"))
        }

        // 季督办: after the dispatch that closes a quarter, the list of lagging and overdue tasks.
        if let m = Int(due.suffix(2)), m % 3 == 0 {
            let quarter = "\(due.prefix(4))-Q\(m / 3)"
            let lagging = directory.tasks.values.filter { $0.subtasks.isEmpty && ($0.status == .lagging || $0.status == .overdue) }.sorted {
                $0.id < $1.id
            }
            drafts.append(
                NoticeDraft(
                    kind: .quarterlySupervision, severity: .warning, units: EventRules.unique([office] + lagging.flatMap(\.leadUnits)),
                    title: "\(quarter)季度督办单",
                    text: "进度滞后或逾期的任务\(lagging.count)项："
                        + lagging.map { "\($0.id)（\($0.status?.label ?? "")，\($0.leadUnits.joined(separator: "、"))）" }.joined(
                            separator: "；")
                        + "。请相关单位限期整改并报送情况。",
                    refs: NoticeRefs(period: quarter), dedupKey: "quarterly:\(quarter)"))
        }
        // 年通报: after December's dispatch.
        if due.hasSuffix("-12") {
            let year = String(due.prefix(4))
            let statuses = Dictionary(
                grouping: directory.tasks.values.filter { $0.subtasks.isEmpty }, by: { $0.status?.label ?? "未知" })
            drafts.append(
                NoticeDraft(
                    kind: .annualNotification, severity: .info, units: EventRules.unique([office] + leads), title: "\(year)年度通报",
                    text: "\(year)年三年行动任务："
                        + statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.count)项" }.joined(separator: "，")
                        + "。详见年度报告（duban report annual \(year)）。",
                    refs: NoticeRefs(period: year), dedupKey: "annual:\(year)"))
        }
        // 收官: after the plan's last dispatch, the closing report of the whole plan.
        if let last = directory.lastMonth, due == last, let years = directory.planYears {
            drafts.append(
                NoticeDraft(
                    kind: .annualNotification, severity: .info, units: EventRules.unique([office] + leads), title: "三年行动收官报告",
                    text: "三年行动（\(years)）已到期：各项任务的完成结果、13 项目标指标的最终值和达标情况、问题整改台账的最终状态"
                        + "见收官报告（duban report closing \(years)）；未销号问题继续跟踪至销号。",
                    refs: NoticeRefs(period: years), dedupKey: "closing:\(years)"))
        }
        return drafts
    }
}
