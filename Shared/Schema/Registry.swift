/// The task registry's request types and topics (PROTOCOL.md section 6, **registry**).
public enum RegistryTypes {
    public static let planGet = RPC<Empty, PlanReply>("plan.get", .read, allow: .readers)
    /// Replaces the plan (an extension of the protocol's types).
    public static let planLoad = RPC<PlanLoadRequest, PlanLoadReply>("plan.load", .write, allow: .admin, textLimit: 2_000_000)
    public static let unitList = RPC<Empty, ListReply<PlanUnit>>("unit.list", .read, allow: .readers)
    public static let taskList = RPC<TaskListRequest, ListReply<PlanTask>>("task.list", .read, allow: .readers)
    public static let taskGet = RPC<TaskGetRequest, PlanTask>("task.get", .read, allow: .readers)
    public static let progressReport = RPC<ProgressReportRequest, ProgressReport>("progress.report", .write, allow: .units)
    public static let progressList = RPC<ProgressListRequest, ListReply<ProgressReport>>("progress.list", .read, allow: .readers)
    public static let dispatchOverview = RPC<DispatchOverviewRequest, DispatchOverviewReply>("dispatch.overview", .read, allow: .readers)
    public static let escalationRecord = RPC<EscalationRecordRequest, Escalation>("escalation.record", .write, allow: .office)
    public static let escalationList = RPC<EscalationListRequest, ListReply<Escalation>>("escalation.list", .read, allow: .readers)
    /// The office accepts a task its units reported complete (it becomes `completed`), or returns it.
    public static let taskAccept = RPC<TaskAcceptRequest, TaskReview>("task.accept", .write, allow: .office)
    public static let taskReturn = RPC<TaskReturnRequest, TaskReview>("task.return", .write, allow: .office)

    public static let progressReported = "registry.progress.reported"
    public static let taskStatusChanged = "registry.task.status_changed"
    public static let escalationRecorded = "registry.escalation.recorded"
    /// A new plan was loaded (body: `PlanLoadReply`): units and tasks may have changed.
    public static let planLoaded = "registry.plan.loaded"
    /// The office accepted or returned a task (body: `TaskReview`).
    public static let taskReviewed = "registry.task.reviewed"
}

/// `task.accept`: the office checks a task every lead unit reported complete, with its evidence.
public struct TaskAcceptRequest: Codable, Sendable, Equatable {
    public var task: String
    public var comment: String
    public var evidence: [EvidenceRef]?
    public init(task: String, comment: String, evidence: [EvidenceRef]? = nil) {
        self.task = task
        self.comment = comment
        self.evidence = evidence
    }
}

/// `task.return`: not complete after all; the units report again.
public struct TaskReturnRequest: Codable, Sendable, Equatable {
    public var task: String
    public var reason: String
    public init(task: String, reason: String) {
        self.task = task
        self.reason = reason
    }
}

/// The office's decision on a task reported complete.
public struct TaskReview: Codable, Sendable, Equatable {
    public var task: String
    /// `accepted` or `returned`.
    public var decision: String
    public var comment: String
    public var evidence: [EvidenceRef]
    public var at: String
    public var by: String?
    public var principal: String?
    /// The task's status after the decision.
    public var status: TaskStatus?

    public init(
        task: String, decision: String, comment: String, evidence: [EvidenceRef], at: String, by: String?, principal: String?,
        status: TaskStatus? = nil
    ) {
        self.task = task
        self.decision = decision
        self.comment = comment
        self.evidence = evidence
        self.at = at
        self.by = by
        self.principal = principal
        self.status = status
    }
}

/// The working group's office: registers, accepts and closes cases, records escalations, runs the dispatch.
public let officeUnit = "专项工作组办公室"

/// A task's computed status.
public enum TaskStatus: String, Codable, Sendable, CaseIterable {
    case notStarted = "not_started"
    case onTrack = "on_track"
    case lagging
    case overdue
    /// Every lead unit reported 100 %; the office has yet to accept it (`task.accept`).
    case awaitingAcceptance = "awaiting_acceptance"
    case completed

