import Formats
import Foundation
import GRDB
import Logging
import Schema
import ServiceKit
import ServiceLifecycle

/// Case tracking: the rectification ledger (整改台账) from registration to 验收销号.
public struct CasesService: DubanService {
    public static let name = ServiceName.cases
    public static let topics = [
        CaseTypes.opened, CaseTypes.transitioned, CaseTypes.overdue, CaseTypes.updated, CaseTypes.visited, CaseTypes.deadlineChanged,
        CaseTypes.extensionRequested, CaseTypes.edited, ComplaintTypes.replied, InspectionTypes.recorded,
    ]

    let store: ServiceStore
    let clock: ServiceClock
    let logger: Logger
    let tick: Duration
    let peers: PeerClients
    let directory: RegistryDirectory
    /// Days a complainant's contact is kept after the case ends (`cases.complaintRetentionDays`).
    let complaintRetentionDays: Int
    /// The SMS platform that carries replies to complainants (`cases.complaintReplyURL`), if any.
    let complaintReplyURL: String?

    public static func migrations(_ migrator: inout DatabaseMigrator) {
        CasesStore.migrations(&migrator)
        ComplaintStore.migrations(&migrator)
        InspectionStore.migrations(&migrator)
        ComplaintReplyStore.migrations(&migrator)
    }

    public init(context: ServiceContext) async throws {
        store = try context.store
        clock = context.clock
        logger = context.logger
        tick = .milliseconds(Int(context.deployment.tickSeconds * 1000))
        complaintRetentionDays = context.deployment.complaintRetentionDays
        complaintReplyURL = context.deployment.complaintReplyURL
        // The registry is asked only by the directory, in the background: no handler waits on it.
        let peers = try await PeerClients(deployment: context.deployment, peers: [.registry], from: "cases", logger: context.logger)
        self.peers = peers
        context.metrics.onReadiness { await peers.readiness() }
        directory = try RegistryDirectory(
            client: peers[.registry], events: context.deployment[.registry].events, store: try context.store, logger: context.logger)
        await directory.prime()
    }

    public func backgroundServices() -> [any Service] {
        let replies: [any Service] =
            complaintReplyURL.map {
                [ComplaintReplySender(url: $0, store: store, clock: clock, interval: tick, logger: logger)]
            } ?? []
        return [
            // Shut down in reverse: the directory stops before the clients it uses close.
            peers, directory,
            PeriodicTask(name: "case-overdue", interval: tick, logger: logger) { [store, clock] in
                try await Self.markOverdue(store: store, now: clock.now())
            },
            PeriodicTask(name: "complaint-erasure", interval: tick, logger: logger) {
                [store, clock, logger, complaintRetentionDays] in
                let now = clock.now()
                let cutoff = Timestamp.format(now.addingTimeInterval(-Double(complaintRetentionDays) * 86_400))
                let erased = try await store.write { db, _ in try ComplaintStore.erase(db, endedBefore: cutoff, now: Timestamp.format(now))
                }
                if erased > 0 {
                    logger.notice("complainants' contacts erased after the retention period", metadata: ["count": "\(erased)"])
                }
            },
        ] + replies
    }

