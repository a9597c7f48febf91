import Foundation
import GRDB
import Schema
import Trust

/// The audit trail in a service's SQLite database: one entry per stored change, written in the
/// change's own transaction (so neither exists without the other), append-only (triggers refuse
/// UPDATE and DELETE), and hash-chained (`AuditChain`). Kept as long as the database: no purge
/// touches it.
public enum AuditTrail {
    static func migrate(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("servicekit-audit-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE duban_audit (
                        seq INTEGER PRIMARY KEY,
                        at TEXT NOT NULL,
                        stream TEXT NOT NULL,
                        type TEXT NOT NULL,
                        request_id TEXT NOT NULL,
                        principal TEXT,
                        principal_key TEXT,
                        role TEXT NOT NULL,
                        actor TEXT,
                        unit TEXT,
                        summary TEXT NOT NULL,
                        digest TEXT NOT NULL,
                        prev TEXT NOT NULL,
                        hash TEXT NOT NULL
                    );
                    CREATE INDEX duban_audit_unit ON duban_audit(unit, seq);
                    CREATE INDEX duban_audit_principal ON duban_audit(principal, seq);
                    CREATE TRIGGER duban_audit_no_update BEFORE UPDATE ON duban_audit
                        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
                    CREATE TRIGGER duban_audit_no_delete BEFORE DELETE ON duban_audit
                        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
                    """)
        }
    }

    /// Appends the entry for a change made by `context`'s request, in the caller's transaction.
    static func append(_ db: Database, context: RequestContext, stream: String) throws {
        let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM duban_audit ORDER BY seq DESC LIMIT 1")
        let entry = makeEntry(context: context, stream: stream, lastSeq: last?["seq"] ?? 0, lastHash: last?["hash"])
        try db.execute(
            sql: """
                INSERT INTO duban_audit (seq, at, stream, type, request_id, principal, principal_key, role, actor, unit, summary, digest, \
                prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                entry.seq, entry.at, entry.stream, entry.type, entry.requestID, entry.principal, entry.principalKey, entry.role,
                entry.actor,
                entry.unit, entry.summary, entry.digest, entry.prev, entry.hash,
            ])
    }

    /// The next entry after (`lastSeq`, `lastHash`) for `context`'s change, hashed.
    public static func makeEntry(context: RequestContext, stream: String, lastSeq: Int, lastHash: String?) -> AuditEntry {
        let caller = context.caller
        var entry = AuditEntry(
            seq: lastSeq + 1, at: Timestamp.now(), stream: stream, type: context.type, requestID: context.requestID,
            principal: caller.principal?.name, principalKey: caller.principal?.publicKey,
            role: caller.principal == nil ? "none" : caller.role.rawValue, actor: caller.from, unit: caller.unit,
            summary: context.auditSummary, digest: context.fingerprint ?? "", prev: lastHash ?? AuditEntry.genesis, hash: "")
        entry.hash = AuditChain.hash(entry)
        return entry
    }

    /// What the trail keeps of a request: its first 600 bytes as received, or for a type whose
    /// body may hold secrets (the trail is read by more people than the channels are) only a
    /// note: its `digest` still identifies the body.
    static func summary(_ payload: Data, carriesSecrets: Bool) -> String {
        carriesSecrets ? "（请求含密钥，内容不记入审计，以摘要 digest 为凭）" : String(decoding: payload.prefix(600), as: UTF8.self)
    }

    static func entry(_ row: Row) -> AuditEntry {
        AuditEntry(
            seq: row["seq"], at: row["at"], stream: row["stream"], type: row["type"], requestID: row["request_id"],
            principal: row["principal"], principalKey: row["principal_key"], role: row["role"], actor: row["actor"], unit: row["unit"],
            summary: row["summary"], digest: row["digest"], prev: row["prev"], hash: row["hash"])
    }

    /// Entries matching `request`, oldest first.
    static func list(_ db: Database, _ request: AuditListRequest) throws -> [AuditEntry] {
        var conditions = ["seq > ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [request.after ?? 0]
        if let unit = request.unit {
            conditions.append("unit = ?")
            arguments.append(unit)
        }
        if let principal = request.principal {
            conditions.append("principal = ?")
            arguments.append(principal)
        }
        if let type = request.type {
            conditions.append("type = ?")
            arguments.append(type)
        }
        for (value, op, field) in [(request.since, ">=", "body.since"), (request.until, "<", "body.until")] {
            guard let value else { continue }
            guard let instant = Timestamp.parse(value) ?? Timestamp.startOfDistrictDay(value) else {
                throw ErrorBody.invalidArgument("应为 RFC 3339 时间或 YYYY-MM-DD 日期", field: field)
            }
            conditions.append("at \(op) ?")
            arguments.append(Timestamp.format(instant))
        }
        let limit = request.limit ?? 1000
        guard (1...5000).contains(limit) else { throw ErrorBody.invalidArgument("limit 应在 1 到 5000 之间", field: "body.limit") }
        arguments.append(limit)
        return try Row.fetchAll(
            db, sql: "SELECT * FROM duban_audit WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?",
            arguments: StatementArguments(arguments)
        ).map(entry)
    }

    /// Recomputes the whole chain.
    static func verify(_ db: Database, stream: String) throws -> AuditVerifyReply {
        var entries: [AuditEntry] = []
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM duban_audit ORDER BY seq")
        while let row = try cursor.next() { entries.append(entry(row)) }
        let broken = AuditChain.firstBreak(entries)
        return AuditVerifyReply(
            stream: stream, entries: entries.count, headSeq: entries.last?.seq ?? 0, headHash: entries.last?.hash ?? AuditEntry.genesis,
            ok: broken == nil, firstBad: broken?.seq, problem: broken?.problem)
    }
}
