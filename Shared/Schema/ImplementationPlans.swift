/// 具体实施方案: the plan's 保障措施 require every department to draw up its own implementation plan
/// within 3 months. One obligation per responsible unit, due 3 months after go-live (or on the
/// plan's own day), submitted with the document as evidence, accepted or returned by the office
/// (docs/registry.md, "具体实施方案").
public enum ImplementationPlanTypes {
    public static let submit = RPC<ImplementationPlanSubmitRequest, ImplementationPlan>("implementation_plan.submit", .write, allow: .units)
    public static let review = RPC<ImplementationPlanReviewRequest, ImplementationPlan>(
        "implementation_plan.review", .write, allow: .office)
    public static let list = RPC<ImplementationPlanListRequest, ListReply<ImplementationPlan>>(
        "implementation_plan.list", .read, allow: .readers)

    /// `ImplementationPlanEvent`: a unit submitted its plan (again, after a return).
    public static let submitted = "registry.implementation_plan.submitted"
    /// `ImplementationPlanEvent` with `action` and `comment`: the office accepted or returned it.
    public static let reviewed = "registry.implementation_plan.reviewed"
    /// `ImplementationPlanEvent`: still owed after its due day, published once per due day.
    public static let overdue = "registry.implementation_plan.overdue"
}

public enum ImplementationPlanState: String, Codable, Sendable, CaseIterable {
    /// Owed, never submitted.
    case pending
    /// Submitted, waiting for the office's review.
    case submitted
    case accepted
    /// Returned by the office: owed again by a new day.
    case returned

    public var label: String {
        switch self {
        case .pending: return "待报送"
        case .submitted: return "已报送待审核"
        case .accepted: return "已通过"
        case .returned: return "已退回待重新报送"
        }
    }

    /// Whether the unit still owes its plan.
    public var owed: Bool { self == .pending || self == .returned }
}

public enum ImplementationPlanAction: String, Codable, Sendable, CaseIterable {
    case accept, `return`

    public var label: String { self == .accept ? "审核通过" : "退回" }
}

/// A unit's submission: the plan's title and the document itself as evidence.
public struct ImplementationPlanSubmission: Codable, Sendable, Equatable {
    public var title: String
    public var evidence: [EvidenceRef]
    public var note: String?
    public var at: String
    public var by: String?
    /// Submitted after the day it was due.
    public var late: Bool

    public init(title: String, evidence: [EvidenceRef], note: String?, at: String, by: String?, late: Bool) {
        self.title = title
        self.evidence = evidence
        self.note = note
        self.at = at
        self.by = by
        self.late = late
    }
}

/// The office's decision on a submission.
public struct ImplementationPlanReview: Codable, Sendable, Equatable {
    public var action: ImplementationPlanAction
    public var comment: String
    public var at: String
    public var by: String?
    /// For a return: the day the plan is owed again.
    public var due: String?

    public init(action: ImplementationPlanAction, comment: String, at: String, by: String?, due: String? = nil) {
        self.action = action
        self.comment = comment
        self.at = at
        self.by = by
        self.due = due
    }
}

/// One unit's obligation and where it stands.
public struct ImplementationPlan: Codable, Sendable, Equatable {
    public var unit: String
    /// The day it is (or was) due: go-live plus the rule's months moved to a working day, the
    /// plan's own day, or the new day a return set.
    public var due: String
    public var state: ImplementationPlanState
    /// Owed and past its due day.
    public var overdue: Bool
    /// The plan's rule it follows (`implementation_plan`).
    public var rule: String
    public var submission: ImplementationPlanSubmission?
    public var review: ImplementationPlanReview?
    /// Every submission and decision, oldest first.
    public var submissions: [ImplementationPlanSubmission]
    public var reviews: [ImplementationPlanReview]

    public init(
        unit: String, due: String, state: ImplementationPlanState, overdue: Bool, rule: String,
        submissions: [ImplementationPlanSubmission] = [], reviews: [ImplementationPlanReview] = []
    ) {
        self.unit = unit
        self.due = due
        self.state = state
        self.overdue = overdue
        self.rule = rule
        self.submission = submissions.last
        self.review = reviews.last
        self.submissions = submissions
        self.reviews = reviews
    }
}

/// `implementation_plan.submit {unit, title, evidence, note?}`: the unit (or the office recording a
/// plan received on paper) submits; at least one evidence item, each with its `sha256`.
public struct ImplementationPlanSubmitRequest: Codable, Sendable, Equatable {
    public var unit: String
    public var title: String
    public var evidence: [EvidenceRef]
    public var note: String?

    public init(unit: String, title: String, evidence: [EvidenceRef], note: String? = nil) {
        self.unit = unit
        self.title = title
        self.evidence = evidence
        self.note = note
    }
}

/// `implementation_plan.review {unit, action: accept|return, comment, due?}`: a return needs its
/// reason in `comment` and makes the plan owed again by `due` (default: 15 days on, moved to a working day).
public struct ImplementationPlanReviewRequest: Codable, Sendable, Equatable {
    public var unit: String
    public var action: ImplementationPlanAction
    public var comment: String
    public var due: String?

    public init(unit: String, action: ImplementationPlanAction, comment: String, due: String? = nil) {
        self.unit = unit
        self.action = action
        self.comment = comment
        self.due = due
    }
}

/// `implementation_plan.list {unit?, state?, overdue?}`: the obligations, by unit in the plan's order.
public struct ImplementationPlanListRequest: Codable, Sendable, Equatable {
    public var unit: String?
    public var state: ImplementationPlanState?
    public var overdue: Bool?

    public init(unit: String? = nil, state: ImplementationPlanState? = nil, overdue: Bool? = nil) {
        self.unit = unit
        self.state = state
        self.overdue = overdue
    }
}

/// `registry.implementation_plan.submitted` / `reviewed` / `overdue` body.
public struct ImplementationPlanEvent: Codable, Sendable, Equatable {
    public var unit: String
    public var due: String
    public var state: ImplementationPlanState
    public var title: String?
    public var action: ImplementationPlanAction?
    public var comment: String?

    public init(
        unit: String, due: String, state: ImplementationPlanState, title: String? = nil, action: ImplementationPlanAction? = nil,
        comment: String? = nil
    ) {
        self.unit = unit
        self.due = due
        self.state = state
        self.title = title
        self.action = action
        self.comment = comment
    }
}
