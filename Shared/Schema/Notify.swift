/// Notifications' request types and topics (PROTOCOL.md section 6, **notify**).
public enum NotifyTypes {
    public static let noticeList = RPC<NoticeListRequest, ListReply<Notice>>("notice.list", .read, allow: .readers)
    public static let noticeAck = RPC<NoticeAckRequest, Notice>("notice.ack", .write, allow: .units)
    public static let reportGenerate = RPC<ReportGenerateRequest, ReportGenerateReply>("report.generate", .read, allow: .readers)
    public static let channelList = RPC<Empty, ListReply<Channel>>("channel.list", .read, allow: .office)
    public static let channelSet = RPC<ChannelSetRequest, ListReply<Channel>>(
        "channel.set", .write, allow: .office, carriesSecrets: true)
    /// Extensions of the protocol's types: one notice with its deliveries, silences, delivery history.
    public static let noticeGet = RPC<NoticeGetRequest, Notice>("notice.get", .read, allow: .readers)
    public static let silenceSet = RPC<SilenceSetRequest, Silence>("silence.set", .write, allow: .office)
    public static let silenceList = RPC<Empty, ListReply<Silence>>("silence.list", .read, allow: .readers)
    public static let silenceExpire = RPC<SilenceExpireRequest, ListReply<Silence>>("silence.expire", .write, allow: .office)
    public static let deliveryList = RPC<DeliveryListRequest, ListReply<DeliveryAttempt>>("delivery.list", .read, allow: .office)

    public static let noticeIssued = "notify.notice.issued"
    /// A delivery channel was added, changed or removed (an extension of the protocol's topics).
    public static let channelUpdated = "notify.channel.updated"
    /// A notice was acknowledged.
    public static let noticeAcknowledged = "notify.notice.acknowledged"
    /// A delivery was given up after its last retry.
    public static let deliveryFailed = "notify.delivery.failed"
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
    /// A 督办单's items for a unit to answer.
    case supervisionOrder = "supervision_order"
    /// A 督办单 item unanswered past its reply deadline.
    case supervisionOverdue = "supervision_overdue"
    /// A breach's cause report to make (原因报告).
    case causeReportDue = "cause_report_due"
    /// A cause report still owed after its day.
    case causeReportOverdue = "cause_report_overdue"
    /// A key date of the plan ahead (六五环境日, 全国生态日, 生物多样性日).
    case keyDate = "key_date"
    /// A unit's 具体实施方案 due soon.
    case implementationPlanDue = "implementation_plan_due"
    /// A unit's 具体实施方案 still owed after its due day.
    case implementationPlanOverdue = "implementation_plan_overdue"
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
    /// The event that caused it, as `stream:seq`.
    public var event: String?
    public var period: String?

    public init(task: String? = nil, case: String? = nil, indicator: String? = nil, event: String? = nil, period: String? = nil) {
        self.task = task
        self.case = `case`
        self.indicator = indicator
        self.event = event
        self.period = period
    }
}

/// A notice's state: `open` until acknowledged, `resolved` when its condition ended, `silenced`
/// when a silence matched it (recorded, not delivered).
public enum NoticeState: String, Codable, Sendable, CaseIterable {
    case open, acknowledged, resolved, silenced
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
    /// Every unit it is addressed to has acknowledged it (`state` is `acknowledged`).
    public var acknowledged: Bool
    /// Who made the acknowledgement that completed it (for a one-unit notice, that unit's).
    public var ackBy: String?
    public var ackComment: String?
    public var state: NoticeState
    /// The condition it reports: one live notice per key (de-duplication).
    public var dedupKey: String
    /// How many times it was delivered again because someone had not acknowledged it.
    public var repeats: Int
    public var resolvedAt: String?
    /// Each unit's acknowledgement (签收), in the order they came.
    public var acks: [NoticeAck]
    /// The units that have not acknowledged it yet, while it is open (they are reminded) or
    /// silenced; empty once it is acknowledged or resolved.
    public var pendingUnits: [String]

    enum CodingKeys: String, CodingKey {
        case id, kind, severity, units, title, text, refs, acknowledged, state, repeats, acks
        case issuedAt = "issued_at"
        case ackBy = "ack_by"
        case ackComment = "ack_comment"
        case dedupKey = "dedup_key"
        case resolvedAt = "resolved_at"
        case pendingUnits = "pending_units"
    }

