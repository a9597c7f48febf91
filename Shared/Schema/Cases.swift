/// Case tracking's request types and topics (PROTOCOL.md section 6, **cases**).
public enum CaseTypes {
    public static let open = "case.open"
    public static let get = "case.get"
    public static let list = "case.list"
    public static let transition = "case.transition"
    public static let `import` = "case.import"
    public static let export = "case.export"

    public static let opened = "cases.case.opened"
    public static let transitioned = "cases.case.transitioned"
    public static let overdue = "cases.case.overdue"
}

public enum CaseSource: String, Codable, Sendable, CaseIterable {
    case centralInspection = "central_inspection"
    case yellowRiverWarning = "yellow_river_warning"
    case provincialInspection = "provincial_inspection"
    case naturalResourcesInspection = "natural_resources_inspection"
    case selfInspection = "self_inspection"
    case publicReport = "public_report"
    case sewerMisconnection = "sewer_misconnection"
    case outfall
    case evaporationPond = "evaporation_pond"
    case enforcementClue = "enforcement_clue"
    case other
}

public enum CaseState: String, Codable, Sendable, CaseIterable {
    case registered, assigned, rectifying
    case pendingAcceptance = "pending_acceptance"
    case accepted, closed
}

public enum CaseAction: String, Codable, Sendable, CaseIterable {
    case assign, start, submit, accept, reject, close, reopen

    /// The protocol's state machine: where `action` leads from `state`, or nil (`conflict`).
    public func target(from state: CaseState) -> CaseState? {
        switch (self, state) {
        case (.assign, .registered): return .assigned
        case (.start, .assigned): return .rectifying
        case (.submit, .rectifying): return .pendingAcceptance
        case (.accept, .pendingAcceptance): return .accepted
        case (.reject, .pendingAcceptance): return .rectifying
        case (.close, .accepted): return .closed
        case (.reopen, .closed): return .rectifying
        default: return nil
        }
    }
}

public struct Coordinates: Codable, Sendable, Equatable {
    public var lat: Double
    public var lon: Double
}

public struct CaseOpenRequest: Codable, Sendable, Equatable {
    public var source: CaseSource
    public var title: String
    public var unit: String
    public var deadline: String?
    public var description: String?
    public var task: String?
    public var batch: String?
    public var location: String?
    public var coordinates: Coordinates?
    public var externalRef: String?
    public var supervisingUnit: String?
    public var measures: String?

    enum CodingKeys: String, CodingKey {
        case source, title, unit, deadline, description, task, batch, location, coordinates, measures
        case externalRef = "external_ref"
        case supervisingUnit = "supervising_unit"
    }

    public init(source: CaseSource, title: String, unit: String, deadline: String? = nil, description: String? = nil, task: String? = nil, batch: String? = nil) {
        self.source = source
        self.title = title
        self.unit = unit
        self.deadline = deadline
        self.description = description
        self.task = task
        self.batch = batch
    }
}

/// One transition in a case's history.
public struct CaseTransition: Codable, Sendable, Equatable {
    public var action: String
    public var from: CaseState?
    public var to: CaseState
    public var actor: String
    public var at: String
    public var comment: String?
    public var evidence: [EvidenceRef]
}

/// A case with its whole file (一案一档).
public struct Case: Codable, Sendable, Equatable {
    public var id: String
    public var source: CaseSource
    public var title: String
    public var description: String?
    public var unit: String
    public var supervisingUnit: String?
    public var deadline: String?
    public var measures: String?
    public var task: String?
    public var batch: String?
    public var location: String?
    public var coordinates: Coordinates?
    public var externalRef: String?
    public var state: CaseState
    public var overdue: Bool
    public var evidence: [EvidenceRef]
    public var history: [CaseTransition]?
    public var openedAt: String
    public var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case id, source, title, description, unit, deadline, measures, task, batch, location, coordinates, state, overdue, evidence, history
        case supervisingUnit = "supervising_unit"
        case externalRef = "external_ref"
        case openedAt = "opened_at"
        case updatedAt = "updated_at"
    }
}

public struct CaseGetRequest: Codable, Sendable {
    public var id: String
    public init(id: String) { self.id = id }
}

public struct CaseListRequest: Codable, Sendable {
    public var status: CaseState?
    public var unit: String?
    public var source: CaseSource?
    public var batch: String?
    public var task: String?
    public var overdue: Bool?
    public init(status: CaseState? = nil, unit: String? = nil, source: CaseSource? = nil, batch: String? = nil, task: String? = nil, overdue: Bool? = nil) {
        self.status = status
        self.unit = unit
        self.source = source
        self.batch = batch
        self.task = task
        self.overdue = overdue
    }
}

public struct CaseTransitionRequest: Codable, Sendable, Equatable {
    public var id: String
    public var action: CaseAction
    public var comment: String?
    public var evidence: [EvidenceRef]?
    public init(id: String, action: CaseAction, comment: String? = nil, evidence: [EvidenceRef]? = nil) {
        self.id = id
        self.action = action
        self.comment = comment
        self.evidence = evidence
    }
}

/// `case.import`: each case is judged on its own, so they arrive as raw JSON.
public struct CaseImportRequest: Codable, Sendable {
    public var cases: [JSONValue]
    public init(cases: [JSONValue]) { self.cases = cases }
}

public struct CaseImportReply: Codable, Sendable {
    public var imported: [String]
    public var rejected: [RejectedItem]
}

public struct CaseExportRequest: Codable, Sendable {
    public var format: String
    public var status: CaseState?
    public var unit: String?
    public var source: CaseSource?
    public var batch: String?
    public var task: String?
    public var overdue: Bool?
}

public struct CaseExportReply: Codable, Sendable {
    public var format: String
    public var filename: String
    public var count: Int
    /// The document: CSV text (UTF-8 with BOM) for `csv`.
    public var content: String
}

/// `cases.case.transitioned` body.
public struct CaseTransitioned: Codable, Sendable, Equatable {
    public var id: String
    public var from: CaseState
    public var to: CaseState
    public var action: CaseAction
    public var actor: String
    public var comment: String?
}
