/// The task registry's request types and topics (PROTOCOL.md section 6, **registry**).
public enum RegistryTypes {
    public static let planGet = "plan.get"
    public static let unitList = "unit.list"
    public static let taskList = "task.list"
    public static let taskGet = "task.get"
    public static let progressReport = "progress.report"
    public static let progressList = "progress.list"
    public static let dispatchOverview = "dispatch.overview"
    public static let escalationRecord = "escalation.record"
    public static let escalationList = "escalation.list"

    public static let progressReported = "registry.progress.reported"
    public static let taskStatusChanged = "registry.task.status_changed"
    public static let escalationRecorded = "registry.escalation.recorded"
}

/// The working group's office: registers, accepts and closes cases, records escalations, runs the dispatch.
public let officeUnit = "专项工作组办公室"

/// A task's computed status.
public enum TaskStatus: String, Codable, Sendable, CaseIterable {
    case notStarted = "not_started"
    case onTrack = "on_track"
    case lagging
    case overdue
    case completed
}

/// A unit of the district as the plan names it.
public struct Unit: Codable, Sendable, Equatable {
    public var name: String
    /// `party`, `government`, `town`, `subdistrict`, `judicial`, `public_security`, `collective`, `office`, `group`.
    public var kind: String
    /// A collective name (区直各单位, 各涉河镇办) standing for several units.
    public var collective: Bool

    public init(name: String, kind: String, collective: Bool = false) {
        self.name = name
        self.kind = kind
        self.collective = collective
    }
}

/// A dated milestone inside a task's text.
public struct Milestone: Codable, Sendable, Equatable {
    public var date: String
    public var text: String

    public init(date: String, text: String) {
        self.date = date
        self.text = text
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

    enum CodingKeys: String, CodingKey {
        case id, parent, category, title, text, deadline, ongoing, milestones, targets, subtasks, status
        case leadUnits = "lead_units"
        case cooperatingUnits = "cooperating_units"
    }

    public init(
        id: String, parent: String? = nil, category: String, title: String, text: String, leadUnits: [String], cooperatingUnits: [String],
        deadline: String?, ongoing: Bool, milestones: [Milestone] = [], targets: [String] = [], subtasks: [String] = [], status: TaskStatus? = nil
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

/// One of the plan's targets (工作目标), as the registry holds it.
public struct PlanTarget: Codable, Sendable, Equatable {
    public var indicator: String
    public var text: String
    /// `at_least`, `equal`, `at_most`, `class_at_least`, `category_at_least`, `within_quota`, `meets_standard`.
    public var `operator`: String
    public var threshold: JSONValue?
    public var unit: String?
    public var tasks: [String]

    public init(indicator: String, text: String, operator: String, threshold: JSONValue?, unit: String?, tasks: [String]) {
        self.indicator = indicator
        self.text = text
        self.operator = `operator`
        self.threshold = threshold
        self.unit = unit
        self.tasks = tasks
    }
}

/// `plan.get` reply.
public struct PlanReply: Codable, Sendable {
    public var title: String
    public var start: String
    public var end: String
    public var categories: [String]
    public var tasks: [PlanTask]
    public var targets: [PlanTarget]
    public var rules: [String]

    public init(title: String, start: String, end: String, categories: [String], tasks: [PlanTask], targets: [PlanTarget], rules: [String]) {
        self.title = title
        self.start = start
        self.end = end
        self.categories = categories
        self.tasks = tasks
        self.targets = targets
        self.rules = rules
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

    enum CodingKeys: String, CodingKey {
        case task, period, unit, percent, summary, measures, problems, evidence, revision
        case nextSteps = "next_steps"
        case reportedAt = "reported_at"
        case reportedBy = "reported_by"
    }
}

public struct ProgressListRequest: Codable, Sendable {
    public var task: String?
    public var period: String?
    public var unit: String?
    public init(task: String? = nil, period: String? = nil, unit: String? = nil) {
        self.task = task
        self.period = period
        self.unit = unit
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
    public var reported: [TaskUnit]
    public var missing: [TaskUnit]
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
    public init(unit: String, level: EscalationLevel, reason: String, tasks: [String]? = nil) {
        self.unit = unit
        self.level = level
        self.reason = reason
        self.tasks = tasks
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

    enum CodingKeys: String, CodingKey {
        case id, unit, level, reason, tasks
        case recordedAt = "recorded_at"
        case recordedBy = "recorded_by"
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
}
