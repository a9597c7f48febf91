import Foundation
import HTTPTypes
import Hummingbird
import Schema

/// 具体实施方案 (the plan's 保障措施: every department's own plan within 3 months): each bound
/// unit's obligation, due day and state (`implementation_plan.list`); a unit submits its own with
/// the document (`implementation_plan.submit`, the file stored here with its sha256); the office
/// accepts or returns it (`implementation_plan.review`). Forms appear only for those allowed; a
/// POST from anyone else gets 403 before anything reaches the registry, which decides again anyway.
extension WebConsole {
    func addImplementationPlanRoutes(to router: Router<WebContext>) {
        router.get("/plans") { request, context in try await self.implementationPlansPage(request, context) }
        router.post("/plans/submit") { request, context in try await self.submitImplementationPlan(request, context) }
        router.post("/plans/review") { request, context in try await self.reviewImplementationPlan(request, context) }
    }

    func maySubmitPlan(_ session: WebSession, _ plan: ImplementationPlan) -> Bool {
        session.user.role == .unit && plan.unit == session.user.unit && [.pending, .returned].contains(plan.state)
    }

    func mayReviewPlan(_ session: WebSession, _ plan: ImplementationPlan) -> Bool {
        session.user.role.actsAsOffice && plan.state == .submitted
    }

