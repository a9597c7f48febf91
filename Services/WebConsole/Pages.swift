import DubanConfig
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Schema

extension WebConsole {
    func addPages(to router: Router<WebContext>) {
        router.get("/") { request, context in try await self.overviewPage(request, context) }
        router.get("/fragment/overview") { request, context in try await self.overviewFragment(request, context) }
        router.get("/tasks") { request, context in try await self.tasksPage(request, context) }
        router.get("/tasks/:id") { request, context in try await self.taskPage(request, context) }
        router.post("/tasks/:id/report") { request, context in try await self.reportProgress(request, context) }
        router.get("/cases") { request, context in try await self.casesPage(request, context) }
        router.get("/cases/:id") { request, context in try await self.casePage(request, context) }
        router.post("/cases/:id/transition") { request, context in try await self.transitionCase(request, context) }
        router.get("/dispatch") { request, context in try await self.dispatchPage(request, context) }
        router.get("/notices") { request, context in try await self.noticesPage(request, context) }
        router.get("/notices/:id") { request, context in try await self.noticePage(request, context) }
        router.post("/notices/:id/ack") { request, context in try await self.acknowledgeNotice(request, context) }
    }

    // MARK: 总览

    func overviewPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let live = try await overviewBody(session)
        let body = """
            <h1>总览</h1><p class="live-status" id="live-status">实时更新：页面启用脚本后自动刷新</p>
            <div id="live">\(live)</div>
            """
        return htmlResponse(Page(title: "总览", body: body, session: session, live: true, bodyClass: "overview").render())
    }

    /// The dashboard's body alone: the live script fetches it again on each event.
    func overviewFragment(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        return htmlResponse(try await overviewBody(session))
    }

    func overviewBody(_ session: WebSession) async throws -> String {
        let from = wireFrom(session.user)
        let unitFilter = session.user.role == .unit ? session.user.unit : nil
        let gateway = gateway
        let who = "\(from ?? "")|\(unitFilter ?? "")"
        let registryVersion = hub.version(["registry"])
        func shared<T: Sendable>(
            _ name: String, _ version: Int, _ maxAge: Duration = .seconds(30), _ fetch: @escaping @Sendable () async throws -> T
        )
            async throws -> T
        {
            try await self.shared.value("\(name)|\(who)", version: version, maxAge: maxAge, fetch)
        }
        async let tasks = attempt {
            try await shared("tasks", registryVersion) {
                try await gateway.callAll(.registry, RegistryTypes.taskList, TaskListRequest(), from: from)
            }
        }
        // Ingest's stream is not followed by the hub: its targets are kept ten seconds at most.
        async let indicators = attempt {
            try await shared("indicators", 0, .seconds(10)) {
                try await gateway.callAll(.ingest, IngestTypes.indicatorList, Empty(), from: from)
            }
        }
        // The ledger's counts come counted (case.batches), and only the overdue cases are listed:
        // the dashboard after a ledger event does not read 5,000 cases again.
        async let cases = attempt {
            try await shared("cases", hub.version(["cases"])) {
                async let batches = gateway.callAll(.cases, CaseTypes.batches, CaseBatchesRequest(), from: from)
                async let overdue = gateway.callAll(.cases, CaseTypes.list, CaseListRequest(overdue: true), from: from)
                return LedgerGlance(batches: try await batches, overdue: try await overdue)
            }
        }
        async let notices = attempt {
            try await shared("notices", hub.version(["notify"])) {
                try await gateway.callAll(.notify, NotifyTypes.noticeList, NoticeListRequest(unit: unitFilter), from: from)
            }
        }
        async let escalations = attempt {
            try await shared("escalations", registryVersion) {
                try await gateway.callAll(.registry, RegistryTypes.escalationList, EscalationListRequest(unit: unitFilter), from: from)
            }
        }
        var html = "<div class=\"grid\">"
        html += card("任务进展", body: await tasks.map(Self.taskSummary))
        html += card("台账整改", body: await cases.map(Self.caseSummary))
        html += "</div><div class=\"grid\">"
        let trends = await sparklines(for: (try? await indicators.get()) ?? [], from: from)
        html += card("工作目标（13 项）", body: await indicators.map { Self.targetTable($0, trends: trends) })
        html += card(unitFilter == nil ? "最新通报与提醒" : "本单位的通报与提醒", body: await notices.map(Self.recentNotices))
        html += card("通报、约谈与问责", body: await escalations.map(Self.escalationList))
        html += card("实时动态", body: .success(Self.feed(hub.recent(15))))
        html += "</div>"
        return html
    }

    func card(_ title: String, body: Result<String, any Error>) -> String {
        let content: String
        switch body {
        case .success(let html): content = html
        case .failure(let error):
            logger.warning("web: a dashboard card failed", metadata: ["card": "\(title)", "error": "\(error)"])
            content = "<p class=\"error\">暂时无法取得数据</p>"
        }
        return "<section class=\"card\"><h2>\(esc(title))</h2>\(content)</section>"
    }

    static func taskSummary(_ tasks: [PlanTask]) -> String {
        var counts: [TaskStatus: Int] = [:]
        for task in tasks { counts[task.status ?? .notStarted, default: 0] += 1 }
        var html = "<div class=\"counts\" id=\"task-counts\">"
        for status in TaskStatus.allCases {
            html += "<a class=\"count\" href=\"/tasks?status=\(status.rawValue)\"><div class=\"num\">\(counts[status] ?? 0)</div>"
            html += "<span class=\"tag \(status.rawValue)\">\(esc(status.label))</span></a>"
        }
        html += "</div>"
        let named = tasks.filter { $0.status == .lagging || $0.status == .overdue }
        if !named.isEmpty {
            html += "<h3>滞后与逾期</h3><ul class=\"feed\" id=\"lagging\">"
            for task in named {
                html += "<li><span class=\"tag \(task.status!.rawValue)\">\(esc(task.status!.label))</span> "
                html += "<a href=\"/tasks/\(urlSegment(task.id))\">\(esc(task.id)) \(esc(task.title))</a>"
                if let reason = task.reasons?.first { html += "<div class=\"muted\">\(esc(reason.text))</div>" }
                html += "</li>"
            }
            html += "</ul>"
        }
        return html
    }

    /// What the dashboard shows of the ledger: how many cases in each state, and the overdue ones.
    struct LedgerGlance: Sendable {
        var counts: [CaseState: Int] = [:]
        var overdue: [Case]

        init(batches: [BatchProgress], overdue: [Case]) {
            for batch in batches {
                for (state, count) in batch.byState {
                    if let state = CaseState(rawValue: state) { counts[state, default: 0] += count }
                }
            }
            self.overdue = overdue
        }
    }

    static func caseSummary(_ glance: LedgerGlance) -> String {
        let counts = glance.counts
        let overdue = glance.overdue
        var html = "<div class=\"counts\" id=\"case-counts\">"
        for state in CaseState.allCases {
            html += "<a class=\"count\" href=\"/cases?status=\(state.rawValue)\"><div class=\"num\">\(counts[state] ?? 0)</div>"
            html += "<span>\(esc(state.label))</span></a>"
        }
        html += "<a class=\"count\" href=\"/cases?overdue=1\"><div class=\"num bad\">\(overdue.count)</div><span>逾期</span></a></div>"
        if !overdue.isEmpty {
            html += "<ul class=\"feed\">"
            for item in overdue.prefix(8) {
                html += "<li><a href=\"/cases/\(urlSegment(item.id))\">\(esc(item.id))</a> \(esc(item.title))（\(esc(item.unit))）</li>"
            }
            html += "</ul>"
        }
        return html
    }

    /// Each indicator's trend as an SVG sparkline, from its history (`indicator.get`), kept a
    /// minute: the dashboard is rendered again on every event, the history changes rarely.
    func sparklines(for indicators: [Indicator], from: String?) async -> [String: String] {
        let now = ContinuousClock.now
        let cached = trendCache.withLock { cache in cache.filter { $0.value.expires > now }.mapValues(\.svg) }
        let missing = indicators.map(\.id).filter { cached[$0] == nil }
        if missing.isEmpty { return cached }
        let fetched = await withTaskGroup(of: (String, String)?.self) { group in
            for id in missing {
                group.addTask {
                    guard
                        let indicator = try? await self.gateway.call(
                            .ingest, IngestTypes.indicatorGet, IndicatorGetRequest(id: id), from: from)
                    else { return nil }
                    return (id, Self.sparkline(indicator.history ?? []))
                }
            }
            var out: [String: String] = [:]
            for await item in group { if let item { out[item.0] = item.1 } }
            return out
        }
        trendCache.withLock { cache in
            for (id, svg) in fetched { cache[id] = (svg, now + .seconds(60)) }
        }
        return cached.merging(fetched) { a, _ in a }
    }

    /// A polyline of the numeric values, oldest to newest (the last 24), or a dash.
    static func sparkline(_ history: [IndicatorValue]) -> String {
        let values = history.sorted { $0.period < $1.period }.compactMap { item -> Double? in
            if case .number(let n) = item.value { return n }
            return nil
        }.suffix(24)
        guard values.count >= 2, let low = values.min(), let high = values.max() else { return "—" }
        let width = 120.0
        let height = 28.0
        let span = high - low == 0 ? 1 : high - low
        let step = width / Double(values.count - 1)
        let points = values.enumerated().map { index, value in
            String(format: "%.1f,%.1f", Double(index) * step, height - 2 - (value - low) / span * (height - 4))
        }.joined(separator: " ")
        return """
            <svg class="spark" width="120" height="28" viewBox="0 0 120 28" role="img" aria-label="趋势">\
            <polyline points="\(points)" fill="none" stroke="#1f7a5c" stroke-width="2"/></svg>
            """
    }

    static func targetTable(_ indicators: [Indicator], trends: [String: String] = [:]) -> String {
        var html = "<table><tr><th>指标</th><th>目标</th><th>最新值</th><th>趋势</th><th>达标</th></tr>"
        for indicator in indicators {
            let latest = indicator.latest.map { "\(display($0.value))（\($0.period)）" } ?? "暂无"
            let attainment =
                switch indicator.attainment {
                case "met": "<span class=\"tag met\">达标</span>"
                case "not_met": "<span class=\"tag critical\">未达标</span>"
                // Too few valid data for the standard (GB 3095): shown, not judged, and the reason on hover.
                case _ where indicator.provisional == true:
                    "<span class=\"tag\" title=\"\(esc(indicator.provisionalText ?? ""))\">暂不评价</span>"
                default: "<span class=\"tag\">待评估</span>"
                }
            html += "<tr><td>\(esc(indicator.name))</td><td class=\"hide-narrow\">\(esc(indicator.target))</td>"
            let unit = indicator.latest == nil ? "" : indicator.unit.map { " " + esc($0) } ?? ""
            html += "<td>\(esc(latest))\(unit)</td><td>\(trends[indicator.id] ?? "—")</td><td>\(attainment)</td></tr>"
        }
        return html + "</table>"
    }

    static func display(_ value: JSONValue) -> String {
        switch value {
        case .number(let n):
            if n.rounded() == n && abs(n) < 1e15 { return "\(Int(n))" }
            // Two decimals at most, without trailing zeros: 31.2, 0.35.
            var text = String(format: "%.2f", n)
            while text.hasSuffix("0") { text.removeLast() }
            return text
        case .string(let s): return s
        case .bool(let b): return b ? "是" : "否"
        default: return "—"
        }
    }

    static func recentNotices(_ notices: [Notice]) -> String {
        let recent = notices.sorted { $0.issuedAt > $1.issuedAt }.prefix(8)
        if recent.isEmpty { return "<p class=\"muted\">暂无</p>" }
        var html = "<ul class=\"feed\">"
        for notice in recent {
            html += "<li><span class=\"tag \(notice.severity.rawValue)\">\(esc(severityLabel(notice.severity)))</span> "
            html += "<a href=\"/notices/\(urlSegment(notice.id))\">\(esc(notice.title))</a>"
            html += " <span class=\"muted\">\(esc(shortTime(notice.issuedAt)))</span></li>"
        }
        return html + "</ul>"
    }

    static func escalationLabel(_ level: EscalationLevel) -> String {
        switch level {
        case .notice: return "通报"
        case .interview: return "约谈"
        case .accountability: return "问责"
        }
    }

    /// Escalations, newest first, each with its 事由.
    static func escalationList(_ escalations: [Escalation]) -> String {
        let recent = escalations.sorted { $0.recordedAt > $1.recordedAt }.prefix(8)
        if recent.isEmpty { return "<p class=\"muted\">暂无</p>" }
        var html = "<ul class=\"feed\" id=\"escalations\">"
        for item in recent {
            html += "<li><span class=\"tag critical\">\(esc(escalationLabel(item.level)))</span> \(esc(item.unit))"
            html += " <span class=\"muted\">\(esc(shortTime(item.recordedAt)))</span><div>事由：\(esc(item.reason))</div></li>"
        }
        return html + "</ul>"
    }

    static func feed(_ events: [LiveEvent]) -> String {
        if events.isEmpty { return "<p class=\"muted\">本页打开后暂无新动态</p>" }
        var html = "<ul class=\"feed\" id=\"feed\">"
        for event in events {
            html += "<li><span class=\"muted\">\(esc(shortTime(event.ts)))</span> \(esc(event.text))</li>"
        }
        return html + "</ul>"
    }

    static func severityLabel(_ severity: Severity) -> String {
        switch severity {
        case .info: return "提示"
        case .warning: return "预警"
        case .critical: return "严重"
        }
    }

    /// `2026-11-20T10:00:00.123+08:00` → `11-20 10:00`.
    static func shortTime(_ ts: String) -> String {
        guard let date = Timestamp.parse(ts) else { return ts }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        formatter.dateFormat = "MM-dd HH:mm"
        return formatter.string(from: date)
    }

    // MARK: 任务

    func tasksPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let query = request.uri.queryParameters
        let status = query["status"].flatMap { TaskStatus(rawValue: String($0)) }
        let mine = session.user.role == .unit && query["all"] == nil
        let tasks = try await gateway.callAll(
            .registry, RegistryTypes.taskList, TaskListRequest(unit: mine ? session.user.unit : nil, status: status),
            from: wireFrom(session.user))
        var html = "<h1>任务</h1><form method=\"get\" action=\"/tasks\" class=\"filters\"><label for=\"status\">状态</label>"
        html += "<select id=\"status\" name=\"status\"><option value=\"\">全部</option>"
        for option in TaskStatus.allCases {
            html += "<option value=\"\(option.rawValue)\"\(option == status ? " selected" : "")>\(esc(option.label))</option>"
        }
        html += "</select>"
        if session.user.role == .unit {
            html += "<label><input type=\"checkbox\" name=\"all\" value=\"1\"\(mine ? "" : " checked")> 显示全部任务（默认只显示本单位的）</label>"
        }
        html += "<button type=\"submit\">筛选</button></form>"
        html += "<div class=\"card\"><table id=\"tasks\"><tr><th>编号</th><th>任务</th><th class=\"hide-narrow\">牵头单位</th>"
        html += "<th>状态</th><th>进度</th><th class=\"hide-narrow\">完成时限</th></tr>"
        for task in tasks {
            html += "<tr><td>\(esc(task.id))</td><td><a href=\"/tasks/\(urlSegment(task.id))\">\(esc(task.title))</a></td>"
            html += "<td class=\"hide-narrow\">\(esc(task.leadUnits.joined(separator: "、")))</td>"
            html += "<td>\(statusTag(task.status))</td><td>\(task.progress.map(formatPercent) ?? "—")</td>"
            html += "<td class=\"hide-narrow\">\(esc(task.deadlineText ?? task.deadline ?? ""))</td></tr>"
        }
        html += "</table>\(tasks.isEmpty ? "<p class=\"muted\">没有符合条件的任务</p>" : "")</div>"
        return htmlResponse(Page(title: "任务", body: html, session: session).render())
    }

    func statusTag(_ status: TaskStatus?) -> String {
        let status = status ?? .notStarted
        return "<span class=\"tag \(status.rawValue)\">\(esc(status.label))</span>"
    }

    /// Whether the person may report progress on `task`: a unit clerk of a lead or cooperating unit.
    func mayReport(_ session: WebSession, on task: PlanTask) -> Bool {
        session.user.role == .unit && (task.leadUnits + task.cooperatingUnits).contains(session.user.unit)
    }

    func taskPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let ok = request.uri.queryParameters["reported"] != nil
        return try await renderTask(id: context.parameters.get("id") ?? "", session: session, notice: ok ? "进展已报送" : nil)
    }

    func renderTask(id: String, session: WebSession, error: String? = nil, notice: String? = nil, status: HTTPResponse.Status = .ok)
        async throws -> Response
    {
        let from = wireFrom(session.user)
        let task = try await gateway.call(.registry, RegistryTypes.taskGet, TaskGetRequest(id: id), from: from)
        let reports = (try? await gateway.callAll(.registry, RegistryTypes.progressList, ProgressListRequest(task: id), from: from)) ?? []
        var html = "<h1>任务 \(esc(task.id))：\(esc(task.title))</h1>"
        if let notice { html += "<div class=\"ok\" id=\"flash\">\(esc(notice))</div>" }
        if let error { html += "<div class=\"error\" id=\"form-error\">\(esc(error))</div>" }
        html += "<section class=\"card\"><p>\(statusTag(task.status)) 进度 \(task.progress.map(formatPercent) ?? "—")"
        html += " · 完成时限：\(esc(task.deadlineText ?? task.deadline ?? "持续推进"))</p>"
        if let reasons = task.reasons, !reasons.isEmpty {
            html += "<h2>状态依据</h2><ul id=\"reasons\">" + reasons.map { "<li>\(esc($0.text))</li>" }.joined() + "</ul>"
        }
        if let ledger = task.ledger {
            // The ledger's figures next to the reports (closing the 237 points moves task 10), linked to the cases behind them.
            let link = ledger.sources.count == 1 ? "source=\(ledger.sources[0].rawValue)" : "task=\(urlSegment(task.id))"
            html += "<p id=\"task-ledger\"><b>整改台账：</b>\(esc(ledger.summary))（\(esc(ledger.sources.map(\.label).joined(separator: "、")))）"
            html += " <a href=\"/cases?\(link)\">查看问题</a></p>"
        }
        html += "<p><b>牵头单位：</b>\(esc(task.leadUnits.joined(separator: "、")))</p>"
        if !task.cooperatingUnits.isEmpty { html += "<p><b>配合单位：</b>\(esc(task.cooperatingUnits.joined(separator: "、")))</p>" }
        html += "<p>\(esc(task.text))</p>"
        if !task.milestones.isEmpty {
            html += "<h2>节点</h2><ul>" + task.milestones.map { "<li>\(esc($0.date))：\(esc($0.text))</li>" }.joined() + "</ul>"
        }
        html += "</section><section class=\"card\"><h2>进展报送</h2>"
        if reports.isEmpty {
            html += "<p class=\"muted\">尚无报送</p>"
        } else {
            html += "<table id=\"reports\"><tr><th>月份</th><th>单位</th><th>进度</th><th>进展</th><th>佐证材料</th></tr>"
            for report in reports.sorted(by: { ($0.period, $0.reportedAt) > ($1.period, $1.reportedAt) }) {
                html += "<tr><td>\(esc(report.period))</td><td>\(esc(report.unit))</td><td>\(formatPercent(report.percent))</td>"
                html += "<td>\(esc(report.summary))</td><td>" + report.evidence.map(evidenceLink).joined(separator: "<br>") + "</td></tr>"
            }
            html += "</table>"
        }
        html += "</section>"
        if mayReport(session, on: task) { html += reportForm(task: task, session: session) }
        return htmlResponse(Page(title: "任务 \(task.id)", body: html, session: session).render(), status: status)
    }

    func evidenceLink(_ evidence: EvidenceRef) -> String {
        // Only the console's own files are links; anything else is shown as text.
        let own = evidence.sha256.map { "/files/\($0)" }
        if let own, evidence.uri.hasSuffix(own) { return "<a href=\"\(esc(own))\" download>\(esc(evidence.name))</a>" }
        return "\(esc(evidence.name))（\(esc(evidence.uri))）"
    }

    static func currentPeriod() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        formatter.dateFormat = "yyyy-MM"
        return formatter.string(from: Date())
    }

    func reportForm(task: PlanTask, session: WebSession) -> String {
        """
        <section class="card"><h2>报送本单位进展（\(esc(session.user.unit))）</h2>
        <form method="post" action="/tasks/\(urlSegment(task.id))/report" enctype="multipart/form-data" id="report-form">
        \(csrfField(session))
        <label for="period">月份（YYYY-MM）</label><input type="text" id="period" name="period" value="\(Self.currentPeriod())" required>
        <label for="percent">完成进度（%）</label><input type="number" id="percent" name="percent" min="0" max="100" step="1" required>
        <label for="summary">工作进展</label><textarea id="summary" name="summary" required></textarea>
        <label for="measures">主要措施</label><textarea id="measures" name="measures"></textarea>
        <label for="problems">存在问题</label><textarea id="problems" name="problems"></textarea>
        <label for="next_steps">下步打算</label><textarea id="next_steps" name="next_steps"></textarea>
        <label for="evidence">佐证材料（pdf、图片、Office 文档，不超过 \(settings.maxUploadBytes >> 20) MB）</label>
        <input type="file" id="evidence" name="evidence">
        <button type="submit" id="report-submit">报送</button></form></section>
        """
    }

    func reportProgress(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        guard session.user.role == .unit else { throw WebError.forbidden("只有责任单位可以报送进展") }
        let form = try await form(request, session: session, limit: settings.maxUploadBytes + (256 << 10))
        let from = wireFrom(session.user)
        let task = try await gateway.call(.registry, RegistryTypes.taskGet, TaskGetRequest(id: id), from: from)
        guard mayReport(session, on: task) else { throw WebError.forbidden("\(session.user.unit) 不是任务 \(id) 的牵头或配合单位，不能报送") }
        func fail(_ message: String) async throws -> Response {
            try await renderTask(id: id, session: session, error: message, status: .badRequest)
        }
        guard let period = form.text("period"), period.count == 7, period.dropFirst(4).first == "-",
            let year = Int(period.prefix(4)), let month = Int(period.suffix(2)), year >= 2000, (1...12).contains(month)
        else { return try await fail("月份应为 YYYY-MM，例如 \(Self.currentPeriod())") }
        guard let percentText = form.text("percent"), let percent = Double(percentText), (0...100).contains(percent) else {
            return try await fail("完成进度应为 0 到 100 之间的数字")
        }
        guard let summary = form.text("summary") else { return try await fail("请填写工作进展") }
        let evidence: [EvidenceRef]
        do {
            evidence = try formEvidence(form, session: session)
        } catch let error as WebError where error.status != 500 {
            return try await fail(error.message)
        }
        let body = ProgressReportRequest(
            task: id, period: period, unit: session.user.unit, percent: percent, summary: summary, measures: form.text("measures"),
            problems: form.text("problems"), nextSteps: form.text("next_steps"), evidence: evidence.isEmpty ? nil : evidence)
        do {
            _ = try await gateway.call(.registry, RegistryTypes.progressReport, body, from: from)
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await fail(error.message)
        }
        logger.info(
            "web: progress reported", metadata: ["user": "\(session.user.name)", "unit": "\(session.user.unit)", "task": "\(id)"])
        return redirect("/tasks/\(urlSegment(id))?reported=1")
    }

    // MARK: 台账

    func casesPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let query = request.uri.queryParameters
        let filters = LedgerFilters(query)
        let from = wireFrom(session.user)
        let cases = try await gateway.callAll(.cases, CaseTypes.list, filters.request, from: from).filter(filters.matches)
        var html = "<h1>台账</h1>"
        if let assigned = query["assigned"].flatMap({ Int($0) }) {
            let skipped = query["skipped"].flatMap { Int($0) } ?? 0
            html += "<div class=\"ok\" id=\"flash\">已交办 \(assigned) 个问题\(skipped > 0 ? "，\(skipped) 个已过登记阶段未变动" : "")</div>"
        }
        if session.user.role.actsAsOffice,
            let batches = try? await gateway.callAll(.cases, CaseTypes.batches, CaseBatchesRequest(), from: from)
        {
            html += batchForm(session, batches: batches)
        }
        html += ledgerFilterForm(filters, units: (try? await ledgerUnits(session)) ?? [])
        let exportQuery = filters.query.isEmpty ? "" : "&" + filters.query
        html += "<p id=\"ledger-transfer\"><a href=\"/cases/export?format=xlsx\(esc(exportQuery))\" id=\"export-xlsx\">导出 XLSX</a> · "
        html += "<a href=\"/cases/export?format=csv\(esc(exportQuery))\" id=\"export-csv\">导出 CSV</a>"
        if session.user.role.actsAsOffice { html += " · <a href=\"/cases/import\" id=\"import-link\">导入台账（CSV/XLSX）</a>" }
        html += "<span class=\"muted\">（共 \(cases.count) 件）</span></p>"
        html += "<div class=\"card\"><table id=\"cases\"><tr><th>编号</th><th>问题</th><th>责任单位</th><th>状态</th>"
        html += "<th class=\"hide-narrow\">整改时限</th></tr>"
        for item in cases {
            html += "<tr><td><a href=\"/cases/\(urlSegment(item.id))\">\(esc(item.id))</a></td><td>\(esc(item.title))</td>"
            html +=
                "<td>\(esc(item.unit))</td><td>\(esc(item.state.label))\(item.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")</td>"
            html += "<td class=\"hide-narrow\">\(esc(item.deadline ?? ""))</td></tr>"
        }
        html += "</table>\(cases.isEmpty ? "<p class=\"muted\">没有符合条件的问题</p>" : "")</div>"
        return htmlResponse(Page(title: "台账", body: html, session: session).render())
    }

    /// The actions this person may take on `item` now: the ledger's rules (docs/cases.md) and the
    /// state machine. The services decide again; this only keeps buttons off pages they would refuse.
    func allowedActions(_ session: WebSession, on item: Case) -> [CaseAction] {
        guard session.user.role.mayWrite else { return [] }
        let office = session.user.role.actsAsOffice
        let unit = session.user.role == .unit ? session.user.unit : nil
        return CaseAction.allCases.filter { action in
            guard action.target(from: item.state) != nil else { return false }
            switch action {
            case .start, .submit: return office || unit == item.unit
            case .accept, .reject, .close: return office || (unit != nil && unit == item.acceptanceUnit)
            case .assign, .reopen: return office
            // Only through `case.void`, which needs a reason: its own form on the case page.
            case .void: return false
            }
        }
    }

    static func actionLabel(_ action: CaseAction) -> String {
        switch action {
        case .assign: return "交办"
        case .start: return "开始整改"
        case .submit: return "提请验收"
        case .accept: return "验收通过"
        case .reject: return "验收不通过"
        case .close: return "销号"
        case .reopen: return "重新整改"
        case .void: return "作废"
        }
    }

    func casePage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let done = request.uri.queryParameters["done"] != nil
        return try await renderCase(id: context.parameters.get("id") ?? "", session: session, flash: done ? "已办理" : nil)
    }

    func renderCase(
        id: String, session: WebSession, flash: String? = nil, error: String? = nil, contact: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let item = try await gateway.call(.cases, CaseTypes.get, CaseGetRequest(id: id), from: wireFrom(session.user))
        var html = "<h1>问题 \(esc(item.id))：\(esc(item.title))</h1>"
        if let flash { html += "<div class=\"ok\" id=\"flash\">\(esc(flash))</div>" }
        if let error { html += "<div class=\"error\" id=\"form-error\">\(esc(error))</div>" }
        html += "<section class=\"card\"><p><b>状态：</b><span id=\"case-state\">\(esc(item.state.label))</span>"
        html += "\(item.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")</p>"
        html += "<p><b>来源：</b>\(esc(item.source.label))　<b>责任单位：</b>\(esc(item.unit))</p>"
        if let deadline = item.deadline { html += "<p><b>整改时限：</b>\(esc(deadline))</p>" }
        if let description = item.description { html += "<p>\(esc(description))</p>" }
        if !item.evidence.isEmpty { html += "<p><b>佐证材料：</b>" + item.evidence.map(evidenceLink).joined(separator: "、") + "</p>" }
        html += followThroughSummary(item) + "</section>"
        if item.source == .publicReport, session.user.role.actsAsOffice {
            html += complaintSection(item, session: session, contact: contact)
        }
        html += "<section class=\"card\"><h2>办理经过</h2><ol id=\"timeline\">"
        for step in item.history ?? [] {
            html += "<li>\(esc(Self.shortTime(step.at))) \(esc(step.actor))："
            html += "<span class=\"step\">\(esc(step.actionLabel))</span> → \(esc(step.to.label))"
            let detail = step.detailText
            if !detail.isEmpty { html += "；\(esc(detail))" }
            if let comment = step.comment, !comment.isEmpty { html += "（\(esc(comment))）" }
            if !step.evidence.isEmpty { html += " " + step.evidence.map(evidenceLink).joined(separator: "、") }
            html += "</li>"
        }
        html += "</ol></section>"
        let actions = allowedActions(session, on: item)
        if !actions.isEmpty {
            html +=
                "<section class=\"card\"><h2>办理</h2>"
                + "<form method=\"post\" action=\"/cases/\(urlSegment(item.id))/transition\" id=\"case-actions\">"
            html += csrfField(session) + "<label for=\"comment\">办理意见</label><textarea id=\"comment\" name=\"comment\"></textarea>"
            for action in actions {
                html += "<button type=\"submit\" name=\"action\" value=\"\(action.rawValue)\" id=\"action-\(action.rawValue)\">"
                html += "\(esc(Self.actionLabel(action)))</button>"
            }
            html += "</form></section>"
        }
        if session.user.role.mayWrite {
            let forms = followThroughForms(item, steps: followSteps(session, on: item, leads: await ledgerLeads(session)), session: session)
            if !forms.isEmpty { html += "<div class=\"grid\">\(forms)</div>" }
        }
        return htmlResponse(Page(title: "问题 \(item.id)", body: html, session: session).render(), status: status)
    }

    func transitionCase(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        let form = try await form(request, session: session)
        guard let action = form.text("action").flatMap(CaseAction.init(rawValue:)) else { throw WebError.invalid("未知的办理操作") }
        let from = wireFrom(session.user)
        let item = try await gateway.call(.cases, CaseTypes.get, CaseGetRequest(id: id), from: from)
        guard allowedActions(session, on: item).contains(action) else {
            logger.warning(
                "web: refused a case action", metadata: ["user": "\(session.user.name)", "case": "\(id)", "action": "\(action.rawValue)"])
            throw WebError.forbidden("您无权对问题 \(id) 执行「\(Self.actionLabel(action))」")
        }
        _ = try await gateway.call(
            .cases, CaseTypes.transition, CaseTransitionRequest(id: id, action: action, comment: form.text("comment")), from: from)
        return redirect("/cases/\(urlSegment(id))?done=1")
    }

    // MARK: 月调度

    /// Units × tasks for a month: who has reported (已报), who has not yet (未报), and who is late
    /// (逾期: the month's dispatch day has passed). A unit sees its own row.
    func dispatchPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let requested = request.uri.queryParameters["period"].map(String.init)
        let period = requested.flatMap { Self.isPeriod($0) ? $0 : nil } ?? Self.previousPeriod()
        let overview = try await gateway.call(
            .registry, RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: period), from: wireFrom(session.user))
        let late = Self.today() > overview.due
        let onlyUnit = session.user.role == .unit ? session.user.unit : nil
        var rows: [String: (reported: [String], missing: [String])] = [:]
        for item in overview.reported where onlyUnit == nil || item.unit == onlyUnit {
            rows[item.unit, default: ([], [])].reported.append(item.task)
        }
        for item in overview.missing where onlyUnit == nil || item.unit == onlyUnit {
            rows[item.unit, default: ([], [])].missing.append(item.task)
        }
        var html = "<h1>月调度</h1><form method=\"get\" action=\"/dispatch\"><label for=\"period\">月份（YYYY-MM）</label>"
        html += "<input type=\"text\" id=\"period\" name=\"period\" value=\"\(esc(overview.period))\">"
        html += "<button type=\"submit\">查看</button></form>"
        html += "<p>\(esc(overview.period)) 的进展应于 \(esc(overview.due)) 前报送；"
        html += late ? "<span class=\"bad\">已过报送期限，未报即为逾期</span>。</p>" : "尚未到报送期限。</p>"
        html += "<div class=\"card\"><table id=\"dispatch\"><tr><th>单位</th><th>已报</th><th>\(late ? "逾期未报" : "未报")</th></tr>"
        // Units with most missing first: whom to remind.
        for (unit, row) in rows.sorted(by: { ($0.value.missing.count, $1.key) > ($1.value.missing.count, $0.key) }) {
            let missing = row.missing.sorted().map { "<a href=\"/tasks/\(urlSegment($0))\">\(esc($0))</a>" }.joined(separator: "、")
            html += "<tr><td>\(esc(unit))</td><td>\(esc(row.reported.sorted().joined(separator: "、")))</td>"
            html += "<td class=\"\(late && !row.missing.isEmpty ? "bad" : "")\">\(missing)</td></tr>"
        }
        html += "</table>\(rows.isEmpty ? "<p class=\"muted\">该月没有需要报送的任务</p>" : "")</div>"
        return htmlResponse(Page(title: "月调度", body: html, session: session).render())
    }

    static func isPeriod(_ text: String) -> Bool {
        guard text.count == 7, text.dropFirst(4).first == "-", let year = Int(text.prefix(4)), let month = Int(text.suffix(2)) else {
            return false
        }
        return year >= 2000 && (1...12).contains(month)
    }

    static func districtFormatter(_ format: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        formatter.dateFormat = format
        return formatter
    }

    static func today() -> String { districtFormatter("yyyy-MM-dd").string(from: Date()) }

    /// The month whose reports the next dispatch asks for.
    static func previousPeriod() -> String {
        districtFormatter("yyyy-MM").string(from: Calendar(identifier: .gregorian).date(byAdding: .month, value: -1, to: Date()) ?? Date())
    }

    // MARK: 通报与提醒

    /// The unit that acknowledges for this person: their unit, the office for office staff;
    /// nobody for the read-only roles and the console admin (admin has no unit, docs/security.md).
    func ackUnit(_ user: WebUser) -> String? {
        switch user.role {
        case .office: return officeUnit
        case .unit: return user.unit
        default: return nil
        }
    }

    func noticesPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let unit = session.user.role == .unit ? session.user.unit : nil
        let notices = try await gateway.callAll(
            .notify, NotifyTypes.noticeList, NoticeListRequest(unit: unit), from: wireFrom(session.user))
        var html = "<h1>通报与提醒</h1><div class=\"card\"><table id=\"notices\"><tr><th>时间</th><th>提醒</th><th>状态</th><th></th></tr>"
        for notice in notices.sorted(by: { $0.issuedAt > $1.issuedAt }).prefix(200) {
            html += "<tr><td>\(esc(Self.shortTime(notice.issuedAt)))</td>"
            html += "<td><a href=\"/notices/\(urlSegment(notice.id))\">\(esc(notice.title))</a></td>"
            html += "<td>\(esc(noticeState(notice)))</td><td>\(ackForm(notice, session: session))</td></tr>"
        }
        html += "</table>\(notices.isEmpty ? "<p class=\"muted\">暂无通报与提醒</p>" : "")</div>"
        let escalations = try await gateway.callAll(
            .registry, RegistryTypes.escalationList, EscalationListRequest(unit: unit), from: wireFrom(session.user))
        html += "<section class=\"card\"><h2>通报、约谈与问责</h2>\(Self.escalationList(escalations))</section>"
        return htmlResponse(Page(title: "通报与提醒", body: html, session: session).render())
    }

    func noticeState(_ notice: Notice) -> String {
        switch notice.state {
        case .open: return notice.acks.isEmpty ? "待签收" : "部分签收"
        case .acknowledged: return "已签收"
        case .resolved: return "已解除"
        case .silenced: return "已静默"
        }
    }

    func ackForm(_ notice: Notice, session: WebSession) -> String {
        guard let unit = ackUnit(session.user), notice.pendingUnits.contains(unit) else { return "" }
        return """
            <form method="post" action="/notices/\(urlSegment(notice.id))/ack" class="inline">\(csrfField(session))\
            <button type="submit" class="ack" id="ack-\(esc(notice.id))">签收</button></form>
            """
    }

    func noticePage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let id = context.parameters.get("id") ?? ""
        let notice = try await gateway.call(.notify, NotifyTypes.noticeGet, NoticeGetRequest(id: id), from: wireFrom(session.user))
        var html = "<h1>\(esc(notice.title))</h1>"
        if request.uri.queryParameters["acked"] != nil { html += "<div class=\"ok\" id=\"flash\">已签收</div>" }
        html += "<section class=\"card\"><p>\(esc(Self.shortTime(notice.issuedAt))) · \(esc(noticeState(notice)))</p>"
        html += "<p>\(esc(notice.text))</p><p><b>发送单位：</b>\(esc(notice.units.joined(separator: "、")))</p>"
        if !notice.acks.isEmpty {
            html += "<p><b>已签收：</b>" + notice.acks.map { "\(esc($0.unit))（\(esc(Self.shortTime($0.at)))）" }.joined(separator: "、") + "</p>"
        }
        if !notice.pendingUnits.isEmpty { html += "<p><b>待签收：</b>\(esc(notice.pendingUnits.joined(separator: "、")))</p>" }
        if let task = notice.refs.task { html += "<p><a href=\"/tasks/\(urlSegment(task))\">查看任务 \(esc(task))</a></p>" }
        if [.implementationPlanDue, .implementationPlanOverdue].contains(notice.kind) {
            html += "<p><a href=\"/plans\" id=\"plans-link\">报送或查看具体实施方案</a></p>"
        }
        if let item = notice.refs.case { html += "<p><a href=\"/cases/\(urlSegment(item))\">查看问题 \(esc(item))</a></p>" }
        html += ackForm(notice, session: session) + "</section>"
        return htmlResponse(Page(title: notice.title, body: html, session: session).render())
    }

    func acknowledgeNotice(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        let form = try await form(request, session: session)
        guard ackUnit(session.user) != nil else { throw WebError.forbidden("只读账号不能签收") }
        _ = try await gateway.call(
            .notify, NotifyTypes.noticeAck, NoticeAckRequest(id: id, comment: form.text("comment")), from: wireFrom(session.user))
        return redirect("/notices/\(urlSegment(id))?acked=1")
    }
}

/// The result of `body`, its error kept: one dashboard card failing leaves the others.
func attempt<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}
