import Foundation
import GRDB
import Logging
import Messaging
import Schema
import ServiceKit
import ServiceLifecycle
import WorkCalendar

/// Notifications: notices for the right units at the right time, the supervision rhythm, and
/// reliable delivery to people's channels and to external tools.
public struct NotifyService: DubanService {
    public static let name = ServiceName.notify
    public static let topics = [
        NotifyTypes.noticeIssued, NotifyTypes.noticeAcknowledged, NotifyTypes.channelUpdated, NotifyTypes.deliveryFailed,
        CauseReportTypes.opened, CauseReportTypes.reported,
    ]

    let store: ServiceStore
    let clock: ServiceClock
    let logger: Logger
    let tick: Duration
    let rules: NotifyRules
    let directory: Directory
    let peers: PeerClients
    let deployment: DeploymentConfiguration
    let deliverer: Deliverer
    let policy: ChannelPolicy
    let webhooks: WebhookClient
    let calendar: WorkCalendar

    public static func migrations(_ migrator: inout DatabaseMigrator) {
        NotifyStore.migrations(&migrator)
        NotifyStore.laggingMigration(&migrator)
        NotifyStore.sealedDigestsMigration(&migrator)
        NotifyStore.noticeAcksMigration(&migrator)
        CauseReports.migrations(&migrator)
    }

    public init(context: ServiceContext) async throws {
        store = try context.store
        clock = context.clock
        logger = context.logger
        deployment = context.deployment
        tick = .milliseconds(Int(context.deployment.tickSeconds * 1000))
        // The outbox at every scrape: what waits to go out, what was given up, attempts that failed.
        let outbox = try context.store
        context.metrics.onScrape { metrics in
            guard
                let counts = try? await outbox.pool.read({ db -> ([Row], Int) in
                    (
                        try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM outbox GROUP BY state"),
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries WHERE ok = 0") ?? 0
                    )
                })
            else { return }
            var byState: [String: Int] = ["pending": 0, "given_up": 0]
            for row in counts.0 { byState[row["state"]] = row["n"] }
            metrics.gauge("duban_outbox_pending", help: "Deliveries waiting to be sent.").set(Int64(byState["pending"] ?? 0))
            metrics.gauge("duban_outbox_given_up", help: "Deliveries given up after their retries.").set(Int64(byState["given_up"] ?? 0))
            metrics.gauge("duban_delivery_attempts_failed", help: "Delivery attempts that failed (each retry counts).").set(Int64(counts.1))
            // How far notify has followed each peer's stream: the lag is the peer's
            // duban_stream_head minus this (deploy/prometheus/duban-alerts.yml).
            if let cursors = try? await outbox.pool.read({ try Row.fetchAll($0, sql: "SELECT stream, seq FROM cursors") }) {
                for row in cursors {
                    metrics.gauge(
                        "duban_subscriber_cursor", help: "Seq of the last event handled, per followed stream.",
                        labels: [("stream", row["stream"] as String)]
                    ).set(Int64(row["seq"] as Int))
                }
            }
        }
        rules = try NotifyRules.load(ProcessInfo.processInfo.environment["DUBAN_NOTIFY_RULES_FILE"])
        // Working days, as the registry reads them (the one configuration's `holidaysFile`).
        calendar = try context.deployment.holidaysFile.map { try WorkCalendar.load(path: $0) } ?? .bundled
        // One long-lived client per peer, for the directory, the rhythm and reports; no handler in the
        // write lane asks a peer.
        let peers = try await PeerClients(
            deployment: context.deployment, peers: [.registry, .ingest, .cases], from: "notify", logger: context.logger)
        self.peers = peers
        // /readyz names a peer that does not answer as degraded; notify keeps working without it.
        context.metrics.onReadiness { await peers.readiness() }
        directory = Directory(
            registry: try RegistryDirectory(
                client: peers[.registry], events: context.deployment[.registry].events, store: store, logger: context.logger),
            ingest: peers[.ingest], logger: context.logger)
        await directory.registry.prime()
        policy = try ChannelPolicy(deployment: context.deployment)
        do {
            try policy.files.prepare()
        } catch {
            // Not fatal: file channels are refused (`unavailable`) until the directory can be made.
            logger.warning(
                "file channel directory unavailable", metadata: ["notify.fileChannelDir": "\(policy.files.path)", "error": "\(error)"])
        }
        webhooks = WebhookClient()
        deliverer = Deliverer(store: store, rules: rules, clock: clock, logger: logger, policy: policy, webhooks: webhooks)
    }

