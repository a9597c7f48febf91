/// Case tracking's request types and topics (PROTOCOL.md section 6, **cases**).
public enum CaseTypes {
    public static let open = RPC<CaseOpenRequest, Case>("case.open", .write, allow: .units)
    public static let get = RPC<CaseGetRequest, Case>("case.get", .read, allow: .readers)
    public static let list = RPC<CaseListRequest, ListReply<Case>>("case.list", .read, allow: .readers)
    public static let transition = RPC<CaseTransitionRequest, Case>("case.transition", .write, allow: .units)
    public static let `import` = RPC<CaseImportRequest, CaseImportReply>("case.import", .write, allow: .units)
    /// Rows one `case.import` takes; they are stored in one transaction.
    public static let maxImportRows = 5000
    public static let export = RPC<CaseExportRequest, CaseExportReply>("case.export", .read, allow: .readers)
    /// Progress per batch (an extension of the protocol's types).
    public static let batches = RPC<CaseBatchesRequest, ListReply<BatchProgress>>("case.batches", .read, allow: .readers)

    // Follow-through (a case that is worked, not only moved): rules in docs/cases.md.
    /// A progress update on a case by its responsible unit (or the office).
    public static let update = RPC<CaseUpdateRequest, Case>("case.update", .write, allow: .units)
    /// A 实地督导 site-visit record, which may open follow-up cases.
    public static let visit = RPC<CaseVisitRequest, CaseVisitReply>("case.visit", .write, allow: .units)
    /// A deadline extension (延期): requested by the unit, granted or refused by the office.
    public static let extend = RPC<CaseExtendRequest, Case>("case.extend", .write, allow: .units)
    /// Voids a case registered by mistake; it stays in the ledger with its reason.
    public static let void = RPC<CaseVoidRequest, Case>("case.void", .write, allow: .units)
    /// Assigns every registered case of a batch at once, optionally with one deadline.
    public static let assignBatch = RPC<CaseAssignBatchRequest, CaseAssignBatchReply>("case.assign_batch", .write, allow: .units)
    /// Links similar cases (举一反三).
    public static let link = RPC<CaseLinkRequest, Case>("case.link", .write, allow: .units)

    public static let opened = "cases.case.opened"
    public static let transitioned = "cases.case.transitioned"
    public static let overdue = "cases.case.overdue"
    /// `{id, unit, task, progress, text, at}`: a progress update.
    public static let updated = "cases.case.updated"
    /// `{id, unit, task, date, inspectors, findings, follow_up}`: a site visit.
    public static let visited = "cases.case.visited"
    /// `{id, unit, task, from, to, reason, by}`: a deadline changed (extension, batch or import).
    public static let deadlineChanged = "cases.case.deadline_changed"
    /// `{id, unit, task, requested_deadline, reason}`: a unit asks for more time.
    public static let extensionRequested = "cases.case.extension_requested"
    /// The whole case after a round-trip edit (`case.import` of rows with 编号) changed any field.
    public static let edited = "cases.case.edited"
}

/// Where a case comes from. Each source has a number prefix, and a Chinese label the office uses.
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
    /// 省级专项督察 (the plan: 省级例行和专项督察问题; `provincial_inspection` is the routine one).
    case provincialSpecialInspection = "provincial_special_inspection"
    case landInspection = "land_inspection"
    case mineralInspection = "mineral_inspection"
    case farmlandHousing = "farmland_housing"
    /// Found during a 实地督导 site visit (`case.visit` follow-ups).
    case siteVisit = "site_visit"
    /// 区纪委监委 专项督查、明察暗访.
    case disciplineInspection = "discipline_inspection"
    case other

    /// The prefix of a case number: `HCJ-2026-0001`.
    public var numberPrefix: String {
        switch self {
        case .centralInspection: return "ZYDC"
        case .yellowRiverWarning: return "HHJS"
        case .provincialInspection: return "SJDC"
        case .naturalResourcesInspection: return "ZRDC"
        case .selfInspection: return "DPC"
        case .publicReport: return "JB"
        case .sewerMisconnection: return "HCJ"
        case .outfall: return "PWK"
        case .evaporationPond: return "PFC"
        case .enforcementClue: return "XSYS"
        case .provincialSpecialInspection: return "SJZX"
        case .landInspection: return "TDDC"
        case .mineralInspection: return "KCDC"
        case .farmlandHousing: return "GDJF"
        case .siteVisit: return "SDDD"
        case .disciplineInspection: return "JWDC"
        case .other: return "QT"
        }
    }

    /// How the office names the source.
    public var label: String {
        switch self {
        case .centralInspection: return "中央生态环境保护督察"
        case .yellowRiverWarning: return "黄河流域生态环境警示片"
        case .provincialInspection: return "省级生态环境保护例行督察"
        case .naturalResourcesInspection: return "国家自然资源督察"
        case .selfInspection: return "大排查大整治"
        case .publicReport: return "群众举报"
        case .sewerMisconnection: return "混错接点位"
        case .outfall: return "入河排污口"
        case .evaporationPond: return "废水排放场"
        case .enforcementClue: return "线索移送"
        case .provincialSpecialInspection: return "省级生态环境保护专项督察"
        case .landInspection: return "土地例行督察"
        case .mineralInspection: return "矿产资源督察"
        case .farmlandHousing: return "农村乱占耕地建房专项整治"
        case .siteVisit: return "实地督导"
        case .disciplineInspection: return "区纪委监委专项督查"
        case .other: return "其他"
        }
    }

    /// Other names offices write for a source (earlier labels among them, so old ledgers import).
    static let aliases: [String: CaseSource] = [
        "省级生态环境保护督察": .provincialInspection, "省级例行督察": .provincialInspection, "省级专项督察": .provincialSpecialInspection,
        "中央督察": .centralInspection, "警示片": .yellowRiverWarning, "自然资源督察": .naturalResourcesInspection,
        "明察暗访": .disciplineInspection, "纪委监委督查": .disciplineInspection, "乱占耕地建房": .farmlandHousing,
    ]

    /// A source from its id or its Chinese label.
    public init?(text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let source = CaseSource(rawValue: trimmed) {
            self = source
        } else if let source = CaseSource.allCases.first(where: { $0.label == trimmed }) ?? Self.aliases[trimmed] {
            self = source
        } else {
            return nil
        }
    }
}

