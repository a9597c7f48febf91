/// 群众举报: the public's reports, taken in as ledger cases (source `public_report`) with the
/// complainant's contact kept apart: readable by the office only, never in a case, an event, an
/// export or the public summary, and erased a retention period after the case ends
/// (docs/cases.md, "群众举报").
public enum ComplaintTypes {
    /// The office, or the web console (a gateway certificate acting for no unit) for the public.
    public static let submit = RPC<ComplaintSubmitRequest, ComplaintReceipt>(
        "complaint.submit", .write, allow: Access([.admin, .office, .reader]), carriesSecrets: true)
    /// A complainant looks up their report with the reference and the code they were given.
    public static let status = RPC<ComplaintStatusRequest, ComplaintStatus>(
        "complaint.status", .read, allow: Access([.admin, .office, .reader]), carriesSecrets: true)
    /// The complainant's contact: the office only.
    public static let contact = RPC<ComplaintContactRequest, ComplaintContact>("complaint.contact", .read, allow: .office)
    /// The office's reply to the complainant (answered through `complaint.status`).
    public static let reply = RPC<ComplaintReplyRequest, ComplaintStatus>("complaint.reply", .write, allow: .office)
    /// What may be published (典型案例, 接受社会监督): no personal data.
    public static let publicList = RPC<ComplaintPublicListRequest, ListReply<PublicComplaint>>(
        "complaint.public", .read, allow: Access([.admin, .office, .unit, .reader, .service]))

    /// `{id, at}`: the office replied to a complainant (the reply's text is public through `complaint.status`).
    public static let replied = "cases.complaint.replied"
}

/// How to reach the complainant, if they want to be reached.
public struct ComplaintContactDetails: Codable, Sendable, Equatable {
    public var name: String?
    public var phone: String?
    public init(name: String? = nil, phone: String? = nil) {
        self.name = name
        self.phone = phone
    }
}

/// `complaint.submit {title, description, location?, contact?: {name?, phone?}, unit?}`; `unit`
/// (the office only) names who must deal with it, else the ledger's first lead unit.
public struct ComplaintSubmitRequest: Codable, Sendable, Equatable {
    public var title: String
    public var description: String
    public var location: String?
    public var contact: ComplaintContactDetails?
    public var unit: String?
    public init(title: String, description: String, location: String? = nil, contact: ComplaintContactDetails? = nil, unit: String? = nil) {
        self.title = title
        self.description = description
        self.location = location
        self.contact = contact
        self.unit = unit
    }
}

/// What the complainant keeps: the case number and a code only they know.
public struct ComplaintReceipt: Codable, Sendable, Equatable {
    public var reference: String
    public var code: String
    public var submittedAt: String

    enum CodingKeys: String, CodingKey {
        case reference, code
        case submittedAt = "submitted_at"
    }

    public init(reference: String, code: String, submittedAt: String) {
        self.reference = reference
        self.code = code
        self.submittedAt = submittedAt
    }
}

public struct ComplaintStatusRequest: Codable, Sendable, Equatable {
    public var reference: String
    public var code: String
    public init(reference: String, code: String) {
        self.reference = reference
        self.code = code
    }
}

/// A complaint as its complainant sees it.
public struct ComplaintStatus: Codable, Sendable, Equatable {
    public var reference: String
    public var title: String
    public var state: CaseState
    public var stateLabel: String
    public var submittedAt: String
    public var closedAt: String?
    public var reply: String?
    public var repliedAt: String?

    enum CodingKeys: String, CodingKey {
        case reference, title, state, reply
        case stateLabel = "state_label"
        case submittedAt = "submitted_at"
        case closedAt = "closed_at"
        case repliedAt = "replied_at"
    }

    public init(
        reference: String, title: String, state: CaseState, submittedAt: String, closedAt: String?, reply: String?, repliedAt: String?
    ) {
        self.reference = reference
        self.title = title
        self.state = state
        self.stateLabel = state.label
        self.submittedAt = submittedAt
        self.closedAt = closedAt
        self.reply = reply
        self.repliedAt = repliedAt
    }
}

public struct ComplaintContactRequest: Codable, Sendable, Equatable {
    public var id: String
    public init(id: String) { self.id = id }
}

/// The contact as the office reads it; `erased_at` once the retention period has passed.
public struct ComplaintContact: Codable, Sendable, Equatable {
    public var id: String
    public var contact: ComplaintContactDetails?
    public var erasedAt: String?
    /// How the office's reply travels to the complainant's phone; nil before any reply.
    public var replyDelivery: ComplaintReplyDelivery?

    enum CodingKeys: String, CodingKey {
        case id, contact
        case erasedAt = "erased_at"
        case replyDelivery = "reply_delivery"
    }

    public init(id: String, contact: ComplaintContactDetails?, erasedAt: String?, replyDelivery: ComplaintReplyDelivery? = nil) {
        self.id = id
        self.contact = contact
        self.erasedAt = erasedAt
        self.replyDelivery = replyDelivery
    }
}

/// The reply's way to the complainant (`cases.complaintReplyURL`, the district's SMS platform):
/// `waiting` until the case is closed or voided, `queued` while attempts go on, `sent`, `failed`
/// after the last attempt, `no_channel` while no platform is configured, `no_phone` when the
/// complainant left no number (or it was erased).
public struct ComplaintReplyDelivery: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case waiting, queued, sent, failed
        case noChannel = "no_channel"
        case noPhone = "no_phone"

        /// The state in the office's words.
        public var label: String {
            switch self {
            case .waiting: return "待办结后发送"
            case .queued: return "发送中"
            case .sent: return "已发送"
            case .failed: return "发送失败"
            case .noChannel: return "未配置短信通道"
            case .noPhone: return "举报人未留电话"
            }
        }
    }

    public var state: State
    public var attempts: Int
    public var sentAt: String?
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case state, attempts
        case sentAt = "sent_at"
        case lastError = "last_error"
    }

    public init(state: State, attempts: Int, sentAt: String? = nil, lastError: String? = nil) {
        self.state = state
        self.attempts = attempts
        self.sentAt = sentAt
        self.lastError = lastError
    }
}

public struct ComplaintReplyRequest: Codable, Sendable, Equatable {
    public var id: String
    public var text: String
    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}

public struct ComplaintPublicListRequest: Codable, Sendable, Equatable {
    public var year: String?
    public init(year: String? = nil) { self.year = year }
}

/// A public report as it may be published: what, where, how far, the reply; nobody's name.
public struct PublicComplaint: Codable, Sendable, Equatable {
    public var reference: String
    public var title: String
    public var location: String?
    public var state: CaseState
    public var stateLabel: String
    public var submittedOn: String
    public var closedOn: String?
    public var reply: String?

    enum CodingKeys: String, CodingKey {
        case reference, title, location, state, reply
        case stateLabel = "state_label"
        case submittedOn = "submitted_on"
        case closedOn = "closed_on"
    }

    public init(
        reference: String, title: String, location: String?, state: CaseState, submittedOn: String, closedOn: String?, reply: String?
    ) {
        self.reference = reference
        self.title = title
        self.location = location
        self.state = state
        self.stateLabel = state.label
        self.submittedOn = submittedOn
        self.closedOn = closedOn
        self.reply = reply
    }
}
