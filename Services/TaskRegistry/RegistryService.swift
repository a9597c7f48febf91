import Foundation
import GRDB
import Logging
import Messaging
import PlanFormat
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization
import WorkCalendar

/// The task registry: the plan as data, progress reports (月调度), computed statuses and escalations.
public struct RegistryService: DubanService {
    public static let name = ServiceName.registry
    public static let topics = [
        RegistryTypes.progressReported, RegistryTypes.taskStatusChanged, RegistryTypes.escalationRecorded, RegistryTypes.planLoaded,
        RegistryTypes.taskReviewed, SupervisionTypes.issued, SupervisionTypes.replied, SupervisionTypes.reviewed, SupervisionTypes.overdue,
        AccountabilityTypes.followUpDue, ImplementationPlanTypes.submitted, ImplementationPlanTypes.reviewed,
        ImplementationPlanTypes.overdue,
    ]

    let store: ServiceStore
    let clock: ServiceClock
    let logger: Logger
    let tick: Duration
    let current: PlanHolder
    let views = TaskViewCache()
    /// Where the ledger's figures come from: the cases service's events.
    let cases: Endpoints
    let casesCurve: ZMQCurve?

    public static func migrations(_ migrator: inout DatabaseMigrator) {
        RegistryStore.migrations(&migrator)
        SupervisionRules.migrations(&migrator)
        AccountabilityRules.migrations(&migrator)
        ImplementationPlanRules.migrations(&migrator)
        LedgerRules.migrations(&migrator)
    }

    /// Opens the registry; on the first start it loads the configured plan file (or the bundled plan).
    public init(context: ServiceContext) async throws {
        store = try context.store
        clock = context.clock
        logger = context.logger
        tick = .milliseconds(Int(context.deployment.tickSeconds * 1000))
        cases = context.deployment[.cases]
        casesCurve = try context.deployment.clientCurve(as: ServiceName.registry.rawValue, toward: .cases)
        // Go-live: the configured date, else the one kept from the first start, else today.
        let goLive = try await Self.supervisionStart(
            store: store, configured: context.deployment.supervisionStart, now: context.clock.now())
        // Working days: the configured holiday file, else the bundled one (a bad file stops the start).
        var calendar: WorkCalendar?
        if let path = context.deployment.holidaysFile { calendar = try WorkCalendar.load(path: path) }
        if var loaded = try await store.pool.read({ try RegistryStore.loadPlan($0) }) {
            loaded.document.supervisionStart = goLive
            loaded.document.calendar = calendar
            current = PlanHolder(loaded)
            logger.info("plan in force", metadata: ["plan.title": "\(loaded.document.title)", "plan.source": "\(loaded.source)"])
        } else {
            guard let path = context.deployment.planFile ?? PlanLoader.bundledPlanPath else {
                throw PlanLoadError(problems: [
                    PlanProblem(file: "（内置方案）", line: nil, path: "", message: "未配置方案文件，也没有内置方案")
                ])
            }
            var parsed = try PlanLoader.load(path: path)
            parsed.supervisionStart = goLive
            parsed.calendar = calendar
            let document = parsed
            let loaded = LoadedPlan(document: document, source: path, loadedAt: Timestamp.format(context.clock.now()))
            let now = context.clock.now()
            try await store.write { db, events in
                try RegistryStore.savePlan(db, loaded)
                try RegistryStore.refreshStatuses(db, plan: document, now: now, events: &events)
            }
            current = PlanHolder(loaded)
            logger.info(
                "plan loaded on first start",
                metadata: ["plan.title": "\(document.title)", "plan.source": "\(path)", "plan.tasks": "\(document.tasks.count)"])
        }
    }

