/// Notifications' request types and topics (PROTOCOL.md section 6, **notify**).
public enum NotifyTypes {
    public static let noticeList = "notice.list"
    public static let noticeAck = "notice.ack"
    public static let reportGenerate = "report.generate"
    public static let channelList = "channel.list"
    public static let channelSet = "channel.set"

    public static let noticeIssued = "notify.notice.issued"
    /// A delivery channel was added, changed or removed (an extension of the protocol's topics).
    public static let channelUpdated = "notify.channel.updated"
}

public enum NoticeKind: String, Codable, Sendable, CaseIterable {
    case deadlineApproaching = "deadline_approaching"
    case overdue
    case reportMissing = "report_missing"
    case indicatorBreach = "indicator_breach"
    case caseOverdue = "case_overdue"
    case escalation
    case escalationProposal = "escalation_proposal"
    case monthlyDispatch = "monthly_dispatch"
    case quarterlySupervision = "quarterly_supervision"
    case annualNotification = "annual_notification"
}

public enum Severity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, warning, critical

    public static func < (a: Severity, b: Severity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

public struct NoticeRefs: Codable, Sendable, Equatable {
    public var task: String?
    public var `case`: String?
    public var indicator: String?
    public var event: String?
}

public struct Notice: Codable, Sendable, Equatable {
    public var id: String
    public var kind: NoticeKind
    public var severity: Severity
    public var units: [String]
    public var title: String
    public var text: String
    public var refs: NoticeRefs
    public var issuedAt: String
    public var acknowledged: Bool
    public var ackBy: String?
    public var ackComment: String?

    enum CodingKeys: String, CodingKey {
        case id, kind, severity, units, title, text, refs, acknowledged
        case issuedAt = "issued_at"
        case ackBy = "ack_by"
        case ackComment = "ack_comment"
    }
}

public struct NoticeListRequest: Codable, Sendable {
    public var unit: String?
    public var kind: NoticeKind?
    /// RFC 3339 time; only notices issued at or after it.
    public var since: String?
    public init(unit: String? = nil, kind: NoticeKind? = nil, since: String? = nil) {
        self.unit = unit
        self.kind = kind
        self.since = since
    }
}

public struct NoticeAckRequest: Codable, Sendable {
    public var id: String
    public var comment: String?
    public init(id: String, comment: String? = nil) {
        self.id = id
        self.comment = comment
    }
}

public enum ReportKind: String, Codable, Sendable, CaseIterable {
    case monthly, quarterly, annual
}

public struct ReportGenerateRequest: Codable, Sendable {
    public var kind: ReportKind
    public var period: String
    public init(kind: ReportKind, period: String) {
        self.kind = kind
        self.period = period
    }
}

public struct ReportGenerateReply: Codable, Sendable {
    public var title: String
    public var markdown: String
    public var csv: String
}

public enum ChannelKind: String, Codable, Sendable, CaseIterable {
    /// A plain JSON POST.
    case webhook
    /// WeCom (企业微信) group robot.
    case wecom
    /// DingTalk (钉钉) group robot.
    case dingtalk
    /// Append to a file, one JSON line a notice.
    case file
}

/// A delivery channel: where notices for some units and kinds go.
public struct Channel: Codable, Sendable, Equatable {
    public var name: String
    public var kind: ChannelKind
    /// `http://…` for webhooks, a file path for `file`.
    public var target: String
    /// Units whose notices go here; empty or absent means every unit.
    public var units: [String]?
    /// Notice kinds that go here; empty or absent means every kind.
    public var kinds: [NoticeKind]?
    public var minSeverity: Severity?
    /// Messages a minute the receiver accepts (WeCom and DingTalk robots: about 20).
    public var ratePerMinute: Int?
    public var enabled: Bool?

    enum CodingKeys: String, CodingKey {
        case name, kind, target, units, kinds, enabled
        case minSeverity = "min_severity"
        case ratePerMinute = "rate_per_minute"
    }

    public init(
        name: String, kind: ChannelKind, target: String, units: [String]? = nil, kinds: [NoticeKind]? = nil, minSeverity: Severity? = nil,
        ratePerMinute: Int? = nil, enabled: Bool? = nil
    ) {
        self.name = name
        self.kind = kind
        self.target = target
        self.units = units
        self.kinds = kinds
        self.minSeverity = minSeverity
        self.ratePerMinute = ratePerMinute
        self.enabled = enabled
    }
}

/// `channel.set`: creates or replaces a channel by name, or removes it with `remove: true`.
public struct ChannelSetRequest: Codable, Sendable, Equatable {
    public var channel: Channel
    public var remove: Bool?
    public init(channel: Channel, remove: Bool? = nil) {
        self.channel = channel
        self.remove = remove
    }
}

/// `notify.channel.updated` body.
public struct ChannelUpdated: Codable, Sendable, Equatable {
    public var channel: Channel
    public var removed: Bool
    public var by: String?

    public init(channel: Channel, removed: Bool, by: String?) {
        self.channel = channel
        self.removed = removed
        self.by = by
    }
}
