import Foundation
import GRDB
import PlanFormat
import Schema
import ServiceKit
import Synchronization

/// Every task's view (status, progress) computed once and kept until something it depends on
/// changes: a write to the registry's database, a plan reload, or the next instant at which the
/// clock alone could change a status (`TaskStatusRules.nextChange`). `task.get`, `task.list` and
/// `plan.get` then cost a lookup instead of recomputing all 26 tasks from their reports per call,
/// which is what kept `task.get` at gRPC's latency. `task.get` replies are kept encoded too.
final class TaskViewCache: Sendable {
    /// Views as of one database generation and plan version, valid for `computedAt..<validUntil`.
    struct Snapshot: Sendable {
        let generation: Int
        let planVersion: Int
        let computedAt: Date
        let validUntil: Date
        /// In plan order.
        let views: [PlanTask]
        let index: [String: Int]

        func holds(generation: Int, planVersion: Int, now: Date) -> Bool {
            self.generation == generation && self.planVersion == planVersion && computedAt <= now && now < validUntil
        }
    }

    private struct State {
        var snapshot: Snapshot?
        /// Encoded `task.get` reply bodies of the snapshot's tasks, filled as they are asked for.
        var taskReplies: [String: Data] = [:]
    }

    private let state = Mutex(State())
    /// How long a snapshot is kept at most, whatever the rules say: insurance, not a rule.
    static let longestValidity: TimeInterval = 600

    /// Every task's view now.
    func views(plan: PlanHolder.Versioned, store: ServiceStore, now: Date) throws -> Snapshot {
        let generation = store.writeGeneration
        if let snapshot = state.withLock({ $0.snapshot }), snapshot.holds(generation: generation, planVersion: plan.version, now: now) {
            return snapshot
        }
        let reports = try store.readNow { try RegistryStore.taskReports($0, plan: plan.loaded.document) }
        let views = Self.taskViews(plan: plan.loaded.document, reports: reports, now: now)
        let validUntil = min(
            TaskStatusRules.nextChange(plan: plan.loaded.document, reports: reports, now: now), now.addingTimeInterval(Self.longestValidity)
        )
        let snapshot = Snapshot(
            generation: generation, planVersion: plan.version, computedAt: now, validUntil: validUntil, views: views,
            index: Dictionary(uniqueKeysWithValues: views.enumerated().map { ($0.element.id, $0.offset) }))
        state.withLock { state in
            // A snapshot of a later generation computed meanwhile stays.
            if let kept = state.snapshot, kept.generation > generation { return }
            state.snapshot = snapshot
            state.taskReplies = [:]
        }
        return snapshot
    }

    /// The encoded `task.get` reply body for `id` (a task of the plan): its view with each unit's latest report.
    func taskReply(_ id: String, plan: PlanHolder.Versioned, store: ServiceStore, now: Date) throws -> Data {
        let snapshot = try views(plan: plan, store: store, now: now)
        if let encoded = state.withLock({ state in
            state.snapshot.map { $0.generation == snapshot.generation && $0.computedAt == snapshot.computedAt } == true
                ? state.taskReplies[id] : nil
        }) {
            return encoded
        }
        guard let position = snapshot.index[id] else {
            throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(id))", field: "body.id")
        }
        var view = snapshot.views[position]
        let reports = try store.readNow { try RegistryStore.reports($0, task: id) }
        var latest: [String: ProgressReport] = [:]
        for report in reports where (latest[report.unit]?.period ?? "") <= report.period { latest[report.unit] = report }
        view.latestReports = latest.values.sorted { $0.unit < $1.unit }
        let encoded = try WireCoding.encode(view)
        state.withLock { state in
            if state.snapshot.map({ $0.generation == snapshot.generation && $0.computedAt == snapshot.computedAt }) == true {
                state.taskReplies[id] = encoded
            }
        }
        return encoded
    }

    /// Every task as the protocol shows it, with its status and progress at `now`.
    static func taskViews(plan: PlanDocument, reports: [String: TaskReports], now: Date) -> [PlanTask] {
        let evaluations = TaskStatusRules.evaluations(plan: plan, reports: reports, now: now)
        let categories = Dictionary(uniqueKeysWithValues: plan.categories.map { ($0.id, $0.heading) })
        return plan.tasks.map { task in
            let children = task.subtasks.compactMap(plan.task)
            let progress: Double
            if task.isParent {
                progress =
                    children.isEmpty
                    ? 0
                    : children.map { TaskStatusRules.progress($0, plan: plan, reports: reports[$0.id] ?? TaskReports()) }.reduce(0, +)
                        / Double(children.count)
            } else {
                progress = TaskStatusRules.progress(task, plan: plan, reports: reports[task.id] ?? TaskReports())
            }
            var view = PlanTask(
                id: task.id, parent: task.parent, category: categories[task.category] ?? task.category, title: task.title, text: task.text,
                leadUnits: task.isParent ? RegistryStore.unionOfLeads(task, plan: plan) : task.lead,
                cooperatingUnits: task.isParent ? RegistryService.uniqued(children.flatMap(\.cooperating)) : task.cooperating,
                deadline: task.isParent ? children.compactMap(\.deadline).max() : task.deadline,
                ongoing: task.isParent ? children.allSatisfy { $0.deadline == nil } : task.deadline == nil,
                milestones: task.milestones.map { Milestone(date: $0.date, text: $0.text, percent: $0.percent) },
                targets: plan.targets.filter { $0.tasks.contains(task.id) }.map(\.indicator), subtasks: task.subtasks,
                status: evaluations[task.id]?.status)
            view.reasons = evaluations[task.id]?.reasons
            view.ledger = reports[task.id]?.ledger?.figures(today: Timestamp.districtDate(now))
            view.deadlineText = task.deadlineText
            view.progress = (progress * 10).rounded() / 10
            return view
        }
    }
}
