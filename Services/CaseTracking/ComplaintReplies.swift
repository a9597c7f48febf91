import AsyncHTTPClient
import Foundation
import GRDB
import Logging
import NIOCore
import Schema
import ServiceKit
import ServiceLifecycle

/// The office's reply to a complainant, carried to the phone they left once the case is over
/// (the issue: "a reply to the complainant when the case closes, sent through a channel when one is
/// configured"). The channel is the district's SMS platform, an HTTP endpoint in the configuration
/// (`cases.complaintReplyURL`): the number goes from this service to that platform and nowhere else
/// (not to notify, not into an event or an outbox row: each attempt reads it from `complaints`, so
/// the retention erasure also ends any attempt still owed).
enum ComplaintReplyStore {
    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("cases-v6-complaint-replies") { db in
            try db.execute(
                sql: """
                    CREATE TABLE complaint_reply_deliveries (
                        case_id TEXT PRIMARY KEY NOT NULL REFERENCES cases(id),
                        queued_at TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at TEXT NOT NULL,
                        sent_at TEXT,
                        failed_at TEXT,
                        last_error TEXT
                    );
                    """)
        }
    }

    /// Owes the reply (again, if it changed after an earlier one was sent).
    static func queue(_ db: Database, caseID: String, at: String) throws {
        try db.execute(
            sql: """
                INSERT INTO complaint_reply_deliveries (case_id, queued_at, attempts, next_attempt_at) VALUES (?, ?, 0, ?)
                ON CONFLICT(case_id) DO UPDATE SET queued_at = excluded.queued_at, attempts = 0,
                    next_attempt_at = excluded.next_attempt_at, sent_at = NULL, failed_at = NULL, last_error = NULL
                """, arguments: [caseID, at, at])
    }

    /// What the office sees of the reply's way to the phone.
    static func delivery(_ db: Database, caseID: String, channelConfigured: Bool) throws -> ComplaintReplyDelivery? {
        guard
            let complaint = try Row.fetchOne(
                db,
                sql: """
                    SELECT p.phone, p.reply, c.state FROM complaints p JOIN cases c ON c.id = p.case_id WHERE p.case_id = ?
                    """, arguments: [caseID]),
            (complaint["reply"] as String?) != nil
        else { return nil }
        let row = try Row.fetchOne(db, sql: "SELECT * FROM complaint_reply_deliveries WHERE case_id = ?", arguments: [caseID])
        let attempts: Int = row?["attempts"] ?? 0
        let lastError: String? = row?["last_error"]
        if let sent: String = row?["sent_at"] {
            return ComplaintReplyDelivery(state: .sent, attempts: attempts, sentAt: sent)
        }
        if (row?["failed_at"] as String?) != nil {
            return ComplaintReplyDelivery(state: .failed, attempts: attempts, lastError: lastError)
        }
        guard (complaint["phone"] as String?) != nil else { return ComplaintReplyDelivery(state: .noPhone, attempts: attempts) }
        guard channelConfigured else { return ComplaintReplyDelivery(state: .noChannel, attempts: attempts) }
        let over = ["closed", "voided"].contains(complaint["state"] as String)
        return ComplaintReplyDelivery(state: over ? .queued : .waiting, attempts: attempts, lastError: lastError)
    }
}

/// Sends owed replies to the SMS platform: every tick, the replies of cases that are over and whose
/// next attempt is due; a failure waits longer each time (1 minute doubling to 6 hours) and the
/// twelfth gives up, recorded for the office to call the complainant instead. Owns its HTTP client.
final class ComplaintReplySender: Service, Sendable {
    static let maxAttempts = 12
    static let batch = 20

    let url: String
    let store: ServiceStore
    let clock: ServiceClock
    let interval: Duration
    let logger: Logger

    init(url: String, store: ServiceStore, clock: ServiceClock, interval: Duration, logger: Logger) {
        self.url = url
        self.store = store
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    /// The JSON the platform receives.
    struct Message: Encodable {
        var reference: String
        var phone: String
        var name: String?
        var title: String
        var text: String
        var sms: String
    }

    func run() async throws {
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10))))
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.sendDue(http)
                } catch is CancellationError {
                    break
                } catch {
                    self.logger.warning("complaint reply delivery round failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.interval)
            }
        }
        try await http.shutdown()
    }

    func sendDue(_ http: HTTPClient) async throws {
        let now = Timestamp.format(clock.now())
        let due = try await store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.case_id, d.attempts, p.phone, p.name, p.reply, c.title FROM complaint_reply_deliveries d
                    JOIN complaints p ON p.case_id = d.case_id JOIN cases c ON c.id = d.case_id
                    WHERE d.sent_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= ?
                    AND p.phone IS NOT NULL AND p.reply IS NOT NULL AND c.state IN ('closed', 'voided')
                    ORDER BY d.next_attempt_at LIMIT ?
                    """, arguments: [now, Self.batch])
        }
        for row in due {
            let reference: String = row["case_id"]
            let text: String = row["reply"]
            let message = Message(
                reference: reference, phone: row["phone"], name: row["name"], title: row["title"], text: text,
                sms: "【城中区生态环境局】您反映的问题（编号 \(reference)）已办结：\(text)")
            let error = await post(http, try WireCoding.encode(message))
            let attempts: Int = row["attempts"] + 1
            let at = clock.now()
            try await store.write { db, _ in
                if let error {
                    let last = attempts >= Self.maxAttempts
                    let wait = min(60.0 * pow(2, Double(attempts - 1)), 6 * 3600)
                    try db.execute(
                        sql: """
                            UPDATE complaint_reply_deliveries SET attempts = ?, last_error = ?, next_attempt_at = ?, failed_at = ?
                            WHERE case_id = ? AND sent_at IS NULL
                            """,
                        arguments: [
                            attempts, error, Timestamp.format(at.addingTimeInterval(wait)), last ? Timestamp.format(at) : nil, reference,
                        ])
                } else {
                    try db.execute(
                        sql: "UPDATE complaint_reply_deliveries SET attempts = ?, sent_at = ?, last_error = NULL WHERE case_id = ?",
                        arguments: [attempts, Timestamp.format(at), reference])
                }
            }
            // The reference only: the number and the name stay out of the logs.
            if let error {
                logger.warning("reply to a complainant not delivered", metadata: ["case": "\(reference)", "error": "\(error)"])
            } else {
                logger.info("reply to a complainant delivered", metadata: ["case": "\(reference)"])
            }
        }
    }

    /// nil when the platform took it (2xx); otherwise what went wrong, in the office's words.
    func post(_ http: HTTPClient, _ body: Data) async -> String? {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await http.execute(request, timeout: .seconds(10))
            // Drain a little of the answer and keep none of it.
            var read = 0
            for try await chunk in response.body {
                read += chunk.readableBytes
                if read > 4096 { break }
            }
            let status = Int(response.status.code)
            return (200..<300).contains(status) ? nil : "短信平台返回 HTTP \(status)"
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "短信平台在时限内未应答"
            default: return "无法连接短信平台"
            }
        } catch {
            return "无法连接短信平台"
        }
    }
}
