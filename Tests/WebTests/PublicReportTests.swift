import DubanTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Schema
import Testing
import WebConsole

/// 群众举报 through the console: no login, a double-submit token, a per-address limit, the
/// receipt's number and code, the look-up, and the contact shown to the office alone.
@Suite(.serialized) struct PublicReportTests {
    static let phone = "13800138000"
    static let name = "张三丰"
    static let forwarded = HTTPField.Name("X-Forwarded-For")!

    static func submit(_ browser: Browser, title: String, from address: String? = nil, token: String? = nil) async throws -> TestResponse {
        var token = token ?? ""
        if token.isEmpty { token = try Browser.hidden("_public", in: String(buffer: try await browser.get("/report").body)) }
        let body = [
            ("_public", token), ("title", title), ("description", "夜间向六一桥段河道排放黑色污水，气味刺鼻"), ("location", "六一桥东侧"),
            ("name", name), ("phone", phone),
        ].map { "\(Browser.encode($0.0))=\(Browser.encode($0.1))" }.joined(separator: "&")
        var headers = HTTPFields()
        if let address { headers[forwarded] = address }
        return try await browser.request(
            .post, "/report", contentType: "application/x-www-form-urlencoded", body: Array(body.utf8), headers: headers)
    }

    static func field(_ id: String, in html: String) throws -> String {
        guard let range = html.range(of: "id=\"\(id)\">") else { throw TestFailure("no #\(id) in the page") }
        let rest = html[range.upperBound...]
        return String(rest[..<rest.firstIndex(of: "<")!])
    }

    @Test func thePublicReportsWithoutLoginLooksItUpAndOnlyTheOfficeSeesTheContact() async throws {
        let harness = try await WebHarness.start { $0.trustForwardedFor = true }
        try await harness.console.application().test(.live) { client in
            let citizen = Browser(client)
            let form = try await citizen.get("/report")
            let page = String(buffer: form.body)
            #expect(form.status == .ok && page.contains("群众举报") && page.contains("举报事项") && page.contains("联系电话（选填）"))
            #expect(!page.contains("/logout"))
            // Without the token (another site's form) nothing is taken.
            let forged = try await Browser(client).post("/report", [("title", "x"), ("description", "y")])
            #expect(forged.status == .forbidden)
            let missing = try await Self.submit(citizen, title: "")
            #expect(missing.status == .badRequest && String(buffer: missing.body).contains("请填写举报事项"))

            let receipt = try await Self.submit(citizen, title: "六一桥夜间偷排")
            let html = String(buffer: receipt.body)
            #expect(receipt.status == .ok && html.contains("举报已受理"))
            let reference = try Self.field("reference", in: html)
            let code = try Self.field("code", in: html)
            #expect(reference.hasPrefix("JB-") && code.count >= 8)
            #expect(!html.contains(Self.phone) && !html.contains(Self.name))
            // In the ledger as a public report, the contact in no case field.
            let cases = try await harness.rpc(.cases)
            let item = try await cases.call(CaseTypes.get, CaseGetRequest(id: reference))
            #expect(item.source == .publicReport && item.title == "六一桥夜间偷排")
            let contact = try await cases.call(ComplaintTypes.contact, ComplaintContactRequest(id: reference))
            #expect(contact.contact == ComplaintContactDetails(name: Self.name, phone: Self.phone))

            // The look-up: a wrong code and an unknown number read the same; the right pair shows the state.
            let statusToken = try Browser.hidden("_public", in: String(buffer: try await citizen.get("/report/status").body))
            let wrong = try await citizen.post(
                "/report/status", [("_public", statusToken), ("reference", reference), ("code", "WRONG123")])
            let unknown = try await citizen.post(
                "/report/status", [("_public", statusToken), ("reference", "JB-2026-9999"), ("code", code)])
            #expect(wrong.status == .notFound && String(buffer: wrong.body).contains("举报编号或查询码不正确"))
            #expect(unknown.status == .notFound && String(buffer: unknown.body).contains("举报编号或查询码不正确"))
            let found = try await citizen.post("/report/status", [("_public", statusToken), ("reference", reference), ("code", code)])
            let foundPage = String(buffer: found.body)
            #expect(found.status == .ok && foundPage.contains("尚未答复") && foundPage.contains(item.state.label))
            #expect(try await Browser(client).post("/report/status", [("reference", reference), ("code", code)]).status == .forbidden)

            // The unit that deals with it and a leader see the case but never the contact, and cannot fetch it.
            let unit = Browser(client)
            _ = try await unit.login("eco")
            let unitPage = String(buffer: try await unit.get("/cases/\(reference)").body)
            #expect(unitPage.contains("六一桥夜间偷排") && !unitPage.contains("show-contact") && !unitPage.contains(Self.phone))
            let unitCSRF = try Browser.hidden("_csrf", in: unitPage)
            let unitForged = try await unit.post("/cases/\(reference)/contact", [("_csrf", unitCSRF)])
            #expect(unitForged.status == .forbidden && !String(buffer: unitForged.body).contains(Self.phone))
            #expect(try await unit.post("/cases/\(reference)/reply", [("_csrf", unitCSRF), ("reply", "x")]).status == .forbidden)
            let leader = Browser(client)
            _ = try await leader.login("leader")
            let leaderCSRF = try await leader.csrf("/cases/\(reference)")
            #expect(try await leader.post("/cases/\(reference)/contact", [("_csrf", leaderCSRF)]).status == .forbidden)

            // The office asks for it (a POST with its token), and answers the complainant.
            let office = Browser(client)
            _ = try await office.login("office1")
            let officePage = String(buffer: try await office.get("/cases/\(reference)").body)
            #expect(officePage.contains("show-contact") && !officePage.contains(Self.phone))
            let officeCSRF = try Browser.hidden("_csrf", in: officePage)
            #expect(try await office.post("/cases/\(reference)/contact", []).status == .forbidden)
            let shown = String(buffer: try await office.post("/cases/\(reference)/contact", [("_csrf", officeCSRF)]).body)
            #expect(shown.contains(Self.phone) && shown.contains(Self.name))
            #expect(!String(buffer: try await office.get("/").body).contains(Self.phone))
            let replied = try await office.post("/cases/\(reference)/reply", [("_csrf", officeCSRF), ("reply", "已责成区生态环境局现场核查，排口已封堵")])
            #expect(replied.status == .seeOther)
            let answered = String(
                buffer: try await citizen.post(
                    "/report/status", [("_public", statusToken), ("reference", reference), ("code", code)]
                ).body)
            #expect(answered.contains("排口已封堵"))
            // Once the case is closed (and answered) it may be published: what, where, the answer; never who.
            let unitClient = try await harness.rpc(.cases, from: "区生态环境局")
            for (action, actor, evidence) in [
                (CaseAction.assign, cases, [EvidenceRef]()), (.start, unitClient, []), (.submit, unitClient, []),
                (.accept, cases, [EvidenceRef(name: "核查记录", uri: "https://files.example/hc.pdf")]), (.close, cases, []),
            ] {
                _ = try await actor.call(
                    CaseTypes.transition, CaseTransitionRequest(id: reference, action: action, comment: "办理", evidence: evidence),
                    as: Case.self)
            }
            await unitClient.close()
            let published = try await Browser(client).get("/report/public?year=2026")
            let list = String(buffer: published.body)
            #expect(published.status == .ok && list.contains(reference) && list.contains("六一桥东侧") && list.contains("排口已封堵"))
            #expect(!list.contains(Self.phone) && !list.contains(Self.name))
            await cases.close()
        }
        try await harness.stop()
    }

