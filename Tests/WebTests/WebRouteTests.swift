import AsyncHTTPClient
import DubanTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import NIOCore
import Schema
import Synchronization
import Testing
import WebConsole

/// The console's routes against the four real services on free ports, over real HTTP
/// (HummingbirdTesting's live server).
@Suite(.serialized) struct WebRouteTests {
    /// A leaf task 区生态环境局 leads.
    static func ecologyTask(_ harness: WebHarness) async throws -> PlanTask {
        let registry = try await harness.rpc(.registry)
        defer { Task { await registry.close() } }
        let tasks = try await registry.callAll(RegistryTypes.taskList, TaskListRequest(unit: WebHarness.ecology))
        return try #require(tasks.first { $0.subtasks.isEmpty && $0.leadUnits.contains(WebHarness.ecology) })
    }

    @Test func loginIsRequiredLocksOutAfterFiveFailuresAndIsJournaled() async throws {
        let harness = try await WebHarness.start()
        try await harness.console.application().test(.live) { client in
            let browser = Browser(client)
            // No session: every page sends to the login page, which is Chinese and strict.
            let home = try await browser.get("/")
            #expect(home.status == .seeOther && home.headers[.location] == "/login?next=%2F")
            let login = try await browser.get("/login")
            let html = String(buffer: login.body)
            #expect(login.status == .ok && html.contains("用户名") && html.contains("登录") && html.contains("lang=\"zh-CN\""))
            let policy = try #require(login.headers[.contentSecurityPolicy])
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
            #expect(login.headers[.xContentTypeOptions] == "nosniff")
            // A login form without its login cookie is refused (login CSRF).
            let forged = try await Browser(client).post("/login", [("_login", "x"), ("name", "eco"), ("password", WebHarness.password)])
            #expect(forged.status == .forbidden)

            // Five wrong passwords, then even the right one is refused for 15 minutes.
            for _ in 0..<5 {
                let wrong = try await browser.login("eco", password: "wrong-password-1")
                #expect(wrong.status == .unauthorized && String(buffer: wrong.body).contains("用户名或密码不正确"))
            }
            let locked = try await browser.login("eco")
            #expect(locked.status == .tooManyRequests && String(buffer: locked.body).contains("已锁定"))
            #expect(browser.cookies["duban_session"] == nil)
            let journal = try harness.console.store.logins().filter { $0.name == "eco" }.map(\.outcome)
            #expect(journal == ["locked", "failed", "failed", "failed", "failed", "failed"])
            // Another person is not affected; an unknown name fails like a wrong password.
            #expect(try await Browser(client).login("nobody").status == .unauthorized)
            let office = Browser(client)
            let ok = try await office.login("office1")
            #expect(ok.status == .seeOther && ok.headers[.location] == "/")
            let setCookie = ok.headers[values: .setCookie].first { $0.hasPrefix("duban_session=") } ?? ""
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax") && !setCookie.contains("Secure"))
            let dashboard = try await office.get("/")
            let page = String(buffer: dashboard.body)
            #expect(dashboard.status == .ok && page.contains("总览") && page.contains("任务进展") && page.contains("台账整改"))
            #expect(page.contains("工作目标") && page.contains("/static/live.js") && !page.contains("<script>"))
            // The session is in SQLite: a second console on the same file knows it.
            let token = try #require(office.cookies["duban_session"])
            #expect(try harness.console.store.session(token: token, idleTimeout: 60) != nil)
            // ...and it ends with its idle time.
            #expect(try harness.console.store.session(token: token, idleTimeout: 60, now: Date().addingTimeInterval(120)) == nil)
            #expect(try await office.get("/").status == .seeOther)
        }
        try await harness.stop()
    }

