import Foundation
import GRDB
import Logging
import Messaging
import PlanFormat
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization

/// The ledger counted in the tasks (issue #15): the registry keeps its own copy of what it needs
/// of each case (source, task, state, deadline) from the cases service's events, so that a
/// task's figures, status and acceptance never wait on a call to the cases service.
///
/// Which cases count for a task: a case naming a task counts for that task (when the plan links
/// it to the ledger); a case naming no task counts for the task the plan links its source to.
/// `registered` leaves voided cases out; `closed` counts `accepted` and `closed` (验收销号: the
/// rectification has passed acceptance; a reopen makes it open again); an open case is overdue
/// once its deadline day has ended, by the registry's clock.
enum LedgerRules {
    /// The cases service's events that say something about a case's source, task, state or deadline.
    static let topics = [
        CaseTypes.opened, CaseTypes.transitioned, CaseTypes.overdue, CaseTypes.deadlineChanged, CaseTypes.updated, CaseTypes.edited,
    ]

    static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("registry-ledger-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE ledger_cases (
                        id TEXT PRIMARY KEY NOT NULL,
                        source TEXT,
                        task TEXT,
                        state TEXT NOT NULL,
                        deadline TEXT
                    );
                    CREATE TABLE ledger_cursors (stream TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL);
                    """)
        }
    }

    /// What the registry reads from any of the followed events; every field is checked before use.
    struct CaseFacts: Decodable {
        var id: String
        var source: String?
        var task: String?
        var state: String?
        var deadline: String?
        /// `transitioned`: the new state; `deadline_changed`: the new deadline (or null).
        var to: String?
    }

    /// Applies one event to the registry's copy of the ledger. False when it changed nothing the
    /// figures use (or could not be read: it is logged and skipped, never retried forever).
    static func apply(_ event: AnyEvent, db: Database, logger: Logger) throws -> Bool {
        guard let facts = try? event.body(as: CaseFacts.self), !facts.id.isEmpty, facts.id.count <= 40,
            (facts.task?.count ?? 0) <= 20, (facts.source?.count ?? 0) <= 60
        else {
            logger.warning("unreadable case event skipped", metadata: ["event.type": "\(event.type)", "event.seq": "\(event.seq)"])
            return false
        }
        func valid(_ state: String?) -> String? { state.flatMap(CaseState.init(rawValue:))?.rawValue }
        func day(_ text: String?) -> String? { text.flatMap { Timestamp.startOfDistrictDay($0) == nil ? nil : $0 } }
        let known = try Row.fetchOne(db, sql: "SELECT * FROM ledger_cases WHERE id = ?", arguments: [facts.id])
        var source = known.flatMap { $0["source"] as String? }
        var task = known.flatMap { $0["task"] as String? }
        var state = known.flatMap { $0["state"] as String? }
        var deadline = known.flatMap { $0["deadline"] as String? }
        switch event.type {
        case CaseTypes.opened, CaseTypes.overdue, CaseTypes.edited:
            // The whole case (opened, edited) or what the overdue notice carries: source, task, state, deadline.
            source = facts.source.flatMap(CaseSource.init(rawValue:))?.rawValue ?? source
            task = facts.task
            state = valid(facts.state) ?? state
            deadline = day(facts.deadline)
        case CaseTypes.transitioned:
            task = facts.task
            state = valid(facts.to) ?? state
        case CaseTypes.deadlineChanged:
            task = facts.task
            deadline = day(facts.to)
        case CaseTypes.updated:
            task = facts.task
        default:
            return false
        }
        guard let state else {
            logger.warning("case event without a known state skipped", metadata: ["event.type": "\(event.type)", "case.id": "\(facts.id)"])
            return false
        }
        if let known, (known["source"] as String?) == source, (known["task"] as String?) == task,
            (known["state"] as String?) == state, (known["deadline"] as String?) == deadline
        {
            return false
        }
        try db.execute(
            sql: "INSERT OR REPLACE INTO ledger_cases (id, source, task, state, deadline) VALUES (?, ?, ?, ?, ?)",
            arguments: [facts.id, source, task, state, deadline])
        return true
    }

    static func cursors(_ db: Database) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT stream, seq FROM ledger_cursors") { out[row["stream"]] = row["seq"] }
        return out
    }

    static func setCursor(_ db: Database, stream: String, seq: Int) throws {
        try db.execute(
            sql: "INSERT INTO ledger_cursors (stream, seq) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            arguments: [stream, seq])
    }

    /// Every linked task's counts (a linked task without cases has zeros), by the rule above.
    static func tallies(_ db: Database, plan: PlanDocument) throws -> [String: LedgerTally] {
        var result: [String: LedgerTally] = [:]
        var bySource: [String: String] = [:]
        for task in plan.tasks where !task.isParent {
            guard let link = task.ledger else { continue }
            result[task.id] = LedgerTally(sources: link.sources, expected: link.expected)
            for source in link.sources { bySource[source] = task.id }
        }
        guard !result.isEmpty else { return result }
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT task, source, state IN ('accepted', 'closed') AS done, deadline, COUNT(*) AS n FROM ledger_cases
                WHERE state != 'voided' GROUP BY task, source, done, deadline
                """)
        for row in rows {
            let owner: String?
            if let named = row["task"] as String? {
                owner = result[named] == nil ? nil : named
            } else {
                owner = (row["source"] as String?).flatMap { bySource[$0] }
            }
            guard let owner else { continue }
            let count: Int = row["n"]
            result[owner]!.registered += count
            if row["done"] as Bool {
                result[owner]!.closed += count
            } else if let deadline = row["deadline"] as String? {
                result[owner]!.openDeadlines[deadline, default: 0] += count
            }
        }
        return result
    }
}

