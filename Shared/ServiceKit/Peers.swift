import Foundation
import GRDB
import Logging
import Messaging
import Schema
import ServiceLifecycle
import Synchronization

/// One long-lived client per peer service, on one socket thread, for a service's background work
/// and its reads that must ask a peer (reports). Connecting never waits for the peer (ZeroMQ
/// connects in the background), so a peer that is down costs its callers a timeout, never the
/// service its start. Closed at graceful shutdown.
public final class PeerClients: Service, Sendable {
    private let clients: [ServiceName: RPCClient]
    private let loop: ZMQPollLoop

    /// Connects to each of `peers` at its endpoint in `deployment`, as `from`.
    public init(deployment: DeploymentConfiguration, peers: [ServiceName], from: String, logger: Logger) async throws {
        let loop = ZMQPollLoop(name: "\(from)-peers", logger: logger)
        var clients: [ServiceName: RPCClient] = [:]
        do {
            for peer in peers {
                let curve = try deployment.clientCurve(as: from, toward: peer)
                // No direct lane: a service's calls to its peers wait on no person, and its pool
                // threads serve its own requests (a lane blocks one for up to 2 ms at a time).
                clients[peer] = try await RPCClient.connect(
                    to: deployment[peer].rpc, from: curve == nil ? from : nil, loop: loop, curve: curve, directLane: false)
            }
        } catch {
            for client in clients.values { await client.close() }
            await loop.shutdown()
            throw error
        }
        self.clients = clients
        self.loop = loop
    }

    /// The client for `peer`; asking for a peer not named at init is a bug.
    public subscript(_ peer: ServiceName) -> RPCClient {
        guard let client = clients[peer] else { preconditionFailure("no client for \(peer); name it in PeerClients.init") }
        return client
    }

    /// One line per peer for `/readyz`: `ok`, or `degraded` when it does not answer `sys.ping`
    /// within a second (the service keeps working without it, so this never makes it unready).
    public func readiness() async -> [String] {
        var lines: [String] = []
        for (peer, client) in clients.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let answered = (try? await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(1), retries: 0)) != nil
            lines.append("peer \(peer.rawValue): \(answered ? "ok" : "degraded (no answer to sys.ping)")")
        }
        return lines
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    /// Closes every client and the loop; also for a service that never ran (its sockets failed to
    /// bind). Later calls do nothing.
    public func close() async {
        for client in clients.values { await client.close() }
        await loop.shutdown()
    }
}

/// What the task registry knows that other services check against: the units as the plan names
/// them (aliases, collective names and their members), the tasks with their statuses, the office
/// and the dispatch day.
///
/// One copy per service, kept current from the registry's events (a plan reload, a status change)
/// and a periodic refresh, through one long-lived client, and saved in the service's database so
/// that a restart while the registry is down still knows the units. A handler reads it without
/// waiting: a miss asks for a refresh in the background, never holds the request.
public final class RegistryDirectory: Service, Sendable {
    public struct Snapshot: Codable, Sendable {
        public var units: [PlanUnit]
        public var tasks: [PlanTask]
        public var office: String
        public var dispatchDay: Int
        public var fetchedAt: String
        /// The plan's last day and go-live (`plan.get`): the rhythm asks for no month after the
        /// one and before the other.
        public var planEnd: String?
        public var supervisionStart: String?
        /// The plan's first day: with `planEnd`, the years a report may be asked for (补报 included).
        public var planStart: String?
        /// The plan's targets (`plan.get`): ingestion judges indicators by the plan in force, reloads included.
        public var targets: [PlanTarget]?

        public init(
            units: [PlanUnit], tasks: [PlanTask], office: String, dispatchDay: Int, fetchedAt: String, planEnd: String? = nil,
            supervisionStart: String? = nil, planStart: String? = nil, targets: [PlanTarget]? = nil
        ) {
            self.targets = targets
            self.planStart = planStart
            self.planEnd = planEnd
            self.supervisionStart = supervisionStart
            self.units = units
            self.tasks = tasks
            self.office = office
            self.dispatchDay = dispatchDay
            self.fetchedAt = fetchedAt
        }

        enum CodingKeys: String, CodingKey {
            case units, tasks, office, dispatchDay, fetchedAt, planEnd, supervisionStart, planStart, targets
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            units = try container.decode([PlanUnit].self, forKey: .units)
            // Saved by wave 1's case tracking as task ids only: read what is there.
            tasks = (try? container.decode([PlanTask].self, forKey: .tasks)) ?? []
            office = try container.decodeIfPresent(String.self, forKey: .office) ?? officeUnit
            planEnd = try container.decodeIfPresent(String.self, forKey: .planEnd)
            supervisionStart = try container.decodeIfPresent(String.self, forKey: .supervisionStart)
            planStart = try container.decodeIfPresent(String.self, forKey: .planStart)
            targets = try? container.decodeIfPresent([PlanTarget].self, forKey: .targets)
            dispatchDay = try container.decodeIfPresent(Int.self, forKey: .dispatchDay) ?? 5
            fetchedAt = try container.decodeIfPresent(String.self, forKey: .fetchedAt) ?? ""
        }
    }