    @Test func submissionsAreLimitedPerClientAddressBehindATrustedProxy() async throws {
        let harness = try await WebHarness.start { $0.trustForwardedFor = true }
        try await harness.console.application().test(.live) { client in
            let citizen = Browser(client)
            let token = try Browser.hidden("_public", in: String(buffer: try await citizen.get("/report").body))
            for index in 1...5 {
                #expect(try await Self.submit(citizen, title: "噪声扰民 \(index)", from: "203.0.113.9", token: token).status == .ok)
            }
            let limited = try await Self.submit(citizen, title: "噪声扰民 6", from: "203.0.113.9", token: token)
            #expect(limited.status == .tooManyRequests && String(buffer: limited.body).contains("提交过于频繁"))
            // What the client claims before the proxy's own entry does not change who it is...
            let claimed = try await Self.submit(citizen, title: "噪声扰民 7", from: "198.51.100.1, 203.0.113.9", token: token)
            #expect(claimed.status == .tooManyRequests)
            // ...another address has its own count.
            #expect(try await Self.submit(citizen, title: "扬尘", from: "203.0.113.10", token: token).status == .ok)
            let cases = try await harness.rpc(.cases)
            let all = try await cases.callAll(CaseTypes.list, CaseListRequest())
            #expect(all.filter { $0.source == .publicReport }.count == 6)
            await cases.close()
        }
        try await harness.stop()
    }

    @Test func withoutATrustedProxyTheHeaderIsIgnoredAndTheMapStaysBounded() {
        #expect(WebContext.clientAddress(peer: "10.0.0.5", forwardedFor: "1.2.3.4", trusted: false) == "10.0.0.5")
        #expect(WebContext.clientAddress(peer: "10.0.0.5", forwardedFor: "1.2.3.4, 5.6.7.8", trusted: true) == "5.6.7.8")
        #expect(WebContext.clientAddress(peer: "10.0.0.5", forwardedFor: "<script>", trusted: true) == "10.0.0.5")
        let limiter = RateLimiter(limit: 2, window: .seconds(600), capacity: 100)
        let now = ContinuousClock.now
        #expect(limiter.allow("a", now: now) && limiter.allow("a", now: now) && !limiter.allow("a", now: now))
        // After the window the address may submit again.
        #expect(limiter.allow("a", now: now + .seconds(601)))
        for index in 0..<1000 { _ = limiter.allow("host-\(index)", now: now + .seconds(602)) }
        #expect(limiter.count <= 100)
    }
}
