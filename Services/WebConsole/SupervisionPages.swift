import Foundation
import HTTPTypes
import Hummingbird
import Schema

/// 督办单 and 原因报告 on one page: the orders item by item (`supervision.list`), a unit's answer to
/// its own items with evidence (`supervision.reply`), the office's acceptance or return
/// (`supervision.review`); the breaches' cause reports (`cause.list`) and a unit's report on one it
/// owes (`cause.report`). Forms appear only for those allowed; a POST from anyone else gets 403
/// before anything reaches the registry or notify, which decide again anyway.
extension WebConsole {
    func addSupervisionRoutes(to router: Router<WebContext>) {
        router.get("/supervision") { request, context in try await self.supervisionPage(request, context) }
        router.post("/supervision/:order/:item/reply") { request, context in try await self.replySupervision(request, context) }
        router.post("/supervision/:order/:item/review") { request, context in try await self.reviewSupervision(request, context) }
        router.post("/causes/:id/report") { request, context in try await self.reportCause(request, context) }
    }

    func mayReply(_ session: WebSession, to item: SupervisionItem) -> Bool {
        session.user.role == .unit && item.unit == session.user.unit && item.state.awaitsReply
    }

    func mayReview(_ session: WebSession, _ item: SupervisionItem) -> Bool {
        session.user.role.actsAsOffice && item.state == .replied
    }

    func mayReportCause(_ session: WebSession, _ report: CauseReport) -> Bool {
        session.user.role == .unit && report.pendingUnits.contains(session.user.unit)
    }