    /// Records the office's decision on a task waiting for acceptance, in one transaction with
    /// the status it changes.
    static func review(
        _ id: String, decision: String, comment: String, evidence: [EvidenceRef], plan: PlanDocument, now: Date, context: RequestContext
    ) async throws -> TaskReview {
        guard let task = plan.task(id) else { throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(id))", field: "body.task") }
        guard !task.isParent else {
            throw ErrorBody.invalidArgument(
                "任务 \(task.id) 按子项验收：\(task.subtasks.joined(separator: "、"))（全部子项验收后自动完成）", field: "body.task")
        }
        // With keys the declaration admits only the office and the administrator; without, `from` says.
        guard context.caller.isOffice else {
            throw ErrorBody.permissionDenied("验收、退回由\(plan.office)进行；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
        }
        let at = Timestamp.format(now)
        return try await context.write { db, events in
            let reports = try RegistryStore.taskReports(db, plan: plan)[task.id] ?? TaskReports()
            // A linked task is not complete while its ledger is not: say how far it is, whatever else holds.
            if decision == "accepted", let tally = reports.ledger,
                let refusal = TaskStatusRules.ledgerRefusal(task, tally.figures(today: Timestamp.districtDate(now)))
            {
                throw ErrorBody.conflict(refusal, field: "body.task")
            }
            let status = TaskStatusRules.evaluate(task, plan: plan, reports: reports, now: now).status
            guard status == .awaitingAcceptance else {
                throw ErrorBody.conflict(
                    "任务 \(task.id) 当前为\(status.label)，只有责任单位均报送完成、待验收的任务才能验收或退回", field: "body.task")
            }
            try db.execute(
                sql: """
                    INSERT INTO task_reviews (task, decision, comment, evidence, at, by, principal, principal_key) \
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    task.id, decision, comment, try WireCoding.encode(evidence), at, context.from, context.caller.principal?.name,
                    context.caller.principal?.publicKey,
                ])
            try RegistryStore.refreshStatuses(db, plan: plan, now: now, events: &events)
            var review = TaskReview(
                task: task.id, decision: decision, comment: comment, evidence: evidence, at: at, by: context.from,
                principal: context.caller.principal?.name)
            let after = try RegistryStore.taskReports(db, plan: plan)[task.id] ?? TaskReports()
            review.status = TaskStatusRules.evaluate(task, plan: plan, reports: after, now: now).status
            try events.emit(RegistryTypes.taskReviewed, review)
            return review
        }
    }

    /// The go-live date: the configuration's (kept, so that a later start without it keeps it),
    /// else the one kept from an earlier start, else today (the first start).
    static func supervisionStart(store: ServiceStore, configured: String?, now: Date) async throws -> String {
        try await store.write { db, _ in
            let kept = try String.fetchOne(db, sql: "SELECT value FROM registry_settings WHERE key = 'supervision_start'")
            let date = configured ?? kept ?? Timestamp.districtDate(now)
            if date != kept {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO registry_settings (key, value) VALUES ('supervision_start', ?)", arguments: [date])
            }
            return date
        }
    }

    public func backgroundServices() -> [any Service] {
        // Time alone moves tasks to overdue or lagging; this notices and publishes it.
        [
            LedgerFollower(source: cases, curve: casesCurve, store: store, current: current, clock: clock, logger: logger),
            PeriodicTask(name: "task-status", interval: tick, logger: logger) { [store, clock, current] in
                let plan = current.plan.document
                let now = clock.now()
                try await store.write { db, events in
                    try RegistryStore.refreshStatuses(db, plan: plan, now: now, events: &events)
                    try SupervisionRules.tick(db, plan: plan, now: now, events: &events)
                    try AccountabilityRules.tick(db, now: now, events: &events)
                    try ImplementationPlanRules.tick(db, plan: plan, now: now, events: &events)
                }
            },
        ]
    }

    public func register(_ handlers: inout HandlerTable) {
        let current = self.current
        let clock = self.clock
        let cache = self.views
        registerSupervision(&handlers)
        registerAccountability(&handlers)
        registerImplementationPlans(&handlers)

        handlers.onRead(RegistryTypes.planGet) { _, context in
            let versioned = current.versioned
            let loaded = versioned.loaded
            let plan = loaded.document
            let views = try cache.views(plan: versioned, store: try context.store, now: clock.now()).views
            return PlanReply(
                title: plan.title, district: plan.district, start: plan.start, end: plan.end, office: plan.office,
                dispatchDay: plan.dispatchDay,
                goals: plan.goals, categories: plan.categories.map(\.heading), tasks: views, targets: plan.targets.map(Self.target),
                rules: plan.rules.map { PlanRule(id: $0.id, text: $0.text, withinMonths: $0.withinMonths, due: $0.due) },
                loadedAt: loaded.loadedAt,
                supervisionStart: plan.supervisionStart)
        }

        handlers.onRead(RegistryTypes.unitList) { _, _ in
            ListReply(
                items: current.plan.document.units.map {
                    PlanUnit(
                        name: $0.name, kind: $0.kind, collective: $0.kind == "collective", aliasOf: $0.aliasOf,
                        members: $0.members.isEmpty ? nil : $0.members)
                })
        }

        handlers.onRead(RegistryTypes.taskList) { request, context in
            let versioned = current.versioned
            let plan = versioned.loaded.document
            if let unit = request.unit, plan.unit(unit) == nil {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(unit))", field: "body.unit")
            }
            var categoryID: String?
            if let category = request.category {
                guard let match = plan.categories.first(where: { [$0.id, $0.title, $0.heading].contains(category) }) else {
                    throw ErrorBody.notFound(
                        "方案中没有任务类别 \(ErrorBody.quote(category))，可选：\(plan.categories.map(\.heading).joined(separator: "、"))",
                        field: "body.category")
                }
                categoryID = match.id
            }
            let views = try cache.views(plan: versioned, store: try context.store, now: clock.now()).views
            return ListReply(
                items: views.filter { view in
                    guard let task = plan.task(view.id) else { return false }
                    if let categoryID, task.category != categoryID { return false }
                    if let status = request.status, view.status != status { return false }
                    if let unit = request.unit {
                        let involved =
                            task.isParent
                            ? task.subtasks.compactMap(plan.task).flatMap { $0.lead + $0.cooperating } : task.lead + task.cooperating
                        if !involved.contains(where: { Self.stands(for: $0, unit: unit, plan: plan) }) { return false }
                    }
                    return true
                })
        }

        handlers.onReadEncoded(RegistryTypes.taskGet) { request, context in
            let versioned = current.versioned
            guard versioned.loaded.document.task(request.id) != nil else {
                throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(request.id))", field: "body.id")
            }
            return try cache.taskReply(request.id, plan: versioned, store: try context.store, now: clock.now())
        }

        handlers.on(RegistryTypes.progressReport) { request, context in
            let plan = current.plan.document
            let now = clock.now()
            // A unit reports for itself (its alias, a collective it belongs to); the office for any.
            guard Self.may(context.caller, actFor: request.unit, plan: plan) else {
                throw ErrorBody.permissionDenied(
                    "\(context.caller.unit ?? context.caller.role.chineseName) 不能代 \(ErrorBody.quote(request.unit)) 报送进度",
                    field: "body.unit")
            }
            try Self.validate(request, plan: plan, now: now)
            return try await context.write { db, events in
                let revision =
                    try Int.fetchOne(
                        db, sql: "SELECT MAX(revision) FROM progress_reports WHERE task = ? AND period = ? AND unit = ?",
                        arguments: [request.task, request.period, request.unit]) ?? 0
                let report = ProgressReport(
                    task: request.task, period: request.period, unit: request.unit, percent: request.percent, summary: request.summary,
                    measures: request.measures, problems: request.problems, nextSteps: request.nextSteps, evidence: request.evidence ?? [],
                    revision: revision + 1, reportedAt: Timestamp.format(now), reportedBy: context.from,
                    principal: context.caller.principal?.name, principalKey: context.caller.principal?.publicKey,
                    backfill: TaskStatusRules.firstCountedMonth(plan).flatMap { first in Month(request.period).map { $0 < first } } == true
                        ? true : nil)
                try db.execute(
                    sql: """
                        INSERT INTO progress_reports (task, period, unit, revision, percent, summary, measures, problems, next_steps, \
                        evidence, reported_at, reported_by, principal, principal_key, backfill)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        report.task, report.period, report.unit, report.revision, report.percent, report.summary, report.measures,
                        report.problems,
                        report.nextSteps, try WireCoding.encode(report.evidence), report.reportedAt, report.reportedBy, report.principal,
                        report.principalKey, report.backfill == true,
                    ])
                try events.emit(RegistryTypes.progressReported, report)
                try RegistryStore.refreshStatuses(db, plan: plan, now: now, events: &events)
                return report
            }
        }

