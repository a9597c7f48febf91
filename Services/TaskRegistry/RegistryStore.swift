import Foundation
import GRDB
import PlanFormat
import Schema
import ServiceKit
import Synchronization

/// The plan in force and when it was loaded; replaced whole by `plan.load`.
struct LoadedPlan: Sendable {
    var document: PlanDocument
    var source: String
    var loadedAt: String
}

/// The registry's tables and queries.
enum RegistryStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("registry-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE plan_document (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        document BLOB NOT NULL,
                        source TEXT NOT NULL,
                        loaded_at TEXT NOT NULL
                    );
                    CREATE TABLE progress_reports (
                        task TEXT NOT NULL,
                        period TEXT NOT NULL,
                        unit TEXT NOT NULL,
                        revision INTEGER NOT NULL CHECK (revision >= 1),
                        percent REAL NOT NULL CHECK (percent BETWEEN 0 AND 100),
                        summary TEXT NOT NULL,
                        measures TEXT,
                        problems TEXT,
                        next_steps TEXT,
                        evidence BLOB NOT NULL,
                        reported_at TEXT NOT NULL,
                        reported_by TEXT,
                        PRIMARY KEY (task, period, unit, revision)
                    );
                    CREATE INDEX progress_reports_period ON progress_reports(period);
                    CREATE TABLE task_status (
                        task TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        changed_at TEXT NOT NULL
                    );
                    CREATE TABLE escalations (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        unit TEXT NOT NULL,
                        level TEXT NOT NULL CHECK (level IN ('notice', 'interview', 'accountability')),
                        reason TEXT NOT NULL,
                        tasks BLOB NOT NULL,
                        recorded_at TEXT NOT NULL,
                        recorded_by TEXT
                    );
                    CREATE INDEX escalations_unit ON escalations(unit);
                    """)
        }
        // Settings the registry keeps across starts (go-live).
        migrator.registerMigration("registry-v3-settings") { db in
            try db.execute(sql: "CREATE TABLE registry_settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
        }
        // 补报: reports for months before go-live, marked.
        migrator.registerMigration("registry-v5-backfill") { db in
            try db.execute(sql: "ALTER TABLE progress_reports ADD COLUMN backfill INTEGER NOT NULL DEFAULT 0")
        }
        // The office's acceptance of tasks reported complete.
        migrator.registerMigration("registry-v4-reviews") { db in
            try db.execute(
                sql: """
                    CREATE TABLE task_reviews (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        task TEXT NOT NULL,
                        decision TEXT NOT NULL CHECK (decision IN ('accepted', 'returned')),
                        comment TEXT NOT NULL,
                        evidence BLOB NOT NULL,
                        at TEXT NOT NULL,
                        by TEXT,
                        principal TEXT,
                        principal_key TEXT
                    );
                    CREATE INDEX task_reviews_task ON task_reviews(task, id);
                    """)
        }
        // Who reported and recorded, as CURVE proved it (PROTOCOL.md section 7).
        migrator.registerMigration("registry-v2-principals") { db in
            try db.execute(
                sql: """
                    ALTER TABLE progress_reports ADD COLUMN principal TEXT;
                    ALTER TABLE progress_reports ADD COLUMN principal_key TEXT;
                    ALTER TABLE escalations ADD COLUMN principal TEXT;
                    ALTER TABLE escalations ADD COLUMN principal_key TEXT;
                    """)
        }
    }

    static func loadPlan(_ db: Database) throws -> LoadedPlan? {
        guard let row = try Row.fetchOne(db, sql: "SELECT document, source, loaded_at FROM plan_document WHERE id = 1") else { return nil }
        let document = try JSONDecoder().decode(PlanDocument.self, from: row["document"] as Data)
        return LoadedPlan(document: document, source: row["source"], loadedAt: row["loaded_at"])
    }

    static func savePlan(_ db: Database, _ plan: LoadedPlan) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO plan_document (id, document, source, loaded_at) VALUES (1, ?, ?, ?)",
            arguments: [try WireCoding.canonical(plan.document), plan.source, plan.loadedAt])
    }

    // MARK: Reports

    static func report(from row: Row) throws -> ProgressReport {
        ProgressReport(
            task: row["task"], period: row["period"], unit: row["unit"], percent: row["percent"], summary: row["summary"],
            measures: row["measures"],
            problems: row["problems"], nextSteps: row["next_steps"],
            evidence: try JSONDecoder().decode([EvidenceRef].self, from: row["evidence"] as Data),
            revision: row["revision"], reportedAt: row["reported_at"], reportedBy: row["reported_by"], principal: row["principal"],
            principalKey: row["principal_key"], backfill: (row["backfill"] as Bool?) == true ? true : nil)
    }

    /// Reports matching the filters: the latest revision of each (task, month, unit), or every revision.
    static func reports(_ db: Database, task: String? = nil, period: String? = nil, unit: String? = nil, history: Bool = false) throws
        -> [ProgressReport]
    {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let task {
            conditions.append("p.task = ?")
            arguments.append(task)
        }
        if let period {
            conditions.append("p.period = ?")
            arguments.append(period)
        }
        if let unit {
            conditions.append("p.unit = ?")
            arguments.append(unit)
        }
        if !history {
            conditions.append(
                "p.revision = (SELECT MAX(q.revision) FROM progress_reports q "
                    + "WHERE q.task = p.task AND q.period = p.period AND q.unit = p.unit)"
            )
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try Row.fetchAll(
            db, sql: "SELECT * FROM progress_reports p \(whereClause) ORDER BY p.period, CAST(p.task AS REAL), p.task, p.unit, p.revision",
            arguments: StatementArguments(arguments)
        ).map(report(from:))
    }

    /// What the status rules need, for every task.
    static func taskReports(_ db: Database, plan: PlanDocument) throws -> [String: TaskReports] {
        var result: [String: TaskReports] = [:]
        var latestMonth: [String: [String: Month]] = [:]
        for report in try reports(db) {
            guard let month = Month(report.period) else { continue }
            let unit = TaskStatusRules.canonical(report.unit, plan: plan)
            result[report.task, default: TaskReports()].monthsReported[unit, default: []].insert(month)
            if let seen = latestMonth[report.task]?[unit], seen > month { continue }
            latestMonth[report.task, default: [:]][unit] = month
            result[report.task, default: TaskReports()].latestPercent[unit] = report.percent
            result[report.task, default: TaskReports()].latestReportedAt[unit] = report.reportedAt
        }
        for row in try Row.fetchAll(
            db, sql: "SELECT task, decision, at FROM task_reviews WHERE id IN (SELECT MAX(id) FROM task_reviews GROUP BY task)")
        {
            result[row["task"], default: TaskReports()].review = (row["decision"], row["at"])
        }
        for (task, tally) in try LedgerRules.tallies(db, plan: plan) { result[task, default: TaskReports()].ledger = tally }
        return result
    }

    // MARK: Statuses

    /// Recomputes every task's status and records, with an event, each one that changed.
    static func refreshStatuses(_ db: Database, plan: PlanDocument, now: Date, events: inout EventBuffer) throws {
        let statuses = TaskStatusRules.statuses(plan: plan, reports: try taskReports(db, plan: plan), now: now)
        var stored: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT task, status FROM task_status") { stored[row["task"]] = row["status"] }
        let at = Timestamp.format(now)
        for task in plan.tasks {
            guard let status = statuses[task.id], stored[task.id] != status.rawValue else { continue }
            try db.execute(
                sql: "INSERT OR REPLACE INTO task_status (task, status, changed_at) VALUES (?, ?, ?)",
                arguments: [task.id, status.rawValue, at])
            let leads = task.isParent ? unionOfLeads(task, plan: plan) : task.lead
            try events.emit(
                RegistryTypes.taskStatusChanged,
                TaskStatusChanged(
                    task: task.id, from: stored[task.id].flatMap(TaskStatus.init(rawValue:)), to: status, leadUnits: leads, at: at))
        }
        let current = Set(plan.tasks.map(\.id))
        for task in stored.keys where !current.contains(task) {
            try db.execute(sql: "DELETE FROM task_status WHERE task = ?", arguments: [task])
        }
    }

    static func unionOfLeads(_ task: PlanDocument.TaskEntry, plan: PlanDocument) -> [String] {
        var units: [String] = []
        for id in task.subtasks {
            for unit in plan.task(id)?.lead ?? [] where !units.contains(unit) { units.append(unit) }
        }
        return units
    }

    // MARK: Escalations

    static func escalations(_ db: Database, unit: String?) throws -> [Escalation] {
        let rows =
            if let unit {
                try Row.fetchAll(db, sql: "SELECT * FROM escalations WHERE unit = ? ORDER BY id", arguments: [unit])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM escalations ORDER BY id")
            }
        return try rows.map {
            var escalation = Escalation(
                id: $0["id"], unit: $0["unit"], level: EscalationLevel(rawValue: $0["level"]) ?? .notice, reason: $0["reason"],
                tasks: try JSONDecoder().decode([String].self, from: $0["tasks"] as Data), recordedAt: $0["recorded_at"],
                recordedBy: $0["recorded_by"], principal: $0["principal"], principalKey: $0["principal_key"])
            escalation.details = ($0["details"] as Data?).flatMap { try? JSONDecoder().decode(AccountabilityDetails.self, from: $0) }
            escalation.responsiblePerson = ($0["responsible"] as Data?).flatMap {
                try? JSONDecoder().decode(ResponsiblePerson.self, from: $0)
            }
            return escalation
        }
    }
}