    /// Publishes `cases.case.overdue` once for each case whose deadline has passed unresolved.
    static func markOverdue(store: ServiceStore, now: Date) async throws {
        let today = Timestamp.districtDate(now)
        let at = Timestamp.format(now)
        try await store.write { db, events in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM cases WHERE deadline IS NOT NULL AND deadline < ? AND state NOT IN ('accepted', 'closed', 'voided')
                    AND overdue_notified_at IS NULL ORDER BY id
                    """, arguments: [today])
            for row in rows {
                let item = CasesStore.makeCase(row, now: now, history: nil, evidence: [])
                try db.execute(sql: "UPDATE cases SET overdue_notified_at = ? WHERE id = ?", arguments: [at, item.id])
                try events.emit(
                    CaseTypes.overdue,
                    CaseOverdue(
                        id: item.id, title: item.title, unit: item.unit, deadline: item.deadline ?? "", state: item.state, task: item.task,
                        source: item.source))
            }
        }
    }

    public func register(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let directory = self.directory
        registerFollowThrough(&handlers)
        registerComplaints(&handlers)
        registerInspections(&handlers)

        handlers.on(CaseTypes.open) { request, context in
            let registry = try directory.lookup(unit: request.unit, task: request.task)
            try Self.requireOffice(context, registry)
            try Self.validate(request, registry: registry, field: "body")
            let now = clock.now()
            return try await context.write { db, events in
                try Self.open(
                    request, db: db, events: &events, actor: context.from ?? registry.office, principal: context.caller.principal, now: now)
            }
        }

        handlers.on(CaseTypes.import) { request, context in
            let registry = try directory.lookup()
            try Self.requireOffice(context, registry)
            guard request.cases.count <= CaseTypes.maxImportRows else {
                throw ErrorBody.invalidArgument(
                    "每次导入最多 \(CaseTypes.maxImportRows) 件问题，本次有 \(request.cases.count) 件", field: "body.cases")
            }
            // Rows naming a 编号 edit that case (the ledger coming back after an export): CaseRoundTrip.
            let (edits, opening, editRejected) = CaseRoundTrip.edits(request.cases)
            var accepted: [(Int, CaseOpenRequest)] = []
            var rejected: [RejectedItem] = editRejected
            for (index, raw) in opening {
                do {
                    let item = try raw.decode(as: CaseOpenRequest.self)
                    _ = try directory.lookup(unit: item.unit, task: item.task)
                    try Self.validate(item, registry: directory.current ?? registry, field: "body.cases[\(index)]")
                    accepted.append((index, item))
                } catch let error as DecodingError {
                    var body = WireCoding.describe(error)
                    body.field = "body.cases[\(index)]" + (body.field.map { $0.isEmpty ? "" : ".\($0)" } ?? "")
                    rejected.append(RejectedItem(index: index, code: body.code, message: body.message, field: body.field))
                } catch let error as ErrorBody {
                    rejected.append(RejectedItem(index: index, code: error.code, message: error.message, field: error.field))
                }
            }
            let now = clock.now()
            let actor = context.from ?? registry.office
            let toStore = accepted
            let dryRun = request.dryRun == true
            let snapshot = directory.current ?? registry
            let principal = context.caller.principal
            @Sendable func run(_ db: Database, _ events: inout EventBuffer) throws -> CaseImportReply {
                var imported: [String] = []
                var refused: [RejectedItem] = []
                for (index, item) in toStore {
                    // A duplicate external reference is refused on its own; the others still go in.
                    if let existing = try Self.existing(db, item) {
                        refused.append(
                            RejectedItem(
                                index: index, code: .conflict, message: "已在整改台账中，编号 \(existing)",
                                field: "body.cases[\(index)].external_ref"))
                        continue
                    }
                    imported.append(
                        dryRun ? "" : try Self.open(item, db: db, events: &events, actor: actor, principal: principal, now: now).id)
                }
                let outcome = try CaseRoundTrip.apply(
                    edits, db: db, events: &events, write: !dryRun, registry: snapshot, actor: actor, principal: principal, now: now)
                return CaseImportReply(
                    imported: imported, rejected: refused + outcome.rejected, updated: edits.isEmpty ? nil : outcome.updated,
                    unchanged: edits.isEmpty ? nil : outcome.unchanged, notes: edits.isEmpty ? nil : outcome.notes,
                    dryRun: dryRun ? true : nil)
            }
            var result: CaseImportReply
            if dryRun {
                result = try await context.store.pool.read { db in
                    var events = EventBuffer()
                    return try run(db, &events)
                }
            } else {
                result = try await context.write { db, events in try run(db, &events) }
            }
            result.rejected = (rejected + result.rejected).sorted { $0.index < $1.index }
            return result
        }

        handlers.on(CaseTypes.get) { request, context in
            let now = clock.now()
            guard let item = try await context.store.pool.read({ try CasesStore.fetch($0, id: request.id, now: now) }) else {
                throw ErrorBody.notFound("整改台账中没有问题 \(ErrorBody.quote(request.id))", field: "body.id")
            }
            return item
        }

        handlers.on(CaseTypes.list) { request, context in
            let now = clock.now()
            // Read a page at a time from the store (keyset on the ledger's order), not the whole
            // ledger once per page: the cursor's `after` names the last case the reader got.
            let position = try context.cursor.map(ListCursor.init)
            let page = CasesStore.Page(after: position?.after, offset: position?.offset ?? 0, limit: ReplyLimits.items)
            let items = try await context.store.pool.read { try CasesStore.list($0, request, now: now, page: page) }
            return .page(startingAtCursor: items)
        }

        handlers.on(CaseTypes.transition) { request, context in
            if request.action == .void {
                throw ErrorBody.invalidArgument("作废问题请用 case.void，并写明原因（reason）", field: "body.action")
            }
            let now = clock.now()
            guard let item = try await context.store.pool.read({ try CasesStore.fetch($0, id: request.id, now: now) }) else {
                throw ErrorBody.notFound("整改台账中没有问题 \(ErrorBody.quote(request.id))", field: "body.id")
            }
            guard let target = request.action.target(from: item.state) else {
                throw ErrorBody.conflict(
                    "问题当前为\(item.state.label)（\(item.state.rawValue)），不能执行 \(request.action.rawValue)", field: "body.action")
            }
            let registry = try directory.lookup(unit: context.caller.unit)
            try Self.authorize(request.action, case: item, actor: Self.actor(context, registry), registry: registry)
            let evidence = request.evidence ?? []
            try EvidenceRef.validate(evidence, field: "body.evidence")
            if request.action == .accept, evidence.isEmpty {
                throw ErrorBody.invalidArgument("验收须附验收材料（evidence）：name、uri，可附 sha256", field: "body.evidence")
            }
            if [.reject, .reopen].contains(request.action), (request.comment ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            {
                throw ErrorBody.invalidArgument("执行 \(request.action.rawValue) 须在 comment 中说明理由", field: "body.comment")
            }
            let actor = context.from ?? ""
            let at = Timestamp.format(now)
            return try await context.write { db, events in
                // Checked again inside the transaction: the state decides, not what was read before.
                guard
                    let state = try String.fetchOne(db, sql: "SELECT state FROM cases WHERE id = ?", arguments: [item.id]).flatMap(
                        CaseState.init(rawValue:)),
                    request.action.target(from: state) == target
                else { throw ErrorBody.conflict("该问题刚被更新，请重新读取后再操作", field: "body.id") }
                try Self.sameParties(db, item)
                try db.execute(
                    sql: """
                        UPDATE cases SET state = ?, updated_at = ?, closed_at = CASE WHEN ? = 'closed' THEN ? ELSE NULL END,
                        overdue_notified_at = CASE WHEN ? = 'reopen' THEN NULL ELSE overdue_notified_at END WHERE id = ?
                        """,
                    arguments: [target.rawValue, at, target.rawValue, at, request.action.rawValue, item.id])
                try CasesStore.appendHistory(
                    db, id: item.id,
                    CaseTransition(
                        action: request.action.rawValue, from: state, to: target, actor: actor, at: at, comment: request.comment,
                        evidence: evidence, principal: context.caller.principal?.name, principalKey: context.caller.principal?.publicKey))
                try events.emit(
                    CaseTypes.transitioned,
                    CaseTransitioned(
                        id: item.id, from: state, to: target, action: request.action, actor: actor, comment: request.comment,
                        unit: item.unit, task: item.task))
                return try CasesStore.fetch(db, id: item.id, now: now)!
            }
        }

        handlers.on(CaseTypes.export) { request, context in
            guard request.format == "csv" else {
                throw ErrorBody.invalidArgument("不支持格式 \(ErrorBody.quote(request.format))，请用 csv", field: "body.format")
            }
            let now = clock.now()
            // With each case's history: 最新进展, 退回原因 and 验收时间 come from it.
            let cases = try await context.store.pool.read { db in
                try CasesStore.list(db, request.filters, now: now).map { item in
                    var item = item
                    item.history = try CasesStore.history(db, id: item.id)
                    return item
                }
            }
            let stamp = Timestamp.districtDate(now).replacingOccurrences(of: "-", with: "")
            return CaseExportReply(format: "csv", filename: "整改台账-\(stamp).csv", count: cases.count, content: LedgerCSV.export(cases))
        }

        handlers.on(CaseTypes.batches) { request, context in
            let now = clock.now()
            let counts = try await context.store.pool.read { try CasesStore.batchCounts($0, source: request.source, now: now) }
            var batches: [String: BatchProgress] = [:]
            for count in counts {
                var batch = batches[count.batch] ?? BatchProgress(batch: count.batch, total: 0, closed: 0, overdue: 0, byState: [:])
                // A case voided as a mistake was never one of the batch's problems.
                if count.state != .voided { batch.total += count.cases }
                if count.state == .closed { batch.closed += count.cases }
                batch.overdue += count.overdue
                batch.byState[count.state.rawValue, default: 0] += count.cases
                batches[count.batch] = batch
            }
            return ListReply(items: batches.keys.sorted().map { batches[$0]! })
        }
    }

    // MARK: Rules

    /// Who registers cases in the ledger: the office, and the lead units of the plan's task that
    /// sets up the 整改台账 (区生态环境局 and 区自然资源和林业局 in 城中区's plan).
    static func requireOffice(_ context: RequestContext, _ registry: RegistryDirectory.Snapshot) throws {
        if context.caller.isOffice { return }
        // The same rule with keys (the principal's unit) and without (`from`).
        if let unit = actor(context, registry), ledgerLeads(registry).contains(registry.canonical(unit)) { return }
        let leads = ledgerLeads(registry)
        throw ErrorBody.permissionDenied(
            "问题由\(registry.office)\(leads.isEmpty ? "" : "或整改台账牵头单位（\(leads.joined(separator: "、"))）")登记；"
                + "本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))",
            field: "from")
    }

    /// The lead units of the task that sets up the 整改台账.
    static func ledgerLeads(_ registry: RegistryDirectory.Snapshot) -> [String] {
        registry.tasks.filter { $0.text.contains("整改台账") }.flatMap(\.leadUnits).map { registry.canonical($0) }
    }

    /// The name an authenticated caller acts under in the ledger's rules: the office for the
    /// office and the administrator, its unit for a unit; on a service without keys, `from`.
    static func actor(_ context: RequestContext, _ registry: RegistryDirectory.Snapshot) -> String? {
        guard context.caller.principal != nil else { return context.from }
        if context.caller.isOffice { return registry.office }
        return context.caller.role == .unit ? context.caller.unit : nil
    }

    /// Who may do what: the responsible unit starts and submits; the office assigns and reopens;
    /// the office or the case's designated acceptance unit accepts, rejects and closes.
    static func authorize(_ action: CaseAction, case item: Case, actor: String?, registry: RegistryDirectory.Snapshot) throws {
        let isOffice = registry.acts(as: registry.office, actor: actor)
        let allowed: Bool
        let who: String
        switch action {
        case .start, .submit:
            allowed = registry.acts(as: item.unit, actor: actor)
            who = "责任单位\(item.unit)"
        case .accept, .reject, .close:
            allowed = isOffice || item.acceptanceUnit.map { registry.acts(as: $0, actor: actor) } ?? false
            who = "\(registry.office)" + (item.acceptanceUnit.map { "或验收单位\($0)" } ?? "")
        case .assign, .reopen, .void:
            allowed = isOffice
            who = registry.office
        }
        guard allowed else {
            throw ErrorBody.permissionDenied(
                "只有\(who)可对问题 \(item.id) 执行 \(action.rawValue)；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
        }
    }

    static func validate(_ request: CaseOpenRequest, registry: RegistryDirectory.Snapshot, field: String) throws {
        guard !request.title.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ErrorBody.invalidArgument("问题须有标题（title）", field: "\(field).title")
        }
        guard registry.unit(request.unit) != nil else {
            throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(request.unit))", field: "\(field).unit")
        }
        for (name, key) in [(request.supervisingUnit, "supervising_unit"), (request.acceptanceUnit, "acceptance_unit")] {
            if let name, registry.unit(name) == nil {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(name))", field: "\(field).\(key)")
            }
        }
        if let task = request.task, registry.task(task) == nil {
            throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(task))", field: "\(field).task")
        }
        // The request hook judged case.open's already; an imported row is judged here by the same rule.
        try request.checkRanges(now: .distantPast, field: field)
        if let c = request.coordinates, !(-90...90).contains(c.lat) || !(-180...180).contains(c.lon) {
            throw ErrorBody.invalidArgument("坐标超出范围（纬度 -90 到 90，经度 -180 到 180）", field: "\(field).coordinates")
        }
        try EvidenceRef.validate(request.evidence ?? [], field: "\(field).evidence")
    }

    static func existing(_ db: Database, _ request: CaseOpenRequest) throws -> String? {
        guard let ref = request.externalRef else { return nil }
        return try String.fetchOne(
            db, sql: "SELECT id FROM cases WHERE source = ? AND external_ref = ?", arguments: [request.source.rawValue, ref])
    }

    /// Stores a new case with its first history step and its `cases.case.opened` event.
    static func open(
        _ request: CaseOpenRequest, db: Database, events: inout EventBuffer, actor: String, principal: Principal? = nil, now: Date
    ) throws -> Case {
        if let existing = try existing(db, request) {
            throw ErrorBody.conflict(
                "\(request.source.label)问题 \(ErrorBody.quote(request.externalRef!)) 已在整改台账中，编号 \(existing)",
                field: "body.external_ref")
        }
        let year = Int(Timestamp.districtDate(now).prefix(4))!
        let (id, number) = try CasesStore.nextNumber(db, source: request.source, year: year)
        let at = Timestamp.format(now)
        try db.execute(
            sql: """
                INSERT INTO cases (id, source, year, number, title, description, unit, supervising_unit, \
                acceptance_unit, deadline, measures, task, batch,
                location, lat, lon, external_ref, state, opened_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?, ?)
                """,
            arguments: [
                id, request.source.rawValue, year, number, request.title, request.description, request.unit, request.supervisingUnit,
                request.acceptanceUnit,
                request.deadline, request.measures, request.task, request.batch, request.location, request.coordinates?.lat,
                request.coordinates?.lon,
                request.externalRef, at, at,
            ])
        try CasesStore.appendHistory(
            db, id: id,
            CaseTransition(
                action: "open", from: nil, to: .registered, actor: actor, at: at, comment: nil, evidence: request.evidence ?? [],
                principal: principal?.name, principalKey: principal?.publicKey)
        )
        var opened = try CasesStore.fetch(db, id: id, now: now)!
        opened.history = nil
        try events.emit(CaseTypes.opened, opened)
        return opened
    }
}