    public init(
        id: String, kind: NoticeKind, severity: Severity, units: [String], title: String, text: String, refs: NoticeRefs, issuedAt: String,
        acknowledged: Bool, ackBy: String?, ackComment: String?, state: NoticeState, dedupKey: String, repeats: Int, resolvedAt: String?,
        acks: [NoticeAck] = [], pendingUnits: [String] = []
    ) {
        self.id = id
        self.kind = kind
        self.severity = severity
        self.units = units
        self.title = title
        self.text = text
        self.refs = refs
        self.issuedAt = issuedAt
        self.acknowledged = acknowledged
        self.ackBy = ackBy
        self.ackComment = ackComment
        self.state = state
        self.dedupKey = dedupKey
        self.repeats = repeats
        self.resolvedAt = resolvedAt
        self.acks = acks
        self.pendingUnits = pendingUnits
    }

    /// Notices from before per-unit acknowledgement (events stored then, older services) have no
    /// `acks` or `pending_units`: they read as empty.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        kind = try c.decode(NoticeKind.self, forKey: .kind)
        severity = try c.decode(Severity.self, forKey: .severity)
        units = try c.decode([String].self, forKey: .units)
        title = try c.decode(String.self, forKey: .title)
        text = try c.decode(String.self, forKey: .text)
        refs = try c.decode(NoticeRefs.self, forKey: .refs)
        issuedAt = try c.decode(String.self, forKey: .issuedAt)
        acknowledged = try c.decode(Bool.self, forKey: .acknowledged)
        ackBy = try c.decodeIfPresent(String.self, forKey: .ackBy)
        ackComment = try c.decodeIfPresent(String.self, forKey: .ackComment)
        state = try c.decode(NoticeState.self, forKey: .state)
        dedupKey = try c.decode(String.self, forKey: .dedupKey)
        repeats = try c.decode(Int.self, forKey: .repeats)
        resolvedAt = try c.decodeIfPresent(String.self, forKey: .resolvedAt)
        acks = try c.decodeIfPresent([NoticeAck].self, forKey: .acks) ?? []
        pendingUnits = try c.decodeIfPresent([String].self, forKey: .pendingUnits) ?? []
    }
}

/// One unit's acknowledgement (签收) of a notice: which unit, when, with what comment, and who
/// made it (the envelope's `from` until authentication names the principal).
public struct NoticeAck: Codable, Sendable, Equatable {
    public var unit: String
    public var at: String
    public var comment: String?
    public var by: String?

    public init(unit: String, at: String, comment: String? = nil, by: String? = nil) {
        self.unit = unit
        self.at = at
        self.comment = comment
        self.by = by
    }
}

/// `notify.notice.acknowledged`: the notice as it stands after the acknowledgement, and that
/// acknowledgement as `ack`. One event per unit that acknowledges.
public struct NoticeAcknowledged: Codable, Sendable, Equatable {
    public var notice: Notice
    public var ack: NoticeAck

    enum CodingKeys: String, CodingKey { case ack }

    public init(notice: Notice, ack: NoticeAck) {
        self.notice = notice
        self.ack = ack
    }

    /// The notice's fields and `ack` beside them, in one object.
    public func encode(to encoder: any Encoder) throws {
        try notice.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ack, forKey: .ack)
    }

    public init(from decoder: any Decoder) throws {
        notice = try Notice(from: decoder)
        ack = try decoder.container(keyedBy: CodingKeys.self).decode(NoticeAck.self, forKey: .ack)
    }
}

/// A delivery attempt of a notice (or a digest of notices) to a channel.
public struct DeliveryAttempt: Codable, Sendable, Equatable {
    public var delivery: Int
    public var channel: String
    public var unit: String
    public var notices: [String]
    public var attempt: Int
    public var at: String
    public var ok: Bool
    public var status: Int?
    public var error: String?

    public init(
        delivery: Int, channel: String, unit: String, notices: [String], attempt: Int, at: String, ok: Bool, status: Int?, error: String?
    ) {
        self.delivery = delivery
        self.channel = channel
        self.unit = unit
        self.notices = notices
        self.attempt = attempt
        self.at = at
        self.ok = ok
        self.status = status
        self.error = error
    }
}

public struct DeliveryListRequest: Codable, Sendable {
    public var notice: String?
    public var channel: String?
    public init(notice: String? = nil, channel: String? = nil) {
        self.notice = notice
        self.channel = channel
    }
}

/// Which notices a silence holds back: every field given must match.
public struct SilenceMatchers: Codable, Sendable, Equatable {
    public var kind: NoticeKind?
    public var unit: String?
    public var task: String?
    public var indicator: String?
    public var `case`: String?

