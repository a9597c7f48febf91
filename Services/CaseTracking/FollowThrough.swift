import Foundation
import GRDB
import Schema
import ServiceKit

/// A case that is worked, not only moved (the plan's 17: 定期调度进展，开展实地督导，严格验收销号):
/// progress updates, site visits, deadline extensions, voiding, batch assignment and links
/// between similar cases (举一反三). Every step is kept in the case's history.
extension CasesService {
    /// The states in which a case still takes updates, visits and extensions.
    static let workableStates: Set<CaseState> = [.registered, .assigned, .rectifying, .pendingAcceptance]

    func registerFollowThrough(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let directory = self.directory

        handlers.on(CaseTypes.update) { request, context in
            let now = clock.now()
            let item = try await Self.existingCase(request.id, context: context, now: now)
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            guard registry.acts(as: item.unit, actor: actor) || registry.acts(as: registry.office, actor: actor) else {
                throw ErrorBody.permissionDenied(
                    "只有责任单位\(item.unit)或\(registry.office)可报送问题 \(item.id) 的整改进展；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))",
                    field: "from")
            }
            let text = try Self.requiredText(request.text, field: "body.text", what: "进展情况（text）")
            if let progress = request.progress, !(0...100).contains(progress) {
                throw ErrorBody.invalidArgument("整改进度（progress）应为 0 到 100 的整数，收到 \(progress)", field: "body.progress")
            }
            let evidence = request.evidence ?? []
            try EvidenceRef.validate(evidence, field: "body.evidence")
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            return try await context.write { db, events in
                try Self.sameParties(db, item)
                let state = try Self.currentState(db, item.id)
                guard Self.workableStates.contains(state) else {
                    throw ErrorBody.conflict("问题当前为\(state.label)，不再报送整改进展", field: "body.id")
                }
                let latest = CaseProgress(at: at, text: text, progress: request.progress, actor: by)
                try db.execute(
                    sql: "UPDATE cases SET latest_update = ?, updated_at = ? WHERE id = ?",
                    arguments: [try WireCoding.encode(latest), at, item.id])
                try CasesStore.appendHistory(
                    db, id: item.id,
                    CaseTransition(
                        action: "update", from: state, to: state, actor: by, at: at, comment: text, evidence: evidence,
                        principal: context.caller.principal?.name, principalKey: context.caller.principal?.publicKey,
                        progress: request.progress))
                try events.emit(
                    CaseTypes.updated,
                    CaseUpdated(id: item.id, unit: item.unit, task: item.task, progress: request.progress, text: text, at: at))
                return try CasesStore.fetch(db, id: item.id, now: now)!
            }
        }

        handlers.on(CaseTypes.visit) { request, context in
            let now = clock.now()
            let item = try await Self.existingCase(request.id, context: context, now: now)
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            let supervisors = [registry.office] + Self.ledgerLeads(registry) + (item.supervisingUnit.map { [$0] } ?? [])
            guard supervisors.contains(where: { registry.acts(as: $0, actor: actor) }) else {
                throw ErrorBody.permissionDenied(
                    "实地督导记录由\(supervisors.joined(separator: "、"))填报；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
            }
            try PlausibleRange.dayUpToToday(request.date, today: Timestamp.districtDate(now), field: "body.date")
            let inspectors = request.inspectors.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard !inspectors.isEmpty, inspectors.count <= 50, !inspectors.contains(where: \.isEmpty) else {
                throw ErrorBody.invalidArgument("须写明督导人员（inspectors），1 到 50 人，每人一项", field: "body.inspectors")
            }
            let findings = try Self.requiredText(request.findings, field: "body.findings", what: "督导发现（findings）")
            let evidence = request.evidence ?? []
            try EvidenceRef.validate(evidence, field: "body.evidence")
            // Photos are proof of what was seen: each carries its hash, so a swapped file shows.
            if let index = evidence.firstIndex(where: { $0.sha256 == nil }) {
                throw ErrorBody.invalidArgument("现场照片和材料须附 sha256", field: "body.evidence[\(index)].sha256")
            }
            let followUps = request.followUp ?? []
            // Registering problems stays with the office and the ledger's lead units (docs/cases.md).
            if !followUps.isEmpty,
                !([registry.office] + Self.ledgerLeads(registry)).contains(where: { registry.acts(as: $0, actor: actor) })
            {
                throw ErrorBody.permissionDenied(
                    "现场发现的新问题由\(registry.office)或整改台账牵头单位登记；监管单位可记录督导，新问题请报其登记", field: "body.follow_up")
            }
            guard followUps.count <= 100 else {
                throw ErrorBody.invalidArgument("一次督导最多登记 100 个新问题，本次有 \(followUps.count) 个", field: "body.follow_up")
            }
            let openings = try followUps.enumerated().map { index, followUp in
                let opening = CaseOpenRequest(
                    source: .siteVisit, title: followUp.title, unit: followUp.unit ?? item.unit, deadline: followUp.deadline,
                    description: followUp.description, task: item.task, batch: item.batch, location: followUp.location ?? item.location,
                    supervisingUnit: item.supervisingUnit, measures: followUp.measures)
                _ = try directory.lookup(unit: opening.unit)
                try Self.validate(opening, registry: directory.current ?? registry, field: "body.follow_up[\(index)]")
                return opening
            }
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            return try await context.write { db, events in
                try Self.sameParties(db, item)
                let state = try Self.currentState(db, item.id)
                guard state != .voided else { throw ErrorBody.conflict("问题已作废，不再记录督导", field: "body.id") }
                var opened: [String] = []
                for opening in openings {
                    let followUp = try Self.open(
                        opening, db: db, events: &events, actor: by, principal: context.caller.principal, now: now)
                    try Self.link(db, item.id, followUp.id)
                    opened.append(followUp.id)
                }
                let visit = SiteVisit(date: request.date, inspectors: inspectors, followUp: opened)
                try db.execute(sql: "UPDATE cases SET updated_at = ? WHERE id = ?", arguments: [at, item.id])
                try CasesStore.appendHistory(
                    db, id: item.id,
                    CaseTransition(
                        action: "visit", from: state, to: state, actor: by, at: at, comment: findings, evidence: evidence,
                        principal: context.caller.principal?.name, principalKey: context.caller.principal?.publicKey, visit: visit))
                try events.emit(
                    CaseTypes.visited, CaseVisited(id: item.id, unit: item.unit, task: item.task, visit: visit, findings: findings))
                return CaseVisitReply(case: try CasesStore.fetch(db, id: item.id, now: now)!, opened: opened)
            }
        }

        handlers.on(CaseTypes.extend) { request, context in
            let now = clock.now()
            let item = try await Self.existingCase(request.id, context: context, now: now)
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            let isOffice = registry.acts(as: registry.office, actor: actor)
            let reason = try Self.requiredText(request.reason, field: "body.reason", what: "理由（reason）")
            let today = Timestamp.districtDate(now)
            if let deadline = request.deadline { try PlausibleRange.dayFromToday(deadline, today: today, field: "body.deadline") }
            switch request.action {
            case .request:
                guard registry.acts(as: item.unit, actor: actor) else {
                    throw ErrorBody.permissionDenied(
                        "延期由责任单位\(item.unit)申请；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
                }
                guard let deadline = request.deadline else {
                    throw ErrorBody.invalidArgument("申请延期须写明新的完成时限（deadline）", field: "body.deadline")
                }
                if let current = item.deadline, deadline <= current {
                    throw ErrorBody.invalidArgument("申请的完成时限 \(deadline) 应晚于现时限 \(current)", field: "body.deadline")
                }
            case .grant, .refuse:
                guard isOffice else {
                    throw ErrorBody.permissionDenied(
                        "延期由\(registry.office)审批；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
                }
            }
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            return try await context.write { db, events in
                try Self.sameParties(db, item)
                let state = try Self.currentState(db, item.id)
                guard Self.workableStates.contains(state) else {
                    throw ErrorBody.conflict("问题当前为\(state.label)，不能\(request.action.label)", field: "body.id")
                }
                let row = try Row.fetchOne(db, sql: "SELECT deadline, pending_extension FROM cases WHERE id = ?", arguments: [item.id])!
                let current: String? = row["deadline"]
                let pending = CasesStore.decoded(ExtensionRequest.self, row["pending_extension"])
                let principal = context.caller.principal
                func record(_ action: String, comment: String, change: DeadlineChange? = nil) throws {
                    try CasesStore.appendHistory(
                        db, id: item.id,
                        CaseTransition(
                            action: action, from: state, to: state, actor: by, at: at, comment: comment, evidence: [],
                            principal: principal?.name, principalKey: principal?.publicKey, deadlineChange: change))
                }
                switch request.action {
                case .request:
                    if let pending {
                        throw ErrorBody.conflict(
                            "已有待审批的延期申请（至 \(pending.deadline)，\(pending.at) 提出），请待\(registry.office)审批", field: "body.id")
                    }
                    let asked = ExtensionRequest(deadline: request.deadline!, reason: reason, by: by, at: at)
                    try db.execute(
                        sql: "UPDATE cases SET pending_extension = ?, updated_at = ? WHERE id = ?",
                        arguments: [try WireCoding.encode(asked), at, item.id])
                    try record("extend_request", comment: "申请延期至 \(asked.deadline)：\(reason)")
                    try events.emit(
                        CaseTypes.extensionRequested,
                        CaseExtensionRequested(
                            id: item.id, title: item.title, unit: item.unit, task: item.task, deadline: current,
                            requestedDeadline: asked.deadline, reason: reason))
                case .grant:
                    // The office may also move a deadline on its own; it then names the new one.
                    guard let deadline = request.deadline ?? pending?.deadline else {
                        throw ErrorBody.invalidArgument("没有待审批的延期申请；直接调整时限须写明 deadline", field: "body.deadline")
                    }
                    // A requested day that has passed while waiting is not granted as it stands.
                    try PlausibleRange.dayFromToday(deadline, today: today, field: "body.deadline")
                    try Self.changeDeadline(
                        db, events: &events, item: item, from: current, to: deadline, reason: reason, by: "extension", today: today)
                    try db.execute(sql: "UPDATE cases SET pending_extension = NULL, updated_at = ? WHERE id = ?", arguments: [at, item.id])
                    try record("extend_grant", comment: reason, change: DeadlineChange(from: current, to: deadline))
                case .refuse:
                    guard let pending else { throw ErrorBody.conflict("没有待审批的延期申请", field: "body.id") }
                    try db.execute(sql: "UPDATE cases SET pending_extension = NULL, updated_at = ? WHERE id = ?", arguments: [at, item.id])
                    try record("extend_refuse", comment: "不同意延期至 \(pending.deadline)：\(reason)")
                }
                return try CasesStore.fetch(db, id: item.id, now: now)!
            }
        }

        handlers.on(CaseTypes.void) { request, context in
            let now = clock.now()
            let item = try await Self.existingCase(request.id, context: context, now: now)
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            guard registry.acts(as: registry.office, actor: actor) else {
                throw ErrorBody.permissionDenied(
                    "只有\(registry.office)可作废问题；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
            }
            let reason = try Self.requiredText(request.reason, field: "body.reason", what: "作废原因（reason）")
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            return try await context.write { db, events in
                try Self.sameParties(db, item)
                let state = try Self.currentState(db, item.id)
                guard CaseAction.void.target(from: state) != nil else {
                    throw ErrorBody.conflict("问题当前为\(state.label)，不能作废", field: "body.id")
                }
                try db.execute(
                    sql: "UPDATE cases SET state = 'voided', void_reason = ?, pending_extension = NULL, updated_at = ? WHERE id = ?",
                    arguments: [reason, at, item.id])
                try CasesStore.appendHistory(
                    db, id: item.id,
                    CaseTransition(
                        action: CaseAction.void.rawValue, from: state, to: .voided, actor: by, at: at, comment: reason, evidence: [],
                        principal: context.caller.principal?.name, principalKey: context.caller.principal?.publicKey))
                try events.emit(
                    CaseTypes.transitioned,
                    CaseTransitioned(
                        id: item.id, from: state, to: .voided, action: .void, actor: by, comment: reason, unit: item.unit, task: item.task))
                return try CasesStore.fetch(db, id: item.id, now: now)!
            }
        }

        handlers.on(CaseTypes.assignBatch) { request, context in
            let now = clock.now()
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            guard registry.acts(as: registry.office, actor: actor) else {
                throw ErrorBody.permissionDenied(
                    "只有\(registry.office)可批量交办；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
            }
            let batch = request.batch.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !batch.isEmpty else { throw ErrorBody.invalidArgument("须写明批次（batch）", field: "body.batch") }
            let today = Timestamp.districtDate(now)
            if let deadline = request.deadline { try PlausibleRange.dayFromToday(deadline, today: today, field: "body.deadline") }
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            return try await context.write { db, events in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM cases WHERE batch = ? ORDER BY source, year, number", arguments: [batch])
                guard !rows.isEmpty else {
                    throw ErrorBody.notFound("整改台账中没有批次 \(ErrorBody.quote(batch))", field: "body.batch")
                }
                var assigned: [String] = []
                var skipped = 0
                for row in rows {
                    let item = CasesStore.makeCase(row, now: now, history: nil, evidence: [])
                    guard item.state == .registered else {
                        skipped += 1
                        continue
                    }
                    var change: DeadlineChange?
                    if let deadline = request.deadline, deadline != item.deadline {
                        change = DeadlineChange(from: item.deadline, to: deadline)
                        try Self.changeDeadline(
                            db, events: &events, item: item, from: item.deadline, to: deadline, reason: request.comment, by: "batch",
                            today: today)
                    }
                    try db.execute(sql: "UPDATE cases SET state = 'assigned', updated_at = ? WHERE id = ?", arguments: [at, item.id])
                    try CasesStore.appendHistory(
                        db, id: item.id,
                        CaseTransition(
                            action: CaseAction.assign.rawValue, from: .registered, to: .assigned, actor: by, at: at,
                            comment: request.comment, evidence: [], principal: context.caller.principal?.name,
                            principalKey: context.caller.principal?.publicKey, deadlineChange: change))
                    try events.emit(
                        CaseTypes.transitioned,
                        CaseTransitioned(
                            id: item.id, from: .registered, to: .assigned, action: .assign, actor: by, comment: request.comment,
                            unit: item.unit, task: item.task))
                    assigned.append(item.id)
                }
                return CaseAssignBatchReply(batch: batch, assigned: assigned, skipped: skipped, deadline: request.deadline)
            }
        }

        handlers.on(CaseTypes.link) { request, context in
            let now = clock.now()
            let item = try await Self.existingCase(request.id, context: context, now: now)
            let other = try await Self.existingCase(request.related, context: context, now: now, field: "body.related")
            guard item.id != other.id else {
                throw ErrorBody.invalidArgument("不能把问题与自身关联", field: "body.related")
            }
            let registry = try directory.lookup(unit: context.caller.unit)
            let actor = Self.actor(context, registry)
            let leads = [registry.office] + Self.ledgerLeads(registry)
            guard leads.contains(where: { registry.acts(as: $0, actor: actor) }) else {
                throw ErrorBody.permissionDenied(
                    "关联问题由\(leads.joined(separator: "、"))办理；本请求来自\(ErrorBody.quote(actor ?? "未署名方"))", field: "from")
            }
            let at = Timestamp.format(now)
            let by = context.from ?? actor ?? ""
            let note = request.comment.map { "：\($0)" } ?? ""
            return try await context.write { db, _ in
                try Self.sameParties(db, item)
                try Self.sameParties(db, other)
                if try Self.link(db, item.id, other.id) {
                    for (this, that) in [(item.id, other.id), (other.id, item.id)] {
                        let state = try Self.currentState(db, this)
                        try CasesStore.appendHistory(
                            db, id: this,
                            CaseTransition(
                                action: "link", from: state, to: state, actor: by, at: at, comment: "举一反三，关联问题 \(that)\(note)",
                                evidence: [], principal: context.caller.principal?.name,
                                principalKey: context.caller.principal?.publicKey))
                        try db.execute(sql: "UPDATE cases SET updated_at = ? WHERE id = ?", arguments: [at, this])
                    }
                }
                return try CasesStore.fetch(db, id: item.id, now: now)!
            }
        }
    }

    // MARK: Shared steps

    /// The case `id` names, or `not_found` at `field`.
    static func existingCase(_ id: String, context: RequestContext, now: Date, field: String = "body.id") async throws -> Case {
        guard let item = try await context.store.pool.read({ try CasesStore.fetch($0, id: id, now: now) }) else {
            throw ErrorBody.notFound("整改台账中没有问题 \(ErrorBody.quote(id))", field: field)
        }
        return item
    }

    /// The case's parties as the transaction sees them: the permission was decided on the case as
    /// read before the write lane took the request, and a write queued ahead of it (an import, the
    /// office's round trip) may have handed the case to another unit or supervisor since.
    static func sameParties(_ db: Database, _ item: Case) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT unit, supervising_unit FROM cases WHERE id = ?", arguments: [item.id]) else {
            throw ErrorBody.notFound("整改台账中没有问题 \(ErrorBody.quote(item.id))", field: "body.id")
        }
        let unit: String = row["unit"]
        let supervising: String? = row["supervising_unit"]
        guard unit == item.unit, supervising == item.supervisingUnit else {
            throw ErrorBody.conflict("问题 \(item.id) 的责任单位或监管单位刚被变更（现为\(unit)），请重新读取后再操作", field: "body.id")
        }
    }

    /// The state as the transaction sees it: what was read before may have moved.
    static func currentState(_ db: Database, _ id: String) throws -> CaseState {
        guard let state = try String.fetchOne(db, sql: "SELECT state FROM cases WHERE id = ?", arguments: [id]).flatMap(CaseState.init)
        else { throw ErrorBody.notFound("整改台账中没有问题 \(ErrorBody.quote(id))", field: "body.id") }
        return state
    }

    /// A text a person must write, trimmed; `invalid_argument` at `field` when blank.
    static func requiredText(_ text: String, field: String, what: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ErrorBody.invalidArgument("须写明\(what)", field: field) }
        return trimmed
    }

    /// Moves a case's deadline, keeping the first one it had as `original_deadline`. Notify withdraws
    /// the overdue notice on the change, so the case is announced again if it is (still, or again) late.
    static func changeDeadline(
        _ db: Database, events: inout EventBuffer, item: Case, from: String?, to: String, reason: String?, by: String, today: String
    ) throws {
        try db.execute(
            sql: """
                UPDATE cases SET deadline = ?, original_deadline = COALESCE(original_deadline, ?), overdue_notified_at = NULL
                WHERE id = ?
                """,
            arguments: [to, from, item.id])
        try events.emit(
            CaseTypes.deadlineChanged,
            CaseDeadlineChanged(id: item.id, unit: item.unit, task: item.task, from: from, to: to, reason: reason, by: by))
    }

    /// Links two cases (once, whichever way round); true when the link is new.
    @discardableResult
    static func link(_ db: Database, _ one: String, _ other: String) throws -> Bool {
        let (first, second) = one < other ? (one, other) : (other, one)
        try db.execute(
            sql: "INSERT OR IGNORE INTO case_links (case_id, related) VALUES (?, ?)", arguments: [first, second])
        return db.changesCount > 0
    }
}
