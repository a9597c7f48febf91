import Foundation
import Logging
import Messaging
import Schema
import ServiceKit

/// The supervision rhythm (月调度、季督办、年通报) and the reminders that only time brings.
/// Each notice here is issued once for its key (kept in `schedule_runs`), whatever happens to it later.
struct Rhythm: Sendable {
    /// The registry's long-lived client.
    let registry: RPCClient
    let rules: NotifyRules
    let logger: Logger

    /// The month whose reports are due by now (the dispatch day of the next month has passed).
    static func lastDueMonth(now: Date, dispatchDay: Int) -> String? {
        let today = Timestamp.districtDate(now)
        guard let year = Int(today.prefix(4)), let month = Int(today.dropFirst(5).prefix(2)), let day = Int(today.suffix(2)) else {
            return nil
        }
        var (y, m) = month == 1 ? (year - 1, 12) : (year, month - 1)
        if day <= dispatchDay { (y, m) = m == 1 ? (y - 1, 12) : (y, m - 1) }
        return String(format: "%04d-%02d", y, m)
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

        guard var due = Self.lastDueMonth(now: now, dispatchDay: directory.dispatchDay) else { return drafts }
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
                    text: "请各责任单位于\(month)-\(String(format: "%02d", directory.dispatchDay))前通过督办系统报送\(reportingMonth)"
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
        return drafts
    }
}