    @Test func aUnitReportsProgressWithEvidenceAndCannotTakeTheOfficesActions() async throws {
        let harness = try await WebHarness.start()
        let task = try await Self.ecologyTask(harness)
        let casesClient = try await harness.rpc(.cases)
        let opened = try await casesClient.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "六一桥排口排查", unit: WebHarness.ecology, deadline: "2026-12-31"))
        try await harness.console.application().test(.live) { client in
            let unit = Browser(client)
            #expect(try await unit.login("eco").status == .seeOther)
            // The task page has the report form for the unit's own task.
            let page = String(buffer: try await unit.get("/tasks/\(task.id)").body)
            #expect(page.contains("报送本单位进展") && page.contains("enctype=\"multipart/form-data\""))
            let csrf = try Browser.hidden("_csrf", in: page)

            // A report with a PDF: stored by the console with its sha256, referenced as evidence.
            let pdf = Array("%PDF-1.4\n% 六一桥排口整治照片说明\n".utf8)
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("period", "2026-11"), ("percent", "40"), ("summary", "完成六一桥段排口排查")],
                file: ("evidence", "排查报告.pdf", "application/pdf", pdf))
            let posted = try await unit.request(.post, "/tasks/\(task.id)/report", contentType: type, body: body)
            #expect(posted.status == .seeOther && posted.headers[.location] == "/tasks/\(task.id)?reported=1")
            let registry = try await harness.rpc(.registry)
            let stored = try await registry.callAll(RegistryTypes.progressList, ProgressListRequest(task: task.id))
            let report = try #require(stored.first { $0.unit == WebHarness.ecology })
            let sha = try #require(report.evidence.first?.sha256)
            #expect(report.percent == 40 && report.evidence.first?.name == "排查报告.pdf" && report.evidence.first?.uri == "/files/\(sha)")
            // 月调度 for the month: the unit's row has the task as reported.
            let dispatch = String(buffer: try await unit.get("/dispatch?period=2026-11").body)
            #expect(dispatch.contains("月调度") && dispatch.contains("<td>\(WebHarness.ecology)</td><td>") && dispatch.contains(task.id))
            #expect(!dispatch.contains("区自然资源和林业局"))
            let after = String(buffer: try await unit.get("/tasks/\(task.id)?reported=1").body)
            #expect(after.contains("进展已报送") && after.contains("完成六一桥段排口排查") && after.contains("/files/\(sha)"))
            // Served back only as a download.
            let file = try await unit.get("/files/\(sha)")
            #expect(file.status == .ok && Array(file.body.readableBytesView) == pdf)
            #expect(file.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(file.headers[.xContentTypeOptions] == "nosniff" && file.headers[.contentSecurityPolicy]?.contains("sandbox") == true)
            #expect(file.headers[.contentType] == "application/octet-stream")
            // An HTML page renamed .pdf, and a form without its CSRF token, are refused; nothing is stored.
            let (type2, body2) = Browser.multipart(
                [("_csrf", csrf), ("period", "2026-11"), ("percent", "50"), ("summary", "x")],
                file: ("evidence", "a.pdf", "application/pdf", Array("<html><script>alert(1)</script>".utf8)))
            let bad = try await unit.request(.post, "/tasks/\(task.id)/report", contentType: type2, body: body2)
            #expect(bad.status == .badRequest && String(buffer: bad.body).contains("文件内容与扩展名 .pdf 不符"))
            let (type3, body3) = Browser.multipart([("period", "2026-11"), ("percent", "50"), ("summary", "x")], file: nil)
            #expect(try await unit.request(.post, "/tasks/\(task.id)/report", contentType: type3, body: body3).status == .forbidden)
            #expect(try await registry.callAll(RegistryTypes.progressList, ProgressListRequest(task: task.id)).count == stored.count)
            await registry.close()

            // The case page shows the unit no office action; a forged one gets 403 and changes nothing.
            let casePage = String(buffer: try await unit.get("/cases/\(opened.id)").body)
            #expect(casePage.contains("办理经过") && !casePage.contains("action-assign") && !casePage.contains("交办</button>"))
            let forged = try await unit.post("/cases/\(opened.id)/transition", [("_csrf", csrf), ("action", "assign")])
            #expect(forged.status == .forbidden && String(buffer: forged.body).contains("无权"))
            #expect(try await casesClient.call(CaseTypes.get, CaseGetRequest(id: opened.id)).state == .registered)

            // The office assigns from the case page; then the unit may start, and does.
            let office = Browser(client)
            #expect(try await office.login("office1").status == .seeOther)
            let officePage = String(buffer: try await office.get("/cases/\(opened.id)").body)
            #expect(officePage.contains("id=\"action-assign\""))
            let officeCSRF = try Browser.hidden("_csrf", in: officePage)
            #expect(
                try await office.post("/cases/\(opened.id)/transition", [("_csrf", officeCSRF), ("action", "assign")]).status == .seeOther)
            let unitPage = String(buffer: try await unit.get("/cases/\(opened.id)").body)
            #expect(unitPage.contains("id=\"action-start\"") && !unitPage.contains("action-accept"))
            #expect(try await unit.post("/cases/\(opened.id)/transition", [("_csrf", csrf), ("action", "start")]).status == .seeOther)
            #expect(try await casesClient.call(CaseTypes.get, CaseGetRequest(id: opened.id)).state == .rectifying)
            // A leader reads and may not act at all.
            let leader = Browser(client)
            #expect(try await leader.login("leader").status == .seeOther)
            let leaderCSRF = try await leader.csrf("/cases/\(opened.id)")
            #expect(!String(buffer: try await leader.get("/cases/\(opened.id)").body).contains("case-actions"))
            #expect(
                try await leader.post("/cases/\(opened.id)/transition", [("_csrf", leaderCSRF), ("action", "submit")]).status == .forbidden)
            #expect(try await casesClient.call(CaseTypes.get, CaseGetRequest(id: opened.id)).state == .rectifying)
        }
        await casesClient.close()
        try await harness.stop()
    }

    /// A notice 区生态环境局 has to acknowledge (the overdue notices of a fresh install).
    static func pendingNotice(_ harness: WebHarness) async throws -> Notice {
        let notify = try await harness.rpc(.notify)
        defer { Task { await notify.close() } }
        var found: Notice?
        _ = try await TestSupport.eventually(timeout: .seconds(15)) {
            found = try await notify.callAll(NotifyTypes.noticeList, NoticeListRequest(pendingUnit: WebHarness.ecology)).first
            return found != nil
        }
        return try #require(found)
    }

    @Test func behindTLSCookiesAreSecureAndPagesSendHSTSAndEscalationsShowTheirReason() async throws {
        let harness = try await WebHarness.start()
        var settings = harness.console.settings
        settings.behindTLS = true
        let console = try WebConsole(deployment: harness.deployment, settings: settings, logger: harness.console.logger)
        let registry = try await harness.rpc(.registry)
        _ = try await registry.call(
            RegistryTypes.escalationRecord,
            EscalationRecordRequest(unit: WebHarness.ecology, level: .interview, reason: "连续两个月未报送任务进展"))
        try await console.application().test(.live) { client in
            let office = Browser(client)
            let login = try await office.login("office1")
            let cookie = login.headers[values: .setCookie].first { $0.hasPrefix("duban_session=") } ?? ""
            #expect(cookie.contains("Secure") && cookie.contains("HttpOnly"))
            let page = try await office.get("/")
            #expect(page.headers[.strictTransportSecurity] == "max-age=31536000")
            let html = String(buffer: page.body)
            #expect(html.contains("约谈") && html.contains("事由：连续两个月未报送任务进展"))
            #expect(String(buffer: try await office.get("/notices").body).contains("事由：连续两个月未报送任务进展"))
        }
        // A target's trend: a sparkline drawn by the server from the indicator's history.
        let ingest = try await RPCClient.connect(to: harness.deployment[.ingest].rpc, from: "区自然资源和林业局")
        for (period, value) in [("2024", 30.9), ("2025", 31.2)] {
            _ = try await ingest.call(
                IngestTypes.indicatorReport,
                IndicatorReportRequest(indicator: "forest_coverage", period: period, value: .number(value), source: "统计年报"))
        }
        await ingest.close()
        let fresh = try WebConsole(deployment: harness.deployment, settings: settings, logger: harness.console.logger)
        try await fresh.application().test(.live) { client in
            let office = Browser(client)
            #expect(try await office.login("office1").status == .seeOther)
            let html = String(buffer: try await office.get("/").body)
            #expect(html.contains("<polyline points=\"0.0,26.0 120.0,2.0\"") && html.contains("31.2（2025）"))
        }
        await registry.close()
        try await harness.stop()
    }

    @Test func aKioskLinkShowsTheDashboardWithoutLoginReadOnlyUntilRevoked() async throws {
        let harness = try await WebHarness.start()
        let token = try harness.console.store.addKiosk(label: "一号会议室", passwordHash: try await Passwords(cost: 4).hash("x-unknown-x"))
        let casesClient = try await harness.rpc(.cases)
        let opened = try await casesClient.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "排口排查", unit: WebHarness.ecology, deadline: "2026-12-31"))
        await casesClient.close()
        try await harness.console.application().test(.live) { client in
            let screen = Browser(client)
            #expect(try await screen.get("/kiosk/\(AccountStore.randomToken())").status == .notFound)
            #expect(screen.cookies["duban_session"] == nil)
            let entered = try await screen.get("/kiosk/\(token)")
            #expect(entered.status == .seeOther && entered.headers[.location] == "/")
            let page = String(buffer: try await screen.get("/").body)
            #expect(page.contains("总览") && page.contains("大屏（只读）") && page.contains("/static/live.js"))
            // Read only: no action on a case, and a forged one is refused.
            let casePage = String(buffer: try await screen.get("/cases/\(opened.id)").body)
            #expect(!casePage.contains("case-actions"))
            let csrf = try Browser.hidden("_csrf", in: casePage)
            #expect(try await screen.post("/cases/\(opened.id)/transition", [("_csrf", csrf), ("action", "assign")]).status == .forbidden)
            // Revoked: the link and the screen's session end.
            try harness.console.store.revokeKiosk(label: "一号会议室")
            #expect(try await screen.get("/").status == .seeOther)
            #expect(try await Browser(client).get("/kiosk/\(token)").status == .notFound)
        }
        try await harness.stop()
    }

    @Test func aUnitAcknowledgesANoticeFromItsLinkAndAReaderCannot() async throws {
        let harness = try await WebHarness.start()
        let notice = try await Self.pendingNotice(harness)
        try await harness.console.application().test(.live) { client in
            // The chat link: straight to the notice, through the login page and back.
            let unit = Browser(client)
            let link = try await unit.get("/notices/\(notice.id)")
            #expect(link.status == .seeOther && link.headers[.location] == "/login?next=%2Fnotices%2F\(notice.id)")
            let page = try await unit.get("/login?next=%2Fnotices%2F\(notice.id)")
            let token = try Browser.hidden("_login", in: String(buffer: page.body))
            let next = try Browser.hidden("next", in: String(buffer: page.body))
            #expect(next == "/notices/\(notice.id)")
            let loggedIn = try await unit.post(
                "/login", [("_login", token), ("next", next), ("name", "eco"), ("password", WebHarness.password)])
            #expect(loggedIn.headers[.location] == "/notices/\(notice.id)")
            let html = String(buffer: try await unit.get("/notices/\(notice.id)").body)
            #expect(html.contains(">签收</button>") && html.contains(notice.title))
            let csrf = try Browser.hidden("_csrf", in: html)

            // A leader sees no 签收 and cannot post one.
            let leader = Browser(client)
            #expect(try await leader.login("leader").status == .seeOther)
            let leaderPage = String(buffer: try await leader.get("/notices/\(notice.id)").body)
            #expect(!leaderPage.contains(">签收</button>"))
            let leaderCSRF = try Browser.hidden("_csrf", in: leaderPage)
            #expect(try await leader.post("/notices/\(notice.id)/ack", [("_csrf", leaderCSRF)]).status == .forbidden)

            let acked = try await unit.post("/notices/\(notice.id)/ack", [("_csrf", csrf)])
            #expect(acked.status == .seeOther && acked.headers[.location] == "/notices/\(notice.id)?acked=1")
            let after = String(buffer: try await unit.get("/notices/\(notice.id)?acked=1").body)
            #expect(after.contains("已签收") && !after.contains(">签收</button>"))
            let notify = try await harness.rpc(.notify)
            let stored = try await notify.call(NotifyTypes.noticeGet, NoticeGetRequest(id: notice.id))
            #expect(stored.acks.map(\.unit) == [WebHarness.ecology] && !stored.pendingUnits.contains(WebHarness.ecology))
            await notify.close()
        }
        try await harness.stop()
    }

    /// A leader's chat link to the month's report opens the report itself: the page with every
    /// section, a way back to the notice, and the 公文, the table and the Markdown as downloads.
    @Test func aLeaderOpensTheMonthlyReportFromItsLinkAndDownloadsTheDocument() async throws {
        let harness = try await WebHarness.start()
        try await harness.console.application().test(.live) { client in
            let leader = Browser(client)
            #expect(try await leader.login("leader").status == .seeOther)
            let page = try await leader.get("/reports/monthly/2026-10?notice=N-42")
            #expect(page.status == .ok)
            let html = String(buffer: page.body)
            #expect(html.contains("<h1>城中区巩固提升生态环境保护成效三年行动月调度通报（2026年10月）</h1>"))
            for section in ["一、任务进展", "二、调度报送情况", "三、目标指标", "四、问题整改台账", "五、通报约谈问责", "六、督办事项"] {
                #expect(html.contains("<h2>\(section)</h2>"), "\(section)")
            }
            #expect(html.contains("<h3>各单位报送情况</h3>") && html.contains("<table>"))
            #expect(html.contains("href=\"/notices/N-42\""))
            let docx = try await leader.get("/reports/monthly/2026-10/download/docx")
            #expect(docx.status == .ok && docx.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(docx.headers[.contentType] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
            #expect(Array(docx.body.readableBytesView.prefix(2)) == Array("PK".utf8))
            let csv = try await leader.get("/reports/quarterly/2026-Q3/download/csv")
            #expect(csv.status == .ok && String(buffer: csv.body).hasPrefix("\u{FEFF}部分,编号"))
            // Wrong kinds, formats and periods: a clear refusal, not a report.
            #expect(try await leader.get("/reports/weekly/2026-10").status == .notFound)
            #expect(try await leader.get("/reports/monthly/2026-10/download/pdf").status == .notFound)
            #expect(try await leader.get("/reports/monthly/2026-13").status == .badRequest)
            #expect(try await leader.get("/reports/monthly/%3Cscript%3E").status == .badRequest)
            // The index links recent periods; without a login, the login page.
            #expect(String(buffer: try await leader.get("/reports").body).contains("/reports/annual/"))
            #expect(try await Browser(client).get("/reports/monthly/2026-10").status == .seeOther)
        }
        try await harness.stop()
    }

    @Test func liveEventsArriveAndAReconnectingPageResumesFromLastEventID() async throws {
        let harness = try await WebHarness.start()
        let task = try await Self.ecologyTask(harness)
        let registry = try await harness.rpc(.registry, from: WebHarness.ecology)
        try await harness.console.application().test(.live) { client in
            let office = Browser(client)
            #expect(try await office.login("office1").status == .seeOther)
            let port = try #require(client.port)
            // Without a session there is no stream.
            #expect(try await office.client.execute(uri: "/events", method: .get).status == .unauthorized)
            // Give the hub's subscribers a moment to be subscribed.
            try await Task.sleep(for: .milliseconds(500))
            let first = try await SSEReader.open(port: port, cookie: office.cookieHeader, lastEventID: nil)
            #expect(try await first.read(until: "retry: 2000", timeout: .seconds(3)))
            let started = ContinuousClock.now
            _ = try await registry.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: task.id, period: "2026-11", unit: WebHarness.ecology, percent: 30, summary: "第一次报送"))
            #expect(try await first.read(until: "registry.progress.reported", timeout: .seconds(2)))
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(try await first.read(until: ": heartbeat", timeout: .seconds(2)))
            let seen = try #require(first.lastID)
            #expect(seen.contains("registry:"))
            await first.close()

            // Missed while away: delivered on reconnect, from Last-Event-ID.
            _ = try await registry.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: task.id, period: "2026-11", unit: WebHarness.ecology, percent: 45, summary: "第二次报送"))
            try await Task.sleep(for: .milliseconds(300))
            let second = try await SSEReader.open(port: port, cookie: office.cookieHeader, lastEventID: seen)
            #expect(try await second.read(until: "45%", timeout: .seconds(3)))
            #expect(!second.text.contains("30%"))
            await second.close()

            // The dashboard fragment the script fetches names the report.
            let fragment = String(buffer: try await office.get("/fragment/overview").body)
            #expect(fragment.contains("区生态环境局 报送任务 \(task.id)"))
        }
        await registry.close()
        try await harness.stop()
    }
}

