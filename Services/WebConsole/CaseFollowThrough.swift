import Foundation
import HTTPTypes
import Hummingbird
import Schema
import Synchronization

/// The ledger's follow-through on a case page (docs/cases.md, "Follow-through"): 报送进展
/// (`case.update`), 申请延期 and the office's decision (`case.extend`), 作废 (`case.void`), 实地督导
/// (`case.visit`, photos stored with their sha256) and 举一反三 (`case.link`). Each form appears only
/// to those the ledger allows; a POST from anyone else gets 403 before the ledger is asked.
enum FollowStep: String, CaseIterable, Sendable {
    case update, extendRequest, extendDecide, void, visit, link
}

/// The ledger's lead units (those of the task that sets up the 整改台账), as the ledger reckons
/// them, kept five minutes.
final class LedgerLeads: Sendable {
    private let cached = Mutex<(units: [String], expires: ContinuousClock.Instant)?>(nil)

    func get(_ fetch: () async throws -> [PlanTask]) async -> [String] {
        let now = ContinuousClock.now
        if let hit = cached.withLock({ $0 }), hit.expires > now { return hit.units }
        guard let tasks = try? await fetch() else { return [] }
        let units = tasks.filter { $0.text.contains("整改台账") }.flatMap(\.leadUnits)
        cached.withLock { $0 = (units, now + .seconds(300)) }
        return units
    }
}

extension WebConsole {
    func addCaseFollowThroughRoutes(to router: Router<WebContext>) {
        router.post("/cases/:id/update") { request, context in try await self.followThrough(.update, request, context) }
        router.post("/cases/:id/extend") { request, context in try await self.followThrough(.extendRequest, request, context) }
        router.post("/cases/:id/void") { request, context in try await self.followThrough(.void, request, context) }
        router.post("/cases/:id/visit") { request, context in try await self.followThrough(.visit, request, context) }
        router.post("/cases/:id/link") { request, context in try await self.followThrough(.link, request, context) }
        router.post("/cases/assign-batch") { request, context in try await self.assignBatch(request, context) }
    }

    /// 批量交办, on the ledger's list for the office: every 已登记 case of a batch, with one deadline.
    func batchForm(_ session: WebSession, batches: [BatchProgress]) -> String {
        guard session.user.role.actsAsOffice else { return "" }
        let waiting = batches.filter { ($0.byState[CaseState.registered.rawValue] ?? 0) > 0 }
        guard !waiting.isEmpty else { return "" }
        var html = "<section class=\"card\"><h2>批量交办</h2><form method=\"post\" action=\"/cases/assign-batch\" id=\"batch-form\">"
        html += csrfField(session) + "<label for=\"batch\">批次</label><select id=\"batch\" name=\"batch\">"
        for batch in waiting {
            let count = batch.byState[CaseState.registered.rawValue] ?? 0
            html += "<option value=\"\(esc(batch.batch))\">\(esc(batch.batch))（\(count) 个待交办）</option>"
        }
        html += "</select><label for=\"batch-deadline\">统一整改时限（YYYY-MM-DD，可选）</label>"
        html += "<input type=\"text\" id=\"batch-deadline\" name=\"deadline\"><label for=\"batch-comment\">交办意见（可选）</label>"
        html +=
            "<input type=\"text\" id=\"batch-comment\" name=\"comment\">"
            + "<button type=\"submit\" id=\"batch-submit\">交办该批次</button></form></section>"
        return html
    }

