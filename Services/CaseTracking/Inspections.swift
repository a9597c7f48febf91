import Foundation
import GRDB
import Schema
import ServiceKit

/// Inspections by 区纪委监委 recorded by the office; each finding becomes a ledger case (source
/// `discipline_inspection`) in a batch named by the inspection, so the batch's progress shows how
/// far its findings are fixed.
enum InspectionStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("cases-v5-inspections") { db in
            try db.execute(
                sql: """
                    CREATE TABLE inspections (
                        id TEXT PRIMARY KEY NOT NULL,
                        year TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        date TEXT NOT NULL,
                        agency TEXT NOT NULL,
                        summary TEXT NOT NULL,
                        cases BLOB NOT NULL,
                        recorded_at TEXT NOT NULL,
                        recorded_by TEXT
                    );
                    """)
        }
    }

    static func all(_ db: Database) throws -> [InspectionRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM inspections ORDER BY recorded_at DESC, id DESC").map(record)
    }

    static func record(_ row: Row) -> InspectionRecord {
        InspectionRecord(
            id: row["id"], kind: InspectionKind(rawValue: row["kind"]) ?? .special, date: row["date"], agency: row["agency"],
            summary: row["summary"], batch: row["id"], cases: (try? JSONDecoder().decode([String].self, from: row["cases"] as Data)) ?? [],
            recordedAt: row["recorded_at"], recordedBy: row["recorded_by"])
    }
}

extension CasesService {
    func registerInspections(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let directory = self.directory

        handlers.on(InspectionTypes.record) { request, context in
            let registry = try directory.lookup()
            guard context.caller.isOffice || (context.caller.principal == nil && context.from == registry.office) else {
                throw ErrorBody.permissionDenied("区纪委监委督查情况由\(registry.office)登记", field: "from")
            }
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            try PlausibleRange.dayUpToToday(request.date, today: today, field: "body.date")
            let summary = try Self.requiredText(request.summary, field: "body.summary", what: "督查情况（summary）")
            guard (1...200).contains(request.findings.count) else {
                throw ErrorBody.invalidArgument("须列明 1 到 200 个发现的问题（findings）", field: "body.findings")
            }
            let agency = request.agency?.trimmingCharacters(in: .whitespacesAndNewlines).nonEmpty ?? "区纪委监委"
            let year = String(today.prefix(4))
            let openings = try request.findings.enumerated().map { index, finding in
                let opening = CaseOpenRequest(
                    source: .disciplineInspection, title: finding.title, unit: finding.unit, deadline: finding.deadline,
                    description: finding.description, task: finding.task, location: finding.location)
                _ = try directory.lookup(unit: finding.unit, task: finding.task)
                try Self.validate(opening, registry: directory.current ?? registry, field: "body.findings[\(index)]")
                return opening
            }
            let actor = context.from ?? registry.office
            return try await context.write { db, events in
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inspections WHERE year = ?", arguments: [year]) ?? 0
                let id = String(format: "JWDC-%@-%02d", year, count + 1)
                var cases: [String] = []
                for var opening in openings {
                    opening.batch = id
                    cases.append(
                        try Self.open(opening, db: db, events: &events, actor: actor, principal: context.caller.principal, now: now).id)
                }
                let at = Timestamp.format(now)
                try db.execute(
                    sql: """
                        INSERT INTO inspections (id, year, kind, date, agency, summary, cases, recorded_at, recorded_by)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, year, request.kind.rawValue, request.date, agency, summary, try WireCoding.encode(cases), at, context.from,
                    ])
                let record = InspectionRecord(
                    id: id, kind: request.kind, date: request.date, agency: agency, summary: summary, batch: id, cases: cases,
                    recordedAt: at,
                    recordedBy: context.from)
                try events.emit(InspectionTypes.recorded, record)
                return record
            }
        }

        handlers.on(InspectionTypes.list) { _, context in
            ListReply(items: try await context.store.pool.read { try InspectionStore.all($0) })
        }
    }
}