    public func backgroundServices() -> [any Service] {
        // Shut down in reverse: everything that asks peers stops before their clients close.
        var services: [any Service] = [peers, directory.registry]
        for (source, topics) in [
            (
                ServiceName.registry,
                [
                    RegistryTypes.taskStatusChanged, RegistryTypes.escalationRecorded, SupervisionTypes.issued, SupervisionTypes.replied,
                    SupervisionTypes.reviewed, SupervisionTypes.overdue, AccountabilityTypes.followUpDue,
                    ImplementationPlanTypes.submitted, ImplementationPlanTypes.reviewed, ImplementationPlanTypes.overdue,
                ]
            ),
            (ServiceName.ingest, ["ingest.alert."]),
            (ServiceName.cases, [CaseTypes.overdue, CaseTypes.transitioned, CaseTypes.deadlineChanged]),
        ] {
            services.append(
                EventFollower(
                    source: deployment[source], curve: peers[source].curve, topics: topics, name: "notify-\(source.rawValue)",
                    store: store, directory: directory, clock: clock, logger: logger, causeReportDays: rules.causeReportDays,
                    calendar: calendar))
        }
        let rhythm = Rhythm(registry: peers[.registry], rules: rules, logger: logger, calendar: calendar)
        services.append(
            PeriodicTask(name: "rhythm", interval: tick, logger: logger) { [store, directory, clock, rules] in
                await directory.refresh()
                let now = clock.now()
                let snapshot = directory.current
                let rhythmDrafts = await rhythm.drafts(now: now, directory: snapshot)
                let due = Rhythm.lastDueMonth(now: now, dispatchDay: snapshot.dispatchDay, calendar: rhythm.calendar)
                try await store.write { db, events in
                    var drafts = rhythmDrafts
                    let lateCauses = try CauseReports.overdue(
                        db, today: Timestamp.districtDate(now), office: snapshot.office, now: now)
                    try NotifyStore.issue(lateCauses, db: db, events: &events, now: now, channels: try ChannelStore.all(db))
                    // Units whose tasks stay lagging or overdue month after month: a proposal for the office.
                    if let due, !snapshot.tasks.isEmpty {
                        var laggingByUnit: [String: [String]] = [:]
                        for task in snapshot.tasks.values
                        where task.subtasks.isEmpty && (task.status == .lagging || task.status == .overdue) {
                            for unit in task.leadUnits { laggingByUnit[unit, default: []].append(task.id) }
                        }
                        for (unit, tasks) in laggingByUnit {
                            try db.execute(
                                sql: "INSERT OR IGNORE INTO lagging_months (unit, month, tasks) VALUES (?, ?, ?)",
                                arguments: [unit, due, tasks.sorted().joined(separator: "、")])
                        }
                        for unit in laggingByUnit.keys.sorted() {
                            let months = try Rhythm.consecutiveMonths(endingAt: due) { month in
                                try Bool.fetchOne(
                                    db, sql: "SELECT 1 FROM lagging_months WHERE unit = ? AND month = ?", arguments: [unit, month]) == true
                            }
                            guard let (level, label) = rules.proposal(afterMonths: months) else { continue }
                            drafts.append(
                                NoticeDraft(
                                    kind: .escalationProposal, severity: .critical, units: [snapshot.office], title: "建议\(label)：\(unit)",
                                    text:
                                        "\(unit)负责的任务（\(laggingByUnit[unit]!.sorted().joined(separator: "、"))）"
                                        + "已连续\(months)个月进度滞后或逾期（至\(due)），"
                                        + "建议予以\(label)，请专项工作组办公室研究决定。",
                                    refs: NoticeRefs(task: laggingByUnit[unit]!.sorted().first, period: due),
                                    dedupKey: "proposal-lagging:\(unit):\(due):\(level)"))
                        }
                    }
                    // Time's notices are issued once for their key, whatever became of them since.
                    let fresh = try drafts.filter { draft in
                        try Bool.fetchOne(db, sql: "SELECT 1 FROM schedule_runs WHERE job = ?", arguments: [draft.dedupKey]) != true
                    }
                    try NotifyStore.issue(fresh, db: db, events: &events, now: now, channels: try ChannelStore.all(db))
                    for draft in fresh {
                        try db.execute(
                            sql: "INSERT OR IGNORE INTO schedule_runs (job, period, ran_at) VALUES (?, 'once', ?)",
                            arguments: [draft.dedupKey, Timestamp.format(now)])
                    }
                    // Deliver again what not every unit acknowledged within the repeat interval.
                    let stale = try Row.fetchAll(
                        db, sql: "SELECT id FROM notices WHERE state = 'open' AND last_sent_at < ?",
                        arguments: [now.timeIntervalSince1970 - rules.repeatIntervalHours * 3600])
                    let channels = try ChannelStore.all(db)
                    for row in stale {
                        guard let notice = try NotifyStore.fetch(db, id: row["id"]) else { continue }
                        try db.execute(
                            sql: "UPDATE notices SET repeats = repeats + 1, last_sent_at = ? WHERE id = ?",
                            arguments: [now.timeIntervalSince1970, notice.id])
                        // Only the units that have not acknowledged it are reminded.
                        try NotifyStore.enqueue(notice, to: notice.pendingUnits, db: db, now: now, channels: channels)
                    }
                }
            })
        // Before the deliveries, so that it stops after them (a group stops in reverse order).
        services.append(webhooks)
        services.append(
            PeriodicTask(name: "delivery", interval: .milliseconds(200), logger: logger) { [deliverer] in try await deliverer.deliverDue() }
        )
        return services
    }

