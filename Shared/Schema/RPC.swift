/// Whether a request type changes state. Writes take an idempotency key (PROTOCOL.md section 5)
/// and run in the service's one serial lane; reads run beside it.
public enum RequestKind: String, Codable, Sendable {
    case read
    case write
}

/// A request type as a value: its wire name and kind, whatever its body and reply.
public protocol RequestDeclaration: Sendable {
    var name: String { get }
    var kind: RequestKind { get }
    /// The longest text field it takes, in characters; nil when its handler checks every field itself.
    var textLimit: Int? { get }
    /// Who may call it (PROTOCOL.md section 7); the handler adds the unit rules.
    var access: Access { get }
    /// Its body may hold secrets (a robot's key in a channel's URL): the audit trail keeps its
    /// digest, not its text.
    var carriesSecrets: Bool { get }
    /// The body's type: what decodes it by declaration alone (a request table of every type, the fuzzers).
    var bodyType: any (Codable & Sendable).Type { get }
    /// The reply's type (the fuzzers read arbitrary bytes as every reply a client decodes).
    var replyType: any (Codable & Sendable).Type { get }
}

/// One request type, declared once: its wire name, the body it takes, the reply it gives, and
/// whether it changes state, and who may call it. The server's registration (`HandlerTable.on`), the client's typed
/// `call`, idempotency keys, `sys.types`, the CLI and docs/protocol.md all read this one
/// declaration, so they cannot drift apart.
public struct RPC<Body: Codable & Sendable, Reply: Codable & Sendable>: RequestDeclaration {
    public let name: String
    public let kind: RequestKind
    public let textLimit: Int?
    public let access: Access
    public let carriesSecrets: Bool

    /// `allow` has no default: a type nobody has decided about cannot be declared, so cannot be called.
    public init(
        _ name: String, _ kind: RequestKind, allow access: Access, body: Body.Type = Body.self, reply: Reply.Type = Reply.self,
        textLimit: Int? = TextLimits.defaultCharacters, carriesSecrets: Bool = false
    ) {
        self.name = name
        self.kind = kind
        self.access = access
        self.carriesSecrets = carriesSecrets
        self.textLimit = textLimit
    }

    public var bodyType: any (Codable & Sendable).Type { Body.self }
    public var replyType: any (Codable & Sendable).Type { Reply.self }
}

/// Every request type of the protocol, by service.
public enum RequestCatalog {
    /// What every service answers.
    public static let system: [any RequestDeclaration] = [
        SystemTypes.ping, SystemTypes.types, SystemTypes.eventsSince, SystemTypes.auditList, SystemTypes.auditVerify,
    ]

    /// Each service's own request types (besides `system`).
    public static let registry: [any RequestDeclaration] = [
        RegistryTypes.planGet, RegistryTypes.planLoad, RegistryTypes.unitList, RegistryTypes.taskList, RegistryTypes.taskGet,
        RegistryTypes.progressReport, RegistryTypes.progressList, RegistryTypes.dispatchOverview, RegistryTypes.escalationRecord,
        RegistryTypes.escalationList, RegistryTypes.taskAccept, RegistryTypes.taskReturn, SupervisionTypes.issue, SupervisionTypes.reply,
        SupervisionTypes.review, SupervisionTypes.list, AccountabilityTypes.responsibleSet, AccountabilityTypes.responsibleList,
        ImplementationPlanTypes.submit, ImplementationPlanTypes.review, ImplementationPlanTypes.list,
    ]
    public static let ingest: [any RequestDeclaration] = [
        IngestTypes.indicatorList, IngestTypes.indicatorGet, IngestTypes.indicatorReport, IngestTypes.stationList,
        IngestTypes.readingSubmit, IngestTypes.waterClass, IngestTypes.airAnnual, IngestTypes.findingList, ReadingsTypes.query,
    ]
    public static let cases: [any RequestDeclaration] = [
        CaseTypes.open, CaseTypes.get, CaseTypes.list, CaseTypes.transition, CaseTypes.import, CaseTypes.export, CaseTypes.batches,
        CaseTypes.update, CaseTypes.visit, CaseTypes.extend, CaseTypes.void, CaseTypes.assignBatch, CaseTypes.link,
        ComplaintTypes.submit, ComplaintTypes.status, ComplaintTypes.contact, ComplaintTypes.reply, ComplaintTypes.publicList,
        InspectionTypes.record, InspectionTypes.list,
    ]
    public static let notify: [any RequestDeclaration] = [
        NotifyTypes.noticeList, NotifyTypes.noticeGet, NotifyTypes.noticeAck, NotifyTypes.reportGenerate, NotifyTypes.channelList,
        NotifyTypes.channelSet, NotifyTypes.silenceSet, NotifyTypes.silenceList, NotifyTypes.silenceExpire, NotifyTypes.deliveryList,
        CauseReportTypes.report, CauseReportTypes.list,
    ]

    /// All of them.
    public static let all: [any RequestDeclaration] = system + registry + ingest + cases + notify

    /// A table that decodes the body of every declared type, as a server that answered them all would.
    public static func typeTable() -> RequestTypeTable {
        var table = RequestTypeTable()
        for declaration in all { table.register(declaration.name, body: declaration.bodyType) }
        return table
    }

    /// A request type by its wire name.
    public static let byName: [String: any RequestDeclaration] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
}
