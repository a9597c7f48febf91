/// The bodies of the ledger's follow-through types (`case.update`, `case.visit`, `case.extend`,
/// `case.void`, `case.assign_batch`, `case.link`) and their events: a case that is worked, not only
/// moved (docs/cases.md, "Follow-through").

/// A deadline that moved, from what to what (either may be absent: a case without a deadline).
public struct DeadlineChange: Codable, Sendable, Equatable {
    public var from: String?
    public var to: String?
    public init(from: String?, to: String?) {
        self.from = from
        self.to = to
    }
}

/// A 实地督导 site visit as the case's history keeps it.
public struct SiteVisit: Codable, Sendable, Equatable {
    /// The day of the visit, `YYYY-MM-DD`.
    public var date: String
    public var inspectors: [String]
    /// The follow-up cases the visit opened.
    public var followUp: [String]

    enum CodingKeys: String, CodingKey {
        case date, inspectors
        case followUp = "follow_up"
    }

    public init(date: String, inspectors: [String], followUp: [String]) {
        self.date = date
        self.inspectors = inspectors
        self.followUp = followUp
    }
}

/// The latest progress update on a case (最新进展).
public struct CaseProgress: Codable, Sendable, Equatable {
    public var at: String
    public var text: String
    public var progress: Int?
    public var actor: String
    public init(at: String, text: String, progress: Int?, actor: String) {
        self.at = at
        self.text = text
        self.progress = progress
        self.actor = actor
    }
}

/// An extension a unit asked for and the office has not yet decided.
public struct ExtensionRequest: Codable, Sendable, Equatable {
    public var deadline: String
    public var reason: String
    public var by: String
    public var at: String
    public init(deadline: String, reason: String, by: String, at: String) {
        self.deadline = deadline
        self.reason = reason
        self.by = by
        self.at = at
    }
}

/// `case.update {id, text, progress?, evidence?}`.
public struct CaseUpdateRequest: Codable, Sendable, Equatable {
    public var id: String
    public var text: String
    public var progress: Int?
    public var evidence: [EvidenceRef]?
    public init(id: String, text: String, progress: Int? = nil, evidence: [EvidenceRef]? = nil) {
        self.id = id
        self.text = text
        self.progress = progress
        self.evidence = evidence
    }
}

/// A problem found on a site visit, registered as a follow-up case of the visited one.
public struct CaseFollowUp: Codable, Sendable, Equatable {
    public var title: String
    /// Defaults to the visited case's unit.
    public var unit: String?
    public var deadline: String?
    public var description: String?
    public var measures: String?
    public var location: String?
    public init(
        title: String, unit: String? = nil, deadline: String? = nil, description: String? = nil, measures: String? = nil,
        location: String? = nil
    ) {
        self.title = title
        self.unit = unit
        self.deadline = deadline
        self.description = description
        self.measures = measures
        self.location = location
    }
}

/// `case.visit {id, date, inspectors, findings, evidence?, follow_up?}`: photos go in `evidence`,
/// each with its sha256.
public struct CaseVisitRequest: Codable, Sendable, Equatable {
    public var id: String
    public var date: String
    public var inspectors: [String]
    public var findings: String
    public var evidence: [EvidenceRef]?
    public var followUp: [CaseFollowUp]?

    enum CodingKeys: String, CodingKey {
        case id, date, inspectors, findings, evidence
        case followUp = "follow_up"
    }

    public init(
        id: String, date: String, inspectors: [String], findings: String, evidence: [EvidenceRef]? = nil,
        followUp: [CaseFollowUp]? = nil
    ) {
        self.id = id
        self.date = date
        self.inspectors = inspectors
        self.findings = findings
        self.evidence = evidence
        self.followUp = followUp
    }
}

/// `case.visit` reply: the visited case and the numbers of the follow-up cases it opened.
public struct CaseVisitReply: Codable, Sendable, Equatable {
    public var `case`: Case
    public var opened: [String]
    public init(case item: Case, opened: [String]) {
        self.case = item
        self.opened = opened
    }
}

public enum CaseExtendAction: String, Codable, Sendable, CaseIterable {
    case request, grant, refuse

    public var label: String {
        switch self {
        case .request: return "申请延期"
        case .grant: return "同意延期"
        case .refuse: return "不同意延期"
        }
    }
}

/// `case.extend {id, action: request|grant|refuse, deadline?, reason}`: the unit requests a new
/// deadline with its reason; the office grants (the requested deadline, or another it names) or
/// refuses with a reason.
public struct CaseExtendRequest: Codable, Sendable, Equatable {
    public var id: String
    public var action: CaseExtendAction
    public var deadline: String?
    public var reason: String
    public init(id: String, action: CaseExtendAction, deadline: String? = nil, reason: String) {
        self.id = id
        self.action = action
        self.deadline = deadline
        self.reason = reason
    }
}

