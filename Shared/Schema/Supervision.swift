/// 督办单: the quarterly supervision (季督办) and any the office issues ad hoc, item by item,
/// answered by the units and accepted or returned by the office (docs/registry.md, "督办单").
public enum SupervisionTypes {
    public static let issue = RPC<SupervisionIssueRequest, SupervisionOrder>("supervision.issue", .write, allow: .office)
    public static let reply = RPC<SupervisionReplyRequest, SupervisionOrder>("supervision.reply", .write, allow: .units)
    public static let review = RPC<SupervisionReviewRequest, SupervisionOrder>("supervision.review", .write, allow: .office)
    public static let list = RPC<SupervisionListRequest, ListReply<SupervisionOrder>>("supervision.list", .read, allow: .readers)

    /// The whole order, as issued.
    public static let issued = "registry.supervision.issued"
    /// `{order, item, unit, at}`: a unit answered an item.
    public static let replied = "registry.supervision.replied"
    /// `{order, item, unit, decision, comment, deadline}`: the office accepted or returned a reply.
    public static let reviewed = "registry.supervision.reviewed"
    /// `{order, item, unit, title, problem, tasks, cases, deadline}`: an item unanswered past its reply deadline.
    public static let overdue = "registry.supervision.overdue"
}

public enum SupervisionKind: String, Codable, Sendable, CaseIterable {
    /// 季督办: issued by the registry itself once a quarter's last reports are due.
    case quarterly
    /// Issued by the office when it sees fit.
    case adhoc

    public var label: String { self == .quarterly ? "季度督办" : "专项督办" }
}

public enum SupervisionItemState: String, Codable, Sendable, CaseIterable {
    /// Waiting for the unit's reply (again, after a return).
    case pending
    case replied
    case accepted
    case returned

    public var label: String {
        switch self {
        case .pending: return "待答复"
        case .replied: return "已答复待审核"
        case .accepted: return "已办结"
        case .returned: return "已退回待重新答复"
        }
    }

    /// Whether the unit still owes a reply.
    public var awaitsReply: Bool { self == .pending || self == .returned }
}

/// A unit's reply to an item: what it did and will do, with evidence.
public struct SupervisionReply: Codable, Sendable, Equatable {
    public var measures: String
    public var evidence: [EvidenceRef]
    public var at: String
    public var by: String?
    public init(measures: String, evidence: [EvidenceRef], at: String, by: String?) {
        self.measures = measures
        self.evidence = evidence
        self.at = at
        self.by = by
    }
}

public enum SupervisionDecision: String, Codable, Sendable, CaseIterable {
    case accept, `return`

    public var label: String { self == .accept ? "同意办结" : "退回" }
}

/// The office's decision on a reply.
public struct SupervisionReview: Codable, Sendable, Equatable {
    public var decision: SupervisionDecision
    public var comment: String
    public var at: String
    public var by: String?
    public init(decision: SupervisionDecision, comment: String, at: String, by: String?) {
        self.decision = decision
        self.comment = comment
        self.at = at
        self.by = by
    }
}

/// One item of a 督办单: a unit, the tasks or cases it concerns, the problem and the measure required.
public struct SupervisionItem: Codable, Sendable, Equatable {
    /// 1, 2, … within the order.
    public var no: Int
    public var unit: String
    public var tasks: [String]
    public var cases: [String]
    public var problem: String
    public var measure: String
    /// The day by which the unit must reply (the order's, or a later one set on a return).
    public var deadline: String
    public var state: SupervisionItemState
    /// Unanswered past its deadline.
    public var overdue: Bool
    public var reply: SupervisionReply?
    public var review: SupervisionReview?
    /// Every reply and decision, oldest first.
    public var replies: [SupervisionReply]?
    public var reviews: [SupervisionReview]?

    public init(
        no: Int, unit: String, tasks: [String], cases: [String], problem: String, measure: String, deadline: String,
        state: SupervisionItemState, overdue: Bool, reply: SupervisionReply? = nil, review: SupervisionReview? = nil,
        replies: [SupervisionReply]? = nil, reviews: [SupervisionReview]? = nil
    ) {
        self.no = no
        self.unit = unit
        self.tasks = tasks
        self.cases = cases
        self.problem = problem
        self.measure = measure
        self.deadline = deadline
        self.state = state
        self.overdue = overdue
        self.reply = reply
        self.review = review
        self.replies = replies
        self.reviews = reviews
    }
}

/// A 督办单 and its items.
public struct SupervisionOrder: Codable, Sendable, Equatable {
    /// `DB-2026-Q4` for a quarter's, `DB-2026-001` for the office's own.
    public var id: String
    public var kind: SupervisionKind
    /// `2026-Q4` for a quarter's.
    public var period: String?
    public var title: String
    public var replyDeadline: String
    public var issuedAt: String
    public var issuedBy: String?
    public var items: [SupervisionItem]