extension CaseSource: TreeReadable {}

public enum CaseState: String, Codable, Sendable, CaseIterable {
    case registered, assigned, rectifying
    case pendingAcceptance = "pending_acceptance"
    case accepted, closed
    /// Registered by mistake and voided (作废) with a reason: kept, never deleted, never counted.
    case voided

    /// How the ledger names the state.
    public var label: String {
        switch self {
        case .registered: return "已登记"
        case .assigned: return "已交办"
        case .rectifying: return "整改中"
        case .pendingAcceptance: return "待验收"
        case .accepted: return "已验收"
        case .closed: return "已销号"
        case .voided: return "已作废"
        }
    }

    /// Whether the problem still waits to be fixed (for overdue: deadline passed and not yet accepted).
    public var isOpen: Bool { self != .accepted && self != .closed && self != .voided }
}

public enum CaseAction: String, Codable, Sendable, CaseIterable {
    case assign, start, submit, accept, reject, close, reopen
    /// Only through `case.void` (it needs a reason); `case.transition` refuses it.
    case void

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
        case (.void, let state) where state != .closed && state != .voided: return .voided
        default: return nil
        }
    }
}

public struct Coordinates: Codable, Sendable, Equatable {
    public var lat: Double
    public var lon: Double
    public init(lat: Double, lon: Double) {
        self.lat = lat
        self.lon = lon
    }
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
    /// A unit designated to accept the rectification besides the office.
    public var acceptanceUnit: String?
    public var measures: String?
    public var evidence: [EvidenceRef]?

    enum CodingKeys: String, CodingKey {
        case source, title, unit, deadline, description, task, batch, location, coordinates, measures, evidence
        case externalRef = "external_ref"
        case supervisingUnit = "supervising_unit"
        case acceptanceUnit = "acceptance_unit"
    }

    public init(
        source: CaseSource, title: String, unit: String, deadline: String? = nil, description: String? = nil, task: String? = nil,
        batch: String? = nil,
        location: String? = nil, coordinates: Coordinates? = nil, externalRef: String? = nil, supervisingUnit: String? = nil,
        acceptanceUnit: String? = nil, measures: String? = nil, evidence: [EvidenceRef]? = nil
    ) {
        self.source = source
        self.title = title
        self.unit = unit
        self.deadline = deadline
        self.description = description
        self.task = task
        self.batch = batch
        self.location = location
        self.coordinates = coordinates
        self.externalRef = externalRef
        self.supervisingUnit = supervisingUnit
        self.acceptanceUnit = acceptanceUnit
        self.measures = measures
        self.evidence = evidence
    }
}

/// One transition in a case's history; the first is `open` (from nothing to registered).
public struct CaseTransition: Codable, Sendable, Equatable {
    public var action: String
    public var from: CaseState?
    public var to: CaseState
    public var actor: String
    public var at: String
    public var comment: String?
    public var evidence: [EvidenceRef]
    /// The certificate that made the step and its public key (PROTOCOL.md section 7); nil without keys.
    public var principal: String?
    public var principalKey: String?
    /// `update`: the percent of the rectification done, as the unit reports it.
    public var progress: Int?
    /// Any step that moved the deadline: `extend_grant`, `assign` of a batch, an import, `deadline`.
    public var deadlineChange: DeadlineChange?
    /// `visit`: the site visit's record.
    public var visit: SiteVisit?