/// `case.void {id, reason}`.
public struct CaseVoidRequest: Codable, Sendable, Equatable {
    public var id: String
    public var reason: String
    public init(id: String, reason: String) {
        self.id = id
        self.reason = reason
    }
}

/// `case.assign_batch {batch, deadline?, comment?}`.
public struct CaseAssignBatchRequest: Codable, Sendable, Equatable {
    public var batch: String
    public var deadline: String?
    public var comment: String?
    public init(batch: String, deadline: String? = nil, comment: String? = nil) {
        self.batch = batch
        self.deadline = deadline
        self.comment = comment
    }
}

/// `case.assign_batch` reply: the cases assigned, and how many of the batch were past registration.
public struct CaseAssignBatchReply: Codable, Sendable, Equatable {
    public var batch: String
    public var assigned: [String]
    public var skipped: Int
    public var deadline: String?
    public init(batch: String, assigned: [String], skipped: Int, deadline: String?) {
        self.batch = batch
        self.assigned = assigned
        self.skipped = skipped
        self.deadline = deadline
    }
}

/// `case.link {id, related, comment?}`: links two similar cases both ways.
public struct CaseLinkRequest: Codable, Sendable, Equatable {
    public var id: String
    public var related: String
    public var comment: String?
    public init(id: String, related: String, comment: String? = nil) {
        self.id = id
        self.related = related
        self.comment = comment
    }
}

/// `cases.case.updated` body.
public struct CaseUpdated: Codable, Sendable, Equatable {
    public var id: String
    public var unit: String
    public var task: String?
    public var progress: Int?
    public var text: String
    public var at: String
    public init(id: String, unit: String, task: String?, progress: Int?, text: String, at: String) {
        self.id = id
        self.unit = unit
        self.task = task
        self.progress = progress
        self.text = text
        self.at = at
    }
}

/// `cases.case.visited` body.
public struct CaseVisited: Codable, Sendable, Equatable {
    public var id: String
    public var unit: String
    public var task: String?
    public var visit: SiteVisit
    public var findings: String
    public init(id: String, unit: String, task: String?, visit: SiteVisit, findings: String) {
        self.id = id
        self.unit = unit
        self.task = task
        self.visit = visit
        self.findings = findings
    }
}

/// `cases.case.deadline_changed` body. `by` is `extension`, `batch` or `import`.
public struct CaseDeadlineChanged: Codable, Sendable, Equatable {
    public var id: String
    public var unit: String
    public var task: String?
    public var from: String?
    public var to: String?
    public var reason: String?
    public var by: String
    public init(id: String, unit: String, task: String?, from: String?, to: String?, reason: String?, by: String) {
        self.id = id
        self.unit = unit
        self.task = task
        self.from = from
        self.to = to
        self.reason = reason
        self.by = by
    }
}

/// `cases.case.extension_requested` body: the office has a decision to make.
public struct CaseExtensionRequested: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var unit: String
    public var task: String?
    public var deadline: String?
    public var requestedDeadline: String
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case id, title, unit, task, deadline, reason
        case requestedDeadline = "requested_deadline"
    }

    public init(
        id: String, title: String, unit: String, task: String?, deadline: String?, requestedDeadline: String, reason: String
    ) {
        self.id = id
        self.title = title
        self.unit = unit
        self.task = task
        self.deadline = deadline
        self.requestedDeadline = requestedDeadline
        self.reason = reason
    }
}

extension CaseTransition {
    /// How the ledger names a step of a case's history.
    public static func label(ofAction action: String) -> String {
        switch action {
        case "open": return "登记"
        case "assign": return "交办"
        case "start": return "开始整改"
        case "submit": return "提交验收"
        case "accept": return "验收通过"
        case "reject": return "退回整改"
        case "close": return "销号"
        case "reopen": return "重新整改"
        case "void": return "作废"
        case "update": return "报送进展"
        case "visit": return "实地督导"
        case "extend_request": return "申请延期"
        case "extend_grant": return "同意延期"
        case "extend_refuse": return "不同意延期"
        case "link": return "关联问题"
        default: return action
        }
    }

    /// The step's name as the ledger writes it.
    public var actionLabel: String { Self.label(ofAction: action) }

    /// What the step carried besides its comment, in a line: the percent, the deadline moved, the visit.
    public var detailText: String {
        var parts: [String] = []
        if let progress { parts.append("进度 \(progress)%") }
        if let change = deadlineChange { parts.append("完成时限 \(change.from ?? "无") → \(change.to ?? "无")") }
        if let visit {
            parts.append("督导日期 \(visit.date)，督导人员 \(visit.inspectors.joined(separator: "、"))")
            if !visit.followUp.isEmpty { parts.append("新登记问题 \(visit.followUp.joined(separator: "、"))") }
        }
        return parts.joined(separator: "；")
    }
}