    func assignBatch(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session)
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有办公室可以批量交办") }
        guard let batch = form.text("batch"), batch.count <= 100 else { throw WebError.invalid("请选择批次") }
        let deadline = form.text("deadline")
        if let deadline, Self.parseDay(deadline) == nil { throw WebError.invalid("统一整改时限应为 YYYY-MM-DD") }
        let reply = try await gateway.call(
            .cases, CaseTypes.assignBatch, CaseAssignBatchRequest(batch: batch, deadline: deadline, comment: form.text("comment")),
            from: wireFrom(session.user))
        logger.info(
            "web: batch assigned", metadata: ["user": "\(session.user.name)", "batch": "\(batch)", "cases": "\(reply.assigned.count)"])
        return redirect("/cases?assigned=\(reply.assigned.count)&skipped=\(reply.skipped)")
    }

    func ledgerLeads(_ session: WebSession) async -> [String] {
        await leads.get { try await gateway.callAll(.registry, RegistryTypes.taskList, TaskListRequest(), from: wireFrom(session.user)) }
    }

    /// What this person may do on `item` beyond moving it: the ledger's rules, mirrored.
    func followSteps(_ session: WebSession, on item: Case, leads: [String]) -> Set<FollowStep> {
        guard session.user.role.mayWrite else { return [] }
        let office = session.user.role.actsAsOffice
        let unit = session.user.role == .unit ? session.user.unit : nil
        let open = ![.accepted, .closed, .voided].contains(item.state)
        var steps: Set<FollowStep> = []
        if open, office || unit == item.unit { steps.insert(.update) }
        if open, unit == item.unit, item.pendingExtension == nil { steps.insert(.extendRequest) }
        if office, item.state != .voided, item.state != .closed { steps.insert(.extendDecide) }
        if office, item.state != .closed, item.state != .voided { steps.insert(.void) }
        if item.state != .voided, office || (unit != nil && (leads.contains(unit!) || unit == item.supervisingUnit)) {
            steps.insert(.visit)
        }
        if office || (unit != nil && leads.contains(unit!)) { steps.insert(.link) }
        return steps
    }

    func followThroughForms(_ item: Case, steps: Set<FollowStep>, session: WebSession) -> String {
        let id = urlSegment(item.id)
        let csrf = csrfField(session)
        var html = ""
        if steps.contains(.update) {
            html += """
                <section class="card"><h2>报送进展</h2><form method="post" action="/cases/\(id)/update" enctype="multipart/form-data" \
                id="update-form">\(csrf)<label for="update-text">整改进展</label><textarea id="update-text" name="text" required></textarea>\
                <label for="update-progress">完成进度（%，可选）</label>\
                <input type="number" id="update-progress" name="progress" min="0" max="100" step="1">\
                <label for="update-evidence">佐证材料（可选）</label><input type="file" id="update-evidence" name="evidence">\
                <button type="submit" id="update-submit">报送进展</button></form></section>
                """
        }
        if steps.contains(.extendRequest) {
            html += """
                <section class="card"><h2>申请延期</h2><form method="post" action="/cases/\(id)/extend" id="extend-request-form">\(csrf)\
                <input type="hidden" name="action" value="request">\
                <label for="extend-deadline">申请的完成时限（YYYY-MM-DD）</label><input type="text" id="extend-deadline" name="deadline" required>\
                <label for="extend-reason">延期理由</label><textarea id="extend-reason" name="reason" required></textarea>\
                <button type="submit" id="extend-request">申请延期</button></form></section>
                """
        }
        if steps.contains(.extendDecide) {
            let pending = item.pendingExtension
            let heading = pending == nil ? "调整完成时限" : "延期申请审批"
            var text = ""
            if let pending {
                text = "<p id=\"pending-extension\">\(esc(pending.by)) 申请延期至 \(esc(pending.deadline))：\(esc(pending.reason))</p>"
            }
            html += """
                <section class="card"><h2>\(heading)</h2>\(text)\
                <form method="post" action="/cases/\(id)/extend" id="extend-decide-form">\(csrf)\
                <label for="grant-deadline">完成时限（YYYY-MM-DD\(pending == nil ? "" : "，不填则按申请")）</label>\
                <input type="text" id="grant-deadline" name="deadline" value="">\
                <label for="grant-reason">意见</label><textarea id="grant-reason" name="reason" required></textarea>\
                <button type="submit" name="action" value="grant" id="extend-grant">\(pending == nil ? "调整时限" : "同意延期")</button>\
                \(pending == nil ? "" : Self.refuseExtensionButton)\
                </form></section>
                """
        }
        if steps.contains(.visit) {
            html += """
                <section class="card"><h2>实地督导</h2><form method="post" action="/cases/\(id)/visit" enctype="multipart/form-data" \
                id="visit-form">\(csrf)<label for="visit-date">督导日期（YYYY-MM-DD）</label>\
                <input type="text" id="visit-date" name="date" value="\(Self.today())" required>\
                <label for="visit-inspectors">督导人员（以、或逗号分隔）</label><input type="text" id="visit-inspectors" name="inspectors" required>\
                <label for="visit-findings">督导发现</label><textarea id="visit-findings" name="findings" required></textarea>\
                <label for="visit-photo1">现场照片（可选，最多 3 张）</label><input type="file" id="visit-photo1" name="photo1">\
                <input type="file" id="visit-photo2" name="photo2"><input type="file" id="visit-photo3" name="photo3">\
                <button type="submit" id="visit-submit">记录督导</button></form></section>
                """
        }
        if steps.contains(.link) {
            html += """
                <section class="card"><h2>举一反三：关联问题</h2><form method="post" action="/cases/\(id)/link" id="link-form">\(csrf)\
                <label for="link-related">关联的问题编号</label><input type="text" id="link-related" name="related" required>\
                <label for="link-comment">说明（可选）</label><input type="text" id="link-comment" name="comment">\
                <button type="submit" id="link-submit">关联</button></form></section>
                """
        }
        if steps.contains(.void) {
            html += """
                <section class="card"><h2>作废</h2><form method="post" action="/cases/\(id)/void" id="void-form">\(csrf)\
                <label for="void-reason">作废原因（必填）</label><textarea id="void-reason" name="reason" required></textarea>\
                <button type="submit" class="secondary" id="void-submit">作废此问题</button></form></section>
                """
        }
        return html
    }

    /// What the case carries from its follow-through: the latest progress, the first deadline, a
    /// pending extension, linked cases, why it was voided.
    func followThroughSummary(_ item: Case) -> String {
        var html = ""
        if let latest = item.latestUpdate {
            html += "<p id=\"latest-update\"><b>最新进展：</b>\(esc(latest.text))"
            if let progress = latest.progress { html += "（进度 \(progress)%）" }
            html += " <span class=\"muted\">\(esc(latest.actor)) \(esc(Self.shortTime(latest.at)))</span></p>"
        }
        if let original = item.originalDeadline { html += "<p><b>原完成时限：</b>\(esc(original))</p>" }
        if let pending = item.pendingExtension {
            html += "<p><b>延期申请：</b>\(esc(pending.by)) 申请延期至 \(esc(pending.deadline))（待办公室审批）</p>"
        }
        if let related = item.related, !related.isEmpty {
            html += "<p id=\"related\"><b>关联问题：</b>"
            html += related.map { "<a href=\"/cases/\(urlSegment($0))\">\(esc($0))</a>" }.joined(separator: "、") + "</p>"
        }
        if let reason = item.voidReason { html += "<p id=\"void-reason-text\"><b>作废原因：</b>\(esc(reason))</p>" }
        return html
    }

    func followThrough(_ step: FollowStep, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        let multipart = step == .update || step == .visit
        let form = try await form(request, session: session, limit: multipart ? 3 * settings.maxUploadBytes + (256 << 10) : 64 << 10)
        let from = wireFrom(session.user)
        let item = try await gateway.call(.cases, CaseTypes.get, CaseGetRequest(id: id), from: from)
        let allowed = followSteps(session, on: item, leads: await ledgerLeads(session))
        var action: CaseExtendAction?
        var checked = step
        if step == .extendRequest {
            guard let named = form.text("action").flatMap(CaseExtendAction.init(rawValue:)) else { throw WebError.invalid("未知的延期操作") }
            action = named
            if named != .request { checked = .extendDecide }
        }
        guard allowed.contains(checked) else {
            logger.warning(
                "web: refused a case step", metadata: ["user": "\(session.user.name)", "case": "\(id)", "step": "\(checked.rawValue)"])
            throw WebError.forbidden("您无权对问题 \(id) 执行此操作")
        }
        func fail(_ message: String) async throws -> Response {
            try await renderCase(id: id, session: session, error: message, status: .badRequest)
        }
        func files(_ names: [String]) throws -> [EvidenceRef] {
            try names.compactMap { form.files[$0] }.map { try storeEvidence($0, session: session) }
        }
        do {
            switch step {
            case .update:
                guard let text = form.text("text") else { return try await fail("请填写整改进展") }
                var progress: Int?
                if let value = form.text("progress") {
                    guard let number = Int(value), (0...100).contains(number) else { return try await fail("完成进度应为 0 到 100 的整数") }
                    progress = number
                }
                let evidence = try files(["evidence"])
                _ = try await gateway.call(
                    .cases, CaseTypes.update,
                    CaseUpdateRequest(id: id, text: text, progress: progress, evidence: evidence.isEmpty ? nil : evidence),
                    from: from)
            case .extendRequest, .extendDecide:
                guard let reason = form.text("reason") else { return try await fail("请填写理由或意见") }
                let deadline = form.text("deadline")
                if let deadline, Self.parseDay(deadline) == nil { return try await fail("完成时限应为 YYYY-MM-DD") }
                if action == .request, deadline == nil { return try await fail("请填写申请的完成时限") }
                _ = try await gateway.call(
                    .cases, CaseTypes.extend, CaseExtendRequest(id: id, action: action ?? .request, deadline: deadline, reason: reason),
                    from: from)
            case .void:
                guard let reason = form.text("reason") else { return try await fail("请填写作废原因") }
                _ = try await gateway.call(.cases, CaseTypes.void, CaseVoidRequest(id: id, reason: reason), from: from)
            case .visit:
                guard let date = form.text("date"), Self.parseDay(date) != nil else { return try await fail("督导日期应为 YYYY-MM-DD") }
                let inspectors = (form.text("inspectors") ?? "").split(whereSeparator: { "、,，;； ".contains($0) }).map(String.init)
                guard !inspectors.isEmpty else { return try await fail("请填写督导人员") }
                guard let findings = form.text("findings") else { return try await fail("请填写督导发现") }
                let photos = try files(["photo1", "photo2", "photo3"])
                _ = try await gateway.call(
                    .cases, CaseTypes.visit,
                    CaseVisitRequest(
                        id: id, date: date, inspectors: inspectors, findings: findings, evidence: photos.isEmpty ? nil : photos),
                    from: from)
            case .link:
                guard let related = form.text("related"), related.count <= 40 else { return try await fail("请填写关联的问题编号") }
                _ = try await gateway.call(
                    .cases, CaseTypes.link, CaseLinkRequest(id: id, related: related, comment: form.text("comment")), from: from)
            }
        } catch let error as WebError where error.status == 400 || error.status == 413 || error.status == 415 {
            return try await fail(error.message)
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict || error.code == .notFound {
            return try await fail(error.message)
        }
        logger.info("web: case step", metadata: ["user": "\(session.user.name)", "case": "\(id)", "step": "\(checked.rawValue)"])
        return redirect("/cases/\(urlSegment(id))?done=1")
    }

    static let refuseExtensionButton =
        "<button type=\"submit\" name=\"action\" value=\"refuse\" class=\"secondary\" id=\"extend-refuse\">不同意延期</button>"
}
