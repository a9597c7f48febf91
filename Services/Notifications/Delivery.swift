import AsyncHTTPClient
import Foundation
import GRDB
import Logging
import NIOCore
import Schema
import ServiceKit
import Synchronization

/// Delivers the outbox: each pending digest to its channel, within the channel's rate, retried with
/// doubling delays until it succeeds or is given up (and reported). Every attempt is recorded.
///
/// Delivery is at least once: a crash between a receiver's 2xx and recording it sends that digest
/// again after the restart. Each request carries `X-Duban-Delivery: <id>` (the same on every
/// attempt) so that a receiver can drop the repeat.
final class Deliverer: Sendable {
    let store: ServiceStore
    let rules: NotifyRules
    let clock: ServiceClock
    let logger: Logger
    let policy: ChannelPolicy
    /// The service's own HTTP client (no redirects), run and shut down by the service group.
    let webhooks: WebhookClient
    private let sent = Mutex<[String: [Date]]>([:])

    /// How long a delivery waits for its target's host to resolve.
    static let resolveTimeout: Duration = .seconds(5)
    /// The most of a receiver's answer read: enough for a robot's `errcode`; nothing of it is kept.
    static let responseLimit = 64 * 1024

    init(store: ServiceStore, rules: NotifyRules, clock: ServiceClock, logger: Logger, policy: ChannelPolicy, webhooks: WebhookClient) {
        self.store = store
        self.rules = rules
        self.clock = clock
        self.logger = logger
        self.policy = policy
        self.webhooks = webhooks
    }

    /// Messages a minute a channel takes.
    func rate(_ channel: Schema.Channel) -> Int? {
        if let rate = channel.ratePerMinute { return rate }
        switch channel.kind {
        case .wecom, .dingtalk: return rules.robotRatePerMinute
        case .webhook: return 120
        case .file: return nil
        }
    }

    /// Channels delivered to at once: a dead endpoint delays only its own channel.
    static let concurrentChannels = 8

