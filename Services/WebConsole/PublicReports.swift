import Foundation
import HTTPTypes
import Hummingbird
import Schema

/// 群众举报: the plan's 鼓励公众反映生态环境问题 and 主动接受社会监督, open to anyone without a login.
/// A report goes to the ledger through the gateway as no unit at all (`complaint.submit` without
/// `from`: the public); the complainant gets the case number and a code, and looks the report up
/// with both. Every form carries a token also set in a cookie (double submit: there is no session),
/// and each client address gets a bounded number of submissions and look-ups.
extension WebConsole {
    static let publicCookie = "duban_public"

    func addPublicRoutes(to router: Router<WebContext>) {
        router.get("/report") { request, _ in self.publicReportPage(request) }
        router.post("/report") { request, context in try await self.submitPublicReport(request, context) }
        router.get("/report/status") { request, _ in self.publicStatusPage(request) }
        router.post("/report/status") { request, context in try await self.lookUpPublicReport(request, context) }
        router.get("/report/public") { request, _ in try await self.publicListPage(request) }
    }

    /// The double-submit token: the browser's if it has a plausible one (two open tabs keep working), else a new one.
    func publicToken(_ request: Request) -> String {
        if let existing = request.cookies[Self.publicCookie]?.value, existing.count >= 20, existing.count < 100,
            existing.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        {
            return existing
        }
        return AccountStore.randomToken()
    }

    func publicPage(title: String, body: String, token: String, status: HTTPResponse.Status = .ok) -> Response {
        let header = """
            <nav class="top"><span class="brand">城中区生态环境问题举报</span>\
            <a href="/report">我要举报</a><a href="/report/status">查询办理情况</a><a href="/report/public">办理公开</a></nav>
            """
        var html = Page(title: title, body: body, session: nil).render()
        html = html.replacingOccurrences(of: "<main id=\"main\">", with: header + "<main id=\"main\">")
        var response = htmlResponse(html, status: status)
        response.setCookie(cookie(Self.publicCookie, token, maxAge: 2 * 3600))
        return response
    }

    struct PublicReportDraft {
        var title = "", description = "", location = "", name = "", phone = ""
    }

    func publicReportPage(_ request: Request, draft: PublicReportDraft = .init(), error: String? = nil, status: HTTPResponse.Status = .ok)
        -> Response
    {
        let token = publicToken(request)
        let body = """
            <h1>群众举报</h1>
            <p class="muted">欢迎反映您身边的生态环境问题（水、气、土壤、噪声、固体废物、生态破坏等）。提交后您将获得举报编号和查询码，\
            凭二者可查询办理情况和答复。姓名和电话可不填；如填写，仅督办办公室可见，用于联系核实，办结一年后删除。</p>
            \(error.map { "<div class=\"error\" id=\"form-error\">\(esc($0))</div>" } ?? "")
            <section class="card"><form method="post" action="/report" id="report-form">
            <input type="hidden" name="_public" value="\(esc(token))">
            <label for="title">举报事项（必填，不超过 100 字）</label>
            <input type="text" id="title" name="title" maxlength="100" value="\(esc(draft.title))" required>
            <label for="description">具体情况（必填，不超过 5000 字）</label>
            <textarea id="description" name="description" maxlength="5000" required>\(esc(draft.description))</textarea>
            <label for="location">地点</label>
            <input type="text" id="location" name="location" maxlength="200" value="\(esc(draft.location))">
            <label for="name">您的姓名（选填）</label>
            <input type="text" id="name" name="name" maxlength="50" value="\(esc(draft.name))" autocomplete="name">
            <label for="phone">联系电话（选填）</label>
            <input type="text" id="phone" name="phone" maxlength="30" value="\(esc(draft.phone))" autocomplete="tel">
            <button type="submit" id="report-submit">提交举报</button></form></section>
            """
        return publicPage(title: "群众举报", body: body, token: token, status: status)
    }