    public func register(_ handlers: inout HandlerTable) {
        let clock = self.clock
        let policy = self.policy
        let directory = self.directory
        registerCauseReports(&handlers)

        // Reads and the event show channels with their secrets masked; the stored definition keeps them.
        handlers.on(NotifyTypes.channelList) { _, context in
            ListReply(items: try ChannelStore.all(try context.store).map(ChannelSecrets.redacted))
        }
        handlers.on(NotifyTypes.channelSet) { request, context in
            let removed = request.remove ?? false
            var channel = request.channel
            if !removed {
                // A target sent back as a read showed it (`key=***`) keeps the stored key.
                let stored = try await context.store.pool.read { try ChannelStore.named(request.channel.name, $0) }
                channel = try ChannelSecrets.restoring(channel, from: stored)
                try await policy.validate(channel)
            }
            return try await context.write { [channel] db, events in
                if removed {
                    try db.execute(sql: "DELETE FROM channels WHERE name = ?", arguments: [channel.name])
                    guard db.changesCount > 0 else {
                        throw ErrorBody.notFound("没有渠道 \(ErrorBody.quote(channel.name))", field: "body.channel.name")
                    }
                } else {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO channels (name, definition, updated_at) VALUES (?, ?, ?)",
                        arguments: [channel.name, try WireCoding.canonical(channel), Timestamp.now()])
                }
                try events.emit(
                    NotifyTypes.channelUpdated,
                    ChannelUpdated(channel: ChannelSecrets.redacted(channel), removed: removed, by: context.from))
                return ListReply(items: try ChannelStore.all(db).map(ChannelSecrets.redacted))
            }
        }

        handlers.on(NotifyTypes.noticeList) { request, context in
            if let since = request.since, Timestamp.parse(since) == nil {
                throw ErrorBody.invalidArgument("since 应为 RFC 3339 时间", field: "body.since")
            }
            if let until = request.until, Timestamp.parse(until) == nil {
                throw ErrorBody.invalidArgument("until 应为 RFC 3339 时间", field: "body.until")
            }
            return ListReply(items: try await context.store.pool.read { try NotifyStore.list($0, request) })
        }