/// With CURVE on, the console acts through its one gateway certificate, for the person's unit.
@Suite(.serialized) struct WebGatewayTests {
    @Test func withKeysTheConsoleActsThroughItsGatewayCertificateForThePersonsUnit() async throws {
        let harness = try await WebHarness.start(keys: try TestKeys.make())
        let task = try await WebRouteTests.ecologyTask(harness)
        let casesClient = try await harness.rpc(.cases)
        let opened = try await casesClient.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "排口排查", unit: WebHarness.ecology, deadline: "2026-12-31"))
        let registry = try await harness.rpc(.registry)
        try await harness.console.application().test(.live) { client in
            let office = Browser(client)
            #expect(try await office.login("office1").status == .seeOther)
            try await Task.sleep(for: .milliseconds(500))
            let live = try await SSEReader.open(port: try #require(client.port), cookie: office.cookieHeader, lastEventID: nil)
            #expect(try await live.read(until: "retry: 2000", timeout: .seconds(3)))

            let unit = Browser(client)
            #expect(try await unit.login("eco").status == .seeOther)
            let csrf = try await unit.csrf("/tasks/\(task.id)")
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("period", "2026-11"), ("percent", "20"), ("summary", "经网关报送")], file: nil)
            #expect(try await unit.request(.post, "/tasks/\(task.id)/report", contentType: type, body: body).status == .seeOther)
            let report = try #require(
                try await registry.callAll(RegistryTypes.progressList, ProgressListRequest(task: task.id)).first { $0.summary == "经网关报送" })
            // Made by the gateway's certificate, for the person's unit.
            #expect(report.principal == "gateway" && report.unit == WebHarness.ecology && report.reportedBy == WebHarness.ecology)
            // The live feed follows the services through CURVE too.
            #expect(try await live.read(until: "registry.progress.reported", timeout: .seconds(2)))
            await live.close()

            // The office's action goes out as the office, through the gateway.
            let officeCSRF = try await office.csrf("/cases/\(opened.id)")
            #expect(
                try await office.post("/cases/\(opened.id)/transition", [("_csrf", officeCSRF), ("action", "assign")]).status == .seeOther)
            let assigned = try await casesClient.call(CaseTypes.get, CaseGetRequest(id: opened.id))
            #expect(assigned.state == .assigned && assigned.history?.last?.principal == "gateway")
            #expect(assigned.history?.last?.actor == officeUnit)
            // A leader reads everything as a reader: every card of the dashboard has its data.
            let leader = Browser(client)
            #expect(try await leader.login("leader").status == .seeOther)
            let page = String(buffer: try await leader.get("/").body)
            #expect(page.contains("任务进展") && !page.contains("暂时无法取得数据"))

            // 群众举报 through the gateway as no unit at all (the public), and the office reads the
            // contact through it as the office; the 监测 and 督办单 pages read as a reader.
            let citizen = Browser(client)
            let token = try Browser.hidden("_public", in: String(buffer: try await citizen.get("/report").body))
            let receipt = try await citizen.post(
                "/report", [("_public", token), ("title", "夜间噪声"), ("description", "工地夜间施工"), ("phone", "13900000000")])
            let receiptPage = String(buffer: receipt.body)
            #expect(receipt.status == .ok && receiptPage.contains("举报已受理"), "\(receiptPage)")
            let reference = try #require(
                receiptPage.range(of: "id=\"reference\">").map { String(receiptPage[$0.upperBound...].prefix { $0 != "<" }) })
            let complaint = try await casesClient.call(CaseTypes.get, CaseGetRequest(id: reference))
            #expect(complaint.source == .publicReport && complaint.history?.first?.principal == "gateway")
            let contactCSRF = try await office.csrf("/cases/\(reference)")
            let contact = String(buffer: try await office.post("/cases/\(reference)/contact", [("_csrf", contactCSRF)]).body)
            #expect(contact.contains("13900000000"))
            for path in ["/monitoring", "/supervision"] {
                let response = try await leader.get(path)
                #expect(response.status == .ok && !String(buffer: response.body).contains("暂时无法"), "\(path)")
            }
        }
        await registry.close()
        await casesClient.close()
        try await harness.stop()
    }
}