    private let snapshot = Mutex<Snapshot?>(nil)
    private let client: RPCClient
    private let events: String
    private let store: ServiceStore?
    private let refreshInterval: Duration
    private let logger: Logger
    private let triggers: AsyncStream<Void>
    private let trigger: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - client: a long-lived client of the registry's rpc endpoint (`PeerClients`).
    ///   - events: the registry's events endpoint.
    ///   - store: where the last snapshot is kept across restarts.
    public init(client: RPCClient, events: String, store: ServiceStore?, refreshInterval: Duration = .seconds(300), logger: Logger) throws {
        self.client = client
        self.events = events
        self.store = store
        self.refreshInterval = refreshInterval
        self.logger = logger
        // At most one refresh waiting: asking again while one waits asks for nothing more.
        (triggers, trigger) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        if let store {
            let saved = try store.pool.write { db -> Data? in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS registry_directory (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
                return try Data.fetchOne(db, sql: "SELECT data FROM registry_directory WHERE id = 1")
            }
            if let saved { snapshot.withLock { $0 = try? JSONDecoder().decode(Snapshot.self, from: saved) } }
        }
    }

    /// The directory as last fetched (or saved), nil before the registry has ever answered.
    public var current: Snapshot? { snapshot.withLock { $0 } }

    /// Asks for a refresh soon, without waiting for it.
    public func requestRefresh() { trigger.yield() }

    /// The directory for a handler, without waiting on the registry. A unit or task it does not
    /// know asks for a refresh (a plan reload may have added it), and the caller answers with what
    /// is known now; a retry after the refresh sees the new plan.
    public func lookup(unit: String? = nil, task: String? = nil) throws -> Snapshot {
        guard let known = current else {
            requestRefresh()
            throw ErrorBody.unavailable("尚未从任务登记服务取得单位和任务名单，请稍后重试")
        }
        if let unit, known.unit(unit) == nil { requestRefresh() }
        if let task, !known.tasks.contains(where: { $0.id == task }) { requestRefresh() }
        return known
    }

    /// Fetches the registry's units and plan now; false if the registry did not answer.
    @discardableResult
    public func refresh(timeout: Duration = .seconds(3), retries: Int = 1) async -> Bool {
        do {
            let units = try await client.callAll(RegistryTypes.unitList, Empty(), timeout: timeout, retries: retries)
            let plan = try await client.call(RegistryTypes.planGet, Empty(), timeout: timeout, retries: retries)
            let fresh = Snapshot(
                units: units, tasks: plan.tasks, office: plan.office, dispatchDay: plan.dispatchDay, fetchedAt: Timestamp.now(),
                planEnd: plan.end, supervisionStart: plan.supervisionStart, planStart: plan.start, targets: plan.targets)
            if let store {
                let data = try WireCoding.encode(fresh)
                try await store.pool.write { db in
                    try db.execute(sql: "INSERT OR REPLACE INTO registry_directory (id, data) VALUES (1, ?)", arguments: [data])
                }
            }
            snapshot.withLock { $0 = fresh }
            return true
        } catch {
            logger.warning(
                "the registry did not answer; using the units last fetched",
                metadata: ["zmq.endpoint": "\(client.endpoint)", "error": "\(error)"])
            return false
        }
    }

    /// At a service's start, before it takes requests: one quick fetch when nothing was ever saved,
    /// so that services started together answer their first request with the units known. A
    /// registry that is down costs the start a second, then the service starts anyway.
    public func prime() async {
        if current == nil { await refresh(timeout: .seconds(1), retries: 0) }
    }

    /// Refreshes at start, when asked, on the registry's plan and status events, and every
    /// `refreshInterval`, until graceful shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.askPeriodically() }
                group.addTask { await self.askOnRegistryEvents() }
                self.requestRefresh()
                for await _ in self.triggers {
                    if Task.isCancelled { break }
                    if await !self.refresh() { try? await Task.sleep(for: .seconds(1)) }
                }
                group.cancelAll()
            }
        }
        trigger.finish()
    }

    private func askPeriodically() async {
        while !Task.isCancelled {
            // Until the registry has answered once, ask often; then every interval.
            try? await Task.sleep(for: current == nil ? .seconds(2) : refreshInterval)
            requestRefresh()
        }
    }

    /// Follows the registry's plan and status events; each one asks for a refresh. A subscriber
    /// that cannot start (the registry is down) is tried again, less often each time.
    private func askOnRegistryEvents() async {
        var backoff: Duration = .seconds(1)
        while !Task.isCancelled {
            do {
                let subscriber = try await EventSubscriber.start(
                    events: events, rpc: client.endpoint, topics: ["registry.plan.", RegistryTypes.taskStatusChanged], from: .now,
                    name: "directory", logger: logger, curve: client.curve)
                backoff = .seconds(1)
                // Anything that changed while no subscriber was listening.
                requestRefresh()
                for await _ in subscriber.events {
                    if Task.isCancelled { break }
                    requestRefresh()
                }
                await subscriber.stop()
            } catch {
                logger.debug("registry events not reachable", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(30))
        }
    }
}

extension RegistryDirectory.Snapshot {
    /// The unit by the name the plan uses for it.
    public func unit(_ name: String) -> PlanUnit? { units.first { $0.name == name } }

    /// The task by id.
    public func task(_ id: String) -> PlanTask? { tasks.first { $0.id == id } }

    /// The unit's own name, or the name it is an alias of.
    public func canonical(_ name: String) -> String { unit(name)?.aliasOf ?? name }

    /// Whether `actor` is `unit`: the same, an alias of it, or a member of it when it is a collective name.
    public func acts(as unit: String, actor: String?) -> Bool {
        guard let actor else { return false }
        if canonical(actor) == canonical(unit) { return true }
        return self.unit(unit)?.members?.contains(canonical(actor)) ?? false
    }
}