    /// One round: every due digest that its channel's rate allows, channels side by side (at most
    /// `concurrentChannels` at once), each channel's digests in order.
    func deliverDue() async throws {
        // Until the HTTP client runs (the first moments of a start, the last of a stop), nothing is attempted.
        guard webhooks.current != nil else { return }
        let now = clock.now()
        let (due, channels) = try await store.pool.read { db -> ([DueDigest], [String: Schema.Channel]) in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, attempts, channel, unit FROM outbox
                    WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 200
                    """,
                arguments: [now.timeIntervalSince1970]
            ).map { DueDigest(id: $0["id"], attempts: $0["attempts"], channel: $0["channel"], unit: $0["unit"]) }
            let channels = try Data.fetchAll(db, sql: "SELECT definition FROM channels").compactMap {
                try? JSONDecoder().decode(Schema.Channel.self, from: $0)
            }
            return (rows, Dictionary(uniqueKeysWithValues: channels.map { ($0.name, $0) }))
        }
        var byChannel: [String: [DueDigest]] = [:]
        var order: [String] = []
        for digest in due {
            if byChannel[digest.channel] == nil { order.append(digest.channel) }
            byChannel[digest.channel, default: []].append(digest)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for name in order {
                if running == Self.concurrentChannels {
                    try await group.next()
                    running -= 1
                }
                let rows = byChannel[name] ?? []
                let channel = channels[name]
                group.addTask { try await self.deliver(rows, channel: channel, now: now) }
                running += 1
            }
            try await group.waitForAll()
        }
    }

    /// A pending digest whose next attempt is due.
    struct DueDigest: Sendable {
        var id: Int64
        var attempts: Int
        var channel: String
        var unit: String
    }

    /// One channel's due digests, oldest first.
    private func deliver(_ digests: [DueDigest], channel: Schema.Channel?, now: Date) async throws {
        for digest in digests {
            let id = digest.id
            let attempt = digest.attempts + 1
            guard let channel else {
                try await giveUp(id, attempt: attempt, reason: "渠道 \(digest.channel) 已不存在", now: now)
                continue
            }
            if let rate = rate(channel) {
                let recent = sent.withLock { $0[channel.name, default: []].filter { now.timeIntervalSince($0) < 60 } }
                // Over the rate: wait; more notices for the same unit meanwhile join this digest.
                if recent.count >= rate { return }
            }
            // Sealed before the first attempt, in the transaction that reads what it holds: a notice
            // issued from now on goes into the next digest, and every attempt sends exactly this.
            let ids = try await store.pool.write { db -> [String] in
                try db.execute(sql: "UPDATE outbox SET sealed = 1 WHERE id = ?", arguments: [id])
                let text = try String.fetchOne(db, sql: "SELECT notices FROM outbox WHERE id = ?", arguments: [id]) ?? "[]"
                return (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
            }
            let notices = try await store.pool.read { db in try ids.compactMap { try NotifyStore.fetch(db, id: $0) } }
            let result = await send(notices, delivery: id, unit: digest.unit, channel: channel)
            sent.withLock {
                $0[channel.name, default: []] = $0[channel.name, default: []].filter { now.timeIntervalSince($0) < 60 } + [now]
            }
            try await record(id, attempt: attempt, result: result, notices: notices.map(\.id), now: now)
        }
    }

    struct Result: Sendable {
        var ok: Bool
        var status: Int?
        var error: String?
    }

    func send(_ notices: [Notice], delivery: Int64, unit: String, channel: Schema.Channel) async -> Result {
        do {
            let body = try Self.payload(notices, delivery: delivery, unit: unit, channel: channel, consoleURL: policy.consoleURL)
            if channel.kind == .file {
                do throws(FileChannelDirectory.Refusal) {
                    try policy.files.append(body + Data("\n".utf8), to: channel.target)
                } catch {
                    return Result(ok: false, status: nil, error: error.message)
                }
                return Result(ok: true, status: nil, error: nil)
            }
            return await post(body, delivery: delivery, channel: channel)
        } catch {
            logger.debug("delivery attempt failed", metadata: ["delivery.id": "\(delivery)", "error": "\(error)"])
            return Result(ok: false, status: nil, error: Self.describe(error))
        }
    }

    /// POSTs a payload to a webhook-like channel, after checking its host against the allow-list and
    /// every address it resolves to now.
    ///
    /// Plain HTTP goes to the address that was checked (the URL aimed at it, `Host` naming the host),
    /// so a second lookup cannot lead elsewhere. HTTPS connects by name, as its certificate requires;
    /// a DNS answer that changed between the check and the client's own lookup (DNS rebinding) is the
    /// window left, and there the certificate check stands in the way: a host reached that way must
    /// still prove it is the allowed name before anything is sent.
    private func post(_ body: Data, delivery: Int64, channel: Schema.Channel) async -> Result {
        guard let http = webhooks.current else { return Result(ok: false, status: nil, error: "发送组件已停止") }
        guard let target = WebhookTarget(channel.target) else { return Result(ok: false, status: nil, error: "地址无效") }
        var url = channel.target
        var host: String?
        do throws(WebhookRefusal) {
            try policy.webhooks.check(target)
            guard case .success(let addresses) = await HostResolver.resolve(target.host, timeout: Self.resolveTimeout) else {
                throw .unresolved(target.host)
            }
            try policy.webhooks.check(target, addresses: addresses)
            if target.scheme == "http", target.address == nil, let address = addresses.first {
                url = target.pinned(to: address)
                host = target.authority
            }
        } catch {
            return Result(ok: false, status: nil, error: "未发送：\(error.message)")
        }
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            if let host { request.headers.add(name: "Host", value: host) }
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.headers.add(name: "X-Duban-Delivery", value: "\(delivery)")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await http.execute(request, timeout: .seconds(10))
            let status = Int(response.status.code)
            // Read at most a little of the answer, and keep none of it: a status and a robot's error code.
            var answer = ByteBuffer()
            for try await var chunk in response.body {
                answer.writeBuffer(&chunk)
                if answer.readableBytes >= Self.responseLimit { break }
            }
            guard (200..<300).contains(status) else {
                let redirect = (300..<400).contains(status) ? "（重定向不跟随）" : ""
                return Result(ok: false, status: status, error: "对方返回 HTTP \(status)\(redirect)")
            }
            // Robots answer 200 with an error code in the body.
            if [.wecom, .dingtalk].contains(channel.kind),
                let json = try? JSONDecoder().decode(JSONValue.self, fromUntrusted: Data(answer.readableBytesView)),
                let code = json["errcode"]?.intValue, code != 0
            {
                return Result(ok: false, status: status, error: "机器人返回错误码 \(code)")
            }
            return Result(ok: true, status: status, error: nil)
        } catch {
            logger.debug("delivery attempt failed", metadata: ["delivery.id": "\(delivery)", "error": "\(error)"])
            return Result(ok: false, status: nil, error: Self.describe(error))
        }
    }

    /// Records an attempt and what it sent (the notices in its payload, and nothing else).
    /// What the delivery log says of a failed send: for people, never a program dump.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout: return "对方在时限内未应答"
            case .remoteConnectionClosed: return "对方关闭了连接"
            case .invalidURL, .emptyHost, .emptyScheme: return "地址无效"
            default: return "发送失败"
            }
        }
        if error is CocoaError { return "无法写入文件" }
        if "\(type(of: error))".contains("Connection") { return "无法连接对方" }
        return "发送失败"
    }

    func record(_ id: Int64, attempt: Int, result: Result, notices: [String], now: Date) async throws {
        let at = Timestamp.format(now)
        let sentList = String(decoding: try WireCoding.encode(notices), as: UTF8.self)
        if result.ok {
            try await store.pool.write { db in
                try db.execute(
                    sql: "INSERT INTO deliveries (outbox, attempt, at, ok, status, error, notices) VALUES (?, ?, ?, 1, ?, NULL, ?)",
                    arguments: [id, attempt, at, result.status, sentList])
                try db.execute(
                    sql: "UPDATE outbox SET state = 'sent', attempts = ?, sent_at = ? WHERE id = ?",
                    arguments: [attempt, now.timeIntervalSince1970, id])
            }
            return
        }
        logger.warning(
            "delivery failed", metadata: ["delivery.id": "\(id)", "delivery.attempt": "\(attempt)", "error": "\(result.error ?? "")"])
        if attempt >= rules.maxAttempts {
            try await giveUp(
                id, attempt: attempt, reason: result.error ?? "对方返回 HTTP \(result.status ?? 0)", now: now, status: result.status)
            return
        }
        let delay = min(rules.retryBaseSeconds * pow(2, Double(attempt - 1)), 300)
        try await store.pool.write { db in
            try db.execute(
                sql: "INSERT INTO deliveries (outbox, attempt, at, ok, status, error, notices) VALUES (?, ?, ?, 0, ?, ?, ?)",
                arguments: [id, attempt, at, result.status, result.error, sentList])
            try db.execute(
                sql: "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                arguments: [attempt, now.timeIntervalSince1970 + delay, result.error, id])
        }
    }

    func giveUp(_ id: Int64, attempt: Int, reason: String, now: Date, status: Int? = nil) async throws {
        logger.error("delivery given up", metadata: ["delivery.id": "\(id)", "error": "\(reason)"])
        try await store.write { db, events in
            try db.execute(
                sql: "INSERT INTO deliveries (outbox, attempt, at, ok, status, error) VALUES (?, ?, ?, 0, ?, ?)",
                arguments: [id, attempt, Timestamp.format(now), status, "已放弃：\(reason)"])
            try db.execute(
                sql: "UPDATE outbox SET state = 'given_up', attempts = ?, last_error = ? WHERE id = ?", arguments: [attempt, reason, id])
            let row = try Row.fetchOne(db, sql: "SELECT channel, unit, notices FROM outbox WHERE id = ?", arguments: [id])
            try events.emit(
                NotifyTypes.deliveryFailed,
                [
                    "delivery": JSONValue.number(Double(id)), "channel": .string(row?["channel"] ?? ""),
                    "unit": .string(row?["unit"] ?? ""),
                    "notices": (try? JSONDecoder().decode(JSONValue.self, from: Data(((row?["notices"] as String?) ?? "[]").utf8)))
                        ?? .array([]),
                    "reason": .string(reason),
                ])
        }
    }

    /// What a chat robot takes in one message: WeCom's markdown allows 4,096 bytes of content;
    /// Where a notice is read in the console: a notice that announces a report (the month's dispatch
    /// summary, the quarter's 督办单, the year's 通报) opens the report itself, which links back to
    /// the notice for 签收; every other notice opens its own page.
    static func consolePath(_ notice: Notice) -> String {
        let report: String?
        switch notice.kind {
        case .monthlyDispatch where notice.dedupKey.hasPrefix("monthly_summary:"): report = "monthly"
        case .quarterlySupervision: report = "quarterly"
        case .annualNotification: report = notice.dedupKey.hasPrefix("closing:") ? "closing" : "annual"
        default: report = nil
        }
        if let report, let period = notice.refs.period, period.utf8.allSatisfy({ $0 == 45 || $0 == 81 || (48...57).contains($0) }) {
            return "/reports/\(report)/\(period)?notice=\(notice.id)"
        }
        return "/notices/\(notice.id)"
    }

    /// DingTalk is given the same, with room left for the heading.
    static let robotContentBytes = 4_000

    /// The message a channel gets: WeCom's and DingTalk's robot formats, or Duban's own JSON. A
    /// robot's message fits its limit: long texts are cut, and when even titles do not fit, the rest
    /// is counted and linked to the console, where the whole notice (and the report) can be read.
    static func payload(
        _ notices: [Notice], delivery: Int64, unit: String, channel: Schema.Channel, consoleURL: String? = nil
    ) throws -> Data {
        func link(_ notice: Notice) -> String? { consoleURL.map { $0 + consolePath(notice) } }
        let heading = notices.count == 1 ? notices[0].title : "督办提醒（\(unit)，\(notices.count)条）"
        // Titles and texts carry people's words (a complaint's title among them): no markdown link of theirs.
        func plain(_ text: String) -> String {
            text.replacingOccurrences(of: "[", with: "［").replacingOccurrences(of: "]", with: "］")
        }
        func line(_ notice: Notice, textLimit: Int?) -> String {
            var text = plain(notice.text)
            if let textLimit, text.count > textLimit { text = String(text.prefix(textLimit)) + "……" }
            let more = link(notice).map { "\n[查看全文并签收](\($0))" } ?? ""
            return "**【\(notice.severity.label)】\(plain(notice.title))**\n\(text)\n编号 \(notice.id)\(more)"
        }
        func fitted(_ prefix: String) -> String {
            for textLimit in [nil, 600, 200, 60] as [Int?] {
                let body = prefix + notices.map { line($0, textLimit: textLimit) }.joined(separator: "\n\n")
                if body.utf8.count <= robotContentBytes { return body }
            }
            // Titles only, as many as fit, and the count of the rest.
            var body = prefix
            for (index, notice) in notices.enumerated() {
                let entry = "- \(notice.title)（\(notice.id)）\n"
                let rest = "另有\(notices.count - index)条，请到督办平台查看\(consoleURL.map { "：\($0)/notices" } ?? "")"
                if (body + entry + rest).utf8.count > robotContentBytes {
                    body += rest
                    return String(decoding: Array(body.utf8.prefix(robotContentBytes)), as: UTF8.self)
                }
                body += entry
            }
            return body + (consoleURL.map { "全文请到督办平台查看并签收：\($0)/notices" } ?? "")
        }
        switch channel.kind {
        case .wecom:
            return try WireCoding.encode([
                "msgtype": JSONValue.string("markdown"),
                "markdown": .object(["content": .string(fitted("# \(heading)\n\n"))]),
            ])
        case .dingtalk:
            return try WireCoding.encode(
                [
                    "msgtype": JSONValue.string("markdown"),
                    "markdown": .object(["title": .string(heading), "text": .string(fitted("### \(heading)\n\n"))]),
                ])
        case .webhook, .file:
            struct Message: Encodable {
                var delivery: Int64
                var channel: String
                var unit: String
                var notices: [Notice]
                /// Each notice's page in the web console, when its address is configured.
                var links: [String: String]?
            }
            let links = consoleURL.map { base in Dictionary(uniqueKeysWithValues: notices.map { ($0.id, base + consolePath($0)) }) }
            return try WireCoding.encode(Message(delivery: delivery, channel: channel.name, unit: unit, notices: notices, links: links))
        }
    }
}
