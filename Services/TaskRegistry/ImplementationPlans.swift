import Foundation
import GRDB
import PlanFormat
import Schema
import ServiceKit
import WorkCalendar

/// 具体实施方案 (保障措施: 各部门…3个月内制定具体实施方案): one obligation per responsible unit,
/// due go-live plus the rule's months (or the rule's own day), moved to the next working day;
/// submitted with the document as evidence, accepted or returned by the office. An obligation
/// still owed after its day is published once per due day (`registry.implementation_plan.overdue`),
/// which notify turns into a notice and a 建议通报 proposal until the unit submits.
enum ImplementationPlanRules {
    /// The plan's rule (`rules[].id`) that creates the obligation.
    static let ruleID = "implementation_plan"
    /// Days a unit has to submit again after a return: as long as a quarter's 督办单 gives to answer,
    /// since revising a plan is work of the same size.
    static let returnedDays = 15
    /// Evidence items one submission may carry (the plan and its annexes).
    static let maxEvidence = 20
    /// Unit kinds the rule does not bind: the office reviews the plans; the court and the
    /// procuratorate are not departments of the district government (各部门), nor is the discipline
    /// commission, which supervises them.
    static let exemptKinds: Set<String> = ["office", "judicial", "discipline"]

    static func migrations(_ migrator: inout DatabaseMigrator) {
        // Named for the feature, not numbered: other registry migrations are added beside it.
        migrator.registerMigration("registry-implementation-plans") { db in
            try db.execute(
                sql: """
                    CREATE TABLE implementation_plans (
                        unit TEXT PRIMARY KEY NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'accepted', 'returned')),
                        due TEXT,
                        overdue_for TEXT
                    );
                    CREATE TABLE implementation_plan_steps (
                        unit TEXT NOT NULL,
                        step INTEGER NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('submit', 'review')),
                        body BLOB NOT NULL,
                        principal TEXT,
                        principal_key TEXT,
                        PRIMARY KEY (unit, step)
                    );
                    """)
        }
    }

    // MARK: The obligation

    static func rule(_ plan: PlanDocument) -> PlanDocument.Rule? { plan.rules.first { $0.id == ruleID } }

    /// The day every unit's plan is due: the rule's own day, else go-live plus its months; moved to
    /// the next working day. Nil when the plan has no such rule, or the day falls after the plan's
    /// end (a plan for work already over helps nobody).
    static func baseDue(_ plan: PlanDocument) -> String? {
        guard let rule = rule(plan) else { return nil }
        let day: String
        if let fixed = rule.due {
            day = fixed
        } else {
            guard let months = rule.withinMonths, let start = plan.supervisionStart,
                let later = WorkCalendar.addingMonths(months, to: start)
            else { return nil }
            day = later
        }
        let due = plan.workCalendar.nextWorkingDay(onOrAfter: day)
        return due > plan.end ? nil : due
    }

    /// The units bound: every lead unit of a task, under its own name (an alias resolved, a
    /// collective replaced by its known members), exempt kinds left out; in the plan's order.
    static func units(_ plan: PlanDocument) -> [String] {
        var named: Set<String> = []
        for task in plan.tasks where !task.isParent {
            for unit in task.lead {
                let name = TaskStatusRules.canonical(unit, plan: plan)
                if let entry = plan.unit(name), entry.kind == "collective" {
                    // A collective whose members the plan does not name binds nobody we can name.
                    named.formUnion(entry.members.map { TaskStatusRules.canonical($0, plan: plan) })
                } else {
                    named.insert(name)
                }
            }
        }
        return plan.units.filter { named.contains($0.name) && $0.aliasOf == nil && !exemptKinds.contains($0.kind) }.map(\.name)
    }

    // MARK: Reading