    func implementationPlansPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        return try await renderImplementationPlans(session: session, flash: request.uri.queryParameters["done"] != nil ? "已提交" : nil)
    }

    func renderImplementationPlans(
        session: WebSession, flash: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let plans = try await gateway.callAll(
            .registry, ImplementationPlanTypes.list, ImplementationPlanListRequest(), from: wireFrom(session.user))
        var html = "<h1>具体实施方案</h1>"
        if let flash { html += "<div class=\"ok\" id=\"flash\">\(esc(flash))</div>" }
        if let error { html += "<div class=\"error\" id=\"form-error\">\(esc(error))</div>" }
        html += "<p class=\"muted\">各责任单位按方案保障措施制定本单位具体实施方案，报专项工作组办公室审核。</p>"
        if plans.isEmpty { html += "<p class=\"muted\">方案未规定具体实施方案的报送，或报送日已在方案期限之后</p>" }
        // A unit's own obligation first: what it has to do is at the top of its phone's screen.
        let mine = session.user.role == .unit ? plans.filter { $0.unit == session.user.unit } : []
        for plan in mine { html += planCard(plan, session: session) }
        html += "<section class=\"card\"><table id=\"plans\"><tr><th>单位</th><th>报送期限</th><th>状态</th>"
        html += "<th>报送的方案</th><th class=\"hide-narrow\">审核</th></tr>"
        for plan in plans {
            html += "<tr id=\"plan-\(esc(plan.unit))\"><td>\(esc(plan.unit))</td><td>\(esc(plan.due))</td>"
            html += "<td><span class=\"plan-state\">\(esc(plan.state.label))</span>"
            html += "\(plan.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")</td><td>"
            if let submission = plan.submission {
                html += "\(esc(submission.title))（\(esc(Self.shortTime(submission.at)))\(submission.late ? "，逾期报送" : "")）"
                html += "<div>" + submission.evidence.map(evidenceLink).joined(separator: "、") + "</div>"
            }
            html += "</td><td class=\"hide-narrow\">"
            if let review = plan.review {
                html += "<b>\(esc(review.action.label))</b>（\(esc(Self.shortTime(review.at)))）：\(esc(review.comment))"
                if let due = review.due, plan.state == .returned { html += "，请于 \(esc(due)) 前重新报送" }
            }
            if mayReviewPlan(session, plan) { html += planReviewForm(plan, session: session) }
            html += "</td></tr>"
        }
        html += "</table></section>"
        return htmlResponse(Page(title: "实施方案", body: html, session: session).render(), status: status)
    }

    /// A unit's own obligation, with the form while it owes the plan.
    func planCard(_ plan: ImplementationPlan, session: WebSession) -> String {
        var html = "<section class=\"card\" id=\"my-plan\"><h2>本单位（\(esc(plan.unit))）：\(esc(plan.state.label))"
        html += "\(plan.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")</h2><p>报送期限：\(esc(plan.due))</p>"
        if let review = plan.review, plan.state == .returned {
            html += "<p class=\"error\">办公室退回：\(esc(review.comment))</p>"
        }
        if maySubmitPlan(session, plan) {
            html += """
                <form method="post" action="/plans/submit" enctype="multipart/form-data" id="plan-form">\(csrfField(session))\
                <label for="plan-title">方案名称</label>\
                <input type="text" id="plan-title" name="title" required placeholder="如：\(esc(plan.unit))巩固提升生态环境保护成效三年行动具体实施方案">\
                <label for="plan-file">方案文件（docx、pdf 等）</label><input type="file" id="plan-file" name="evidence" required>\
                <label for="plan-note">说明（可选）</label><textarea id="plan-note" name="note"></textarea>\
                <button type="submit" id="plan-submit">报送</button></form>
                """
        }
        return html + "</section>"
    }

    func planReviewForm(_ plan: ImplementationPlan, session: WebSession) -> String {
        let id = esc(plan.unit)
        return """
            <form method="post" action="/plans/review" id="plan-review-\(id)">\(csrfField(session))\
            <input type="hidden" name="unit" value="\(id)">\
            <label for="plan-comment-\(id)">审核意见</label><textarea id="plan-comment-\(id)" name="comment"></textarea>\
            <label for="plan-due-\(id)">退回时重新报送的期限（可选，YYYY-MM-DD）</label>\
            <input type="text" id="plan-due-\(id)" name="due">\
            <button type="submit" name="action" value="accept">审核通过</button>\
            <button type="submit" name="action" value="return" class="secondary">退回</button></form>
            """
    }

    /// The plan a POST names, as the person may see it.
    func implementationPlan(of unit: String, session: WebSession) async throws -> ImplementationPlan {
        let plans = try await gateway.callAll(
            .registry, ImplementationPlanTypes.list, ImplementationPlanListRequest(unit: unit), from: wireFrom(session.user))
        guard let plan = plans.first(where: { $0.unit == unit }) else { throw WebError.notFound("\(unit) 没有须报送的具体实施方案") }
        return plan
    }

    func submitImplementationPlan(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session, limit: settings.maxUploadBytes + (256 << 10))
        guard session.user.role == .unit else { throw WebError.forbidden("具体实施方案由责任单位报送") }
        let plan = try await implementationPlan(of: session.user.unit, session: session)
        guard maySubmitPlan(session, plan) else {
            return try await renderImplementationPlans(
                session: session, error: "本单位的具体实施方案当前为「\(plan.state.label)」，不能再报送", status: .badRequest)
        }
        guard let title = form.text("title") else {
            return try await renderImplementationPlans(session: session, error: "请填写方案名称", status: .badRequest)
        }
        let evidence: [EvidenceRef]
        do {
            evidence = try formEvidence(form, session: session)
        } catch let error as WebError where error.status != 500 {
            return try await renderImplementationPlans(session: session, error: error.message, status: .badRequest)
        }
        guard !evidence.isEmpty else {
            return try await renderImplementationPlans(session: session, error: "请上传方案文件", status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .registry, ImplementationPlanTypes.submit,
                ImplementationPlanSubmitRequest(unit: session.user.unit, title: title, evidence: evidence, note: form.text("note")),
                from: wireFrom(session.user))
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderImplementationPlans(session: session, error: error.message, status: .badRequest)
        }
        logger.info("web: implementation plan submitted", metadata: ["user": "\(session.user.name)", "unit": "\(session.user.unit)"])
        return redirect("/plans?done=1")
    }

    func reviewImplementationPlan(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session)
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有专项工作组办公室可以审核具体实施方案") }
        guard let unit = form.text("unit"), unit.count <= 100 else { throw WebError.invalid("请指明单位") }
        guard let action = form.text("action").flatMap(ImplementationPlanAction.init(rawValue:)) else {
            throw WebError.invalid("未知的审核结论")
        }
        let plan = try await implementationPlan(of: unit, session: session)
        guard mayReviewPlan(session, plan) else {
            return try await renderImplementationPlans(
                session: session, error: "\(unit) 的具体实施方案当前为「\(plan.state.label)」，不能审核", status: .badRequest)
        }
        let comment = form.text("comment") ?? (action == .accept ? "审核通过" : "")
        guard !comment.isEmpty else {
            return try await renderImplementationPlans(session: session, error: "退回须写明审核意见", status: .badRequest)
        }
        let due = form.text("due")
        if let due, Self.parseDay(due) == nil {
            return try await renderImplementationPlans(session: session, error: "重新报送的期限应为 YYYY-MM-DD", status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .registry, ImplementationPlanTypes.review,
                ImplementationPlanReviewRequest(unit: unit, action: action, comment: comment, due: action == .return ? due : nil),
                from: wireFrom(session.user))
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderImplementationPlans(session: session, error: error.message, status: .badRequest)
        }
        return redirect("/plans?done=1")
    }
}
