import Foundation
import GRDB
import Logging
import Messaging
import Schema
import ServiceKit
import Synchronization

/// The units and tasks the registry knows, kept here so that case tracking can check them
/// without asking the registry for every case, and can go on when the registry is down: the last
/// list fetched is stored in this service's database.
final class RegistryDirectory: Sendable {
    struct Snapshot: Codable, Sendable {
        var units: [PlanUnit]
        var tasks: [String]
        var office: String
        var fetchedAt: String
    }

    private let snapshot = Mutex<Snapshot?>(nil)
    private let lastAttempt = Mutex<ContinuousClock.Instant?>(nil)
    private let registryRPC: String
    private let store: ServiceStore
    private let logger: Logger

    init(registryRPC: String, store: ServiceStore, logger: Logger) throws {
        self.registryRPC = registryRPC
        self.store = store
        self.logger = logger
        let saved = try store.pool.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM registry_directory WHERE id = 1")
        }
        if let saved { snapshot.withLock { $0 = try? JSONDecoder().decode(Snapshot.self, from: saved) } }
    }

    var current: Snapshot? { snapshot.withLock { $0 } }

    /// Fetches the registry's units and tasks; false if the registry did not answer.
    @discardableResult
    func refresh() async -> Bool {
        lastAttempt.withLock { $0 = .now }
        do {
            let client = try await RPCClient.connect(to: registryRPC, from: "cases")
            defer { Task { await client.close() } }
            let units = try await client.call(
                RegistryTypes.unitList, Empty(), as: ListReply<PlanUnit>.self, timeout: .seconds(2), retries: 1)
            let plan = try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self, timeout: .seconds(5), retries: 1)
            let fresh = Snapshot(units: units.items, tasks: plan.tasks.map(\.id), office: plan.office, fetchedAt: Timestamp.now())
            let data = try WireCoding.encode(fresh)
            try await store.pool.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO registry_directory (id, data) VALUES (1, ?)", arguments: [data])
            }
            snapshot.withLock { $0 = fresh }
            return true
        } catch {
            logger.warning(
                "the registry did not answer; using the units last fetched",
                metadata: ["registry.rpc": "\(registryRPC)", "error": "\(error)"])
            return false
        }
    }

    /// The directory, fetching it if there is none yet, or if `name` is unknown and the last
    /// fetch is more than a few seconds old (a unit added by a plan reload).
    func lookup(unit name: String? = nil, task: String? = nil) async throws -> Snapshot {
        var known = current
        let missing =
            known == nil || (name.map { n in !known!.units.contains { $0.name == n } } ?? false)
            || (task.map { t in !known!.tasks.contains(t) } ?? false)
        if missing {
            let recent = lastAttempt.withLock { $0.map { ContinuousClock.now - $0 < .seconds(3) } ?? false }
            if known == nil || !recent {
                await refresh()
                known = current
            }
        }
        guard let known else {
            throw ErrorBody.unavailable("the registry (\(registryRPC)), which knows the units, has not answered yet; retry")
        }
        return known
    }
}

extension RegistryDirectory.Snapshot {
    func unit(_ name: String) -> PlanUnit? { units.first { $0.name == name } }

    /// The unit's own name, or the name it is an alias of.
    func canonical(_ name: String) -> String { unit(name)?.aliasOf ?? name }

    /// Whether `actor` is `unit`: the same, an alias of it, or a member of it when it is a collective name.
    func acts(as unit: String, actor: String?) -> Bool {
        guard let actor else { return false }
        if canonical(actor) == canonical(unit) { return true }
        return self.unit(unit)?.members?.contains(canonical(actor)) ?? false
    }
}