    /// The label the office uses.
    public var label: String {
        switch self {
        case .notStarted: return "未开始"
        case .onTrack: return "正常推进"
        case .lagging: return "进度滞后"
        case .overdue: return "逾期未完成"
        case .awaitingAcceptance: return "待验收"
        case .completed: return "已完成"
        }
    }
}

extension TaskStatus: TreeReadable {}

/// Why a task has its status (issue #15: every status explains itself), machine-readable by `code`
/// and in words by `text`: `report_missing` (`period`, `units`), `behind_schedule` (`progress`,
/// `expected`), `milestone_missed` (`date`, `expected`, `progress`), `deadline_passed` (`date`),
/// `all_reported_complete`, `no_report_yet`, `before_first_due` (go-live: nothing due yet),
/// `subtask` (`task`, `status`: a sub-item's status rolled up).
public struct StatusReason: Codable, Sendable, Equatable {
    public var code: String
    public var text: String
    public var period: String?
    public var units: [String]?
    public var progress: Double?
    public var expected: Double?
    public var date: String?
    public var task: String?
    public var status: TaskStatus?
    /// `ledger_open`, `ledger_incomplete`: open (or not yet registered) ledger cases, of `total`.
    public var open: Int? = nil
    public var total: Int? = nil

    public init(
        code: String, text: String, period: String? = nil, units: [String]? = nil, progress: Double? = nil, expected: Double? = nil,
        date: String? = nil, task: String? = nil, status: TaskStatus? = nil
    ) {
        self.code = code
        self.text = text
        self.period = period
        self.units = units
        self.progress = progress
        self.expected = expected
        self.date = date
        self.task = task
        self.status = status
    }
}

extension StatusReason: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        code = try members.required(CodingKeys.code)
        text = try members.required(CodingKeys.text)
        period = try members.optional(CodingKeys.period)
        units = try members.optional(CodingKeys.units)
        progress = try members.optional(CodingKeys.progress)
        expected = try members.optional(CodingKeys.expected)
        date = try members.optional(CodingKeys.date)
        task = try members.optional(CodingKeys.task)
        status = try members.optional(CodingKeys.status)
        open = try members.optional(CodingKeys.open)
        total = try members.optional(CodingKeys.total)
    }
}

/// A unit of the district as the plan names it.
public struct PlanUnit: Codable, Sendable, Equatable {
    public var name: String
    /// `party`, `government`, `town`, `subdistrict`, `judicial`, `public_security`, `collective`, `office`, `group`.
    public var kind: String
    /// A collective name (区直各单位, 各涉河镇办) standing for several units.
    public var collective: Bool
    /// The unit's full name, when this is a shorter name the plan also uses (区市场监管局).
    public var aliasOf: String?
    /// For a collective name: the units known to belong to it, who may report for it.
    public var members: [String]?

    enum CodingKeys: String, CodingKey {
        case name, kind, collective, members
        case aliasOf = "alias_of"
    }

    public init(name: String, kind: String, collective: Bool = false, aliasOf: String? = nil, members: [String]? = nil) {
        self.name = name
        self.kind = kind
        self.collective = collective
        self.aliasOf = aliasOf
        self.members = members
    }
}

/// A dated milestone inside a task's text.
public struct Milestone: Codable, Sendable, Equatable {
    public var date: String
    public var text: String
    /// Progress expected by the date.
    public var percent: Double?

    public init(date: String, text: String, percent: Double? = nil) {
        self.date = date
        self.text = text
        self.percent = percent
    }
}

extension Milestone: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        date = try members.required(CodingKeys.date)
        text = try members.required(CodingKeys.text)
        percent = try members.optional(CodingKeys.percent)
    }
}

