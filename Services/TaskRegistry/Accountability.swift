import Foundation
import GRDB
import PlanFormat
import Schema
import ServiceKit

/// 约谈 and 问责 as records with their substance, a 约谈's follow-up day reminded, and each unit's
/// first responsible person (第一责任人), named in what the escalation publishes.
enum AccountabilityRules {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("registry-v7-accountability") { db in
            try db.execute(
                sql: """
                    ALTER TABLE escalations ADD COLUMN details BLOB;
                    ALTER TABLE escalations ADD COLUMN follow_up TEXT;
                    ALTER TABLE escalations ADD COLUMN follow_up_notified_at TEXT;
                    ALTER TABLE escalations ADD COLUMN responsible BLOB;
                    CREATE TABLE unit_responsibles (
                        unit TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        position TEXT NOT NULL,
                        since TEXT NOT NULL,
                        set_by TEXT
                    );
                    """)
        }
    }

    static func responsible(_ db: Database, unit: String) throws -> ResponsiblePerson? {
        try Row.fetchOne(db, sql: "SELECT * FROM unit_responsibles WHERE unit = ?", arguments: [unit]).map {
            ResponsiblePerson(unit: $0["unit"], name: $0["name"], position: $0["position"], since: $0["since"])
        }
    }

    /// Checks what a 约谈 or 问责 recorded: days are days, lists hold names.
    static func validate(_ details: AccountabilityDetails, level: EscalationLevel, today: String) throws {
        if let date = details.date { try PlausibleRange.dayUpToToday(date, today: today, field: "body.details.date") }
        if let followUp = details.followUp { try PlausibleRange.dayFromToday(followUp, today: today, field: "body.details.follow_up") }
        for (key, count) in [
            ("participants", details.participants?.count ?? 0), ("commitments", details.commitments?.count ?? 0),
            ("persons", details.persons?.count ?? 0),
        ] where count > 100 {
            throw ErrorBody.invalidArgument("最多 100 项，收到 \(count) 项", field: "body.details.\(key)")
        }
        for (index, name) in (details.participants ?? []).enumerated() where name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ErrorBody.invalidArgument("参加人员不能为空", field: "body.details.participants[\(index)]")
        }
        for (index, person) in (details.persons ?? []).enumerated() {
            if person.name.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ErrorBody.invalidArgument("问责对象须写明姓名", field: "body.details.persons[\(index)].name")
            }
            if person.position.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ErrorBody.invalidArgument("问责对象须写明职务", field: "body.details.persons[\(index)].position")
            }
        }
        if level == .accountability, !(details.persons ?? []).isEmpty,
            (details.authority ?? "").trimmingCharacters(in: .whitespaces).isEmpty
        {
            throw ErrorBody.invalidArgument("问责须写明依干部管理权限作出决定的机关（authority）", field: "body.details.authority")
        }
    }

    /// 约谈 whose follow-up day has come: published once each.
    static func tick(_ db: Database, now: Date, events: inout EventBuffer) throws {
        let today = Timestamp.districtDate(now)
        let due = try Row.fetchAll(
            db,
            sql: "SELECT * FROM escalations WHERE follow_up IS NOT NULL AND follow_up <= ? AND follow_up_notified_at IS NULL ORDER BY id",
            arguments: [today])
        for row in due {
            let details = (row["details"] as Data?).flatMap { try? JSONDecoder().decode(AccountabilityDetails.self, from: $0) }
            let responsible = (row["responsible"] as Data?).flatMap { try? JSONDecoder().decode(ResponsiblePerson.self, from: $0) }
            try db.execute(
                sql: "UPDATE escalations SET follow_up_notified_at = ? WHERE id = ?", arguments: [Timestamp.format(now), row["id"] as Int])
            try events.emit(
                AccountabilityTypes.followUpDue,
                EscalationFollowUp(
                    id: row["id"], unit: row["unit"], level: EscalationLevel(rawValue: row["level"]) ?? .interview, reason: row["reason"],
                    followUp: row["follow_up"], commitments: details?.commitments ?? [], responsiblePerson: responsible))
        }
    }
}

extension RegistryService {
    func registerAccountability(_ handlers: inout HandlerTable) {
        let current = self.current
        let clock = self.clock

        handlers.on(AccountabilityTypes.responsibleSet) { request, context in
            let plan = current.plan.document
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied("第一责任人由\(plan.office)登记；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
            }
            guard plan.unit(request.unit) != nil else {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(request.unit))", field: "body.unit")
            }
            let name = request.name.trimmingCharacters(in: .whitespacesAndNewlines)
            let position = request.position.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !name.isEmpty, name.count <= 50 else { throw ErrorBody.invalidArgument("须写明姓名（不超过 50 字）", field: "body.name") }
            guard !position.isEmpty, position.count <= 100 else {
                throw ErrorBody.invalidArgument("须写明职务（不超过 100 字）", field: "body.position")
            }
            let person = ResponsiblePerson(
                unit: TaskStatusRules.canonical(request.unit, plan: plan), name: name, position: position,
                since: Timestamp.districtDate(clock.now()))
            return try await context.write { db, _ in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO unit_responsibles (unit, name, position, since, set_by) VALUES (?, ?, ?, ?, ?)",
                    arguments: [person.unit, person.name, person.position, person.since, context.from])
                return person
            }
        }

        handlers.on(AccountabilityTypes.responsibleList) { _, context in
            ListReply(
                items: try await context.store.pool.read { db in
                    try Row.fetchAll(db, sql: "SELECT * FROM unit_responsibles ORDER BY unit").map {
                        ResponsiblePerson(unit: $0["unit"], name: $0["name"], position: $0["position"], since: $0["since"])
                    }
                })
        }
    }
}
