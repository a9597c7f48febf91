import Foundation
import Logging
import Messaging
import Schema
import ServiceKit
import Synchronization

/// The notifier's rules, from a JSON file (`DUBAN_NOTIFY_RULES_FILE`) or these defaults.
public struct NotifyRules: Codable, Sendable {
    /// Days before a task's deadline to remind its lead units.
    public var deadlineDays: [Int] = [30, 7]
    /// Deliver an unacknowledged notice again after this long.
    public var repeatIntervalHours: Double = 24
    /// Delivery attempts before giving up.
    public var maxAttempts: Int = 8
    /// First retry delay; it doubles each attempt, up to five minutes.
    public var retryBaseSeconds: Double = 1
    /// Months in a row with missing reports before proposing 通报, 约谈, 问责.
    public var proposeNoticeAfter = 2
    public var proposeInterviewAfter = 3
    public var proposeAccountabilityAfter = 4
    /// Messages a minute for WeCom and DingTalk robots unless a channel says otherwise (they allow about 20).
    public var robotRatePerMinute = 20
    /// Days the lead units have to report a breach's cause (原因报告).
    public var causeReportDays = 3
    /// Days before a key date of the plan (六五环境日 …) to remind the units that own it; 0: never.
    public var keyDateDays = 14

    enum CodingKeys: String, CodingKey {
        case deadlineDays = "deadline_days"
        case repeatIntervalHours = "repeat_interval_hours"
        case maxAttempts = "max_attempts"
        case retryBaseSeconds = "retry_base_seconds"
        case proposeNoticeAfter = "propose_notice_after"
        case proposeInterviewAfter = "propose_interview_after"
        case proposeAccountabilityAfter = "propose_accountability_after"
        case robotRatePerMinute = "robot_rate_per_minute"
        case causeReportDays = "cause_report_days"
        case keyDateDays = "key_date_days"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NotifyRules()
        deadlineDays = try c.decodeIfPresent([Int].self, forKey: .deadlineDays) ?? d.deadlineDays
        repeatIntervalHours = try c.decodeIfPresent(Double.self, forKey: .repeatIntervalHours) ?? d.repeatIntervalHours
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? d.maxAttempts
        retryBaseSeconds = try c.decodeIfPresent(Double.self, forKey: .retryBaseSeconds) ?? d.retryBaseSeconds
        proposeNoticeAfter = try c.decodeIfPresent(Int.self, forKey: .proposeNoticeAfter) ?? d.proposeNoticeAfter
        proposeInterviewAfter = try c.decodeIfPresent(Int.self, forKey: .proposeInterviewAfter) ?? d.proposeInterviewAfter
        proposeAccountabilityAfter = try c.decodeIfPresent(Int.self, forKey: .proposeAccountabilityAfter) ?? d.proposeAccountabilityAfter
        robotRatePerMinute = try c.decodeIfPresent(Int.self, forKey: .robotRatePerMinute) ?? d.robotRatePerMinute
        causeReportDays = try c.decodeIfPresent(Int.self, forKey: .causeReportDays) ?? d.causeReportDays
        keyDateDays = try c.decodeIfPresent(Int.self, forKey: .keyDateDays) ?? d.keyDateDays
    }

    /// The escalation to propose after `months` dispatches in a row (level and the office's word for it), if any.
    func proposal(afterMonths months: Int) -> (level: String, label: String)? {
        if months >= proposeAccountabilityAfter { return ("accountability", "问责") }
        if months >= proposeInterviewAfter { return ("interview", "约谈") }
        if months >= proposeNoticeAfter { return ("notice", "通报") }
        return nil
    }

    public static func load(_ path: String?) throws -> NotifyRules {
        guard let path else { return NotifyRules() }
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError.missingFile(path) }
        do {
            return try JSONDecoder().decode(NotifyRules.self, fromUntrusted: data)
        } catch {
            throw ConfigurationError.unreadableFile(path, "\(error)")
        }
    }
}