/// A task or sub-item of the plan.
public struct PlanTask: Codable, Sendable, Equatable {
    public var id: String
    public var parent: String?
    /// The task group (一 … 六 under 主要任务), e.g. `（三）持续深入打好污染防治攻坚战`.
    public var category: String
    public var title: String
    public var text: String
    public var leadUnits: [String]
    public var cooperatingUnits: [String]
    /// `YYYY-MM-DD`, absent when ongoing.
    public var deadline: String?
    public var ongoing: Bool
    public var milestones: [Milestone]
    /// Indicator ids of the targets this task carries.
    public var targets: [String]
    public var subtasks: [String]
    public var status: TaskStatus?
    /// Why it has that status, the deciding reason first (`{code, text, …}`).
    public var reasons: [StatusReason]?
    /// The deadline in the plan's own words (2026年12月底, 持续推进).
    public var deadlineText: String?
    /// Mean of the lead units' latest reported percents.
    public var progress: Double?
    /// `task.get` only: each unit's latest report.
    public var latestReports: [ProgressReport]?
    /// For a task linked to ledger cases: the ledger's figures.
    public var ledger: TaskLedger? = nil

    enum CodingKeys: String, CodingKey {
        case id, parent, category, title, text, deadline, ongoing, milestones, targets, subtasks, status, progress, reasons, ledger
        case leadUnits = "lead_units"
        case cooperatingUnits = "cooperating_units"
        case deadlineText = "deadline_text"
        case latestReports = "latest_reports"
    }

    public init(
        id: String, parent: String? = nil, category: String, title: String, text: String, leadUnits: [String], cooperatingUnits: [String],
        deadline: String?, ongoing: Bool, milestones: [Milestone] = [], targets: [String] = [], subtasks: [String] = [],
        status: TaskStatus? = nil
    ) {
        self.id = id
        self.parent = parent
        self.category = category
        self.title = title
        self.text = text
        self.leadUnits = leadUnits
        self.cooperatingUnits = cooperatingUnits
        self.deadline = deadline
        self.ongoing = ongoing
        self.milestones = milestones
        self.targets = targets
        self.subtasks = subtasks
        self.status = status
    }
}

extension PlanTask: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        id = try members.required(CodingKeys.id)
        parent = try members.optional(CodingKeys.parent)
        category = try members.required(CodingKeys.category)
        title = try members.required(CodingKeys.title)
        text = try members.required(CodingKeys.text)
        leadUnits = try members.required(CodingKeys.leadUnits)
        cooperatingUnits = try members.required(CodingKeys.cooperatingUnits)
        deadline = try members.optional(CodingKeys.deadline)
        ongoing = try members.required(CodingKeys.ongoing)
        milestones = try members.required(CodingKeys.milestones)
        targets = try members.required(CodingKeys.targets)
        subtasks = try members.required(CodingKeys.subtasks)
        status = try members.optional(CodingKeys.status)
        reasons = try members.optional(CodingKeys.reasons)
        deadlineText = try members.optional(CodingKeys.deadlineText)
        progress = try members.optional(CodingKeys.progress)
        latestReports = try members.optional(CodingKeys.latestReports)
        ledger = try members.optional(CodingKeys.ledger)
    }
}

/// One of the plan's targets (工作目标), as the registry holds it.
public struct PlanTarget: Codable, Sendable, Equatable {
    public var indicator: String
    public var text: String
    /// `at_least`, `equal`, `at_most`, `class_at_least`, `category_at_least`, `within_quota`, `meets_standard`.
    public var `operator`: String
    public var threshold: JSONValue?
    /// Where a threshold the plan does not state as a number comes from (市控标准: configuration).
    public var thresholdFrom: String?
    public var unit: String?
    /// Ordered values, best first, for class and category targets.
    public var scale: [String]?
    public var tasks: [String]
    /// Separately judged quantities of one target (主要污染物减排 and 碳排放强度), each with its own
    /// indicator id, value, unit and threshold; absent for a target judged as one value.
    public var parts: [PlanTarget]?

    enum CodingKeys: String, CodingKey {
        case indicator, text, `operator`, threshold, unit, scale, tasks, parts
        case thresholdFrom = "threshold_from"
    }

