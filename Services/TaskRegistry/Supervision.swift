import Foundation
import GRDB
import PlanFormat
import Schema
import ServiceKit
import WorkCalendar

/// 督办单 (the plan's 季督办 and the office's own): items a unit must answer by a deadline, whose
/// replies the office accepts or returns; an item unanswered past its deadline is published once
/// (`registry.supervision.overdue`), which notify turns into a notice and an escalation proposal.
enum SupervisionRules {
    /// Days a unit has to answer a quarter's order, and a returned item.
    static let quarterlyReplyDays = 15
    static let returnedReplyDays = 7
    /// What a quarter's order asks of every lagging unit.
    static let quarterlyMeasure = "对照方案细化整改措施，明确完成时限，限期报送整改情况及佐证材料"

    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("registry-v6-supervision") { db in
            try db.execute(
                sql: """
                    CREATE TABLE supervision_orders (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('quarterly', 'adhoc')),
                        period TEXT,
                        year TEXT NOT NULL,
                        title TEXT NOT NULL,
                        reply_deadline TEXT NOT NULL,
                        issued_at TEXT NOT NULL,
                        issued_by TEXT
                    );
                    CREATE UNIQUE INDEX supervision_orders_quarter ON supervision_orders(period) WHERE kind = 'quarterly';
                    CREATE TABLE supervision_items (
                        order_id TEXT NOT NULL REFERENCES supervision_orders(id),
                        no INTEGER NOT NULL,
                        unit TEXT NOT NULL,
                        tasks BLOB NOT NULL,
                        cases BLOB NOT NULL,
                        problem TEXT NOT NULL,
                        measure TEXT NOT NULL,
                        deadline TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'replied', 'accepted', 'returned')),
                        overdue_notified_at TEXT,
                        PRIMARY KEY (order_id, no)
                    );
                    CREATE INDEX supervision_items_unit ON supervision_items(unit);
                    CREATE TABLE supervision_steps (
                        order_id TEXT NOT NULL,
                        no INTEGER NOT NULL,
                        step INTEGER NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('reply', 'review')),
                        body BLOB NOT NULL,
                        principal TEXT,
                        principal_key TEXT,
                        PRIMARY KEY (order_id, no, step)
                    );
                    """)
        }
    }

    // MARK: Reading

    static func fetch(_ db: Database, id: String, today: String) throws -> SupervisionOrder? {
        try list(db, SupervisionListRequest(order: id), today: today).first
    }

    /// Orders newest first, each with the items that match the filters (an order with none left out).
    static func list(_ db: Database, _ filter: SupervisionListRequest, today: String) throws -> [SupervisionOrder] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let order = filter.order {
            conditions.append("id = ?")
            arguments.append(order)
        }
        if let year = filter.year {
            conditions.append("year = ?")
            arguments.append(year)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let orders = try Row.fetchAll(
            db, sql: "SELECT * FROM supervision_orders \(whereClause) ORDER BY issued_at DESC, id DESC",
            arguments: StatementArguments(arguments))
        var result: [SupervisionOrder] = []
        for row in orders {
            let id: String = row["id"]
            var items = try items(db, order: id, today: today)
            items = items.filter { item in
                (filter.unit.map { $0 == item.unit } ?? true) && (filter.state.map { $0 == item.state } ?? true)
                    && (filter.overdue.map { $0 == item.overdue } ?? true)
            }
            let filtered = filter.unit != nil || filter.state != nil || filter.overdue != nil
            if filtered && items.isEmpty { continue }
            result.append(
                SupervisionOrder(
                    id: id, kind: SupervisionKind(rawValue: row["kind"]) ?? .adhoc, period: row["period"], title: row["title"],
                    replyDeadline: row["reply_deadline"], issuedAt: row["issued_at"], issuedBy: row["issued_by"], items: items))
        }
        return result
    }

    static func items(_ db: Database, order: String, today: String) throws -> [SupervisionItem] {
        var replies: [Int: [SupervisionReply]] = [:]
        var reviews: [Int: [SupervisionReview]] = [:]
        for step in try Row.fetchAll(
            db, sql: "SELECT no, kind, body FROM supervision_steps WHERE order_id = ? ORDER BY no, step", arguments: [order])
        {
            let no: Int = step["no"]
            let body: Data = step["body"]
            if step["kind"] == "reply", let reply = try? JSONDecoder().decode(SupervisionReply.self, from: body) {
                replies[no, default: []].append(reply)
            } else if let review = try? JSONDecoder().decode(SupervisionReview.self, from: body) {
                reviews[no, default: []].append(review)
            }
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM supervision_items WHERE order_id = ? ORDER BY no", arguments: [order]).map {
            row in
            let no: Int = row["no"]
            let state = SupervisionItemState(rawValue: row["state"]) ?? .pending
            let deadline: String = row["deadline"]
            return SupervisionItem(
                no: no, unit: row["unit"], tasks: (try? JSONDecoder().decode([String].self, from: row["tasks"] as Data)) ?? [],
                cases: (try? JSONDecoder().decode([String].self, from: row["cases"] as Data)) ?? [], problem: row["problem"],
                measure: row["measure"], deadline: deadline, state: state, overdue: state.awaitsReply && deadline < today,
                reply: replies[no]?.last, review: reviews[no]?.last, replies: replies[no], reviews: reviews[no])
        }
    }

    // MARK: Writing

    /// Stores a new order and publishes it whole.
    static func store(
        _ db: Database, events: inout EventBuffer, kind: SupervisionKind, period: String?, title: String, replyDeadline: String,
        items: [SupervisionItemDraft], issuedBy: String?, now: Date
    ) throws -> SupervisionOrder {
        let today = Timestamp.districtDate(now)
        // A quarter's order belongs to the quarter's year (2026-Q4's is issued in January 2027).
        let year = kind == .quarterly ? String((period ?? today).prefix(4)) : String(today.prefix(4))
        let id: String
        if kind == .quarterly, let period {
            id = "DB-\(period)"
        } else {
            let count = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM supervision_orders WHERE kind = 'adhoc' AND year = ?", arguments: [year])
            id = String(format: "DB-%@-%03d", year, (count ?? 0) + 1)
        }
        let at = Timestamp.format(now)
        try db.execute(
            sql: """
                INSERT INTO supervision_orders (id, kind, period, year, title, reply_deadline, issued_at, issued_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [id, kind.rawValue, period, year, title, replyDeadline, at, issuedBy])
        for (index, item) in items.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO supervision_items (order_id, no, unit, tasks, cases, problem, measure, deadline, state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')
                    """,
                arguments: [
                    id, index + 1, item.unit, try WireCoding.encode(item.tasks ?? []), try WireCoding.encode(item.cases ?? []),
                    item.problem, item.measure, replyDeadline,
                ])
        }
        let order = try fetch(db, id: id, today: today)!
        try events.emit(SupervisionTypes.issued, order)
        return order
    }

    static func appendStep(_ db: Database, order: String, no: Int, kind: String, body: Data, principal: Principal?) throws {
        let step =
            (try Int.fetchOne(
                db, sql: "SELECT MAX(step) FROM supervision_steps WHERE order_id = ? AND no = ?", arguments: [order, no]) ?? 0) + 1
        try db.execute(
            sql: "INSERT INTO supervision_steps (order_id, no, step, kind, body, principal, principal_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [order, no, step, kind, body, principal?.name, principal?.publicKey])
    }

    static func event(_ order: SupervisionOrder, _ item: SupervisionItem) -> SupervisionItemEvent {
        SupervisionItemEvent(
            order: order.id, item: item.no, unit: item.unit, title: order.title, problem: item.problem, tasks: item.tasks,
            cases: item.cases, deadline: item.deadline, state: item.state, decision: item.review?.decision,
            comment: item.review?.comment)
    }

    // MARK: Time

    /// The quarter whose order is due by now: the latest quarter whose last month's reports are
    /// due, counted from go-live; nil before the first.
    static func dueQuarter(plan: PlanDocument, now: Date) -> String? {
        guard var month = TaskStatusRules.lastDueMonth(plan: plan, now: now), let first = TaskStatusRules.firstCountedMonth(plan) else {
            return nil
        }
        while month.month % 3 != 0 { month = month.previous }
        guard month >= first else { return nil }
        return "\(month.year)-Q\(month.month / 3)"
    }

    /// What the clock brings: a quarter's order once its reports are due (listing its lagging and
    /// overdue tasks by lead unit), and each item left unanswered past its deadline, once.
    static func tick(_ db: Database, plan: PlanDocument, now: Date, events: inout EventBuffer) throws {
        let today = Timestamp.districtDate(now)
        if let quarter = dueQuarter(plan: plan, now: now),
            try Int.fetchOne(db, sql: "SELECT 1 FROM supervision_orders WHERE kind = 'quarterly' AND period = ?", arguments: [quarter])
                == nil
        {
            let items = quarterlyItems(plan: plan, reports: try RegistryStore.taskReports(db, plan: plan), now: now)
            _ = try store(
                db, events: &events, kind: .quarterly, period: quarter, title: "\(quarter.replacingOccurrences(of: "-Q", with: "年第"))季度督办单",
                replyDeadline: plan.workCalendar.nextWorkingDay(
                    onOrAfter: Timestamp.districtDate(now.addingTimeInterval(Double(quarterlyReplyDays) * 86_400))), items: items,
                issuedBy: plan.office, now: now)
        }
        let late = try Row.fetchAll(
            db,
            sql: """
                SELECT order_id, no FROM supervision_items WHERE state IN ('pending', 'returned') AND deadline < ?
                AND overdue_notified_at IS NULL ORDER BY order_id, no
                """, arguments: [today])
        for row in late {
            let id: String = row["order_id"]
            let no: Int = row["no"]
            guard let order = try fetch(db, id: id, today: today), let item = order.items.first(where: { $0.no == no }) else { continue }
            try db.execute(
                sql: "UPDATE supervision_items SET overdue_notified_at = ? WHERE order_id = ? AND no = ?",
                arguments: [Timestamp.format(now), id, no])
            try events.emit(SupervisionTypes.overdue, event(order, item))
        }
    }

    /// A quarter's items: one per lead unit with lagging or overdue tasks, each task's reasons as the problem.
    static func quarterlyItems(plan: PlanDocument, reports: [String: TaskReports], now: Date) -> [SupervisionItemDraft] {
        let evaluations = TaskStatusRules.evaluations(plan: plan, reports: reports, now: now)
        var byUnit: [String: [(PlanDocument.TaskEntry, String)]] = [:]
        for task in plan.tasks where !task.isParent {
            guard let evaluation = evaluations[task.id], [.lagging, .overdue].contains(evaluation.status) else { continue }
            let why = evaluation.reasons.first?.text ?? evaluation.status.label
            for unit in RegistryService.uniqued(task.lead.map { TaskStatusRules.canonical($0, plan: plan) }) {
                byUnit[unit, default: []].append((task, "任务\(task.id)（\(task.title)）\(evaluation.status.label)：\(why)"))
            }
        }
        return byUnit.keys.sorted().map { unit in
            let entries = byUnit[unit]!
            return SupervisionItemDraft(
                unit: unit, tasks: entries.map(\.0.id), problem: entries.map(\.1).joined(separator: "；"), measure: quarterlyMeasure)
        }
    }
}

