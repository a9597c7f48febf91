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

    static func noticeAcksMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v5-notice-acks") { db in
            // Each unit acknowledges (签收) for itself; the key into notice_units keeps out a unit the
            // notice is not addressed to. A notice acknowledged before keeps the acknowledgement of its
            // one acknowledger, where that was one of its units.
            try db.execute(
                sql: """
                    CREATE TABLE notice_acks (
                        notice TEXT NOT NULL,
                        unit TEXT NOT NULL,
                        at TEXT NOT NULL,
                        comment TEXT,
                        acked_by TEXT,
                        PRIMARY KEY (notice, unit),
                        FOREIGN KEY (notice, unit) REFERENCES notice_units(notice, unit)
                    );
                    INSERT INTO notice_acks (notice, unit, at, comment, acked_by)
                    SELECT n.id, n.ack_by, n.ack_at, n.ack_comment, n.ack_by FROM notices n
                    JOIN notice_units u ON u.notice = n.id AND u.unit = n.ack_by
                    WHERE n.state = 'acknowledged' AND n.ack_at IS NOT NULL;
                    """)
        }
    }

    static func notice(_ row: Row, acks: [NoticeAck]) -> Notice {
        let decoder = JSONDecoder()
        let units = (try? decoder.decode([String].self, from: Data((row["units"] as String).utf8))) ?? []
        let state = NoticeState(rawValue: row["state"]) ?? .open
        // Who has not acknowledged, while there is still something to acknowledge.
        let acked = Set(acks.map(\.unit))
        let pending = state == .open || state == .silenced ? units.filter { !acked.contains($0) } : []
        return Notice(
            id: row["id"], kind: NoticeKind(rawValue: row["kind"]) ?? .overdue, severity: Severity(rawValue: row["severity"]) ?? .info,
            units: units, title: row["title"],
            text: row["text"],
            refs: (try? decoder.decode(NoticeRefs.self, from: Data((row["refs"] as String).utf8))) ?? NoticeRefs(),
            issuedAt: row["issued_at"],
            acknowledged: state == .acknowledged, ackBy: row["ack_by"],
            ackComment: row["ack_comment"],
            state: state, dedupKey: row["dedup_key"], repeats: row["repeats"],
            resolvedAt: row["resolved_at"], acks: acks, pendingUnits: pending)
    }

    static func fetch(_ db: Database, id: String) throws -> Notice? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM notices WHERE id = ?", arguments: [id]) else { return nil }
        return notice(row, acks: try acks(db, of: "?", arguments: [id])[id] ?? [])
    }

    /// The acknowledgements of the notices `ids` (an SQL expression: one id or a subquery), by notice, in the order made.
    static func acks(_ db: Database, of ids: String, arguments: StatementArguments) throws -> [String: [NoticeAck]] {
        var result: [String: [NoticeAck]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT notice, unit, at, comment, acked_by FROM notice_acks WHERE notice IN (\(ids)) ORDER BY rowid",
            arguments: arguments)
        {
            result[row["notice"], default: []].append(
                NoticeAck(unit: row["unit"], at: row["at"], comment: row["comment"], by: row["acked_by"]))
        }
        return result
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
        if let unit = request.pendingUnit {
            conditions.append(
                """
                state IN ('open', 'silenced') AND id IN (SELECT notice FROM notice_units WHERE unit = ?)
                AND id NOT IN (SELECT notice FROM notice_acks WHERE unit = ?)
                """)
            arguments.append(unit)
            arguments.append(unit)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try Row.fetchAll(
            db, sql: "SELECT * FROM notices \(whereClause) ORDER BY number", arguments: StatementArguments(arguments))
        guard !rows.isEmpty else { return [] }
        let acks = try acks(db, of: "SELECT id FROM notices \(whereClause)", arguments: StatementArguments(arguments))
        return rows.map { notice($0, acks: acks[$0["id"]] ?? []) }
    }

    /// Records `unit`'s acknowledgement of notice `id`. Returns the notice as it stands and the
    /// acknowledgement recorded, or nil when there was nothing to record: the unit had acknowledged
    /// it already, or every unit had (a repeated acknowledgement changes nothing and is not an error).
    /// A unit the notice is not addressed to is `permission_denied`; a resolved notice is `conflict`.
    /// When the last unit acknowledges, the notice becomes `acknowledged` with `ack_by`/`ack_comment`
    /// from that acknowledgement.
    /// `standsFor(name, unit)` says whether `unit` answers to a name the notice is addressed to
    /// (its alias, a collective it belongs to); the acknowledgement is recorded under that name.
    static func acknowledge(
        _ db: Database, id: String, unit acknowledging: String, by: String?, comment: String?, now: Date, channels: [Channel],
        standsFor: (_ name: String, _ unit: String) -> Bool = { $0 == $1 }
    ) throws -> (Notice, NoticeAck?) {
        guard let notice = try fetch(db, id: id) else {
            throw ErrorBody.notFound("没有通知 \(ErrorBody.quote(id))", field: "body.id")
        }
        let unit =
            notice.units.first { $0 == acknowledging }
            ?? notice.pendingUnits.first { standsFor($0, acknowledging) } ?? notice.units.first { standsFor($0, acknowledging) }
            ?? acknowledging
        guard notice.units.contains(unit) else {
            throw ErrorBody.permissionDenied(
                "通知 \(notice.id) 不是发给\(ErrorBody.quote(unit))的，只能由收到通知的单位各自签收（\(notice.units.joined(separator: "、"))）",
                field: "from")
        }
        if notice.state == .acknowledged || notice.acks.contains(where: { $0.unit == unit }) { return (notice, nil) }
        guard notice.state == .open || notice.state == .silenced else {
            throw ErrorBody.conflict("通知 \(notice.id) 的状态为 \(notice.state.rawValue)，无需再确认", field: "body.id")
        }
        let ack = NoticeAck(unit: unit, at: Timestamp.format(now), comment: comment, by: by)
        try db.execute(
            sql: "INSERT INTO notice_acks (notice, unit, at, comment, acked_by) VALUES (?, ?, ?, ?, ?)",
            arguments: [notice.id, unit, ack.at, comment, by])
        let everyone = notice.pendingUnits.allSatisfy { $0 == unit }
        if everyone {
            try db.execute(
                sql: "UPDATE notices SET state = 'acknowledged', ack_by = ?, ack_comment = ?, ack_at = ? WHERE id = ?",
                arguments: [by, comment, ack.at, notice.id])
        }
        try withdraw(notice.id, unit: everyone ? nil : unit, db: db, channels: channels)
        return (try fetch(db, id: notice.id)!, ack)
    }

    /// Takes an acknowledged notice out of the digests no attempt has begun on: for `unit`, those on
    /// channels that name their units (a channel for every unit sends one digest for all, which still
    /// reminds those who have not acknowledged); for nil (nobody left to remind), every one.
    static func withdraw(_ id: String, unit: String?, db: Database, channels: [Channel]) throws {
        let perUnit = Set(channels.filter { !($0.units?.isEmpty ?? true) }.map(\.name))
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, channel, unit, notices FROM outbox WHERE state = 'pending' AND sealed = 0 AND notices LIKE ?",
            arguments: ["%\"\(id)\"%"])
        for row in rows {
            if let unit, (row["unit"] as String) != unit || !perUnit.contains(row["channel"] as String) { continue }
            var ids = (try? JSONDecoder().decode([String].self, from: Data((row["notices"] as String).utf8))) ?? []
            guard ids.contains(id) else { continue }
            ids.removeAll { $0 == id }
            if ids.isEmpty {
                try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [row["id"] as Int64])
            } else {
                try db.execute(
                    sql: "UPDATE outbox SET notices = ? WHERE id = ?",
                    arguments: [String(decoding: try WireCoding.encode(ids), as: UTF8.self), row["id"] as Int64])
            }
        }
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
    /// unit that is not sealed yet (no attempt has begun), else a new one. With `units`, only for
    /// those of its units (a repeat reminds only the units that have not acknowledged).
    static func enqueue(_ notice: Notice, to units: [String]? = nil, db: Database, now: Date, channels: [Channel]) throws {
        let addressed = units ?? notice.units
        if units != nil, addressed.isEmpty { return }
        for channel in channels where channel.enabled != false {
            if let kinds = channel.kinds, !kinds.isEmpty, !kinds.contains(notice.kind) { continue }
            if let minimum = channel.minSeverity, notice.severity < minimum { continue }
            let units = (channel.units?.isEmpty ?? true) ? [addressed.first ?? "*"] : addressed.filter { channel.units!.contains($0) }
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