    enum CodingKeys: String, CodingKey {
        case action, from, to, actor, at, comment, evidence, principal, progress, visit
        case principalKey = "principal_key"
        case deadlineChange = "deadline_change"
    }

    public init(
        action: String, from: CaseState?, to: CaseState, actor: String, at: String, comment: String?, evidence: [EvidenceRef],
        principal: String? = nil, principalKey: String? = nil, progress: Int? = nil, deadlineChange: DeadlineChange? = nil,
        visit: SiteVisit? = nil
    ) {
        self.principal = principal
        self.principalKey = principalKey
        self.progress = progress
        self.deadlineChange = deadlineChange
        self.visit = visit
        self.action = action
        self.from = from
        self.to = to
        self.actor = actor
        self.at = at
        self.comment = comment
        self.evidence = evidence
    }
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
    public var acceptanceUnit: String?
    public var state: CaseState
    public var overdue: Bool
    /// Every piece of evidence attached, at opening and with each transition.
    public var evidence: [EvidenceRef]
    /// The whole history (一案一档), with `case.get`; absent in lists.
    public var history: [CaseTransition]?
    public var openedAt: String
    public var updatedAt: String
    /// When it was struck off (销号), if it is closed.
    public var closedAt: String?
    /// The deadline it was registered with, when it has moved since (延期 or the office's change).
    public var originalDeadline: String? = nil
    /// The latest progress update (最新进展), if any.
    public var latestUpdate: CaseProgress? = nil
    /// An extension the unit asked for that the office has not yet decided.
    public var pendingExtension: ExtensionRequest? = nil
    /// Similar cases linked to this one (举一反三), and follow-ups opened from its site visits.
    public var related: [String]? = nil
    /// Why it was voided, when it was.
    public var voidReason: String? = nil

    enum CodingKeys: String, CodingKey {
        case id, source, title, description, unit, deadline, measures, task, batch, location, coordinates, state, overdue, evidence, history
        case related
        case supervisingUnit = "supervising_unit"
        case externalRef = "external_ref"
        case acceptanceUnit = "acceptance_unit"
        case openedAt = "opened_at"
        case updatedAt = "updated_at"
        case closedAt = "closed_at"
        case originalDeadline = "original_deadline"
        case latestUpdate = "latest_update"
        case pendingExtension = "pending_extension"
        case voidReason = "void_reason"
    }

