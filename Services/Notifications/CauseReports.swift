import Foundation
import GRDB
import Schema
import ServiceKit
import WorkCalendar

/// 原因报告: a live breach at a water section (`class_exceeded`) opens a report the lead units of the
/// tasks behind the section's target owe within `cause_report_days`; the notice asking for it is
/// repeated like any unacknowledged notice, and a report still owed after its day raises a notice
/// and a 建议通报 proposal, both resolved when every owing unit has reported.
enum CauseReports {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v6-cause-reports") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cause_reports (
                        id TEXT PRIMARY KEY NOT NULL,
                        alert TEXT NOT NULL,
                        station TEXT,
                        parameter TEXT,
                        message TEXT NOT NULL,
                        raised_at TEXT NOT NULL,
                        due TEXT NOT NULL,
                        units BLOB NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('owed', 'reported')),
                        overdue_notified_at TEXT,
                        event TEXT NOT NULL UNIQUE
                    );
                    CREATE TABLE cause_entries (
                        report_id TEXT NOT NULL REFERENCES cause_reports(id),
                        unit TEXT NOT NULL,
                        entry BLOB NOT NULL,
                        PRIMARY KEY (report_id, unit)
                    );
                    """)
        }
    }

    /// Opens the report a live breach asks for (once per event), with its notice; nil when the
    /// alert is not a live breach at a water section whose target has tasks.
    static func open(
        _ alert: AlertBody, event: String, directory: Directory.Snapshot, days: Int, calendar: WorkCalendar, db: Database,
        events: inout EventBuffer, now: Date
    ) throws -> [NoticeDraft] {
        guard alert.kind == "class_exceeded", !alert.historical, let station = alert.station,
            let indicator = directory.indicators["water_quality_\(station)"]
        else { return [] }
        let units = EventRules.unique(indicator.tasks.flatMap { directory.tasks[$0]?.leadUnits ?? [] })
        guard !units.isEmpty else { return [] }
        guard try Int.fetchOne(db, sql: "SELECT 1 FROM cause_reports WHERE event = ?", arguments: [event]) == nil else { return [] }
        // A value hovering at the limit raises again and again: one report is owed until it is made.
        guard
            try Int.fetchOne(db, sql: "SELECT 1 FROM cause_reports WHERE alert = ? AND state = 'owed'", arguments: [alert.alert]) == nil
        else { return [] }
        let year = String(Timestamp.districtDate(now).prefix(4))
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM cause_reports WHERE id LIKE ?", arguments: ["YY-\(year)-%"]) ?? 0
        let id = String(format: "YY-%@-%04d", year, count + 1)
        // Days counted on the calendar; a due day on a weekend or holiday moves to the next working day.
        let due = calendar.nextWorkingDay(onOrAfter: Timestamp.districtDate(now.addingTimeInterval(Double(days) * 86_400)))
        try db.execute(
            sql: """
                INSERT INTO cause_reports (id, alert, station, parameter, message, raised_at, due, units, state, event)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'owed', ?)
                """,
            arguments: [
                id, alert.alert, station, alert.parameter, alert.message, Timestamp.format(now), due, try WireCoding.encode(units), event,
            ])
        let report = try fetch(db, id: id, today: Timestamp.districtDate(now))!
        try events.emit(CauseReportTypes.opened, report)
        return [
            NoticeDraft(
                kind: .causeReportDue, severity: .critical, units: EventRules.unique(units + [directory.office]),
                title: "请报告超标原因：\(alert.message)",
                text: "\(alert.message)。请\(units.joined(separator: "、"))迅速查找原因，于\(due)前报告原因及处置措施"
                    + "（原因报告 \(id)：duban cause report \(id) \"原因\"）。",
                refs: NoticeRefs(task: indicator.tasks.first, indicator: indicator.id, event: event), dedupKey: "cause_report:\(id)")
        ]
    }

    static func fetch(_ db: Database, id: String, today: String) throws -> CauseReport? {
        try list(db, CauseListRequest(), id: id, today: today).first
    }

    static func list(_ db: Database, _ request: CauseListRequest, id: String? = nil, today: String) throws -> [CauseReport] {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT * FROM cause_reports WHERE (? IS NULL OR id = ?) AND (? IS NULL OR station = ?) ORDER BY raised_at DESC, id DESC",
            arguments: [id, id, request.station, request.station])
        return try rows.compactMap { row -> CauseReport? in
            let reportID: String = row["id"]
            let units = (try? JSONDecoder().decode([String].self, from: row["units"] as Data)) ?? []
            let entries = try Row.fetchAll(
                db, sql: "SELECT entry FROM cause_entries WHERE report_id = ? ORDER BY rowid", arguments: [reportID]
            ).compactMap { try? JSONDecoder().decode(CauseEntry.self, from: $0["entry"] as Data) }
            let reported = Set(entries.map(\.unit))
            let state = CauseReportState(rawValue: row["state"]) ?? .owed
            let due: String = row["due"]
            let report = CauseReport(
                id: reportID, alert: row["alert"], station: row["station"], parameter: row["parameter"], message: row["message"],
                raisedAt: row["raised_at"], due: due, units: units, state: state, overdue: state == .owed && due < today,
                entries: entries, pendingUnits: units.filter { !reported.contains($0) })
            if let wanted = request.state, wanted != report.state { return nil }
            if let unit = request.unit, !units.contains(unit) { return nil }
            if let overdue = request.overdue, overdue != report.overdue { return nil }
            return report
        }
    }

    /// Reports still owed after their day: a notice to the units that have not reported and the
    /// office, and a proposal to the office; once each.
    static func overdue(_ db: Database, today: String, office: String, now: Date) throws -> [NoticeDraft] {
        var drafts: [NoticeDraft] = []
        let late = try String.fetchAll(
            db, sql: "SELECT id FROM cause_reports WHERE state = 'owed' AND due < ? AND overdue_notified_at IS NULL ORDER BY id",
            arguments: [today])
        for id in late {
            guard let report = try fetch(db, id: id, today: today) else { continue }
            try db.execute(
                sql: "UPDATE cause_reports SET overdue_notified_at = ? WHERE id = ?", arguments: [Timestamp.format(now), id])
            let pending = report.pendingUnits.joined(separator: "、")
            drafts.append(
                NoticeDraft(
                    kind: .causeReportOverdue, severity: .critical, units: EventRules.unique(report.pendingUnits + [office]),
                    title: "超标原因逾期未报告：\(pending)（\(id)）",
                    text: "\(report.message)。原因报告\(id)应于\(report.due)前报送，\(pending)至今未报告，请立即报告。",
                    refs: NoticeRefs(), dedupKey: "cause_report_overdue:\(id)"))
            drafts.append(
                NoticeDraft(
                    kind: .escalationProposal, severity: .critical, units: [office], title: "建议通报：\(pending)",
                    text: "\(pending)对\(report.message)的原因报告（\(id)）逾期未报（时限\(report.due)），建议予以通报，请专项工作组办公室研究决定。",
                    refs: NoticeRefs(), dedupKey: "proposal-cause:\(id)"))
        }
        return drafts
    }
}

extension NotifyService {
    func registerCauseReports(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let directory = self.directory

        handlers.on(CauseReportTypes.report) { request, context in
            let cause = request.cause.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !cause.isEmpty else { throw ErrorBody.invalidArgument("须写明超标原因（cause）", field: "body.cause") }
            let evidence = request.evidence ?? []
            guard evidence.count <= 50 else { throw ErrorBody.invalidArgument("佐证材料最多 50 项", field: "body.evidence") }
            try EvidenceRef.validate(evidence, field: "body.evidence")
            // The office may record a unit's report (named in `unit`); a unit reports for itself.
            let isOffice = context.caller.isOffice
            let reporter: String
            if let named = request.unit {
                guard isOffice else { throw ErrorBody.permissionDenied("只有专项工作组办公室可代单位录入原因报告", field: "body.unit") }
                reporter = named
            } else {
                reporter = try acknowledgingUnit(context)
            }
            let registry = directory.registry.current
            let now = clock.now()
            let today = Timestamp.districtDate(now)
            return try await context.write { db, events in
                guard let report = try CauseReports.fetch(db, id: request.id, today: today) else {
                    throw ErrorBody.notFound("没有原因报告 \(ErrorBody.quote(request.id))", field: "body.id")
                }
                guard let unit = report.units.first(where: { registry?.acts(as: $0, actor: reporter) ?? ($0 == reporter) }) else {
                    throw ErrorBody.permissionDenied(
                        "原因报告 \(report.id) 由\(report.units.joined(separator: "、"))报送；本请求来自\(ErrorBody.quote(reporter))", field: "from")
                }
                let entry = CauseEntry(
                    unit: unit, cause: cause, measures: request.measures, evidence: evidence, at: Timestamp.format(now),
                    by: context.caller.principal?.name ?? context.from)
                // A unit may correct its report; the latest stands.
                try db.execute(
                    sql: "INSERT OR REPLACE INTO cause_entries (report_id, unit, entry) VALUES (?, ?, ?)",
                    arguments: [report.id, unit, try WireCoding.encode(entry)])
                var after = try CauseReports.fetch(db, id: report.id, today: today)!
                if after.pendingUnits.isEmpty {
                    try db.execute(sql: "UPDATE cause_reports SET state = 'reported' WHERE id = ?", arguments: [report.id])
                    for key in ["cause_report:\(report.id)", "cause_report_overdue:\(report.id)", "proposal-cause:\(report.id)"] {
                        try db.execute(
                            sql: """
                                UPDATE notices SET state = 'resolved', resolved_at = ?
                                WHERE dedup_key = ? AND state IN ('open', 'silenced')
                                """,
                            arguments: [Timestamp.format(now), key])
                    }
                    after = try CauseReports.fetch(db, id: report.id, today: today)!
                }
                try events.emit(CauseReportTypes.reported, after)
                return after
            }
        }

        handlers.on(CauseReportTypes.list) { request, context in
            let today = Timestamp.districtDate(clock.now())
            return ListReply(items: try await context.store.pool.read { try CauseReports.list($0, request, today: today) })
        }
    }
}