    public init(kind: NoticeKind? = nil, unit: String? = nil, task: String? = nil, indicator: String? = nil, case: String? = nil) {
        self.kind = kind
        self.unit = unit
        self.task = task
        self.indicator = indicator
        self.case = `case`
    }
}

public struct Silence: Codable, Sendable, Equatable {
    public var id: Int
    public var matchers: SilenceMatchers
    public var startsAt: String
    public var endsAt: String
    public var createdBy: String?
    public var comment: String

    enum CodingKeys: String, CodingKey {
        case id, matchers, comment
        case startsAt = "starts_at"
        case endsAt = "ends_at"
        case createdBy = "created_by"
    }

    public init(id: Int, matchers: SilenceMatchers, startsAt: String, endsAt: String, createdBy: String?, comment: String) {
        self.id = id
        self.matchers = matchers
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.createdBy = createdBy
        self.comment = comment
    }
}

/// `silence.set {matchers, starts_at?, ends_at, comment}`.
public struct SilenceSetRequest: Codable, Sendable {
    public var matchers: SilenceMatchers
    public var startsAt: String?
    public var endsAt: String
    public var comment: String

    enum CodingKeys: String, CodingKey {
        case matchers, comment
        case startsAt = "starts_at"
        case endsAt = "ends_at"
    }

    public init(matchers: SilenceMatchers, startsAt: String? = nil, endsAt: String, comment: String) {
        self.matchers = matchers
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.comment = comment
    }
}

public struct SilenceExpireRequest: Codable, Sendable {
    public var id: Int
    public init(id: Int) { self.id = id }
}

public struct NoticeGetRequest: Codable, Sendable {
    public var id: String
    public init(id: String) { self.id = id }
}

public struct NoticeListRequest: Codable, Sendable {
    public var unit: String?
    public var kind: NoticeKind?
    /// RFC 3339 time; only notices issued at or after it.
    public var since: String?
    public var until: String?
    public var state: NoticeState?
    /// Text to find in the title or text.
    public var q: String?
    public var task: String?
    /// Only notices this unit still has to acknowledge (those whose `pending_units` name it).
    public var pendingUnit: String?

    enum CodingKeys: String, CodingKey {
        case unit, kind, since, until, state, q, task
        case pendingUnit = "pending_unit"
    }

    public init(
        unit: String? = nil, kind: NoticeKind? = nil, since: String? = nil, until: String? = nil, state: NoticeState? = nil,
        q: String? = nil, task: String? = nil, pendingUnit: String? = nil
    ) {
        self.unit = unit
        self.kind = kind
        self.since = since
        self.until = until
        self.state = state
        self.q = q
        self.task = task
        self.pendingUnit = pendingUnit
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
    /// 收官报告: the whole plan at its end, period `YYYY-YYYY` (the plan's first and last years).
    case closing
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
    public init(title: String, markdown: String, csv: String) {
        self.title = title
        self.markdown = markdown
        self.csv = csv
    }
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

extension NoticeKind {
    /// How the office names the kind of a notice.
    public var label: String {
        switch self {
        case .deadlineApproaching: return "临近完成时限"
        case .overdue: return "任务逾期"
        case .reportMissing: return "未报送进展"
        case .indicatorBreach: return "指标预警"
        case .caseOverdue: return "整改逾期"
        case .escalation: return "通报约谈问责"
        case .escalationProposal: return "处理建议"
        case .monthlyDispatch: return "月调度"
        case .quarterlySupervision: return "季督办"
        case .annualNotification: return "年通报"
        case .supervisionOrder: return "督办单"
        case .supervisionOverdue: return "督办逾期"
        case .causeReportDue: return "原因报告"
        case .causeReportOverdue: return "原因报告逾期"
        case .keyDate: return "重要节点"
        case .implementationPlanDue: return "实施方案待报送"
        case .implementationPlanOverdue: return "实施方案逾期"
        }
    }

    /// A kind from its id or its Chinese name.
    public init?(text: String) {
        guard let kind = NoticeKind(rawValue: text) ?? NoticeKind.allCases.first(where: { $0.label == text }) else { return nil }
        self = kind
    }
}

extension Severity {
    /// How a notice's urgency reads.
    public var label: String {
        switch self {
        case .info: return "提示"
        case .warning: return "预警"
        case .critical: return "紧急"
        }
    }
}

extension NoticeState {
    /// How a notice's state reads.
    public var label: String {
        switch self {
        case .open: return "待签收"
        case .acknowledged: return "已签收"
        case .resolved: return "已解除"
        case .silenced: return "已静默"
        }
    }
}