extension RegistryService {
    func registerSupervision(_ handlers: inout HandlerTable) {
        let current = self.current
        let clock = self.clock

        handlers.on(SupervisionTypes.issue) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied("督办单由\(plan.office)下发；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
            }
            try PlausibleRange.dayFromToday(request.replyDeadline, today: today, field: "body.reply_deadline")
            let kind = request.kind ?? .adhoc
            var period: String?
            var drafts = request.items ?? []
            if kind == .quarterly {
                guard let quarter = request.period, Self.isQuarter(quarter, plan: plan) else {
                    throw ErrorBody.invalidArgument("季度督办须写明方案期限内的季度（period），如 2026-Q4", field: "body.period")
                }
                period = quarter
                if drafts.isEmpty {
                    let reports = try await context.store.pool.read { try RegistryStore.taskReports($0, plan: plan) }
                    drafts = SupervisionRules.quarterlyItems(plan: plan, reports: reports, now: now)
                }
            } else if drafts.isEmpty {
                throw ErrorBody.invalidArgument("督办单须列明督办事项（items）", field: "body.items")
            }
            guard drafts.count <= 200 else {
                throw ErrorBody.invalidArgument("一张督办单最多 200 项，本次 \(drafts.count) 项", field: "body.items")
            }
            for (index, draft) in drafts.enumerated() { try Self.validate(draft, plan: plan, field: "body.items[\(index)]") }
            let title =
                request.title?.trimmingCharacters(in: .whitespacesAndNewlines).nonEmpty
                ?? (period.map { "\($0.replacingOccurrences(of: "-Q", with: "年第"))季度督办单" } ?? "专项督办单")
            let items = drafts
            let quarter = period
            return try await context.write { db, events in
                if let period = quarter,
                    let existing = try String.fetchOne(
                        db, sql: "SELECT id FROM supervision_orders WHERE kind = 'quarterly' AND period = ?", arguments: [period])
                {
                    throw ErrorBody.conflict("\(period) 的季度督办单已下发（\(existing)）", field: "body.period")
                }
                return try SupervisionRules.store(
                    db, events: &events, kind: kind, period: quarter, title: title, replyDeadline: request.replyDeadline, items: items,
                    issuedBy: context.from, now: now)
            }
        }