        handlers.on(NotifyTypes.noticeGet) { request, context in
            guard let notice = try await context.store.pool.read({ try NotifyStore.fetch($0, id: request.id) }) else {
                throw ErrorBody.notFound("没有通知 \(ErrorBody.quote(request.id))", field: "body.id")
            }
            return notice
        }

        handlers.on(NotifyTypes.noticeAck) { request, context in
            let unit = try acknowledgingUnit(context)
            // A unit answers to the plan's other names for it (an alias, a collective it belongs to).
            let registry = directory.registry.current
            let now = clock.now()
            return try await context.write { db, events in
                let (notice, ack) = try NotifyStore.acknowledge(
                    db, id: request.id, unit: unit, by: context.caller.principal?.name ?? context.from ?? unit, comment: request.comment,
                    now: now, channels: try ChannelStore.all(db),
                    standsFor: { name, unit in registry?.acts(as: name, actor: unit) ?? (name == unit) })
                if let ack { try events.emit(NotifyTypes.noticeAcknowledged, NoticeAcknowledged(notice: notice, ack: ack)) }
                return notice
            }
        }

        handlers.on(NotifyTypes.silenceSet) { request, context in
            let now = clock.now()
            let start =
                try request.startsAt.map {
                    guard let date = Timestamp.parse($0) else {
                        throw ErrorBody.invalidArgument("starts_at 应为 RFC 3339 时间", field: "body.starts_at")
                    }
                    return date
                } ?? now
            guard let end = Timestamp.parse(request.endsAt) else {
                throw ErrorBody.invalidArgument("ends_at 应为 RFC 3339 时间", field: "body.ends_at")
            }
            guard end > start else { throw ErrorBody.invalidArgument("ends_at 应晚于 starts_at", field: "body.ends_at") }
            guard !request.comment.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ErrorBody.invalidArgument("请在 comment 中说明静默理由", field: "body.comment")
            }
            guard request.matchers != SilenceMatchers() else {
                throw ErrorBody.invalidArgument(
                    "静默至少需要一个匹配条件（kind、unit、task、indicator 或 case）", field: "body.matchers")
            }
            return try await context.write { db, _ in
                try db.execute(
                    sql: "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        String(decoding: try WireCoding.canonical(request.matchers), as: UTF8.self), Timestamp.format(start),
                        Timestamp.format(end), context.from,
                        request.comment,
                    ])
                return Silence(
                    id: Int(db.lastInsertedRowID), matchers: request.matchers, startsAt: Timestamp.format(start),
                    endsAt: Timestamp.format(end),
                    createdBy: context.from, comment: request.comment)
            }
        }
        handlers.on(NotifyTypes.silenceList) { _, context in
            ListReply(items: try await context.store.pool.read { try NotifyStore.silences($0, activeAt: nil) })
        }
        handlers.on(NotifyTypes.silenceExpire) { request, context in
            let now = Timestamp.format(clock.now())
            return try await context.write { db, _ in
                try db.execute(sql: "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?", arguments: [now, request.id, now])
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM silences WHERE id = ?", arguments: [request.id]) == true else {
                    throw ErrorBody.notFound("没有编号为 \(request.id) 的静默", field: "body.id")
                }
                return ListReply(items: try NotifyStore.silences(db, activeAt: nil))
            }
        }

        handlers.on(NotifyTypes.deliveryList) { request, context in
            ListReply(items: try await context.store.pool.read { try NotifyStore.deliveries($0, request) })
        }

        handlers.on(NotifyTypes.reportGenerate) { request, _ in
            try Reports.checkPlanYears(request, directory.registry.current)
            return try await Reports.generate(request, peers: peers, now: clock.now())
        }
    }
}

/// The unit on whose behalf a request acknowledges a notice: each unit acknowledges for itself, and
/// only notices addressed to it (the office, `专项工作组办公室`, likewise: for itself, where it is
/// addressed, never for another unit). With keys, the authenticated principal's unit (a gateway's:
/// the unit it acts for); without keys, the envelope's `from`.
func acknowledgingUnit(_ context: RequestContext) throws -> String {
    // Authenticated: the unit of the principal (a unit, the office, a gateway acting for a unit).
    if context.caller.principal != nil {
        guard let unit = context.caller.unit else {
            throw ErrorBody.permissionDenied("签收须由通知所发往的单位进行（\(context.caller.role.chineseName)不能签收）", field: "from")
        }
        return unit
    }
    guard let from = context.from?.trimmingCharacters(in: .whitespaces), !from.isEmpty else {
        throw ErrorBody.invalidArgument("请在 from 中注明由哪个单位签收", field: "from")
    }
    return from
}

