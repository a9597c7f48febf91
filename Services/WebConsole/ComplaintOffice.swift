import Foundation
import Hummingbird
import Schema

/// The office's side of a 群众举报 on its case page: the complainant's contact, fetched only when
/// an office person asks for it (a deliberate POST, logged), and the reply the complainant reads
/// with their code. Nobody else's page ever carries the contact.
extension WebConsole {
    func addComplaintOfficeRoutes(to router: Router<WebContext>) {
        router.post("/cases/:id/contact") { request, context in try await self.showComplaintContact(request, context) }
        router.post("/cases/:id/reply") { request, context in try await self.replyToComplainant(request, context) }
    }

    func complaintSection(_ item: Case, session: WebSession, contact: String?) -> String {
        var html = "<section class=\"card\" id=\"complaint\"><h2>举报人（仅办公室可见）</h2>"
        if let contact {
            html += contact
        } else {
            html += """
                <form method="post" action="/cases/\(urlSegment(item.id))/contact" class="inline">\(csrfField(session))\
                <button type="submit" class="secondary" id="show-contact">查看举报人联系方式</button></form>\
                <p class="muted">联系方式仅用于核实和答复，查看会被记录。</p>
                """
        }
        html += """
            <h3>答复举报人</h3><form method="post" action="/cases/\(urlSegment(item.id))/reply" id="reply-form">\(csrfField(session))\
            <label for="reply">答复内容（举报人凭编号和查询码查看）</label><textarea id="reply" name="reply" maxlength="2000" required></textarea>\
            <button type="submit" id="reply-submit">答复</button></form></section>
            """
        return html
    }

    func showComplaintContact(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        _ = try await form(request, session: session)
        guard session.user.role.actsAsOffice else {
            logger.warning("web: refused a complainant's contact", metadata: ["user": "\(session.user.name)", "case": "\(id)"])
            throw WebError.forbidden("举报人联系方式仅办公室可以查看")
        }
        let found = try await gateway.call(.cases, ComplaintTypes.contact, ComplaintContactRequest(id: id), from: wireFrom(session.user))
        logger.notice("web: complainant's contact read", metadata: ["user": "\(session.user.name)", "case": "\(id)"])
        var html = "<div id=\"contact\">"
        if let erased = found.erasedAt {
            html += "<p>联系方式已按保存期限删除（\(esc(Self.shortTime(erased)))）。</p>"
        } else if let contact = found.contact {
            html += "<p><b>姓名：</b>\(esc(contact.name ?? "未填写"))　<b>电话：</b>\(esc(contact.phone ?? "未填写"))</p>"
        } else {
            html += "<p>举报人未留联系方式。</p>"
        }
        if let delivery = found.replyDelivery {
            let when = delivery.sentAt.map { "，" + Self.shortTime($0) } ?? ""
            let why = delivery.lastError.map { "：" + $0 } ?? ""
            html += "<p><b>答复短信：</b>\(esc(delivery.state.label + "（已尝试 \(delivery.attempts) 次" + when + "）" + why))</p>"
        }
        return try await renderCase(id: id, session: session, contact: html + "</div>")
    }

    func replyToComplainant(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let id = context.parameters.get("id") ?? ""
        let form = try await form(request, session: session)
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有办公室可以答复举报人") }
        guard let text = form.text("reply"), text.count <= 2000 else {
            return try await renderCase(id: id, session: session, error: "请填写答复内容（不超过 2000 字）", status: .badRequest)
        }
        do {
            _ = try await gateway.call(
                .cases, ComplaintTypes.reply, ComplaintReplyRequest(id: id, text: text), from: wireFrom(session.user))
        } catch let error as ErrorBody where error.code == .invalidArgument || error.code == .conflict {
            return try await renderCase(id: id, session: session, error: error.message, status: .badRequest)
        }
        return redirect("/cases/\(urlSegment(id))?done=1")
    }
}