    /// Checks the double-submit token; a form without it (or from another site) is refused.
    func checkPublicToken(_ request: Request, _ form: FormData) throws {
        guard let cookieToken = request.cookies[Self.publicCookie]?.value, let formToken = form["_public"],
            Self.constantTimeEqual(cookieToken, formToken)
        else { throw WebError.forbidden("表单已过期或来源不明（CSRF），请重新打开举报页面后提交") }
    }

    func submitPublicReport(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = try await form(request, session: nil, limit: 32 << 10)
        try checkPublicToken(request, form)
        var draft = PublicReportDraft()
        draft.title = form.text("title") ?? ""
        draft.description = form.text("description") ?? ""
        draft.location = form.text("location") ?? ""
        draft.name = form.text("name") ?? ""
        draft.phone = form.text("phone") ?? ""
        func fail(_ message: String, _ status: HTTPResponse.Status = .badRequest) -> Response {
            publicReportPage(request, draft: draft, error: message, status: status)
        }
        let address = context.address ?? "unknown"
        guard publicSubmissions.allow(address) else {
            logger.notice("web: public report rate-limited", metadata: ["address": "\(address)"])
            let minutes = Int(settings.publicWindow.components.seconds / 60)
            return fail("提交过于频繁：同一网络 \(minutes) 分钟内最多提交 \(settings.publicSubmissions) 次，请稍后再试", .tooManyRequests)
        }
        guard !draft.title.isEmpty else { return fail("请填写举报事项") }
        guard draft.title.count <= 100 else { return fail("举报事项不超过 100 字") }
        guard !draft.description.isEmpty else { return fail("请填写具体情况") }
        guard draft.description.count <= 5000 else { return fail("具体情况不超过 5000 字") }
        guard draft.location.count <= 200 else { return fail("地点不超过 200 字") }
        guard draft.name.count <= 50 else { return fail("姓名不超过 50 字") }
        guard draft.phone.count <= 30, draft.phone.allSatisfy({ $0.isASCII && ($0.isNumber || "+- ()".contains($0)) }) else {
            return fail("联系电话只能含数字、+、-、空格和括号，不超过 30 位")
        }
        let contact =
            draft.name.isEmpty && draft.phone.isEmpty
            ? nil : ComplaintContactDetails(name: draft.name.isEmpty ? nil : draft.name, phone: draft.phone.isEmpty ? nil : draft.phone)
        let receipt: ComplaintReceipt
        do {
            // No `from`: the public. The ledger decides who deals with it.
            receipt = try await gateway.call(
                .cases, ComplaintTypes.submit,
                ComplaintSubmitRequest(
                    title: draft.title, description: draft.description, location: draft.location.isEmpty ? nil : draft.location,
                    contact: contact),
                from: nil)
        } catch let error as ErrorBody where error.code == .invalidArgument {
            return fail(error.message)
        }
        // The contact is never logged: only the case number and the address it came from.
        logger.info("web: public report", metadata: ["case": "\(receipt.reference)", "address": "\(address)"])
        let body = """
            <h1>举报已受理</h1>
            <div class="ok">感谢您的监督。请记下举报编号和查询码，凭二者查询办理情况和答复；查询码只显示这一次。</div>
            <section class="card"><p><b>举报编号：</b><span id="reference">\(esc(receipt.reference))</span></p>
            <p><b>查询码：</b><span id="code">\(esc(receipt.code))</span></p>
            <p class="muted">受理时间：\(esc(Self.shortTime(receipt.submittedAt)))</p>
            <p><a class="button" href="/report/status">查询办理情况</a></p></section>
            """
        return publicPage(title: "举报已受理", body: body, token: publicToken(request))
    }

    func publicStatusPage(
        _ request: Request, reference: String = "", result: String = "", error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let token = publicToken(request)
        let body = """
            <h1>查询举报办理情况</h1>
            \(error.map { "<div class=\"error\" id=\"form-error\">\(esc($0))</div>" } ?? "")
            <section class="card"><form method="post" action="/report/status" id="status-form">
            <input type="hidden" name="_public" value="\(esc(token))">
            <label for="reference">举报编号</label>
            <input type="text" id="reference" name="reference" maxlength="40" value="\(esc(reference))" placeholder="JB-2026-0001" required>
            <label for="code">查询码</label>
            <input type="text" id="code" name="code" maxlength="40" autocomplete="off" required>
            <button type="submit" id="status-submit">查询</button></form></section>\(result)
            """
        return publicPage(title: "查询举报办理情况", body: body, token: token, status: status)
    }