/// A linked task's counts as stored; `figures(today:)` makes them the wire's `TaskLedger`.
public struct LedgerTally: Sendable, Equatable {
    public var sources: [String]
    public var expected: Int?
    public var registered = 0
    public var closed = 0
    /// Open cases by deadline (those without one are open, never overdue).
    public var openDeadlines: [String: Int] = [:]

    public init(sources: [String], expected: Int?, registered: Int = 0, closed: Int = 0, openDeadlines: [String: Int] = [:]) {
        self.sources = sources
        self.expected = expected
        self.registered = registered
        self.closed = closed
        self.openDeadlines = openDeadlines
    }

    /// The figures on `today` (YYYY-MM-DD): an open case is overdue once its deadline day has ended.
    public func figures(today: String) -> TaskLedger {
        TaskLedger(
            sources: sources.compactMap(CaseSource.init(rawValue:)), expected: expected, registered: registered, closed: closed,
            open: registered - closed, overdue: openDeadlines.filter { $0.key < today }.values.reduce(0, +))
    }

    /// The first open case's deadline that has not passed on `today`: its day's end changes `overdue`.
    public func nextDeadline(today: String) -> String? { openDeadlines.keys.filter { $0 >= today }.min() }
}

/// Follows the cases service's events from the cursor kept in the registry's database, and applies
/// each in one transaction with the cursor and the statuses it changes: an event is applied once,
/// none is missed across restarts, and a registry started after the fact reads the stream from its
/// beginning. The cases service is only read through its events; no handler waits on it.
struct LedgerFollower: Service {
    let source: Endpoints
    let curve: ZMQCurve?
    let store: ServiceStore
    let current: PlanHolder
    let clock: ServiceClock
    let logger: Logger

    func run() async throws {
        try await PeriodicTask.repeatUntilShutdown(every: .seconds(1)) {
            do {
                try await follow()
            } catch let error where !(error is CancellationError) {
                logger.warning("ledger follower restarting", metadata: ["events.source": "\(source.rpc)", "error": "\(error)"])
            }
        }
    }

