import Foundation
import GRDB
import Schema
import ServiceKit

/// A notice before it is stored: what a rule decided.
struct NoticeDraft: Sendable, Equatable {
    var kind: NoticeKind
    var severity: Severity
    var units: [String]
    var title: String
    var text: String
    var refs: NoticeRefs
    /// The condition: while a notice with this key is live (open or silenced), no second one is issued.
    var dedupKey: String
}

/// The notifier's tables.
enum NotifyStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v1-channels") { db in
            try db.execute(
                sql: "CREATE TABLE channels (name TEXT PRIMARY KEY NOT NULL, definition BLOB NOT NULL, updated_at TEXT NOT NULL)")
        }
        migrator.registerMigration("notify-v2-notices") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cursors (stream TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL);
                    CREATE TABLE notices (
                        id TEXT PRIMARY KEY NOT NULL,
                        number INTEGER NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        severity TEXT NOT NULL,
                        units TEXT NOT NULL,
                        title TEXT NOT NULL,
                        text TEXT NOT NULL,
                        refs TEXT NOT NULL,
                        dedup_key TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved', 'silenced')),
                        issued_at TEXT NOT NULL,
                        ack_by TEXT,
                        ack_comment TEXT,
                        ack_at TEXT,
                        resolved_at TEXT,
                        last_sent_at REAL,
                        repeats INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE UNIQUE INDEX notices_live ON notices(dedup_key) WHERE state IN ('open', 'silenced');
                    CREATE INDEX notices_issued ON notices(issued_at);
                    CREATE TABLE notice_units (notice TEXT NOT NULL REFERENCES notices(id), unit TEXT NOT NULL, PRIMARY KEY (notice, unit));
                    CREATE INDEX notice_units_unit ON notice_units(unit);
                    CREATE TABLE silences (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        matchers TEXT NOT NULL,
                        starts_at TEXT NOT NULL,
                        ends_at TEXT NOT NULL,
                        created_by TEXT,
                        comment TEXT NOT NULL
                    );
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        channel TEXT NOT NULL,
                        unit TEXT NOT NULL,
                        notices TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'given_up')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at REAL NOT NULL,
                        last_error TEXT,
                        sent_at REAL
                    );
                    CREATE INDEX outbox_pending ON outbox(state, next_attempt_at);
                    CREATE TABLE deliveries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        outbox INTEGER NOT NULL REFERENCES outbox(id),
                        attempt INTEGER NOT NULL,
                        at TEXT NOT NULL,
                        ok INTEGER NOT NULL,
                        status INTEGER,
                        error TEXT
                    );
                    CREATE TABLE schedule_runs (job TEXT NOT NULL, period TEXT NOT NULL, ran_at TEXT NOT NULL, PRIMARY KEY (job, period));
                    """)
        }
    }

    static func laggingMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v3-lagging") { db in
            // Which units had lagging or overdue tasks at each month's dispatch: the record behind
            // proposals to escalate units whose tasks stay lagging.
            try db.execute(
                sql: "CREATE TABLE lagging_months (unit TEXT NOT NULL, month TEXT NOT NULL, tasks TEXT NOT NULL, PRIMARY KEY (unit, month))"
            )
        }
    }

    static func sealedDigestsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v4-sealed-digests") { db in
            // A digest is sealed before its first attempt: from then on no notice joins it, so what
            // is marked sent is exactly what a receiver got. Each attempt records what it sent.
            try db.execute(sql: "ALTER TABLE outbox ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "UPDATE outbox SET sealed = 1 WHERE attempts > 0 OR state <> 'pending'")
            try db.execute(sql: "ALTER TABLE deliveries ADD COLUMN notices TEXT")
        }
    }

    static func notice(_ row: Row) -> Notice {
        let decoder = JSONDecoder()
        return Notice(
            id: row["id"], kind: NoticeKind(rawValue: row["kind"]) ?? .overdue, severity: Severity(rawValue: row["severity"]) ?? .info,
            units: (try? decoder.decode([String].self, from: Data((row["units"] as String).utf8))) ?? [], title: row["title"],
            text: row["text"],
            refs: (try? decoder.decode(NoticeRefs.self, from: Data((row["refs"] as String).utf8))) ?? NoticeRefs(),
            issuedAt: row["issued_at"],
            acknowledged: (row["state"] as String) == NoticeState.acknowledged.rawValue, ackBy: row["ack_by"],
            ackComment: row["ack_comment"],
            state: NoticeState(rawValue: row["state"]) ?? .open, dedupKey: row["dedup_key"], repeats: row["repeats"],
            resolvedAt: row["resolved_at"])
    }

    static func fetch(_ db: Database, id: String) throws -> Notice? {
        try Row.fetchOne(db, sql: "SELECT * FROM notices WHERE id = ?", arguments: [id]).map(notice)
    }

    static func list(_ db: Database, _ request: NoticeListRequest) throws -> [Notice] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let unit = request.unit {
            conditions.append("id IN (SELECT notice FROM notice_units WHERE unit = ?)")
            arguments.append(unit)
        }
        if let kind = request.kind {
            conditions.append("kind = ?")
            arguments.append(kind.rawValue)
        }
        if let state = request.state {
            conditions.append("state = ?")
            arguments.append(state.rawValue)
        }
        if let since = request.since.flatMap(Timestamp.parse) {
            conditions.append("issued_at >= ?")
            arguments.append(Timestamp.format(since))
        }
        if let until = request.until.flatMap(Timestamp.parse) {
            conditions.append("issued_at <= ?")
            arguments.append(Timestamp.format(until))
        }
        if let q = request.q, !q.isEmpty {
            conditions.append("(title LIKE ? OR text LIKE ?)")
            arguments.append("%\(q)%")
            arguments.append("%\(q)%")
        }
        if let task = request.task {
            conditions.append("json_extract(refs, '$.task') = ?")
            arguments.append(task)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try Row.fetchAll(db, sql: "SELECT * FROM notices \(whereClause) ORDER BY number", arguments: StatementArguments(arguments))
            .map(notice)
    }

    static func silences(_ db: Database, activeAt now: Date?) throws -> [Silence] {
        try Row.fetchAll(db, sql: "SELECT * FROM silences ORDER BY id").compactMap { row -> Silence? in
            let silence = Silence(
                id: row["id"],
                matchers: (try? JSONDecoder().decode(SilenceMatchers.self, from: Data((row["matchers"] as String).utf8)))
                    ?? SilenceMatchers(),
                startsAt: row["starts_at"], endsAt: row["ends_at"], createdBy: row["created_by"], comment: row["comment"])
            if let now {
                guard let start = Timestamp.parse(silence.startsAt), let end = Timestamp.parse(silence.endsAt), start <= now, now < end
                else { return nil }
            }
            return silence
        }
    }

    static func matches(_ matchers: SilenceMatchers, _ draft: NoticeDraft) -> Bool {
        if let kind = matchers.kind, kind != draft.kind { return false }
        if let unit = matchers.unit, !draft.units.contains(unit) { return false }
        if let task = matchers.task, draft.refs.task != task { return false }
        if let indicator = matchers.indicator, draft.refs.indicator != indicator { return false }
        if let id = matchers.case, draft.refs.case != id { return false }
        return true
    }

    /// Issues each draft unless a live notice already reports its condition; queues deliveries to
    /// the channels that take it, one pending digest per channel and unit; publishes
    /// `notify.notice.issued`. Returns the notices issued.
    @discardableResult
    static func issue(_ drafts: [NoticeDraft], db: Database, events: inout EventBuffer, now: Date, channels: [Channel]) throws -> [Notice] {
        var issued: [Notice] = []
        let silences = try silences(db, activeAt: now)
        for draft in drafts {
            if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM notices WHERE dedup_key = ? AND state IN ('open', 'silenced')", arguments: [draft.dedupKey]) == true
            {
                continue
            }
            let number = (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM notices") ?? 0) + 1
            let day = Timestamp.districtDate(now).replacingOccurrences(of: "-", with: "")
            let id = "TZ-\(day)-\(String(format: "%05d", number))"
            let silenced = silences.contains { matches($0.matchers, draft) }
            let state: NoticeState = silenced ? .silenced : .open
            try db.execute(
                sql: """
                    INSERT INTO notices (id, number, kind, severity, units, title, text, refs, dedup_key, state, issued_at, last_sent_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, number, draft.kind.rawValue, draft.severity.rawValue,
                    String(decoding: try WireCoding.encode(draft.units), as: UTF8.self), draft.title,
                    draft.text, String(decoding: try WireCoding.canonical(draft.refs), as: UTF8.self), draft.dedupKey, state.rawValue,
                    Timestamp.format(now),
                    silenced ? nil : now.timeIntervalSince1970,
                ])
            for unit in Set(draft.units) {
                try db.execute(sql: "INSERT INTO notice_units (notice, unit) VALUES (?, ?)", arguments: [id, unit])
            }
            let notice = try fetch(db, id: id)!
            try events.emit(NotifyTypes.noticeIssued, notice)
            if !silenced { try enqueue(notice, db: db, now: now, channels: channels) }
            issued.append(notice)
        }
        return issued
    }

    /// Queues a notice for every channel that takes it: into the pending digest of that channel and
    /// unit that is not sealed yet (no attempt has begun), else a new one.
    static func enqueue(_ notice: Notice, db: Database, now: Date, channels: [Channel]) throws {
        for channel in channels where channel.enabled != false {
            if let kinds = channel.kinds, !kinds.isEmpty, !kinds.contains(notice.kind) { continue }
            if let minimum = channel.minSeverity, notice.severity < minimum { continue }
            let units = (channel.units?.isEmpty ?? true) ? [notice.units.first ?? "*"] : notice.units.filter { channel.units!.contains($0) }
            for unit in units {
                if let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT id, notices FROM outbox
                        WHERE channel = ? AND unit = ? AND state = 'pending' AND sealed = 0 ORDER BY id DESC LIMIT 1
                        """,
                    arguments: [channel.name, unit])
                {
                    var ids = (try? JSONDecoder().decode([String].self, from: Data((row["notices"] as String).utf8))) ?? []
                    guard !ids.contains(notice.id) else { continue }
                    ids.append(notice.id)
                    try db.execute(
                        sql: "UPDATE outbox SET notices = ? WHERE id = ?",
                        arguments: [String(decoding: try WireCoding.encode(ids), as: UTF8.self), row["id"] as Int64])
                } else {
                    try db.execute(
                        sql: """
                            INSERT INTO outbox (channel, unit, notices, created_at, state, next_attempt_at)
                            VALUES (?, ?, ?, ?, 'pending', ?)
                            """,
                        arguments: [
                            channel.name, unit, String(decoding: try WireCoding.encode([notice.id]), as: UTF8.self),
                            now.timeIntervalSince1970, now.timeIntervalSince1970,
                        ])
                }
            }
        }
    }

    static func cursors(_ db: Database) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT stream, seq FROM cursors") { out[row["stream"]] = row["seq"] }
        return out
    }

    static func setCursor(_ db: Database, stream: String, seq: Int) throws {
        try db.execute(
            sql: "INSERT INTO cursors (stream, seq) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            arguments: [stream, seq])
    }

    static func deliveries(_ db: Database, _ request: DeliveryListRequest) throws -> [DeliveryAttempt] {
        var rows = try Row.fetchAll(
            db,
            sql: """
                SELECT d.outbox, d.attempt, d.at, d.ok, d.status, d.error, COALESCE(d.notices, o.notices) AS notices, o.channel, o.unit
                FROM deliveries d JOIN outbox o ON o.id = d.outbox ORDER BY d.id
                """)
        if let channel = request.channel { rows = rows.filter { ($0["channel"] as String) == channel } }
        return rows.compactMap { row in
            let notices = (try? JSONDecoder().decode([String].self, from: Data((row["notices"] as String).utf8))) ?? []
            if let notice = request.notice, !notices.contains(notice) { return nil }
            return DeliveryAttempt(
                delivery: row["outbox"], channel: row["channel"], unit: row["unit"], notices: notices, attempt: row["attempt"],
                at: row["at"], ok: row["ok"],
                status: row["status"], error: row["error"])
        }
    }
}