/// What the notifier knows of the plan and the indicators: the registry's part from the shared
/// `RegistryDirectory`, the indicators from ingest through its long-lived client; when they cannot
/// be reached, notices go to the office.
final class Directory: Sendable {
    struct Snapshot: Sendable {
        var office = officeUnit
        var dispatchDay = 5
        /// The plan's last month and go-live's month (`YYYY-MM`), when known.
        var lastMonth: String?
        var firstMonth: String?
        /// The plan's years, `YYYY-YYYY` (the closing report's period), when known.
        var planYears: String?
        var tasks: [String: PlanTask] = [:]
        var indicators: [String: Indicator] = [:]
    }

    let registry: RegistryDirectory
    private let ingest: RPCClient
    private let indicators = Mutex<[String: Indicator]>([:])
    let logger: Logger

    init(registry: RegistryDirectory, ingest: RPCClient, logger: Logger) {
        self.registry = registry
        self.ingest = ingest
        self.logger = logger
    }

    var current: Snapshot {
        var snapshot = Snapshot()
        if let known = registry.current {
            snapshot.office = known.office
            snapshot.dispatchDay = known.dispatchDay
            snapshot.lastMonth = known.planEnd.map { String($0.prefix(7)) }
            snapshot.firstMonth = known.supervisionStart.map { String($0.prefix(7)) }
            if let start = known.planStart, let end = known.planEnd { snapshot.planYears = "\(start.prefix(4))-\(end.prefix(4))" }
            snapshot.tasks = Dictionary(known.tasks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
        snapshot.indicators = indicators.withLock { $0 }
        return snapshot
    }

    /// Fetches the plan (with the tasks' statuses) and the indicators now. Called from background
    /// work only (the rhythm, event followers), never from a request handler.
    func refresh() async {
        await registry.refresh()
        do {
            let items = try await ingest.call(IngestTypes.indicatorList, Empty(), timeout: .seconds(3), retries: 0).items
            indicators.withLock { $0 = Dictionary(items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) }
        } catch {
            logger.debug("ingest not answering", metadata: ["error": "\(error)"])
        }
    }
}

/// Events from the other services, turned into notices.
enum EventRules {
    /// The drafts an event produces, and the conditions it ends (dedup keys to resolve).
    static func apply(_ event: AnyEvent, directory: Directory.Snapshot) -> (drafts: [NoticeDraft], resolved: [String]) {
        let ref = "\(event.stream):\(event.seq)"
        let office = directory.office
        switch event.type {
        case RegistryTypes.taskStatusChanged:
            // Overdue at the first computation too (`from` null): a task already past its deadline at
            // go-live gets its notice on the first start.
            guard let change = try? event.body(as: TaskStatusChanged.self), change.to == .overdue else {
                return ([], [])
            }
            let task = directory.tasks[change.task]
            let title = task.map { "\($0.id)、\($0.title)" } ?? "任务 \(change.task)"
            return (
                [
                    NoticeDraft(
                        kind: .overdue, severity: .critical, units: unique(change.leadUnits + [office]),
                        title: "任务逾期：\(title)",
                        text:
                            "任务\(title)已超过完成时限\(task?.deadlineText.map { "（\($0)）" } ?? "")仍未完成，"
                            + "请责任单位\(change.leadUnits.joined(separator: "、"))抓紧推进并报送进展。",
                        refs: NoticeRefs(task: change.task, event: ref), dedupKey: "overdue:\(change.task)")
                ], []
            )
        case RegistryTypes.escalationRecorded:
            guard let escalation = try? event.body(as: Escalation.self) else { return ([], []) }
            let label = ["notice": "通报", "interview": "约谈", "accountability": "问责"][escalation.level.rawValue] ?? escalation.level.rawValue
            return (
                [
                    NoticeDraft(
                        kind: .escalation, severity: escalation.level == .notice ? .warning : .critical,
                        units: unique([escalation.unit, office]),
                        title: "\(label)：\(escalation.unit)",
                        text: "专项工作组办公室对\(escalation.unit)予以\(label)。事由：\(escalation.reason)"
                            + (escalation.responsiblePerson.map { "。第一责任人：\($0.name)（\($0.position)）" } ?? "")
                            + (escalation.details?.commitments.map { $0.isEmpty ? "" : "。整改承诺：" + $0.joined(separator: "；") } ?? "")
                            + (escalation.details?.followUp.map { "。跟进日期：\($0)" } ?? "")
                            + (escalation.details?.persons.map {
                                $0.isEmpty ? "" : "。问责对象：" + $0.map { "\($0.name)（\($0.position)）" }.joined(separator: "、")
                            } ?? "")
                            + (escalation.details?.authority.map { "。决定机关：\($0)" } ?? "")
                            + (escalation.details?.decisionDocument.map { "。决定文书：\($0)" } ?? ""),
                        refs: NoticeRefs(task: escalation.tasks.first, event: ref), dedupKey: "escalation:\(escalation.id)")
                ], []
            )
        case AccountabilityTypes.followUpDue:
            // 约谈 commitments checked on their day: the unit reports how far it has come.
            guard let due = try? event.body(as: EscalationFollowUp.self) else { return ([], []) }
            return (
                [
                    NoticeDraft(
                        kind: .escalation, severity: .warning, units: unique([due.unit, office]), title: "约谈整改跟进：\(due.unit)",
                        text: "\(due.unit)于约谈中承诺的整改事项今日（\(due.followUp)）到期跟进"
                            + (due.commitments.isEmpty ? "" : "：" + due.commitments.joined(separator: "；"))
                            + "。请\(due.unit)报送落实情况" + (due.responsiblePerson.map { "，第一责任人\($0.name)（\($0.position)）亲自过问" } ?? "")
                            + "。约谈事由：\(due.reason)",
                        refs: NoticeRefs(event: ref), dedupKey: "follow_up:\(due.id)")
                ], []
            )
        case SupervisionTypes.issued:
            // Each unit gets its own items of the order, with the day it must answer by.
            guard let order = try? event.body(as: SupervisionOrder.self) else { return ([], []) }
            let byUnit = Dictionary(grouping: order.items, by: \.unit)
            return (
                byUnit.keys.sorted().map { unit in
                    let items = byUnit[unit]!
                    return NoticeDraft(
                        kind: .supervisionOrder, severity: .warning, units: [unit],
                        title: "督办单 \(order.id)：请于\(order.replyDeadline)前答复",
                        text: "\(order.title)（\(order.id)）督办\(unit)以下事项，请于\(order.replyDeadline)前逐项答复整改措施和进展：\n"
                            + items.map { "第\($0.no)项：\($0.problem)。整改要求：\($0.measure)。" }.joined(separator: "\n"),
                        refs: NoticeRefs(task: items.first?.tasks.first, event: ref, period: order.period),
                        dedupKey: "supervision:\(order.id):\(unit)")
                }, []
            )
        case SupervisionTypes.overdue:
            guard let item = try? event.body(as: SupervisionItemEvent.self) else { return ([], []) }
            let key = "\(item.order):\(item.item)"
            return (
                [
                    NoticeDraft(
                        kind: .supervisionOverdue, severity: .critical, units: unique([item.unit, office]),
                        title: "督办事项逾期未答复：\(item.unit)（\(item.order) 第\(item.item)项）",
                        text: "\(item.title)（\(item.order)）第\(item.item)项（\(item.problem)）应于\(item.deadline)前答复，"
                            + "\(item.unit)至今未答复，请立即答复。",
                        refs: NoticeRefs(task: item.tasks.first, case: item.cases.first, event: ref),
                        dedupKey: "supervision_overdue:\(key)"),
                    // 进度明显滞后的予以通报、约谈: the office decides; the proposal says why.
                    NoticeDraft(
                        kind: .escalationProposal, severity: .critical, units: [office], title: "建议通报：\(item.unit)",
                        text: "\(item.unit)对督办单\(item.order)第\(item.item)项（\(item.problem)）逾期未答复（时限\(item.deadline)），"
                            + "建议予以通报，请专项工作组办公室研究决定。",
                        refs: NoticeRefs(task: item.tasks.first, event: ref), dedupKey: "proposal-supervision:\(key)"),
                ], []
            )
        case ImplementationPlanTypes.overdue, ImplementationPlanTypes.submitted, ImplementationPlanTypes.reviewed:
            return ImplementationPlanNotices.apply(event, ref: ref, office: office)
        case SupervisionTypes.replied, SupervisionTypes.reviewed:
            // A reply ends the overdue notice and the proposal; a returned reply is owed again.
            guard let item = try? event.body(as: SupervisionItemEvent.self), !item.state.awaitsReply else { return ([], []) }
            let key = "\(item.order):\(item.item)"
            return ([], ["supervision_overdue:\(key)", "proposal-supervision:\(key)"])
        case IngestTypes.alertRaised:
            guard let alert = try? event.body(as: AlertBody.self), !alert.historical else { return ([], []) }
            let indicatorID = alert.indicator ?? indicatorFor(alert, directory: directory)
            let tasks = indicatorID.flatMap { directory.indicators[$0]?.tasks } ?? []
            let leads = tasks.flatMap { directory.tasks[$0]?.leadUnits ?? [] }
            return (
                [
                    NoticeDraft(
                        kind: .indicatorBreach, severity: alert.severity == "critical" ? .critical : .warning,
                        units: unique(leads + [office]),
                        title: "指标预警：\(alert.message)",
                        text: "\(alert.message)。\(tasks.isEmpty ? "" : "涉及任务 \(tasks.joined(separator: "、"))，")请相关单位核查原因并采取措施。",
                        refs: NoticeRefs(task: tasks.first, indicator: indicatorID, event: ref), dedupKey: "alert:\(alert.alert)")
                ], []
            )
        case IngestTypes.alertCleared:
            guard let alert = try? event.body(as: AlertBody.self) else { return ([], []) }
            return ([], ["alert:\(alert.alert)"])
        case CaseTypes.overdue:
            guard let overdue = try? event.body(as: CaseOverdue.self) else { return ([], []) }
            return (
                [
                    NoticeDraft(
                        kind: .caseOverdue, severity: .critical, units: unique([overdue.unit, office]),
                        title: "整改逾期：\(overdue.id) \(overdue.title)",
                        text:
                            "问题\(overdue.id)（\(overdue.title)）整改时限为\(overdue.deadline)，"
                            + "现仍为\(overdue.state.label)，请\(overdue.unit)加快整改并提交验收。",
                        refs: NoticeRefs(task: overdue.task, case: overdue.id, event: ref), dedupKey: "case_overdue:\(overdue.id)")
                ], []
            )
        case CaseTypes.transitioned:
            guard let moved = try? event.body(as: CaseTransitioned.self), [.accepted, .closed, .voided].contains(moved.to) else {
                return ([], [])
            }
            return ([], ["case_overdue:\(moved.id)"])
        case CaseTypes.deadlineChanged:
            // A granted extension ends the overdue notice; the case is announced again if it is late again.
            guard let changed = try? event.body(as: CaseDeadlineChanged.self) else { return ([], []) }
            return ([], ["case_overdue:\(changed.id)"])
        default:
            return ([], [])
        }
    }

    /// The indicator an alert concerns: a water section's annual class, or the PM2.5 annual mean.
    static func indicatorFor(_ alert: AlertBody, directory: Directory.Snapshot) -> String? {
        guard let station = alert.station else { return nil }
        if directory.indicators["water_quality_\(station)"] != nil { return "water_quality_\(station)" }
        if ["pm25", "pm10", nil].contains(alert.parameter), directory.indicators["pm25_annual_mean"] != nil, !station.contains("qiao") {
            return "pm25_annual_mean"
        }
        return nil
    }

    static func unique(_ units: [String]) -> [String] {
        var seen: Set<String> = []
        return units.filter { seen.insert($0).inserted }
    }
}