    func supervisionPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let flash = request.uri.queryParameters["done"] != nil ? "已提交" : nil
        return try await renderSupervision(session: session, flash: flash)
    }

    func renderSupervision(session: WebSession, flash: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok)
        async throws -> Response
    {
        let from = wireFrom(session.user)
        let unit = session.user.role == .unit ? session.user.unit : nil
        async let orders = gateway.callAll(.registry, SupervisionTypes.list, SupervisionListRequest(unit: unit), from: from)
        async let causes = attempt { try await gateway.callAll(.notify, CauseReportTypes.list, CauseListRequest(unit: unit), from: from) }
        var html = "<h1>督办单</h1>"
        if let flash { html += "<div class=\"ok\" id=\"flash\">\(esc(flash))</div>" }
        if let error { html += "<div class=\"error\" id=\"form-error\">\(esc(error))</div>" }
        let list = try await orders
        if list.isEmpty { html += "<p class=\"muted\">\(unit == nil ? "暂无督办单" : "本单位暂无督办事项")</p>" }
        for order in list {
            html += "<section class=\"card order\" id=\"order-\(esc(order.id))\"><h2>\(esc(order.id))　\(esc(order.title))</h2>"
            html +=
                "<p class=\"muted\">\(esc(order.kind.label)) · 签发 \(esc(Self.shortTime(order.issuedAt)))"
                + " · 答复期限 \(esc(order.replyDeadline))</p>"
            html += "<table><tr><th>序号</th><th>责任单位</th><th>问题</th><th>整改要求</th><th>期限</th><th>状态</th><th>答复与审核</th></tr>"
            for item in order.items {
                let refs =
                    (item.tasks.map { "<a href=\"/tasks/\(urlSegment($0))\">任务 \(esc($0))</a>" }
                    + item.cases.map { "<a href=\"/cases/\(urlSegment($0))\">问题 \(esc($0))</a>" }).joined(separator: "、")
                html += "<tr id=\"item-\(esc(order.id))-\(item.no)\"><td>\(item.no)</td><td>\(esc(item.unit))</td>"
                html += "<td>\(esc(item.problem))\(refs.isEmpty ? "" : "<div class=\"muted\">\(refs)</div>")</td>"
                html += "<td>\(esc(item.measure))</td><td>\(esc(item.deadline))</td>"
                html += "<td><span class=\"item-state\">\(esc(item.state.label))</span>"
                html += "\(item.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")</td><td>"
                if let reply = item.reply {
                    html += "<div><b>答复</b>（\(esc(Self.shortTime(reply.at)))）：\(esc(reply.measures))</div>"
                    if !reply.evidence.isEmpty { html += "<div>" + reply.evidence.map(evidenceLink).joined(separator: "、") + "</div>" }
                }
                if let review = item.review {
                    html += "<div><b>\(esc(review.decision.label))</b>（\(esc(Self.shortTime(review.at)))）：\(esc(review.comment))</div>"
                }
                if mayReply(session, to: item) { html += supervisionReplyForm(order: order, item: item, session: session) }
                if mayReview(session, item) { html += supervisionReviewForm(order: order, item: item, session: session) }
                html += "</td></tr>"
            }
            html += "</table></section>"
        }
        html += "<h1>水质超标原因报告</h1>"
        switch await causes {
        case .success(let reports):
            if reports.isEmpty { html += "<p class=\"muted\">暂无原因报告</p>" }
            for report in reports {
                html += "<section class=\"card cause\" id=\"cause-\(esc(report.id))\"><h2>\(esc(report.id))　\(esc(report.message))</h2>"
                html += "<p>\(esc(report.state.label))\(report.overdue ? " <span class=\"tag overdue\">逾期</span>" : "")"
                html += " · 报告期限 \(esc(report.due)) · 应报单位 \(esc(report.units.joined(separator: "、")))</p>"
                if !report.pendingUnits.isEmpty { html += "<p><b>待报告：</b>\(esc(report.pendingUnits.joined(separator: "、")))</p>" }
                for entry in report.entries {
                    html += "<div class=\"entry\"><b>\(esc(entry.unit))</b>（\(esc(Self.shortTime(entry.at)))）：原因：\(esc(entry.cause))"
                    if let measures = entry.measures { html += "；措施：\(esc(measures))" }
                    if !entry.evidence.isEmpty { html += " " + entry.evidence.map(evidenceLink).joined(separator: "、") }
                    html += "</div>"
                }
                if mayReportCause(session, report) { html += causeForm(report, session: session) }
                html += "</section>"
            }
        case .failure(let error):
            logger.warning("web: cause.list failed", metadata: ["error": "\(error)"])
            html += "<p class=\"error\">暂时无法取得原因报告</p>"
        }
        return htmlResponse(Page(title: "督办单", body: html, session: session).render(), status: status)
    }

    func supervisionReplyForm(order: SupervisionOrder, item: SupervisionItem, session: WebSession) -> String {
        """
        <form method="post" action="/supervision/\(urlSegment(order.id))/\(item.no)/reply" enctype="multipart/form-data" \
        id="reply-\(esc(order.id))-\(item.no)">\(csrfField(session))\
        <label for="measures-\(item.no)">整改措施与结果</label><textarea id="measures-\(item.no)" name="measures" required></textarea>\
        <label for="evidence-\(item.no)">佐证材料（可选）</label><input type="file" id="evidence-\(item.no)" name="evidence">\
        <button type="submit">答复</button></form>
        """
    }

    func supervisionReviewForm(order: SupervisionOrder, item: SupervisionItem, session: WebSession) -> String {
        """
        <form method="post" action="/supervision/\(urlSegment(order.id))/\(item.no)/review" id="review-\(esc(order.id))-\(item.no)">\
        \(csrfField(session))<label for="comment-\(item.no)">审核意见</label>\
        <textarea id="comment-\(item.no)" name="comment" required></textarea>\
        <label for="deadline-\(item.no)">退回时的新答复期限（可选，YYYY-MM-DD）</label>\
        <input type="text" id="deadline-\(item.no)" name="deadline">\
        <button type="submit" name="decision" value="accept">同意办结</button>\
        <button type="submit" name="decision" value="return" class="secondary">退回</button></form>
        """
    }

    func causeForm(_ report: CauseReport, session: WebSession) -> String {
        """
        <form method="post" action="/causes/\(urlSegment(report.id))/report" enctype="multipart/form-data" \
        id="cause-form-\(esc(report.id))">\
        \(csrfField(session))<label for="cause-\(esc(report.id))">超标原因（\(esc(session.user.unit))）</label>\
        <textarea id="cause-\(esc(report.id))" name="cause" required></textarea>\
        <label for="cause-measures-\(esc(report.id))">已采取的措施</label>\
        <textarea id="cause-measures-\(esc(report.id))" name="measures"></textarea>\
        <label for="cause-evidence-\(esc(report.id))">佐证材料（可选）</label>\
        <input type="file" id="cause-evidence-\(esc(report.id))" name="evidence">\
        <button type="submit">报告原因</button></form>
        """
    }

    /// The order and item a POST names, as the person may see them.
    func supervisionItem(_ context: WebContext, session: WebSession) async throws -> (SupervisionOrder, SupervisionItem) {
        let orderID = context.parameters.get("order") ?? ""
        guard let number = context.parameters.get("item").flatMap({ Int($0) }) else { throw WebError.notFound("没有这个督办事项") }
        let orders = try await gateway.callAll(
            .registry, SupervisionTypes.list, SupervisionListRequest(order: orderID), from: wireFrom(session.user))
        guard let order = orders.first(where: { $0.id == orderID }), let item = order.items.first(where: { $0.no == number }) else {
            throw WebError.notFound("没有督办事项 \(orderID) 第 \(number) 项")
        }
        return (order, item)
    }

    func replySupervision(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session, limit: settings.maxUploadBytes + (256 << 10))
        guard session.user.role == .unit else { throw WebError.forbidden("只有督办事项的责任单位可以答复") }
        let (order, item) = try await supervisionItem(context, session: session)
        guard mayReply(session, to: item) else {
            logger.warning("web: refused a supervision reply", metadata: ["user": "\(session.user.name)", "order": "\(order.id)"])
            throw WebError.forbidden("\(session.user.unit) 不能答复督办事项 \(order.id) 第 \(item.no) 项（\(item.state.label)，责任单位 \(item.unit)）")
        }
        guard let measures = form.text("measures") else {
            return try await renderSupervision(session: session, error: "请填写整改措施与结果", status: .badRequest)
        }
        let evidence: [EvidenceRef]
        do {
            evidence = try formEvidence(form, session: session)
        } catch let error as WebError where error.status != 500 {
            return try await renderSupervision(session: session, error: error.message, status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .registry, SupervisionTypes.reply,
                SupervisionReplyRequest(order: order.id, item: item.no, measures: measures, evidence: evidence.isEmpty ? nil : evidence),
                from: wireFrom(session.user))
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderSupervision(session: session, error: error.message, status: .badRequest)
        }
        return redirect("/supervision?done=1")
    }

    func reviewSupervision(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session)
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有办公室可以审核督办答复") }
        let (order, item) = try await supervisionItem(context, session: session)
        guard let decision = form.text("decision").flatMap(SupervisionDecision.init(rawValue:)) else { throw WebError.invalid("未知的审核结论") }
        guard mayReview(session, item) else {
            return try await renderSupervision(
                session: session, error: "督办事项 \(order.id) 第 \(item.no) 项当前为「\(item.state.label)」，不能审核", status: .badRequest)
        }
        guard let comment = form.text("comment") else {
            return try await renderSupervision(session: session, error: "请填写审核意见", status: .badRequest)
        }
        let deadline = form.text("deadline")
        if let deadline, Self.parseDay(deadline) == nil {
            return try await renderSupervision(session: session, error: "新答复期限应为 YYYY-MM-DD", status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .registry, SupervisionTypes.review,
                SupervisionReviewRequest(order: order.id, item: item.no, decision: decision, comment: comment, deadline: deadline),
                from: wireFrom(session.user))
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderSupervision(session: session, error: error.message, status: .badRequest)
        }
        return redirect("/supervision?done=1")
    }

    func reportCause(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        let form = try await form(request, session: session, limit: settings.maxUploadBytes + (256 << 10))
        guard session.user.role == .unit else { throw WebError.forbidden("只有应报单位可以报告超标原因") }
        let from = wireFrom(session.user)
        let reports = try await gateway.callAll(.notify, CauseReportTypes.list, CauseListRequest(unit: session.user.unit), from: from)
        guard let report = reports.first(where: { $0.id == id }), mayReportCause(session, report) else {
            throw WebError.forbidden("\(session.user.unit) 没有待报告的原因报告 \(id)")
        }
        guard let cause = form.text("cause") else {
            return try await renderSupervision(session: session, error: "请填写超标原因", status: .badRequest)
        }
        let evidence: [EvidenceRef]
        do {
            evidence = try formEvidence(form, session: session)
        } catch let error as WebError where error.status != 500 {
            return try await renderSupervision(session: session, error: error.message, status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .notify, CauseReportTypes.report,
                CauseReportRequest(id: id, cause: cause, measures: form.text("measures"), evidence: evidence.isEmpty ? nil : evidence),
                from: from)
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderSupervision(session: session, error: error.message, status: .badRequest)
        }
        return redirect("/supervision?done=1")
    }
}
