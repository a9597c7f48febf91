import Foundation
import Messaging
import Schema
import ServiceKit

/// Notices for the units' 具体实施方案 (docs/notify.md): reminders before the due day, and once a
/// plan is owed past it, a notice to the unit and a 建议通报 proposal to the office, both ended by
/// the unit's submission. A return makes the plan owed again by a new day; if that day passes too,
/// the registry publishes it again and both notices are issued anew.
enum ImplementationPlanNotices {
    static func overdueKey(_ unit: String) -> String { "implementation_plan_overdue:\(unit)" }
    static func proposalKey(_ unit: String) -> String { "proposal-implementation-plan:\(unit)" }

    static func apply(_ event: AnyEvent, ref: String, office: String) -> (drafts: [NoticeDraft], resolved: [String]) {
        guard let plan = try? event.body(as: ImplementationPlanEvent.self) else { return ([], []) }
        switch event.type {
        case ImplementationPlanTypes.overdue:
            return (
                [
                    NoticeDraft(
                        kind: .implementationPlanOverdue, severity: .critical, units: EventRules.unique([plan.unit, office]),
                        title: "实施方案逾期未报送：\(plan.unit)",
                        text: "按照方案保障措施“各部门要严格对照本方案明确的主要任务，细化工作措施，3个月内制定具体实施方案”的要求，"
                            + "\(plan.unit)应于\(plan.due)前报送具体实施方案，"
                            + (plan.state == .returned ? "退回修改后至今未重新报送" : "至今未报送") + "，请立即报送。",
                        refs: NoticeRefs(event: ref, period: plan.due), dedupKey: overdueKey(plan.unit)),
                    // 对工作落实不到位…的予以通报: the office decides; the proposal says why.
                    NoticeDraft(
                        kind: .escalationProposal, severity: .critical, units: [office], title: "建议通报：\(plan.unit)",
                        text: "\(plan.unit)未在时限（\(plan.due)）内报送具体实施方案，建议予以通报，请专项工作组办公室研究决定。",
                        refs: NoticeRefs(event: ref, period: plan.due), dedupKey: proposalKey(plan.unit)),
                ], []
            )
        default:
            // A submission ends the overdue notice and the proposal; a return leaves nothing open
            // until its new day passes.
            guard !plan.state.owed else { return ([], []) }
            return ([], [overdueKey(plan.unit), proposalKey(plan.unit)])
        }
    }
}

extension ImplementationPlanNotices {
    /// The reports' section 七: every bound unit's plan, its day, state and title; nothing when no
    /// unit is bound (no rule, or a day after the plan's end).
    static func reportSection(_ plans: [ImplementationPlan], heading: String = "七、具体实施方案") -> (markdown: String, rows: [[String]]) {
        guard !plans.isEmpty else { return ("", []) }
        let accepted = plans.filter { $0.state == .accepted }.count
        let late = plans.filter(\.overdue).count
        var md = "\n## \(heading)\n\n"
        md += "应制定 \(plans.count) 个单位，已审核通过 \(accepted) 个，逾期未报送 \(late) 个。\n\n"
        md += "| 单位 | 报送时限 | 状态 | 实施方案 |\n|---|---|---|---|\n"
        var rows: [[String]] = []
        for plan in plans {
            let state = plan.state.label + (plan.overdue ? "（逾期）" : "")
            let title = plan.submission?.title ?? ""
            md += "| \(plan.unit) | \(plan.due) | \(state) | \(Reports.cell(title)) |\n"
            rows.append(["具体实施方案", plan.unit, title, state, plan.unit, "", plan.due])
        }
        return (md, rows)
    }
}

extension Rhythm {
    /// Reminders of the implementation plans still owed, `rules.deadlineDays` (30 and 7) days
    /// before their day: one notice per due day to the units that owe by it. Nothing when the
    /// registry does not answer (the next round tries again).
    func implementationPlanReminders(today: String, office: String) async -> [NoticeDraft] {
        guard
            let owed = try? await registry.call(
                ImplementationPlanTypes.list, ImplementationPlanListRequest(overdue: false), as: ListReply<ImplementationPlan>.self,
                timeout: .seconds(3), retries: 0
            ).items.filter({ $0.state.owed && $0.due >= today })
        else { return [] }
        var drafts: [NoticeDraft] = []
        for (due, plans) in Dictionary(grouping: owed, by: \.due).sorted(by: { $0.key < $1.key }) {
            guard let end = Timestamp.startOfDistrictDay(due), let start = Timestamp.startOfDistrictDay(today) else { continue }
            let left = Int(((end.timeIntervalSince1970 - start.timeIntervalSince1970) / 86_400).rounded())
            guard let days = rules.deadlineDays.sorted().first(where: { left <= $0 }) else { continue }
            let units = plans.map(\.unit)
            drafts.append(
                NoticeDraft(
                    kind: .implementationPlanDue, severity: days <= 7 ? .warning : .info, units: units,
                    title: "请于\(due)前报送具体实施方案",
                    text: "按照方案保障措施要求，各部门须细化工作措施，3个月内制定具体实施方案。"
                        + "\(units.joined(separator: "、"))的实施方案应于\(due)前报送（距今\(left)天），"
                        + "请报送方案文件（duban plan-impl submit），由\(office)审核。",
                    refs: NoticeRefs(period: due), dedupKey: "implementation_plan_due:\(due):\(days)"))
        }
        return drafts
    }
}