    static func list(_ db: Database, plan: PlanDocument, today: String) throws -> [ImplementationPlan] {
        guard let base = baseDue(plan) else { return [] }
        var rows: [String: Row] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM implementation_plans") { rows[row["unit"]] = row }
        var submissions: [String: [ImplementationPlanSubmission]] = [:]
        var reviews: [String: [ImplementationPlanReview]] = [:]
        for step in try Row.fetchAll(db, sql: "SELECT unit, kind, body FROM implementation_plan_steps ORDER BY unit, step") {
            let unit: String = step["unit"]
            let body: Data = step["body"]
            if step["kind"] == "submit", let submission = try? JSONDecoder().decode(ImplementationPlanSubmission.self, from: body) {
                submissions[unit, default: []].append(submission)
            } else if let review = try? JSONDecoder().decode(ImplementationPlanReview.self, from: body) {
                reviews[unit, default: []].append(review)
            }
        }
        // A unit a reloaded plan no longer binds keeps what it submitted.
        let bound = units(plan)
        let others = rows.keys.filter { !bound.contains($0) && submissions[$0] != nil }.sorted()
        return (bound + others).map { unit in
            let row = rows[unit]
            let state = row.flatMap { ImplementationPlanState(rawValue: $0["state"] as String) } ?? .pending
            let returnedDue: String? = row.flatMap { $0["due"] as String? }
            let due = returnedDue ?? base
            return ImplementationPlan(
                unit: unit, due: due, state: state, overdue: state.owed && due < today, rule: ruleID,
                submissions: submissions[unit] ?? [], reviews: reviews[unit] ?? [])
        }
    }

    static func find(_ db: Database, unit: String, plan: PlanDocument, today: String) throws -> ImplementationPlan {
        let all = try list(db, plan: plan, today: today)
        guard !all.isEmpty else {
            throw ErrorBody.notFound(
                "方案没有制定具体实施方案的要求，或其时限已超出方案期限（\(plan.end)）", field: "body.unit")
        }
        let name = TaskStatusRules.canonical(unit, plan: plan)
        guard let found = all.first(where: { $0.unit == name }) else {
            throw ErrorBody.notFound(
                "\(ErrorBody.quote(unit))不在须制定具体实施方案的单位之列（\(all.map(\.unit).joined(separator: "、"))）", field: "body.unit")
        }
        return found
    }

    static func event(_ plan: ImplementationPlan) -> ImplementationPlanEvent {
        ImplementationPlanEvent(
            unit: plan.unit, due: plan.due, state: plan.state, title: plan.submission?.title, action: plan.review?.action,
            comment: plan.review?.comment)
    }

    // MARK: Writing