/// Follows one service's events from the cursor stored here, and turns each into notices in the
/// same transaction that moves the cursor: an event is never missed, and never noticed twice.
struct EventFollower: Service {
    let source: Endpoints
    let curve: ZMQCurve?
    let topics: [String]
    let name: String
    let store: ServiceStore
    let directory: Directory
    let clock: ServiceClock
    let logger: Logger
    let causeReportDays: Int
    let calendar: WorkCalendar

    func run() async throws {
        try await PeriodicTask.repeatUntilShutdown(every: .seconds(1)) {
            do {
                try await follow()
            } catch let error where !(error is CancellationError) {
                logger.warning("event follower restarting", metadata: ["events.source": "\(source.rpc)", "error": "\(error)"])
            }
        }
    }

    func follow() async throws {
        let cursors = try await store.pool.read { try NotifyStore.cursors($0) }
        let subscriber = try await EventSubscriber.start(
            events: source.events, rpc: source.rpc, topics: topics, from: .after(cursors), heartbeat: .seconds(1), name: name,
            logger: logger, curve: curve)
        do {
            try await handle(subscriber.events)
        } catch {
            await subscriber.stop()
            throw error
        }
        await subscriber.stop()
    }

    /// Turns each event into notices and moves the cursor past it, in one transaction.
    private func handle(_ events: AsyncStream<AnyEvent>) async throws {
        for await event in events {
            try Task.checkCancellation()
            var snapshot = directory.current
            if needsRefresh(event, snapshot) {
                await directory.refresh()
                snapshot = directory.current
            }
            let (drafts, resolved) = EventRules.apply(event, directory: snapshot)
            let now = clock.now()
            let known = snapshot
            try await store.write { db, events in
                var drafts = drafts
                // A live breach at a water section also opens the cause report its lead units owe.
                if event.type == IngestTypes.alertRaised, let alert = try? event.body(as: AlertBody.self) {
                    drafts += try CauseReports.open(
                        alert, event: "\(event.stream):\(event.seq)", directory: known, days: causeReportDays, calendar: calendar, db: db,
                        events: &events,
                        now: now)
                }
                try NotifyStore.issue(drafts, db: db, events: &events, now: now, channels: try ChannelStore.all(db))
                for key in resolved {
                    try db.execute(
                        sql: "UPDATE notices SET state = 'resolved', resolved_at = ? WHERE dedup_key = ? AND state IN ('open', 'silenced')",
                        arguments: [Timestamp.format(now), key])
                }
                // Only this event's position: events of other topics that the subscriber skipped are
                // simply read and skipped again after a restart, and events still waiting in its buffer
                // must not be counted as handled.
                try NotifyStore.setCursor(db, stream: event.stream, seq: event.seq)
            }
        }
    }

    func needsRefresh(_ event: AnyEvent, _ snapshot: Directory.Snapshot) -> Bool {
        if snapshot.tasks.isEmpty { return true }
        if event.type.hasPrefix("ingest."), snapshot.indicators.isEmpty { return true }
        return false
    }
}

/// The channels table.
enum ChannelStore {
    static func all(_ store: ServiceStore) throws -> [Channel] {
        try store.pool.read { try all($0) }
    }

    static func all(_ db: Database) throws -> [Channel] {
        try Data.fetchAll(db, sql: "SELECT definition FROM channels ORDER BY name").map {
            try WireCoding.decoder().decode(Channel.self, from: $0)
        }
    }

    /// The channel of that name as stored, secrets included.
    static func named(_ name: String, _ db: Database) throws -> Channel? {
        try Data.fetchOne(db, sql: "SELECT definition FROM channels WHERE name = ?", arguments: [name]).map {
            try WireCoding.decoder().decode(Channel.self, from: $0)
        }
    }
}