    /// Events applied in one transaction at most; while a batch this large waits, reading pauses.
    static let batchLimit = 1_000

    func follow() async throws {
        let cursors = try await store.pool.read { try LedgerRules.cursors($0) }
        let subscriber = try await EventSubscriber.start(
            events: source.events, rpc: source.rpc, topics: LedgerRules.topics, from: .after(cursors), heartbeat: .seconds(1),
            name: "registry-ledger", logger: logger, curve: curve)
        // Events come in bursts (an import of 500 cases is 500 events): what has arrived while the
        // previous batch was written is applied together, with one status refresh, instead of one
        // transaction per event.
        let pending = PendingEvents()
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in subscriber.events {
                        while pending.events.withLock({ $0.count }) >= Self.batchLimit && !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                        pending.events.withLock { $0.append(event) }
                        arrived.yield()
                    }
                    arrived.finish()
                }
                group.addTask {
                    for await _ in arrivals {
                        try Task.checkCancellation()
                        let batch = pending.events.withLock { events in
                            defer { events = [] }
                            return events
                        }
                        if !batch.isEmpty { try await apply(batch) }
                    }
                }
                // Either ends (the subscriber stopped, a write failed, shutdown): the other goes with it.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            await subscriber.stop()
            throw error
        }
        await subscriber.stop()
    }

    /// Applies `batch` in one transaction with the cursor past its last event of each stream and
    /// the statuses it changes.
    func apply(_ batch: [AnyEvent]) async throws {
        let plan = current.plan.document
        let now = clock.now()
        try await store.write { [logger] db, events in
            var changed = false
            var last: [String: Int] = [:]
            for event in batch {
                if try LedgerRules.apply(event, db: db, logger: logger) { changed = true }
                last[event.stream] = max(last[event.stream] ?? 0, event.seq)
            }
            if changed { try RegistryStore.refreshStatuses(db, plan: plan, now: now, events: &events) }
            for (stream, seq) in last { try LedgerRules.setCursor(db, stream: stream, seq: seq) }
        }
    }
}

/// Events received and not yet applied, shared by the follower's reader and writer.
final class PendingEvents: Sendable {
    let events = Mutex<[AnyEvent]>([])
}

extension TaskStatusRules {
    /// Why a linked task is not done by its ledger, or nil: `ledger_open` while cases are open,
    /// `ledger_incomplete` when fewer than the plan's number are registered and closed.
    static func ledgerReason(_ ledger: TaskLedger) -> StatusReason? {
        if ledger.open > 0 {
            var reason = StatusReason(
                code: "ledger_open",
                text: "台账未销号 \(ledger.open) / \(ledger.total)" + (ledger.overdue > 0 ? "（逾期 \(ledger.overdue)）" : ""))
            reason.open = ledger.open
            reason.total = ledger.total
            return reason
        }
        if let expected = ledger.expected, ledger.closed < expected {
            var reason = StatusReason(
                code: "ledger_incomplete", text: "台账已销号 \(ledger.closed) / \(expected)，尚有 \(expected - ledger.closed) 处未登记")
            reason.open = expected - ledger.closed
            reason.total = expected
            return reason
        }
        return nil
    }

    /// The office's refusal to accept a linked task whose ledger is not done, or nil.
    static func ledgerRefusal(_ task: PlanDocument.TaskEntry, _ ledger: TaskLedger) -> String? {
        if ledger.open > 0 {
            return "任务 \(task.id) 的台账尚有 \(ledger.open) 处问题未销号（已销号 \(ledger.closed) / \(ledger.total)"
                + (ledger.overdue > 0 ? "，其中逾期 \(ledger.overdue) 处" : "") + "），全部销号后方可验收"
        }
        if let expected = ledger.expected, ledger.closed < expected {
            return "任务 \(task.id) 的台账已销号 \(ledger.closed) / \(expected)，尚有 \(expected - ledger.closed) 处未登记销号，全部销号后方可验收"
        }
        return nil
    }
}