/// Reads a Server-Sent Events stream as a browser's EventSource would, over AsyncHTTPClient: a
/// reader task owned by this object appends what arrives; `read(until:)` waits for a text in it.
final class SSEReader: Sendable {
    private final class Received: Sendable {
        let text = Mutex("")
        let ended = Mutex(false)
    }
    private let received = Received()
    private let reader: Task<Void, Never>
    private let client: HTTPClient

    private init(client: HTTPClient, body: HTTPClientResponse.Body) {
        self.client = client
        let received = received
        self.reader = Task {
            do {
                for try await chunk in body { received.text.withLock { $0 += String(buffer: chunk) } }
            } catch {}
            received.ended.withLock { $0 = true }
        }
    }

    static func open(port: Int, cookie: String, lastEventID: String?) async throws -> SSEReader {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/events")
        request.headers.add(name: "Cookie", value: cookie)
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await client.execute(request, timeout: .seconds(60))
        guard response.status == .ok else { throw TestFailure("GET /events: \(response.status)") }
        return SSEReader(client: client, body: response.body)
    }

    var text: String { received.text.withLock { $0 } }
    /// Whether the server ended the stream.
    var isEnded: Bool { received.ended.withLock { $0 } }

    /// Waits until the text contains `needle` (true) or `timeout` passes (false).
    func read(until needle: String, timeout: Duration) async throws -> Bool {
        try await TestSupport.eventually(timeout: timeout) { self.text.contains(needle) }
    }

    /// The last `id:` the stream sent.
    var lastID: String? {
        text.split(separator: "\n").last { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
    }

    func close() async {
        reader.cancel()
        try? await client.shutdown()
    }
}
