/// 区纪委监委 专项督查、明察暗访 (the plan: 深化纪检监察监督与生态环境监管贯通协同……采取专项督查、明察暗访等方式):
/// an inspection recorded with its findings, each finding a ledger case (docs/cases.md).
public enum InspectionTypes {
    public static let record = RPC<InspectionRecordRequest, InspectionRecord>("inspection.record", .write, allow: .office)
    public static let list = RPC<Empty, ListReply<InspectionRecord>>("inspection.list", .read, allow: .readers)

    /// The inspection with the cases its findings opened.
    public static let recorded = "cases.inspection.recorded"
}

public enum InspectionKind: String, Codable, Sendable, CaseIterable {
    /// 专项督查
    case special
    /// 明察暗访
    case unannounced

    public var label: String { self == .special ? "专项督查" : "明察暗访" }
}

/// A problem the inspection found: registered as a case for `unit`.
public struct InspectionFinding: Codable, Sendable, Equatable {
    public var title: String
    public var unit: String
    public var deadline: String?
    public var description: String?
    public var location: String?
    public var task: String?
    public init(
        title: String, unit: String, deadline: String? = nil, description: String? = nil, location: String? = nil, task: String? = nil
    ) {
        self.title = title
        self.unit = unit
        self.deadline = deadline
        self.description = description
        self.location = location
        self.task = task
    }
}

/// `inspection.record {kind, date, agency?, summary, findings}` (findings ≤ 200).
public struct InspectionRecordRequest: Codable, Sendable, Equatable {
    public var kind: InspectionKind
    public var date: String
    public var agency: String?
    public var summary: String
    public var findings: [InspectionFinding]
    public init(kind: InspectionKind, date: String, agency: String? = nil, summary: String, findings: [InspectionFinding]) {
        self.kind = kind
        self.date = date
        self.agency = agency
        self.summary = summary
        self.findings = findings
    }
}

public struct InspectionRecord: Codable, Sendable, Equatable {
    /// `JWDC-2026-01`.
    public var id: String
    public var kind: InspectionKind
    public var date: String
    public var agency: String
    public var summary: String
    /// The batch its cases are in (the inspection's id).
    public var batch: String
    /// The cases its findings opened, in order.
    public var cases: [String]
    public var recordedAt: String
    public var recordedBy: String?

    enum CodingKeys: String, CodingKey {
        case id, kind, date, agency, summary, batch, cases
        case recordedAt = "recorded_at"
        case recordedBy = "recorded_by"
    }

    public init(
        id: String, kind: InspectionKind, date: String, agency: String, summary: String, batch: String, cases: [String],
        recordedAt: String, recordedBy: String?
    ) {
        self.id = id
        self.kind = kind
        self.date = date
        self.agency = agency
        self.summary = summary
        self.batch = batch
        self.cases = cases
        self.recordedAt = recordedAt
        self.recordedBy = recordedBy
    }
}
