import Foundation
import GRDB
import Schema
import ServiceKit

/// 群众举报 (the plan: 鼓励公众反映生态环境问题……主动接受社会监督): a report from the public opens a
/// ledger case; the complainant's contact lives in its own table, read by the office only and
/// erased once the case has been over for the retention period (个人信息保护法: no longer than needed).
enum ComplaintStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("cases-v4-complaints") { db in
            try db.execute(
                sql: """
                    CREATE TABLE complaints (
                        case_id TEXT PRIMARY KEY NOT NULL REFERENCES cases(id),
                        code_sha256 TEXT NOT NULL,
                        name TEXT,
                        phone TEXT,
                        submitted_at TEXT NOT NULL,
                        erased_at TEXT,
                        reply TEXT,
                        replied_at TEXT
                    );
                    """)
        }
    }

    /// Letters and digits a person reads back without confusing them (no 0/O, 1/I/L).
    static let codeAlphabet = Array("23456789ABCDEFGHJKMNPQRSTUVWXYZ")

    static func newCode() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in codeAlphabet[Int(generator.next(upperBound: UInt32(codeAlphabet.count)))] })
    }

    static func hash(_ code: String) -> String { Fingerprint.hex(Data(code.uppercased().utf8)) }

    /// Erases the contacts of complaints whose case ended (closed or voided) before `cutoff`.
    static func erase(_ db: Database, endedBefore cutoff: String, now: String) throws -> Int {
        try db.execute(
            sql: """
                UPDATE complaints SET name = NULL, phone = NULL, erased_at = ?
                WHERE erased_at IS NULL AND case_id IN (
                    SELECT id FROM cases WHERE state IN ('closed', 'voided') AND COALESCE(closed_at, updated_at) < ?)
                """, arguments: [now, cutoff])
        return db.changesCount
    }

    static func status(_ db: Database, id: String) throws -> ComplaintStatus? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT c.id, c.title, c.state, c.closed_at, p.submitted_at, p.reply, p.replied_at
                    FROM complaints p JOIN cases c ON c.id = p.case_id WHERE p.case_id = ?
                    """, arguments: [id])
        else { return nil }
        return ComplaintStatus(
            reference: row["id"], title: row["title"], state: CaseState(rawValue: row["state"]) ?? .registered,
            submittedAt: row["submitted_at"], closedAt: row["closed_at"], reply: row["reply"], repliedAt: row["replied_at"])
    }
}

extension CasesService {
    func registerComplaints(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let directory = self.directory
        let replyChannel = complaintReplyURL != nil

        handlers.on(ComplaintTypes.submit) { request, context in
            // A reader may submit only as the web console (a gateway acting for no unit): the public's intake.
            if context.caller.role == .reader, context.caller.principal?.role != .gateway {
                throw ErrorBody.permissionDenied("群众举报由专项工作组办公室或网页平台提交", field: "from")
            }
            let registry = try directory.lookup(unit: request.unit)
            let title = try Self.requiredText(request.title, field: "body.title", what: "举报事项（title）")
            let description = try Self.requiredText(request.description, field: "body.description", what: "具体情况（description）")
            guard title.count <= 100 else { throw ErrorBody.invalidArgument("举报事项不超过 100 字", field: "body.title") }
            guard description.count <= 5000 else {
                throw ErrorBody.invalidArgument("具体情况不超过 5000 字", field: "body.description")
            }
            let name = request.contact?.name?.trimmingCharacters(in: .whitespacesAndNewlines).nonEmpty
            let phone = request.contact?.phone?.trimmingCharacters(in: .whitespaces).nonEmpty
            if let name, name.count > 50 { throw ErrorBody.invalidArgument("姓名不超过 50 字", field: "body.contact.name") }
            if let phone, phone.count > 30 || !phone.allSatisfy({ $0.isASCII && ($0.isNumber || "+- ()".contains($0)) }) {
                throw ErrorBody.invalidArgument("联系电话只能含数字、+、-、空格和括号，不超过 30 位", field: "body.contact.phone")
            }
            // Only the office names the unit; the public's reports go to the ledger's first lead unit.
            let unit: String
            if let named = request.unit {
                guard context.caller.isOffice || context.caller.principal == nil else {
                    throw ErrorBody.permissionDenied("只有专项工作组办公室可指定办理单位", field: "body.unit")
                }
                unit = named
            } else {
                unit = Self.ledgerLeads(registry).first ?? registry.office
            }
            let opening = CaseOpenRequest(
                source: .publicReport, title: title, unit: unit, description: description,
                location: request.location?.trimmingCharacters(in: .whitespacesAndNewlines).nonEmpty)
            try Self.validate(opening, registry: registry, field: "body")
            let now = clock.now()
            let code = ComplaintStore.newCode()
            let actor = context.caller.principal?.role == .gateway || context.caller.role == .reader ? "群众举报" : (context.from ?? "群众举报")
            return try await context.write { db, events in
                let opened = try Self.open(opening, db: db, events: &events, actor: actor, principal: context.caller.principal, now: now)
                try db.execute(
                    sql: "INSERT INTO complaints (case_id, code_sha256, name, phone, submitted_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [opened.id, ComplaintStore.hash(code), name, phone, opened.openedAt])
                return ComplaintReceipt(reference: opened.id, code: code, submittedAt: opened.openedAt)
            }
        }

        handlers.on(ComplaintTypes.status) { request, context in
            let found = try await context.store.pool.read { db -> ComplaintStatus? in
                // The same answer for an unknown reference and a wrong code: neither tells the other.
                guard
                    let stored = try String.fetchOne(
                        db, sql: "SELECT code_sha256 FROM complaints WHERE case_id = ?", arguments: [request.reference]),
                    stored == ComplaintStore.hash(request.code.trimmingCharacters(in: .whitespaces))
                else { return nil }
                return try ComplaintStore.status(db, id: request.reference)
            }
            guard let found else { throw ErrorBody.notFound("没有与该编号和查询码相符的举报", field: "body.code") }
            return found
        }

        handlers.on(ComplaintTypes.contact) { request, context in
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied("举报人联系方式仅专项工作组办公室可查看", field: "from")
            }
            let row = try await context.store.pool.read {
                try Row.fetchOne($0, sql: "SELECT name, phone, erased_at FROM complaints WHERE case_id = ?", arguments: [request.id])
            }
            guard let row else { throw ErrorBody.notFound("没有群众举报 \(ErrorBody.quote(request.id))", field: "body.id") }
            let name: String? = row["name"]
            let phone: String? = row["phone"]
            let delivery = try await context.store.pool.read {
                try ComplaintReplyStore.delivery($0, caseID: request.id, channelConfigured: replyChannel)
            }
            return ComplaintContact(
                id: request.id, contact: name == nil && phone == nil ? nil : ComplaintContactDetails(name: name, phone: phone),
                erasedAt: row["erased_at"], replyDelivery: delivery)
        }

        handlers.on(ComplaintTypes.reply) { request, context in
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied("答复举报人由专项工作组办公室办理", field: "from")
            }
            let text = try Self.requiredText(request.text, field: "body.text", what: "答复内容（text）")
            let at = Timestamp.format(clock.now())
            return try await context.write { db, events in
                guard try Int.fetchOne(db, sql: "SELECT 1 FROM complaints WHERE case_id = ?", arguments: [request.id]) != nil else {
                    throw ErrorBody.notFound("没有群众举报 \(ErrorBody.quote(request.id))", field: "body.id")
                }
                try db.execute(
                    sql: "UPDATE complaints SET reply = ?, replied_at = ? WHERE case_id = ?", arguments: [text, at, request.id])
                // Owed to the phone once the case is over; the sender reads the number when it sends.
                try ComplaintReplyStore.queue(db, caseID: request.id, at: at)
                try events.emit(ComplaintTypes.replied, ["id": request.id, "at": at])
                return try ComplaintStore.status(db, id: request.id)!
            }
        }

        handlers.on(ComplaintTypes.publicList) { request, context in
            let items = try await context.store.pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT c.id, c.title, c.location, c.state, c.opened_at, c.closed_at, p.reply
                        FROM cases c LEFT JOIN complaints p ON p.case_id = c.id
                        WHERE c.source = 'public_report' AND c.state = 'closed' AND p.reply IS NOT NULL
                        AND (? IS NULL OR c.year = CAST(? AS INTEGER))
                        ORDER BY c.year, c.number
                        """, arguments: [request.year, request.year]
                ).map { row in
                    let closed: String? = row["closed_at"]
                    return PublicComplaint(
                        reference: row["id"], title: row["title"], location: row["location"],
                        state: CaseState(rawValue: row["state"]) ?? .registered,
                        submittedOn: String((row["opened_at"] as String).prefix(10)),
                        closedOn: closed.map { String($0.prefix(10)) }, reply: row["reply"])
                }
            }
            return ListReply(items: items)
        }
    }
}