    static func appendStep(_ db: Database, unit: String, kind: String, body: Data, principal: Principal?) throws {
        let step = (try Int.fetchOne(db, sql: "SELECT MAX(step) FROM implementation_plan_steps WHERE unit = ?", arguments: [unit]) ?? 0) + 1
        try db.execute(
            sql: "INSERT INTO implementation_plan_steps (unit, step, kind, body, principal, principal_key) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [unit, step, kind, body, principal?.name, principal?.publicKey])
    }

    static func setState(_ db: Database, unit: String, state: ImplementationPlanState, due: String?) throws {
        try db.execute(
            sql: """
                INSERT INTO implementation_plans (unit, state, due) VALUES (?, ?, ?)
                ON CONFLICT(unit) DO UPDATE SET state = excluded.state, due = COALESCE(excluded.due, implementation_plans.due)
                """, arguments: [unit, state.rawValue, due])
    }

    /// What the clock brings: each obligation owed past its day, published once for that day (a
    /// return sets a new day, which is published again if it passes).
    static func tick(_ db: Database, plan: PlanDocument, now: Date, events: inout EventBuffer) throws {
        let today = Timestamp.districtDate(now)
        for late in try list(db, plan: plan, today: today) where late.overdue {
            let notified = try String.fetchOne(
                db, sql: "SELECT overdue_for FROM implementation_plans WHERE unit = ?", arguments: [late.unit])
            guard notified != late.due else { continue }
            try db.execute(
                sql: """
                    INSERT INTO implementation_plans (unit, state, overdue_for) VALUES (?, ?, ?)
                    ON CONFLICT(unit) DO UPDATE SET overdue_for = excluded.overdue_for
                    """, arguments: [late.unit, late.state.rawValue, late.due])
            try events.emit(ImplementationPlanTypes.overdue, event(late))
        }
    }
}

extension RegistryService {
    func registerImplementationPlans(_ handlers: inout HandlerTable) {
        let current = self.current
        let clock = self.clock

        handlers.on(ImplementationPlanTypes.submit) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            let title = request.title.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !title.isEmpty else {
                throw ErrorBody.invalidArgument("须写明实施方案的名称（title）", field: "body.title")
            }
            guard !request.evidence.isEmpty else {
                throw ErrorBody.invalidArgument("须附实施方案文件作为佐证材料（evidence），并写明其 sha256", field: "body.evidence")
            }
            // Kept forever with every submission: a bound on what one request may add.
            guard request.evidence.count <= ImplementationPlanRules.maxEvidence else {
                throw ErrorBody.invalidArgument(
                    "佐证材料最多 \(ImplementationPlanRules.maxEvidence) 项，本次 \(request.evidence.count) 项", field: "body.evidence")
            }
            try EvidenceRef.validate(request.evidence, field: "body.evidence")
            // The document itself is the evidence: its digest pins the version the office reviews.
            if let index = request.evidence.firstIndex(where: { $0.sha256 == nil }) {
                throw ErrorBody.invalidArgument("实施方案文件须写明 sha256，以确定审核的是哪一版", field: "body.evidence[\(index)].sha256")
            }
            let note = request.note?.trimmingCharacters(in: .whitespacesAndNewlines).nonEmpty
            return try await context.write { db, events in
                let owed = try ImplementationPlanRules.find(db, unit: request.unit, plan: plan, today: today)
                guard Self.answers(context.caller, for: owed.unit, plan: plan) else {
                    throw ErrorBody.permissionDenied(
                        "\(owed.unit)的实施方案由其自行报送；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "body.unit")
                }
                guard owed.state.owed else {
                    throw ErrorBody.conflict("\(owed.unit)的实施方案当前为\(owed.state.label)，无需再报送", field: "body.unit")
                }
                let submission = ImplementationPlanSubmission(
                    title: title, evidence: request.evidence, note: note, at: Timestamp.format(now), by: context.from,
                    late: owed.due < today)
                try ImplementationPlanRules.appendStep(
                    db, unit: owed.unit, kind: "submit", body: try WireCoding.encode(submission), principal: context.caller.principal)
                try ImplementationPlanRules.setState(db, unit: owed.unit, state: .submitted, due: nil)
                let after = try ImplementationPlanRules.find(db, unit: owed.unit, plan: plan, today: today)
                try events.emit(ImplementationPlanTypes.submitted, ImplementationPlanRules.event(after))
                return after
            }
        }

        handlers.on(ImplementationPlanTypes.review) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied(
                    "实施方案由\(plan.office)审核；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
            }
            let comment = request.comment.trimmingCharacters(in: .whitespacesAndNewlines)
            if request.action == .return, comment.isEmpty {
                throw ErrorBody.invalidArgument("退回须写明理由（comment）", field: "body.comment")
            }
            if request.action == .accept, request.due != nil {
                throw ErrorBody.invalidArgument("审核通过无需写重新报送时限（due）", field: "body.due")
            }
            if let due = request.due { try PlausibleRange.dayFromToday(due, today: today, field: "body.due") }
            return try await context.write { db, events in
                let owed = try ImplementationPlanRules.find(db, unit: request.unit, plan: plan, today: today)
                guard owed.state == .submitted else {
                    throw ErrorBody.conflict("\(owed.unit)的实施方案当前为\(owed.state.label)，没有待审核的报送", field: "body.unit")
                }
                // A day the office names is kept as named; the default moves off a weekend or holiday.
                let again =
                    request.action == .return
                    ? request.due
                        ?? plan.workCalendar.nextWorkingDay(
                            onOrAfter: WorkCalendar.addingDays(ImplementationPlanRules.returnedDays, to: today) ?? today) : nil
                let review = ImplementationPlanReview(
                    action: request.action, comment: comment.isEmpty ? request.action.label : comment, at: Timestamp.format(now),
                    by: context.from, due: again)
                try ImplementationPlanRules.appendStep(
                    db, unit: owed.unit, kind: "review", body: try WireCoding.encode(review), principal: context.caller.principal)
                try ImplementationPlanRules.setState(
                    db, unit: owed.unit, state: request.action == .accept ? .accepted : .returned, due: again)
                let after = try ImplementationPlanRules.find(db, unit: owed.unit, plan: plan, today: today)
                try events.emit(ImplementationPlanTypes.reviewed, ImplementationPlanRules.event(after))
                return after
            }
        }

        handlers.on(ImplementationPlanTypes.list) { request, context in
            let plan = current.plan.document
            let today = Timestamp.districtDate(clock.now())
            if let unit = request.unit, plan.unit(unit) == nil {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(unit))", field: "body.unit")
            }
            let all = try await context.store.pool.read { try ImplementationPlanRules.list($0, plan: plan, today: today) }
            return ListReply(
                items: all.filter { item in
                    (request.unit.map { TaskStatusRules.canonical($0, plan: plan) == item.unit } ?? true)
                        && (request.state.map { $0 == item.state } ?? true) && (request.overdue.map { $0 == item.overdue } ?? true)
                })
        }
    }
}