    public init(
        indicator: String, text: String, operator: String, threshold: JSONValue?, thresholdFrom: String? = nil, unit: String?,
        scale: [String]? = nil,
        tasks: [String], parts: [PlanTarget]? = nil
    ) {
        self.parts = parts
        self.indicator = indicator
        self.text = text
        self.operator = `operator`
        self.threshold = threshold
        self.thresholdFrom = thresholdFrom
        self.unit = unit
        self.scale = scale
        self.tasks = tasks
    }
}

/// A rule of the plan's 保障措施.
public struct PlanRule: Codable, Sendable, Equatable {
    public var id: String
    public var text: String
    /// For a rule with a time limit (every department's implementation plan within 3 months).
    public var withinMonths: Int?
    /// A day the plan sets for it, which takes precedence over `within_months`.
    public var due: String?

    enum CodingKeys: String, CodingKey {
        case id, text, due
        case withinMonths = "within_months"
    }

    public init(id: String, text: String, withinMonths: Int? = nil, due: String? = nil) {
        self.id = id
        self.text = text
        self.withinMonths = withinMonths
        self.due = due
    }
}

/// `plan.get` reply.
public struct PlanReply: Codable, Sendable {
    public var title: String
    public var district: String?
    public var start: String
    public var end: String
    public var office: String
    public var dispatchDay: Int
    public var goals: String?
    /// Task groups as the plan heads them: `（三）持续深入打好污染防治攻坚战`.
    public var categories: [String]
    public var tasks: [PlanTask]
    public var targets: [PlanTarget]
    public var rules: [PlanRule]
    public var loadedAt: String?
    /// Go-live (YYYY-MM-DD): months before it never count as missing.
    public var supervisionStart: String?

    enum CodingKeys: String, CodingKey {
        case title, district, start, end, office, goals, categories, tasks, targets, rules
        case dispatchDay = "dispatch_day"
        case loadedAt = "loaded_at"
        case supervisionStart = "supervision_start"
    }

    public init(
        title: String, district: String?, start: String, end: String, office: String, dispatchDay: Int, goals: String?,
        categories: [String],
        tasks: [PlanTask], targets: [PlanTarget], rules: [PlanRule], loadedAt: String?, supervisionStart: String? = nil
    ) {
        self.supervisionStart = supervisionStart
        self.title = title
        self.district = district
        self.start = start
        self.end = end
        self.office = office
        self.dispatchDay = dispatchDay
        self.goals = goals
        self.categories = categories
        self.tasks = tasks
        self.targets = targets
        self.rules = rules
        self.loadedAt = loadedAt
    }
}

/// `plan.load`: replaces the plan with a new plan file's content (reports, statuses and
/// escalations are kept). `content` is the file's text; `name` is used in error messages.
public struct PlanLoadRequest: Codable, Sendable, Equatable {
    public var content: String
    public var name: String?
    public init(content: String, name: String? = nil) {
        self.content = content
        self.name = name
    }
}

public struct PlanLoadReply: Codable, Sendable, Equatable {
    public var title: String
    public var tasks: Int
    public var units: Int
    public var targets: Int
    public var loadedAt: String

    enum CodingKeys: String, CodingKey {
        case title, tasks, units, targets
        case loadedAt = "loaded_at"
    }

    public init(title: String, tasks: Int, units: Int, targets: Int, loadedAt: String) {
        self.title = title
        self.tasks = tasks
        self.units = units
        self.targets = targets
        self.loadedAt = loadedAt
    }
}

public struct TaskListRequest: Codable, Sendable {
    public var unit: String?
    public var category: String?
    public var status: TaskStatus?
    public init(unit: String? = nil, category: String? = nil, status: TaskStatus? = nil) {
        self.unit = unit
        self.category = category
        self.status = status
    }
}

public struct TaskGetRequest: Codable, Sendable {
    public var id: String
    public init(id: String) { self.id = id }
}

