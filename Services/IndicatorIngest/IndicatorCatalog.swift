import Foundation
import Logging
import PlanFormat
import Schema
import ServiceKit
import Synchronization

/// The plan's targets as ingestion judges them, following the plan in force at the registry.
///
/// The plan file gives the targets at start; once the registry has answered, its plan (kept current
/// by `RegistryDirectory` from `registry.plan.loaded` and a periodic refresh, and saved across
/// restarts) replaces them, so a `plan.load` that changes a threshold changes the next judgement.
/// Handlers read it without waiting on the registry.
final class IndicatorCatalog: Sendable {
    struct State: Sendable {
        /// The 13 targets, in the plan's order; parts inside their target.
        var indicators: [IndicatorDefinition]
        /// Every indicator by id, parts included.
        var byID: [String: IndicatorDefinition]
        /// The target a part belongs to, by the part's id.
        var parentOf: [String: String]
        /// Units that may report each indicator's value, by indicator id (a part: its target's).
        var reporters: [String: Set<String>]
        /// When the registry's plan these came from was fetched; nil for the plan file.
        var fetchedAt: String?
    }

    private let state: Mutex<State>
    private let directory: RegistryDirectory?
    private let thresholds: [String: Double]
    private let decimals: [String: Int]
    private let logger: Logger

    init(plan: PlanDocument, thresholds: [String: Double], decimals: [String: Int], directory: RegistryDirectory?, logger: Logger) {
        self.thresholds = thresholds
        self.decimals = decimals
        self.directory = directory
        self.logger = logger
        let definitions = IndicatorDefinition.from(plan: plan, thresholds: thresholds, decimals: decimals)
        // Who reports an indicator's value: the lead and cooperating units of the tasks behind its target.
        let units = { (ids: [String]) -> Set<String> in
            let tasks = ids.compactMap { plan.task($0) }
            return Set(tasks.flatMap { $0.lead + $0.cooperating }.map { plan.unit($0)?.aliasOf ?? $0 })
        }
        state = Mutex(Self.state(definitions, reporters: units, fetchedAt: nil))
    }

    static func state(_ definitions: [IndicatorDefinition], reporters units: ([String]) -> Set<String>, fetchedAt: String?) -> State {
        var byID: [String: IndicatorDefinition] = [:]
        var parentOf: [String: String] = [:]
        var reporters: [String: Set<String>] = [:]
        for definition in definitions {
            byID[definition.id] = definition
            reporters[definition.id] = units(definition.target.tasks)
            for part in definition.parts {
                byID[part.id] = part
                parentOf[part.id] = definition.id
                reporters[part.id] = reporters[definition.id]
            }
        }
        return State(indicators: definitions, byID: byID, parentOf: parentOf, reporters: reporters, fetchedAt: fetchedAt)
    }

    /// The targets in force: the registry's latest plan once it has one, else the plan file's.
    func current() -> State {
        guard let snapshot = directory?.current, let targets = snapshot.targets, !targets.isEmpty else {
            return state.withLock { $0 }
        }
        if let known = state.withLock({ $0.fetchedAt == snapshot.fetchedAt ? $0 : nil }) { return known }
        let definitions = IndicatorDefinition.from(
            targets: targets.map(IndicatorDefinition.entry), thresholds: thresholds, decimals: decimals)
        let fresh = Self.state(
            definitions,
            reporters: { ids in
                Set(ids.compactMap { snapshot.task($0) }.flatMap { $0.leadUnits + $0.cooperatingUnits }.map { snapshot.canonical($0) })
            }, fetchedAt: snapshot.fetchedAt)
        let changed = state.withLock { old -> Bool in
            defer { old = fresh }
            return old.indicators.map(\.threshold) != fresh.indicators.map(\.threshold)
                || old.indicators.map(\.target) != fresh.indicators.map(\.target)
        }
        if changed {
            logger.notice("targets follow the registry's plan", metadata: ["registry.fetched_at": "\(snapshot.fetchedAt)"])
        }
        return fresh
    }
}