    enum CodingKeys: String, CodingKey {
        case id, kind, period, title, items
        case replyDeadline = "reply_deadline"
        case issuedAt = "issued_at"
        case issuedBy = "issued_by"
    }

    public init(
        id: String, kind: SupervisionKind, period: String?, title: String, replyDeadline: String, issuedAt: String, issuedBy: String?,
        items: [SupervisionItem]
    ) {
        self.id = id
        self.kind = kind
        self.period = period
        self.title = title
        self.replyDeadline = replyDeadline
        self.issuedAt = issuedAt
        self.issuedBy = issuedBy
        self.items = items
    }
}

/// An item as the office writes it in `supervision.issue`.
public struct SupervisionItemDraft: Codable, Sendable, Equatable {
    public var unit: String
    public var tasks: [String]?
    public var cases: [String]?
    public var problem: String
    public var measure: String
    public init(unit: String, tasks: [String]? = nil, cases: [String]? = nil, problem: String, measure: String) {
        self.unit = unit
        self.tasks = tasks
        self.cases = cases
        self.problem = problem
        self.measure = measure
    }
}

/// `supervision.issue {title, reply_deadline, items, kind?, period?}`: `kind: quarterly` with a
/// `period` (2026-Q4) and no items lists the quarter's lagging and overdue tasks, as the registry
/// does by itself; a quarter has one order.
public struct SupervisionIssueRequest: Codable, Sendable, Equatable {
    public var kind: SupervisionKind?
    public var period: String?
    public var title: String?
    public var replyDeadline: String
    public var items: [SupervisionItemDraft]?

    enum CodingKeys: String, CodingKey {
        case kind, period, title, items
        case replyDeadline = "reply_deadline"
    }

    public init(
        kind: SupervisionKind? = nil, period: String? = nil, title: String? = nil, replyDeadline: String,
        items: [SupervisionItemDraft]? = nil
    ) {
        self.kind = kind
        self.period = period
        self.title = title
        self.replyDeadline = replyDeadline
        self.items = items
    }
}

/// `supervision.reply {order, item, measures, evidence?}`: the item's unit answers.
public struct SupervisionReplyRequest: Codable, Sendable, Equatable {
    public var order: String
    public var item: Int
    public var measures: String
    public var evidence: [EvidenceRef]?
    public init(order: String, item: Int, measures: String, evidence: [EvidenceRef]? = nil) {
        self.order = order
        self.item = item
        self.measures = measures
        self.evidence = evidence
    }
}

/// `supervision.review {order, item, decision: accept|return, comment, deadline?}`: a return may
/// set a new reply deadline (else seven days on).
public struct SupervisionReviewRequest: Codable, Sendable, Equatable {
    public var order: String
    public var item: Int
    public var decision: SupervisionDecision
    public var comment: String
    public var deadline: String?
    public init(order: String, item: Int, decision: SupervisionDecision, comment: String, deadline: String? = nil) {
        self.order = order
        self.item = item
        self.decision = decision
        self.comment = comment
        self.deadline = deadline
    }
}

/// `supervision.list {order?, unit?, state?, year?, overdue?}`: orders, newest first, with only
/// the items that match.
public struct SupervisionListRequest: Codable, Sendable, Equatable {
    public var order: String?
    public var unit: String?
    public var state: SupervisionItemState?
    public var year: String?
    public var overdue: Bool?
    public init(
        order: String? = nil, unit: String? = nil, state: SupervisionItemState? = nil, year: String? = nil, overdue: Bool? = nil
    ) {
        self.order = order
        self.unit = unit
        self.state = state
        self.year = year
        self.overdue = overdue
    }
}

/// `registry.supervision.replied` / `reviewed` / `overdue` body.
public struct SupervisionItemEvent: Codable, Sendable, Equatable {
    public var order: String
    public var item: Int
    public var unit: String
    public var title: String
    public var problem: String
    public var tasks: [String]
    public var cases: [String]
    public var deadline: String
    public var state: SupervisionItemState
    public var decision: SupervisionDecision?
    public var comment: String?

    public init(
        order: String, item: Int, unit: String, title: String, problem: String, tasks: [String], cases: [String], deadline: String,
        state: SupervisionItemState, decision: SupervisionDecision? = nil, comment: String? = nil
    ) {
        self.order = order
        self.item = item
        self.unit = unit
        self.title = title
        self.problem = problem
        self.tasks = tasks
        self.cases = cases
        self.deadline = deadline
        self.state = state
        self.decision = decision
        self.comment = comment
    }
}