extension TaskGetRequest: FastDecodable {
    public static func fastDecode(_ json: FastJSON) -> TaskGetRequest? {
        guard case .object = json, let id = json["id"]?.string else { return nil }
        return TaskGetRequest(id: id)
    }
}

/// `progress.report`: a unit's monthly progress on a task (月调度).
public struct ProgressReportRequest: Codable, Sendable, Equatable {
    public var task: String
    /// `YYYY-MM`.
    public var period: String
    public var unit: String
    public var percent: Double
    public var summary: String
    public var measures: String?
    public var problems: String?
    public var nextSteps: String?
    public var evidence: [EvidenceRef]?

    enum CodingKeys: String, CodingKey {
        case task, period, unit, percent, summary, measures, problems, evidence
        case nextSteps = "next_steps"
    }

    public init(
        task: String, period: String, unit: String, percent: Double, summary: String, measures: String? = nil, problems: String? = nil,
        nextSteps: String? = nil, evidence: [EvidenceRef]? = nil
    ) {
        self.task = task
        self.period = period
        self.unit = unit
        self.percent = percent
        self.summary = summary
        self.measures = measures
        self.problems = problems
        self.nextSteps = nextSteps
        self.evidence = evidence
    }
}

/// A stored progress report; `revision` counts from 1, earlier revisions are kept.
public struct ProgressReport: Codable, Sendable, Equatable {
    public var task: String
    public var period: String
    public var unit: String
    public var percent: Double
    public var summary: String
    public var measures: String?
    public var problems: String?
    public var nextSteps: String?
    public var evidence: [EvidenceRef]
    public var revision: Int
    public var reportedAt: String
    public var reportedBy: String?
    /// The certificate that reported it and its public key (PROTOCOL.md section 7); nil without keys.
    public var principal: String?
    public var principalKey: String?
    /// 补报: a report for a month before supervision started (go-live), sent afterwards.
    public var backfill: Bool?

    enum CodingKeys: String, CodingKey {
        case task, period, unit, percent, summary, measures, problems, evidence, revision, principal, backfill
        case nextSteps = "next_steps"
        case reportedAt = "reported_at"
        case reportedBy = "reported_by"
        case principalKey = "principal_key"
    }

    public init(
        task: String, period: String, unit: String, percent: Double, summary: String, measures: String?, problems: String?,
        nextSteps: String?,
        evidence: [EvidenceRef], revision: Int, reportedAt: String, reportedBy: String?, principal: String? = nil,
        principalKey: String? = nil, backfill: Bool? = nil
    ) {
        self.principal = principal
        self.principalKey = principalKey
        self.backfill = backfill
        self.task = task
        self.period = period
        self.unit = unit
        self.percent = percent
        self.summary = summary
        self.measures = measures
        self.problems = problems
        self.nextSteps = nextSteps
        self.evidence = evidence
        self.revision = revision
        self.reportedAt = reportedAt
        self.reportedBy = reportedBy
    }
}

extension ProgressReport: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        task = try members.required(CodingKeys.task)
        period = try members.required(CodingKeys.period)
        unit = try members.required(CodingKeys.unit)
        percent = try members.required(CodingKeys.percent)
        summary = try members.required(CodingKeys.summary)
        measures = try members.optional(CodingKeys.measures)
        problems = try members.optional(CodingKeys.problems)
        nextSteps = try members.optional(CodingKeys.nextSteps)
        evidence = try members.required(CodingKeys.evidence)
        revision = try members.required(CodingKeys.revision)
        reportedAt = try members.required(CodingKeys.reportedAt)
        reportedBy = try members.optional(CodingKeys.reportedBy)
        principal = try members.optional(CodingKeys.principal)
        principalKey = try members.optional(CodingKeys.principalKey)
        backfill = try members.optional(CodingKeys.backfill)
    }
}

