/// 原因报告: a breach at a water section opens a cause report that the lead units of the tasks
/// behind the section's target owe within days (the plan: 发现水质异常情况，迅速查找原因并及时报告);
/// notify tracks it, reminds, and proposes escalation when it is late (docs/notify.md).
public enum CauseReportTypes {
    public static let report = RPC<CauseReportRequest, CauseReport>("cause.report", .write, allow: .units)
    public static let list = RPC<CauseListRequest, ListReply<CauseReport>>("cause.list", .read, allow: .readers)

    /// The whole cause report, when a breach opens it.
    public static let opened = "notify.cause.opened"
    /// The whole cause report, each time a unit reports.
    public static let reported = "notify.cause.reported"
}

public enum CauseReportState: String, Codable, Sendable, CaseIterable {
    case owed, reported

    public var label: String { self == .owed ? "待报告" : "已报告" }
}

/// One unit's account of a breach.
public struct CauseEntry: Codable, Sendable, Equatable {
    public var unit: String
    public var cause: String
    public var measures: String?
    public var evidence: [EvidenceRef]
    public var at: String
    public var by: String?
    public init(unit: String, cause: String, measures: String?, evidence: [EvidenceRef], at: String, by: String?) {
        self.unit = unit
        self.cause = cause
        self.measures = measures
        self.evidence = evidence
        self.at = at
        self.by = by
    }
}

public struct CauseReport: Codable, Sendable, Equatable {
    /// `YY-2026-0001`.
    public var id: String
    /// The alert that opened it (`class_exceeded:liuyiqiao:nh3n`) and what it said.
    public var alert: String
    public var station: String?
    public var parameter: String?
    public var message: String
    public var raisedAt: String
    /// The day by which every owing unit must report.
    public var due: String
    public var units: [String]
    public var state: CauseReportState
    public var overdue: Bool
    public var entries: [CauseEntry]
    /// Owing units that have not reported yet.
    public var pendingUnits: [String]

    enum CodingKeys: String, CodingKey {
        case id, alert, station, parameter, message, due, units, state, overdue, entries
        case raisedAt = "raised_at"
        case pendingUnits = "pending_units"
    }

    public init(
        id: String, alert: String, station: String?, parameter: String?, message: String, raisedAt: String, due: String, units: [String],
        state: CauseReportState, overdue: Bool, entries: [CauseEntry], pendingUnits: [String]
    ) {
        self.id = id
        self.alert = alert
        self.station = station
        self.parameter = parameter
        self.message = message
        self.raisedAt = raisedAt
        self.due = due
        self.units = units
        self.state = state
        self.overdue = overdue
        self.entries = entries
        self.pendingUnits = pendingUnits
    }
}

/// `cause.report {id, cause, measures?, evidence?, unit?}`: `unit` when the office records a unit's report.
public struct CauseReportRequest: Codable, Sendable, Equatable {
    public var id: String
    public var cause: String
    public var measures: String?
    public var evidence: [EvidenceRef]?
    public var unit: String?
    public init(id: String, cause: String, measures: String? = nil, evidence: [EvidenceRef]? = nil, unit: String? = nil) {
        self.id = id
        self.cause = cause
        self.measures = measures
        self.evidence = evidence
        self.unit = unit
    }
}

/// `cause.list {state?, unit?, station?, overdue?}`, newest first.
public struct CauseListRequest: Codable, Sendable, Equatable {
    public var state: CauseReportState?
    public var unit: String?
    public var station: String?
    public var overdue: Bool?
    public init(state: CauseReportState? = nil, unit: String? = nil, station: String? = nil, overdue: Bool? = nil) {
        self.state = state
        self.unit = unit
        self.station = station
        self.overdue = overdue
    }
}