        handlers.on(SupervisionTypes.reply) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            let measures = request.measures.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !measures.isEmpty else {
                throw ErrorBody.invalidArgument("答复须写明整改措施和进展（measures）", field: "body.measures")
            }
            let evidence = request.evidence ?? []
            try EvidenceRef.validate(evidence, field: "body.evidence")
            return try await context.write { db, events in
                let (order, item) = try Self.supervisionItem(db, request.order, request.item, today: today)
                guard Self.answers(context.caller, for: item.unit, plan: plan) else {
                    throw ErrorBody.permissionDenied(
                        "督办事项 \(order.id) 第 \(item.no) 项由\(item.unit)答复；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))",
                        field: "from")
                }
                guard item.state.awaitsReply else {
                    throw ErrorBody.conflict("督办事项 \(order.id) 第 \(item.no) 项当前为\(item.state.label)，无需答复", field: "body.item")
                }
                let reply = SupervisionReply(measures: measures, evidence: evidence, at: Timestamp.format(now), by: context.from)
                try SupervisionRules.appendStep(
                    db, order: order.id, no: item.no, kind: "reply", body: try WireCoding.encode(reply), principal: context.caller.principal
                )
                try db.execute(
                    sql: "UPDATE supervision_items SET state = 'replied' WHERE order_id = ? AND no = ?", arguments: [order.id, item.no])
                let after = try SupervisionRules.fetch(db, id: order.id, today: today)!
                try events.emit(SupervisionTypes.replied, SupervisionRules.event(after, after.items[item.no - 1]))
                return after
            }
        }

        handlers.on(SupervisionTypes.review) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied("督办答复由\(plan.office)审核；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
            }
            let comment = request.comment.trimmingCharacters(in: .whitespacesAndNewlines)
            if request.decision == .return, comment.isEmpty {
                throw ErrorBody.invalidArgument("退回须写明理由（comment）", field: "body.comment")
            }
            if let deadline = request.deadline { try PlausibleRange.dayFromToday(deadline, today: today, field: "body.deadline") }
            return try await context.write { db, events in
                let (order, item) = try Self.supervisionItem(db, request.order, request.item, today: today)
                guard item.state == .replied else {
                    throw ErrorBody.conflict("督办事项 \(order.id) 第 \(item.no) 项当前为\(item.state.label)，没有待审核的答复", field: "body.item")
                }
                let review = SupervisionReview(
                    decision: request.decision, comment: comment.isEmpty ? request.decision.label : comment, at: Timestamp.format(now),
                    by: context.from)
                try SupervisionRules.appendStep(
                    db, order: order.id, no: item.no, kind: "review", body: try WireCoding.encode(review),
                    principal: context.caller.principal)
                if request.decision == .accept {
                    try db.execute(
                        sql: "UPDATE supervision_items SET state = 'accepted' WHERE order_id = ? AND no = ?",
                        arguments: [order.id, item.no])
                } else {
                    // Answered again by a new day, and announced again if that passes unanswered.
                    // The default day moves off a weekend or holiday; a day the office names is kept as named.
                    let deadline =
                        request.deadline
                        ?? plan.workCalendar.nextWorkingDay(
                            onOrAfter: Timestamp.districtDate(now.addingTimeInterval(Double(SupervisionRules.returnedReplyDays) * 86_400)))
                    try db.execute(
                        sql: """
                            UPDATE supervision_items SET state = 'returned', deadline = ?, overdue_notified_at = NULL
                            WHERE order_id = ? AND no = ?
                            """, arguments: [deadline, order.id, item.no])
                }
                let after = try SupervisionRules.fetch(db, id: order.id, today: today)!
                try events.emit(SupervisionTypes.reviewed, SupervisionRules.event(after, after.items[item.no - 1]))
                return after
            }
        }

        handlers.on(SupervisionTypes.list) { request, context in
            let today = Timestamp.districtDate(clock.now())
            return ListReply(items: try await context.store.pool.read { try SupervisionRules.list($0, request, today: today) })
        }
    }

    /// The order and item a request names, or `not_found`.
    static func supervisionItem(_ db: Database, _ id: String, _ no: Int, today: String) throws -> (SupervisionOrder, SupervisionItem) {
        guard let order = try SupervisionRules.fetch(db, id: id, today: today) else {
            throw ErrorBody.notFound("没有督办单 \(ErrorBody.quote(id))", field: "body.order")
        }
        guard let item = order.items.first(where: { $0.no == no }) else {
            throw ErrorBody.notFound("督办单 \(id) 没有第 \(no) 项（共 \(order.items.count) 项）", field: "body.item")
        }
        return (order, item)
    }

    /// Who answers an item: its unit (under another name, or a member of a collective), or the
    /// office recording a reply it received on paper. Without keys, `from` says.
    static func answers(_ caller: Caller, for unit: String, plan: PlanDocument) -> Bool {
        if caller.isOffice { return true }
        if caller.principal == nil { return caller.from.map { stands(for: unit, unit: $0, plan: plan) } ?? false }
        return may(caller, actFor: unit, plan: plan)
    }

    static func validate(_ draft: SupervisionItemDraft, plan: PlanDocument, field: String) throws {
        guard plan.unit(draft.unit) != nil else {
            throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(draft.unit))", field: "\(field).unit")
        }
        for (index, task) in (draft.tasks ?? []).enumerated() where plan.task(task) == nil {
            throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(task))", field: "\(field).tasks[\(index)]")
        }
        guard (draft.tasks ?? []).count <= 50, (draft.cases ?? []).count <= 100 else {
            throw ErrorBody.invalidArgument("一个督办事项最多 50 项任务、100 个问题", field: "\(field).cases")
        }
        for (index, number) in (draft.cases ?? []).enumerated() where number.isEmpty || number.count > 40 {
            throw ErrorBody.invalidArgument("问题编号应为 1 到 40 个字符，如 HCJ-2026-0001", field: "\(field).cases[\(index)]")
        }
        guard !draft.problem.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ErrorBody.invalidArgument("须写明督办的问题（problem）", field: "\(field).problem")
        }
        guard !draft.measure.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ErrorBody.invalidArgument("须写明整改要求（measure）", field: "\(field).measure")
        }
    }

    /// `2026-Q4` within the plan's years.
    static func isQuarter(_ text: String, plan: PlanDocument) -> Bool {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 4, let year = Int(parts[0]), ["Q1", "Q2", "Q3", "Q4"].contains(parts[1]) else {
            return false
        }
        guard let first = Int(plan.start.prefix(4)), let last = Int(plan.end.prefix(4)) else { return false }
        return (first...last).contains(year)
    }
}