public struct ProgressListRequest: Codable, Sendable {
    public var task: String?
    public var period: String?
    public var unit: String?
    /// Every revision instead of the latest of each (task, unit, month).
    public var history: Bool?
    public init(task: String? = nil, period: String? = nil, unit: String? = nil, history: Bool? = nil) {
        self.task = task
        self.period = period
        self.unit = unit
        self.history = history
    }
}

public struct DispatchOverviewRequest: Codable, Sendable {
    public var period: String
    public init(period: String) { self.period = period }
}

/// A task and one of its units.
public struct TaskUnit: Codable, Sendable, Equatable, Hashable {
    public var task: String
    public var unit: String
    public init(task: String, unit: String) {
        self.task = task
        self.unit = unit
    }
}

/// `dispatch.overview` reply: who has and has not reported for the month.
public struct DispatchOverviewReply: Codable, Sendable {
    public var period: String
    /// Every task/unit pair with a report for the month (lead and cooperating units).
    public var reported: [TaskUnit]
    /// Lead units that owe a report for the month and have none.
    public var missing: [TaskUnit]
    /// When the month's reports are due (the dispatch day of the next month).
    public var due: String

    public init(period: String, reported: [TaskUnit], missing: [TaskUnit], due: String) {
        self.period = period
        self.reported = reported
        self.missing = missing
        self.due = due
    }
}

public enum EscalationLevel: String, Codable, Sendable, CaseIterable {
    /// 通报
    case notice
    /// 约谈
    case interview
    /// 问责
    case accountability
}

public struct EscalationRecordRequest: Codable, Sendable, Equatable {
    public var unit: String
    public var level: EscalationLevel
    public var reason: String
    public var tasks: [String]?
    /// What the 约谈 or 问责 decided (optional: a 通报 needs none).
    public var details: AccountabilityDetails?
    public init(unit: String, level: EscalationLevel, reason: String, tasks: [String]? = nil, details: AccountabilityDetails? = nil) {
        self.unit = unit
        self.level = level
        self.reason = reason
        self.tasks = tasks
        self.details = details
    }
}

public struct Escalation: Codable, Sendable, Equatable {
    public var id: Int
    public var unit: String
    public var level: EscalationLevel
    public var reason: String
    public var tasks: [String]
    public var recordedAt: String
    public var recordedBy: String?
    /// The certificate that recorded it and its public key (PROTOCOL.md section 7); nil without keys.
    public var principal: String?
    public var principalKey: String?
    public var details: AccountabilityDetails? = nil
    /// The unit's first responsible person when it was recorded.
    public var responsiblePerson: ResponsiblePerson? = nil

    enum CodingKeys: String, CodingKey {
        case id, unit, level, reason, tasks, principal, details
        case recordedAt = "recorded_at"
        case recordedBy = "recorded_by"
        case principalKey = "principal_key"
        case responsiblePerson = "responsible_person"
    }

    public init(
        id: Int, unit: String, level: EscalationLevel, reason: String, tasks: [String], recordedAt: String, recordedBy: String?,
        principal: String? = nil, principalKey: String? = nil
    ) {
        self.principal = principal
        self.principalKey = principalKey
        self.id = id
        self.unit = unit
        self.level = level
        self.reason = reason
        self.tasks = tasks
        self.recordedAt = recordedAt
        self.recordedBy = recordedBy
    }
}

public struct EscalationListRequest: Codable, Sendable {
    public var unit: String?
    public init(unit: String? = nil) { self.unit = unit }
}

/// `registry.task.status_changed` body.
public struct TaskStatusChanged: Codable, Sendable, Equatable {
    public var task: String
    public var from: TaskStatus?
    public var to: TaskStatus
    public var leadUnits: [String]
    public var at: String

    enum CodingKeys: String, CodingKey {
        case task, from, to, at
        case leadUnits = "lead_units"
    }

    public init(task: String, from: TaskStatus?, to: TaskStatus, leadUnits: [String], at: String) {
        self.task = task
        self.from = from
        self.to = to
        self.leadUnits = leadUnits
        self.at = at
    }
}