    public init(
        id: String, source: CaseSource, title: String, description: String?, unit: String, supervisingUnit: String?, deadline: String?,
        measures: String?, task: String?, batch: String?, location: String?, coordinates: Coordinates?, externalRef: String?,
        acceptanceUnit: String?,
        state: CaseState, overdue: Bool, evidence: [EvidenceRef], history: [CaseTransition]?, openedAt: String, updatedAt: String,
        closedAt: String?
    ) {
        self.id = id
        self.source = source
        self.title = title
        self.description = description
        self.unit = unit
        self.supervisingUnit = supervisingUnit
        self.deadline = deadline
        self.measures = measures
        self.task = task
        self.batch = batch
        self.location = location
        self.coordinates = coordinates
        self.externalRef = externalRef
        self.acceptanceUnit = acceptanceUnit
        self.state = state
        self.overdue = overdue
        self.evidence = evidence
        self.history = history
        self.openedAt = openedAt
        self.updatedAt = updatedAt
        self.closedAt = closedAt
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
    public init(
        status: CaseState? = nil, unit: String? = nil, source: CaseSource? = nil, batch: String? = nil, task: String? = nil,
        overdue: Bool? = nil
    ) {
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

/// `case.import`: each case is judged on its own, so they arrive as raw JSON. A case that carries
/// `id` (the ledger's 编号, as an export writes it) is a round-trip edit of that case: the fields it
/// carries replace the stored ones ("" or null clears an optional one), its `state` is compared and
/// never applied. `dry_run` judges everything and writes nothing.
public struct CaseImportRequest: Codable, Sendable {
    public var cases: [JSONValue]
    public var dryRun: Bool?
    enum CodingKeys: String, CodingKey {
        case cases
        case dryRun = "dry_run"
    }
    public init(cases: [JSONValue], dryRun: Bool? = nil) {
        self.cases = cases
        self.dryRun = dryRun
    }
}

/// One field a round-trip edit changes (or would change, in a dry run): old and new as text.
public struct CaseFieldChange: Codable, Sendable, Equatable {
    public var field: String
    public var from: String?
    public var to: String?
    public init(field: String, from: String?, to: String?) {
        self.field = field
        self.from = from
        self.to = to
    }
}

/// A case a round-trip edit changes, with its request index.
public struct CaseImportChange: Codable, Sendable, Equatable {
    public var index: Int
    public var id: String
    public var changes: [CaseFieldChange]
    public init(index: Int, id: String, changes: [CaseFieldChange]) {
        self.index = index
        self.id = id
        self.changes = changes
    }
}

/// Something said about an accepted line that is not applied: a differing 状态.
public struct CaseImportNote: Codable, Sendable, Equatable {
    public var index: Int
    public var id: String
    public var message: String
    public init(index: Int, id: String, message: String) {
        self.index = index
        self.id = id
        self.message = message
    }
}

/// `case.import` reply: the numbers given to the stored cases (in order), and each refused one;
/// for round-trip edits, the cases changed (with what changed), those already identical, and notes.
/// In a dry run `imported` holds "" for each case that would be opened.
public struct CaseImportReply: Codable, Sendable {
    public var imported: [String]
    public var rejected: [RejectedItem]
    public var updated: [CaseImportChange]?
    public var unchanged: [String]?
    public var notes: [CaseImportNote]?
    public var dryRun: Bool?
    enum CodingKeys: String, CodingKey {
        case imported, rejected, updated, unchanged, notes
        case dryRun = "dry_run"
    }
    public init(
        imported: [String], rejected: [RejectedItem], updated: [CaseImportChange]? = nil, unchanged: [String]? = nil,
        notes: [CaseImportNote]? = nil, dryRun: Bool? = nil
    ) {
        self.imported = imported
        self.rejected = rejected
        self.updated = updated
        self.unchanged = unchanged
        self.notes = notes
        self.dryRun = dryRun
    }
}

public struct CaseExportRequest: Codable, Sendable {
    /// `csv`.
    public var format: String
    public var status: CaseState?
    public var unit: String?
    public var source: CaseSource?
    public var batch: String?
    public var task: String?
    public var overdue: Bool?

    public init(
        format: String = "csv", status: CaseState? = nil, unit: String? = nil, source: CaseSource? = nil, batch: String? = nil,
        task: String? = nil, overdue: Bool? = nil
    ) {
        self.format = format
        self.status = status
        self.unit = unit
        self.source = source
        self.batch = batch
        self.task = task
        self.overdue = overdue
    }

    public var filters: CaseListRequest {
        CaseListRequest(status: status, unit: unit, source: source, batch: batch, task: task, overdue: overdue)
    }
}

public struct CaseExportReply: Codable, Sendable {
    public var format: String
    public var filename: String
    public var count: Int
    /// The document: CSV text (UTF-8 with BOM, Chinese headers) for `csv`.
    public var content: String
    public init(format: String, filename: String, count: Int, content: String) {
        self.format = format
        self.filename = filename
        self.count = count
        self.content = content
    }
}

/// `case.batches {source?}` reply item: how far a batch has come (how many of the 237 points are closed).
public struct BatchProgress: Codable, Sendable, Equatable {
    public var batch: String
    public var total: Int
    public var closed: Int
    public var overdue: Int
    public var byState: [String: Int]

    enum CodingKeys: String, CodingKey {
        case batch, total, closed, overdue
        case byState = "by_state"
    }

    public init(batch: String, total: Int, closed: Int, overdue: Int, byState: [String: Int]) {
        self.batch = batch
        self.total = total
        self.closed = closed
        self.overdue = overdue
        self.byState = byState
    }
}

public struct CaseBatchesRequest: Codable, Sendable {
    public var source: CaseSource?
    public init(source: CaseSource? = nil) { self.source = source }
}

/// `cases.case.overdue` body.
public struct CaseOverdue: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var unit: String
    public var deadline: String
    public var state: CaseState
    public var task: String?
    public var source: CaseSource
    public init(id: String, title: String, unit: String, deadline: String, state: CaseState, task: String?, source: CaseSource) {
        self.id = id
        self.title = title
        self.unit = unit
        self.deadline = deadline
        self.state = state
        self.task = task
        self.source = source
    }
}

/// `cases.case.transitioned` body.
public struct CaseTransitioned: Codable, Sendable, Equatable {
    public var id: String
    public var from: CaseState
    public var to: CaseState
    public var action: CaseAction
    public var actor: String
    public var comment: String?
    public var unit: String
    public var task: String?

    public init(
        id: String, from: CaseState, to: CaseState, action: CaseAction, actor: String, comment: String?, unit: String, task: String?
    ) {
        self.id = id
        self.from = from
        self.to = to
        self.action = action
        self.actor = actor
        self.comment = comment
        self.unit = unit
        self.task = task
    }
}
