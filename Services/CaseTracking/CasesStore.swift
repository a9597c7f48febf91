import Foundation
import GRDB
import Schema

/// The ledger's tables: one row per case, its whole history beside it.
enum CasesStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("cases-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cases (
                        id TEXT PRIMARY KEY NOT NULL,
                        source TEXT NOT NULL,
                        year INTEGER NOT NULL,
                        number INTEGER NOT NULL,
                        title TEXT NOT NULL,
                        description TEXT,
                        unit TEXT NOT NULL,
                        supervising_unit TEXT,
                        acceptance_unit TEXT,
                        deadline TEXT,
                        measures TEXT,
                        task TEXT,
                        batch TEXT,
                        location TEXT,
                        lat REAL,
                        lon REAL,
                        external_ref TEXT,
                        state TEXT NOT NULL CHECK (state IN ('registered', 'assigned', 'rectifying', \
                    'pending_acceptance', 'accepted', 'closed')),
                        opened_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL,
                        closed_at TEXT,
                        overdue_notified_at TEXT,
                        UNIQUE (source, year, number)
                    );
                    CREATE UNIQUE INDEX cases_external_ref ON cases(source, external_ref) WHERE external_ref IS NOT NULL;
                    CREATE INDEX cases_unit ON cases(unit);
                    CREATE INDEX cases_batch ON cases(batch);
                    CREATE INDEX cases_state ON cases(state);
                    CREATE TABLE case_history (
                        case_id TEXT NOT NULL REFERENCES cases(id),
                        step INTEGER NOT NULL,
                        action TEXT NOT NULL,
                        from_state TEXT,
                        to_state TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        at TEXT NOT NULL,
                        comment TEXT,
                        evidence BLOB NOT NULL,
                        PRIMARY KEY (case_id, step)
                    );
                    CREATE TABLE registry_directory (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        data BLOB NOT NULL
                    );
                    """)
        }
        // Who made each step, as CURVE proved it (PROTOCOL.md section 7).
        migrator.registerMigration("cases-v2-principals") { db in
            try db.execute(
                sql: "ALTER TABLE case_history ADD COLUMN principal TEXT; ALTER TABLE case_history ADD COLUMN principal_key TEXT;")
        }
        // Follow-through: a voided state (the table is rebuilt, as SQLite cannot change a CHECK),
        // the original deadline, a pending extension, the latest update, links; history details.
        migrator.registerMigration("cases-v3-follow-through") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cases_v3 (
                        id TEXT PRIMARY KEY NOT NULL,
                        source TEXT NOT NULL,
                        year INTEGER NOT NULL,
                        number INTEGER NOT NULL,
                        title TEXT NOT NULL,
                        description TEXT,
                        unit TEXT NOT NULL,
                        supervising_unit TEXT,
                        acceptance_unit TEXT,
                        deadline TEXT,
                        measures TEXT,
                        task TEXT,
                        batch TEXT,
                        location TEXT,
                        lat REAL,
                        lon REAL,
                        external_ref TEXT,
                        state TEXT NOT NULL CHECK (state IN ('registered', 'assigned', 'rectifying', \
                    'pending_acceptance', 'accepted', 'closed', 'voided')),
                        opened_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL,
                        closed_at TEXT,
                        overdue_notified_at TEXT,
                        original_deadline TEXT,
                        pending_extension BLOB,
                        latest_update BLOB,
                        void_reason TEXT,
                        UNIQUE (source, year, number)
                    );
                    INSERT INTO cases_v3 (id, source, year, number, title, description, unit, supervising_unit, acceptance_unit,
                        deadline, measures, task, batch, location, lat, lon, external_ref, state, opened_at, updated_at, closed_at,
                        overdue_notified_at)
                    SELECT id, source, year, number, title, description, unit, supervising_unit, acceptance_unit,
                        deadline, measures, task, batch, location, lat, lon, external_ref, state, opened_at, updated_at, closed_at,
                        overdue_notified_at FROM cases;
                    DROP TABLE cases;
                    ALTER TABLE cases_v3 RENAME TO cases;
                    CREATE UNIQUE INDEX cases_external_ref ON cases(source, external_ref) WHERE external_ref IS NOT NULL;
                    CREATE INDEX cases_unit ON cases(unit);
                    CREATE INDEX cases_batch ON cases(batch);
                    CREATE INDEX cases_state ON cases(state);
                    ALTER TABLE case_history ADD COLUMN progress INTEGER;
                    ALTER TABLE case_history ADD COLUMN deadline_change BLOB;
                    ALTER TABLE case_history ADD COLUMN visit BLOB;
                    CREATE TABLE case_links (
                        case_id TEXT NOT NULL REFERENCES cases(id),
                        related TEXT NOT NULL REFERENCES cases(id),
                        PRIMARY KEY (case_id, related)
                    );
                    """)
        }
    }

    /// A case is overdue when its deadline day has ended and it is not yet accepted.
    static func isOverdue(deadline: String?, state: CaseState, now: Date) -> Bool {
        guard let deadline, state.isOpen else { return false }
        return Timestamp.districtDate(now) > deadline
    }

    static func makeCase(_ row: Row, now: Date, history: [CaseTransition]?, evidence: [EvidenceRef]) -> Case {
        let state = CaseState(rawValue: row["state"]) ?? .registered
        let lat: Double? = row["lat"]
        let lon: Double? = row["lon"]
        let deadline: String? = row["deadline"]
        var item = Case(
            id: row["id"], source: CaseSource(rawValue: row["source"]) ?? .other, title: row["title"], description: row["description"],
            unit: row["unit"],
            supervisingUnit: row["supervising_unit"], deadline: deadline, measures: row["measures"], task: row["task"], batch: row["batch"],
            location: row["location"], coordinates: lat.flatMap { lat in lon.map { Coordinates(lat: lat, lon: $0) } },
            externalRef: row["external_ref"],
            acceptanceUnit: row["acceptance_unit"], state: state, overdue: isOverdue(deadline: deadline, state: state, now: now),
            evidence: evidence,
            history: history, openedAt: row["opened_at"], updatedAt: row["updated_at"], closedAt: row["closed_at"])
        item.originalDeadline = row["original_deadline"]
        item.latestUpdate = decoded(CaseProgress.self, row["latest_update"])
        item.pendingExtension = decoded(ExtensionRequest.self, row["pending_extension"])
        item.voidReason = row["void_reason"]
        return item
    }

    /// A JSON column's value, or nil when it is empty (or, never expected, unreadable).
    static func decoded<T: Decodable>(_ type: T.Type, _ data: Data?) -> T? {
        guard let data, !data.isEmpty else { return nil }
        return try? JSONDecoder().decode(type, from: data)
    }

    static func history(_ db: Database, id: String) throws -> [CaseTransition] {
        try Row.fetchAll(db, sql: "SELECT * FROM case_history WHERE case_id = ? ORDER BY step", arguments: [id]).map {
            CaseTransition(
                action: $0["action"], from: ($0["from_state"] as String?).flatMap(CaseState.init(rawValue:)),
                to: CaseState(rawValue: $0["to_state"]) ?? .registered, actor: $0["actor"], at: $0["at"], comment: $0["comment"],
                evidence: (try? JSONDecoder().decode([EvidenceRef].self, from: $0["evidence"] as Data)) ?? [], principal: $0["principal"],
                principalKey: $0["principal_key"], progress: $0["progress"],
                deadlineChange: decoded(DeadlineChange.self, $0["deadline_change"]), visit: decoded(SiteVisit.self, $0["visit"]))
        }
    }

    /// The cases linked to `id`, both ways, in number order.
    static func related(_ db: Database, id: String) throws -> [String] {
        try String.fetchAll(
            db,
            sql: "SELECT related FROM case_links WHERE case_id = ? UNION SELECT case_id FROM case_links WHERE related = ? ORDER BY 1",
            arguments: [id, id])
    }

    /// One case with its whole file.
    static func fetch(_ db: Database, id: String, now: Date) throws -> Case? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM cases WHERE id = ?", arguments: [id]) else { return nil }
        let history = try history(db, id: id)
        var item = makeCase(row, now: now, history: history, evidence: history.flatMap(\.evidence))
        let related = try related(db, id: id)
        item.related = related.isEmpty ? nil : related
        return item
    }

    /// Cases matching the filters, without history, in number order.
    /// Where a page of the list starts and how long it may be: after the case a reader got last
    /// (keyset, in the list's order), else at an offset.
    struct Page {
        var after: String?
        var offset: Int
        var limit: Int
    }

    /// The cases matching `filter` in the ledger's order (source, year, number), with their
    /// evidence and links; with `page`, only that page's (and one more, when more remain), so that
    /// reading a long ledger page by page costs each page once.
    static func list(_ db: Database, _ filter: CaseListRequest, now: Date, page: Page? = nil) throws -> [Case] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        func add(_ sql: String, _ value: (any DatabaseValueConvertible)?) {
            guard let value else { return }
            conditions.append(sql)
            arguments.append(value)
        }
        add("c.state = ?", filter.status?.rawValue)
        add("c.unit = ?", filter.unit)
        add("c.source = ?", filter.source?.rawValue)
        add("c.batch = ?", filter.batch)
        add("c.task = ?", filter.task)
        if let overdue = filter.overdue {
            let today = Timestamp.districtDate(now)
            conditions.append(
                overdue
                    ? "(c.deadline IS NOT NULL AND c.deadline < ? AND c.state NOT IN ('accepted', 'closed', 'voided'))"
                    : "NOT (c.deadline IS NOT NULL AND c.deadline < ? AND c.state NOT IN ('accepted', 'closed', 'voided'))")
            arguments.append(today)
        }
        var limit = ""
        if let page {
            if let after = page.after,
                let last = try Row.fetchOne(db, sql: "SELECT source, year, number FROM cases WHERE id = ?", arguments: [after])
            {
                conditions.append("(c.source, c.year, c.number) > (?, ?, ?)")
                arguments += [last["source"] as String, last["year"] as Int, last["number"] as Int]
                limit = " LIMIT \(page.limit + 1)"
            } else {
                limit = " LIMIT \(page.limit + 1) OFFSET \(page.offset)"
            }
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try Row.fetchAll(
            db, sql: "SELECT c.* FROM cases c \(whereClause) ORDER BY c.source, c.year, c.number\(limit)",
            arguments: StatementArguments(arguments))
        // A page's evidence and links only: the whole ledger's when the whole ledger is asked for.
        let ids: [String] = rows.map { $0["id"] }
        let only = page == nil ? "" : "case_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
        let onlyArguments = page == nil ? StatementArguments() : StatementArguments(ids)
        var evidence: [String: [EvidenceRef]] = [:]
        let evidenceSQL = "SELECT case_id, evidence FROM case_history WHERE length(evidence) > 2 \(only.isEmpty ? "" : "AND " + only)"
        for row in try Row.fetchAll(db, sql: evidenceSQL + " ORDER BY case_id, step", arguments: onlyArguments) {
            evidence[row["case_id"], default: []] += (try? JSONDecoder().decode([EvidenceRef].self, from: row["evidence"] as Data)) ?? []
        }
        var related: [String: [String]] = [:]
        let linksOnly = page == nil ? "" : "WHERE \(only) OR \(only.replacingOccurrences(of: "case_id IN", with: "related IN"))"
        for row in try Row.fetchAll(
            db, sql: "SELECT case_id, related FROM case_links \(linksOnly) ORDER BY case_id, related",
            arguments: page == nil ? StatementArguments() : StatementArguments(ids + ids))
        {
            related[row["case_id"], default: []].append(row["related"])
            related[row["related"], default: []].append(row["case_id"])
        }
        return rows.map {
            var item = makeCase($0, now: now, history: nil, evidence: evidence[$0["id"]] ?? [])
            item.related = related[item.id]?.sorted()
            return item
        }
    }

    /// How many cases each batch holds in each state, and how many of them are overdue (as
    /// `isOverdue` judges): counted by the database, not by reading the ledger.
    static func batchCounts(_ db: Database, source: CaseSource?, now: Date) throws -> [(
        batch: String, state: CaseState, cases: Int, overdue: Int
    )] {
        let open = CaseState.allCases.filter(\.isOpen).map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT COALESCE(batch, '') AS batch, state, COUNT(*) AS cases,
                SUM(CASE WHEN deadline IS NOT NULL AND deadline < ? AND state IN (\(open)) THEN 1 ELSE 0 END) AS overdue
                FROM cases \(source == nil ? "" : "WHERE source = ?") GROUP BY COALESCE(batch, ''), state
                """,
            arguments: StatementArguments([Timestamp.districtDate(now)] + (source.map { [$0.rawValue] } ?? [])))
        return rows.map { row in
            (row["batch"], CaseState(rawValue: row["state"]) ?? .registered, row["cases"], row["overdue"])
        }
    }

    /// The next human-readable number for a source and year: `HCJ-2026-0001`.
    static func nextNumber(_ db: Database, source: CaseSource, year: Int) throws -> (id: String, number: Int) {
        let number =
            (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM cases WHERE source = ? AND year = ?", arguments: [source.rawValue, year])
                ?? 0) + 1
        return (String(format: "%@-%04d-%04d", source.numberPrefix, year, number), number)
    }

    static func appendHistory(_ db: Database, id: String, _ step: CaseTransition) throws {
        let next = (try Int.fetchOne(db, sql: "SELECT MAX(step) FROM case_history WHERE case_id = ?", arguments: [id]) ?? 0) + 1
        try db.execute(
            sql:
                "INSERT INTO case_history (case_id, step, action, from_state, to_state, actor, at, comment, evidence, principal, "
                + "principal_key, progress, deadline_change, visit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                id, next, step.action, step.from?.rawValue, step.to.rawValue, step.actor, step.at, step.comment,
                try WireCoding.encode(step.evidence), step.principal, step.principalKey, step.progress,
                try step.deadlineChange.map(WireCoding.encode), try step.visit.map(WireCoding.encode),
            ])
    }
}