        handlers.on(RegistryTypes.progressList) { request, context in
            if let period = request.period, Month(period) == nil {
                throw ErrorBody.invalidArgument("period 应为月份，格式 YYYY-MM", field: "body.period")
            }
            return ListReply(
                items: try await context.store.pool.read {
                    try RegistryStore.reports(
                        $0, task: request.task, period: request.period, unit: request.unit, history: request.history ?? false)
                })
        }

        handlers.on(RegistryTypes.dispatchOverview) { request, context in
            let versioned = current.versioned
            let plan = versioned.loaded.document
            guard let month = Month(request.period) else {
                throw ErrorBody.invalidArgument("period 应为月份，格式 YYYY-MM", field: "body.period")
            }
            // The statuses as task.list has them (the cached views), not computed again per call.
            let views = try cache.views(plan: versioned, store: try context.store, now: clock.now()).views
            let accepted = Set(views.filter { $0.status == .completed }.map(\.id))
            let all = try await context.store.pool.read { try RegistryStore.reports($0) }
            return Self.dispatchOverview(plan: plan, month: month, reports: all, accepted: accepted)
        }

        handlers.on(RegistryTypes.escalationRecord) { request, context in
            let plan = current.plan.document
            guard context.caller.isOffice else {
                throw ErrorBody.permissionDenied(
                    "通报、约谈、问责由\(plan.office)记录；本请求来自\(ErrorBody.quote(context.from ?? "未署名方"))", field: "from")
            }
            guard plan.unit(request.unit) != nil else {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(request.unit))", field: "body.unit")
            }
            guard !request.reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ErrorBody.invalidArgument("通报、约谈、问责须写明事由（reason）", field: "body.reason")
            }
            for (index, task) in (request.tasks ?? []).enumerated() where plan.task(task) == nil {
                throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(task))", field: "body.tasks[\(index)]")
            }
            let now = clock.now()
            if let details = request.details {
                try AccountabilityRules.validate(details, level: request.level, today: Timestamp.districtDate(now))
            }
            let at = Timestamp.format(now)
            return try await context.write { db, events in
                let responsible = try AccountabilityRules.responsible(db, unit: TaskStatusRules.canonical(request.unit, plan: plan))
                try db.execute(
                    sql: """
                        INSERT INTO escalations (unit, level, reason, tasks, recorded_at, recorded_by, principal, principal_key, \
                        details, follow_up, responsible) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        request.unit, request.level.rawValue, request.reason, try WireCoding.encode(request.tasks ?? []), at, context.from,
                        context.caller.principal?.name, context.caller.principal?.publicKey, try request.details.map(WireCoding.encode),
                        request.details?.followUp, try responsible.map(WireCoding.encode),
                    ])
                var escalation = Escalation(
                    id: Int(db.lastInsertedRowID), unit: request.unit, level: request.level, reason: request.reason,
                    tasks: request.tasks ?? [],
                    recordedAt: at, recordedBy: context.from, principal: context.caller.principal?.name,
                    principalKey: context.caller.principal?.publicKey)
                escalation.responsiblePerson = responsible
                // The stream is every reader's: the event carries what readers may see.
                escalation.details = request.details?.forReaders
                try events.emit(RegistryTypes.escalationRecorded, escalation)
                escalation.details = request.details
                return escalation
            }
        }

        handlers.on(RegistryTypes.escalationList) { request, context in
            if let unit = request.unit, current.plan.document.unit(unit) == nil {
                throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(unit))", field: "body.unit")
            }
            let items = try await context.store.pool.read { try RegistryStore.escalations($0, unit: request.unit) }
            // A 约谈's participants and minutes: the office, the services and the unit concerned.
            let caller = context.caller
            let plan = current.plan.document
            let seesAll = caller.isOffice || caller.role == .service
            return ListReply(
                items: items.map { escalation in
                    guard !seesAll, !Self.answers(caller, for: escalation.unit, plan: plan) else { return escalation }
                    var shown = escalation
                    shown.details = escalation.details?.forReaders
                    return shown
                })
        }

        // 验收: the office accepts a task its units reported complete, or returns it.
        handlers.on(RegistryTypes.taskAccept) { request, context in
            guard !request.comment.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ErrorBody.invalidArgument("验收须写明验收意见（comment）", field: "body.comment")
            }
            try EvidenceRef.validate(request.evidence ?? [], field: "body.evidence")
            return try await Self.review(
                request.task, decision: "accepted", comment: request.comment, evidence: request.evidence ?? [], plan: current.plan.document,
                now: clock.now(), context: context)
        }
        handlers.on(RegistryTypes.taskReturn) { request, context in
            guard !request.reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ErrorBody.invalidArgument("退回须写明理由（reason）", field: "body.reason")
            }
            return try await Self.review(
                request.task, decision: "returned", comment: request.reason, evidence: [], plan: current.plan.document, now: clock.now(),
                context: context)
        }

        handlers.on(RegistryTypes.planLoad) { request, context in
            let name = request.name ?? "plan.yaml"
            var parsed: PlanDocument
            do {
                parsed = try PlanLoader.parse(request.content, file: name)
            } catch let error as PlanLoadError {
                throw ErrorBody.invalidArgument(error.description, field: "body.content")
            }
            // A new plan file keeps the go-live date in force.
            parsed.supervisionStart = current.plan.document.supervisionStart
            parsed.calendar = current.plan.document.calendar
            let document = parsed
            let now = clock.now()
            let loaded = LoadedPlan(document: document, source: name, loadedAt: Timestamp.format(now))
            let reply = try await context.write { db, events in
                try RegistryStore.savePlan(db, loaded)
                try RegistryStore.refreshStatuses(db, plan: document, now: now, events: &events)
                let reply = PlanLoadReply(
                    title: document.title, tasks: document.tasks.count, units: document.units.count, targets: document.targets.count,
                    loadedAt: loaded.loadedAt)
                // Other services keep the units and tasks (RegistryDirectory): this tells them to fetch anew.
                try events.emit(RegistryTypes.planLoaded, reply)
                return reply
            }
            current.replace(loaded)
            context.logger.notice("plan reloaded", metadata: ["plan.title": "\(document.title)", "plan.source": "\(name)"])
            return reply
        }
    }

    // MARK: Rules shared by the handlers

    /// Whether `reporter` may act for `listed` (a unit named on a task): the same unit, the same
    /// unit under another name, or a member of a collective name.
    static func stands(for listed: String, unit reporter: String, plan: PlanDocument) -> Bool {
        if listed == reporter { return true }
        if TaskStatusRules.canonical(listed, plan: plan) == TaskStatusRules.canonical(reporter, plan: plan) { return true }
        return plan.unit(listed)?.members.contains(TaskStatusRules.canonical(reporter, plan: plan)) ?? false
    }

    /// Whether `caller` may act for `unit`: the office (and the administrator) for any unit; a unit
    /// for itself, a name the plan gives it as an alias, or a collective name it is a member of.
    static func may(_ caller: Caller, actFor unit: String, plan: PlanDocument) -> Bool {
        guard caller.principal != nil, !caller.isOffice else { return true }
        guard caller.role == .unit, let own = caller.unit else { return false }
        return stands(for: unit, unit: own, plan: plan)
    }

    static func validate(_ request: ProgressReportRequest, plan: PlanDocument, now: Date) throws {
        guard let task = plan.task(request.task) else {
            throw ErrorBody.notFound("方案中没有任务 \(ErrorBody.quote(request.task))", field: "body.task")
        }
        guard !task.isParent else {
            throw ErrorBody.invalidArgument(
                "任务 \(task.id) 的进展按子项报送：\(task.subtasks.joined(separator: "、"))", field: "body.task")
        }
        guard let month = Month(request.period) else {
            throw ErrorBody.invalidArgument("period 应为月份，格式 YYYY-MM", field: "body.period")
        }
        guard let first = Month(date: plan.start), let last = Month(date: plan.end), month >= first, month <= last else {
            throw ErrorBody.invalidArgument(
                "报送月份 \(request.period) 不在方案期限内（\(plan.start) 至 \(plan.end)）", field: "body.period")
        }
        guard month <= Month(now) else {
            throw ErrorBody.invalidArgument("报送月份 \(request.period) 尚未开始", field: "body.period")
        }
        guard plan.unit(request.unit) != nil else {
            throw ErrorBody.notFound("方案中没有单位 \(ErrorBody.quote(request.unit))", field: "body.unit")
        }
        guard (task.lead + task.cooperating).contains(where: { stands(for: $0, unit: request.unit, plan: plan) }) else {
            throw ErrorBody.permissionDenied(
                "\(request.unit)不是任务 \(task.id) 的责任单位或配合单位"
                    + "（\((task.lead + task.cooperating).joined(separator: "、"))）",
                field: "body.unit")
        }
        guard request.percent.isFinite, (0...100).contains(request.percent) else {
            throw ErrorBody.invalidArgument("percent 应在 0 到 100 之间（收到 \(request.percent)）", field: "body.percent")
        }
        guard !request.summary.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ErrorBody.invalidArgument("进展报送须填写进展概述（summary）", field: "body.summary")
        }
        try EvidenceRef.validate(request.evidence ?? [], field: "body.evidence")
    }

    static func uniqued(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }

    static func target(_ entry: PlanDocument.TargetEntry) -> PlanTarget {
        PlanTarget(
            indicator: entry.indicator, text: entry.text, operator: entry.op, threshold: entry.threshold,
            thresholdFrom: entry.thresholdFrom,
            unit: entry.unit, scale: entry.scale, tasks: entry.tasks, parts: entry.parts?.map(target))
    }

    /// Who reported for `month`, and which lead units owe a report and have none. A task owes
    /// reports while it runs: until it is completed (every lead unit at 100 % in an earlier month)
    /// and, for dated tasks, through its deadline's month and after it until completed. An
    /// ongoing task (no deadline: task 10) completes only by the office's acceptance, so it stops
    /// owing once `accepted` (the tasks completed now) holds it and its units' 100 % came in an
    /// earlier month; a return, or a case added to its ledger, puts it back.
    static func dispatchOverview(
        plan: PlanDocument, month: Month, reports: [ProgressReport], accepted: Set<String> = []
    ) -> DispatchOverviewReply {
        let forMonth = reports.filter { $0.period == month.description }
        var reported: [TaskUnit] = []
        for report in forMonth where !reported.contains(TaskUnit(task: report.task, unit: report.unit)) {
            reported.append(TaskUnit(task: report.task, unit: report.unit))
        }
        var missing: [TaskUnit] = []
        // Before go-live nothing is missing: nobody could report (what was sent afterwards, 补报, counts as reported).
        // After the plan's last month nothing is due either: reports past the end are refused.
        let counted =
            (TaskStatusRules.firstCountedMonth(plan).map { month >= $0 } ?? true) && (Month(date: plan.end).map { month <= $0 } ?? true)
        for task in plan.tasks where !task.isParent && counted {
            let earlier = reports.filter { $0.task == task.id && (Month($0.period) ?? month) < month }
            var latest: [String: ProgressReport] = [:]
            for report in earlier {
                let unit = TaskStatusRules.canonical(report.unit, plan: plan)
                if (latest[unit]?.period ?? "") <= report.period { latest[unit] = report }
            }
            let completedBefore =
                (task.deadline != nil || accepted.contains(task.id))
                && task.lead.allSatisfy { (latest[TaskStatusRules.canonical($0, plan: plan)]?.percent ?? 0) >= 100 }
            if completedBefore { continue }
            for unit in task.lead {
                let done = forMonth.contains { $0.task == task.id && stands(for: unit, unit: $0.unit, plan: plan) }
                if !done { missing.append(TaskUnit(task: task.id, unit: unit)) }
            }
        }
        let due = TaskStatusRules.reportsDueDay(plan: plan, dispatchMonth: month.next)
        return DispatchOverviewReply(period: month.description, reported: reported, missing: missing, due: due)
    }
}

/// The plan in force, replaced whole on reload; each replacement gets a new version, so that what
/// was computed from the plan before is known to be stale.
final class PlanHolder: Sendable {
    struct Versioned: Sendable {
        let loaded: LoadedPlan
        let version: Int
    }

    private let value: Mutex<Versioned>
    init(_ plan: LoadedPlan) { value = Mutex(Versioned(loaded: plan, version: 1)) }
    var plan: LoadedPlan { value.withLock { $0.loaded } }
    var versioned: Versioned { value.withLock { $0 } }
    func replace(_ plan: LoadedPlan) { value.withLock { $0 = Versioned(loaded: plan, version: $0.version + 1) } }
}