    func lookUpPublicReport(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = try await form(request, session: nil, limit: 8 << 10)
        try checkPublicToken(request, form)
        let reference = form.text("reference") ?? ""
        let code = form.text("code") ?? ""
        let address = context.address ?? "unknown"
        guard publicLookups.allow(address) else {
            logger.notice("web: public look-up rate-limited", metadata: ["address": "\(address)"])
            return publicStatusPage(request, reference: reference, error: "查询过于频繁，请稍后再试", status: .tooManyRequests)
        }
        guard !reference.isEmpty, reference.count <= 40, !code.isEmpty, code.count <= 40 else {
            return publicStatusPage(request, reference: reference, error: "请填写举报编号和查询码", status: .badRequest)
        }
        let found: ComplaintStatus
        do {
            found = try await gateway.call(
                .cases, ComplaintTypes.status, ComplaintStatusRequest(reference: reference, code: code), from: nil)
        } catch let error as ErrorBody where error.code == .notFound || error.code == .invalidArgument {
            // One answer for an unknown number and a wrong code: the page tells nobody which numbers exist.
            return publicStatusPage(request, reference: reference, error: "举报编号或查询码不正确", status: .notFound)
        }
        var result = "<section class=\"card\" id=\"status-result\"><h2>\(esc(found.reference))：\(esc(found.title))</h2>"
        result += "<p><b>办理状态：</b><span id=\"complaint-state\">\(esc(found.state.label))</span></p>"
        result += "<p><b>受理时间：</b>\(esc(Self.shortTime(found.submittedAt)))</p>"
        if let closed = found.closedAt { result += "<p><b>办结时间：</b>\(esc(Self.shortTime(closed)))</p>" }
        if let reply = found.reply {
            result += "<p><b>答复</b>（\(esc(found.repliedAt.map(Self.shortTime) ?? ""))）：</p><p id=\"complaint-reply\">\(esc(reply))</p>"
        } else {
            result += "<p class=\"muted\">尚未答复。</p>"
        }
        result += "</section>"
        return publicStatusPage(request, reference: found.reference, result: result)
    }

    /// 主动接受社会监督: the public reports as they may be published (`complaint.public`): what, where,
    /// how far, the answer; nobody's name or phone (the ledger never puts them in this list).
    func publicListPage(_ request: Request) async throws -> Response {
        let requested = request.uri.queryParameters["year"].map(String.init)
        let year = requested.flatMap { $0.count == 4 && Int($0) != nil ? $0 : nil } ?? String(Self.today().prefix(4))
        let items = try await gateway.callAll(.cases, ComplaintTypes.publicList, ComplaintPublicListRequest(year: year), from: nil)
        var html = "<h1>群众举报办理公开（\(esc(year)) 年）</h1>"
        html += "<p class=\"muted\">公开举报事项、地点、办理进度和答复，不公开举报人信息。</p><section class=\"card\">"
        html += "<table id=\"public-reports\"><tr><th>编号</th><th>举报事项</th><th class=\"hide-narrow\">地点</th><th>状态</th>"
        html += "<th class=\"hide-narrow\">受理日期</th><th>答复</th></tr>"
        for item in items.prefix(500) {
            html +=
                "<tr><td>\(esc(item.reference))</td><td>\(esc(item.title))</td><td class=\"hide-narrow\">\(esc(item.location ?? ""))</td>"
            html += "<td>\(esc(item.state.label))\(item.closedOn.map { "（\(esc($0)) 办结）" } ?? "")</td>"
            html += "<td class=\"hide-narrow\">\(esc(item.submittedOn))</td><td>\(esc(item.reply ?? "尚未答复"))</td></tr>"
        }
        html += "</table>\(items.isEmpty ? "<p class=\"muted\">该年暂无举报</p>" : "")</section>"
        return publicPage(title: "群众举报办理公开", body: html, token: publicToken(request))
    }
}
