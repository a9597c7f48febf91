import DubanTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import NIOCore
import Schema
import ServiceKit
import Testing
import WebConsole

/// 具体实施方案 in the console: a unit submits its own with the document, the office returns it with
/// a reason and a new day, the unit submits again, the office accepts; each form only for whom may
/// use it, a forged POST 403.
@Suite(.serialized) struct ImplementationPlanPageTests {
    @Test func aUnitSubmitsItsPlanWithTheDocumentAndTheOfficeReturnsThenAcceptsIt() async throws {
        // Go-live on 2026-07-05: the plans are due three months on, within the plan's years.
        let harness = try await WebHarness.start(clock: ServiceClock.starting(at: Timestamp.parse("2026-07-05T10:00:00+08:00")!))
        try await harness.console.application().test(.live) { client in
            let unit = Browser(client)
            _ = try await unit.login("eco")
            var page = String(buffer: try await unit.get("/plans").body)
            #expect(page.contains("id=\"my-plan\"") && page.contains("待报送") && page.contains("id=\"plan-form\""), "\(page)")
            #expect(page.contains("区生态环境局") && page.contains("2026-10-") && !page.contains("plan-review-"))
            let csrf = try Browser.hidden("_csrf", in: page)

            // No document, no submission; a document of a type the console does not take, refused.
            let (bareType, bareBody) = Browser.multipart([("_csrf", csrf), ("title", "区生态环境局具体实施方案")], file: nil)
            let bare = try await unit.request(.post, "/plans/submit", contentType: bareType, body: bareBody)
            #expect(bare.status == .badRequest && String(buffer: bare.body).contains("请上传方案文件"))
            let (exeType, exeBody) = Browser.multipart(
                [("_csrf", csrf), ("title", "x")], file: ("evidence", "方案.exe", "application/octet-stream", [0x4D, 0x5A]))
            #expect(try await unit.request(.post, "/plans/submit", contentType: exeType, body: exeBody).status == .badRequest)

            let pdf = Array("%PDF-1.4\n% 区生态环境局巩固提升生态环境保护成效三年行动具体实施方案\n".utf8)
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("title", "区生态环境局具体实施方案"), ("note", "经局党组会审议")],
                file: ("evidence", "实施方案.pdf", "application/pdf", pdf))
            #expect(try await unit.request(.post, "/plans/submit", contentType: type, body: body).status == .seeOther)
            page = String(buffer: try await unit.get("/plans?done=1").body)
            #expect(page.contains("已报送待审核") && page.contains("实施方案.pdf") && !page.contains("id=\"plan-form\""), "\(page)")
            // A unit does not review, not even by a forged POST.
            #expect(
                try await unit.post("/plans/review", [("_csrf", csrf), ("unit", "区生态环境局"), ("action", "accept")]).status == .forbidden)

            // The office returns it with a reason and a new day, then accepts the second submission.
            let office = Browser(client)
            _ = try await office.login("office1")
            page = String(buffer: try await office.get("/plans").body)
            #expect(page.contains("id=\"plan-review-区生态环境局\"") && !page.contains("id=\"plan-form\""))
            let officeCSRF = try Browser.hidden("_csrf", in: page)
            let noReason = try await office.post("/plans/review", [("_csrf", officeCSRF), ("unit", "区生态环境局"), ("action", "return")])
            #expect(noReason.status == .badRequest && String(buffer: noReason.body).contains("退回须写明审核意见"))
            let returned = try await office.post(
                "/plans/review",
                [("_csrf", officeCSRF), ("unit", "区生态环境局"), ("action", "return"), ("comment", "缺少分年度任务清单"), ("due", "2026-10-20")])
            #expect(returned.status == .seeOther)
            page = String(buffer: try await unit.get("/plans").body)
            #expect(page.contains("办公室退回：缺少分年度任务清单") && page.contains("2026-10-20") && page.contains("id=\"plan-form\""), "\(page)")
            let (againType, againBody) = Browser.multipart(
                [("_csrf", csrf), ("title", "区生态环境局具体实施方案（修订）")], file: ("evidence", "实施方案修订.pdf", "application/pdf", pdf + [0x0A]))
            #expect(try await unit.request(.post, "/plans/submit", contentType: againType, body: againBody).status == .seeOther)
            #expect(
                try await office.post("/plans/review", [("_csrf", officeCSRF), ("unit", "区生态环境局"), ("action", "accept")]).status
                    == .seeOther)

            let registry = try await harness.rpc(.registry)
            let plans = try await registry.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest(unit: "区生态环境局"))
            let plan = try #require(plans.first)
            #expect(plan.state == .accepted && plan.submissions.count == 2 && plan.reviews.map(\.action) == [.return, .accept])
            #expect(plan.submission?.evidence.first?.sha256?.count == 64 && plan.submission?.by == "区生态环境局")
            // Accepted, nothing more to submit; the office cannot review it again.
            page = String(buffer: try await unit.get("/plans").body)
            #expect(page.contains("已通过") || page.contains("审核通过"), "\(page)")
            #expect(!page.contains("id=\"plan-form\""))
            let again = try await office.post("/plans/review", [("_csrf", officeCSRF), ("unit", "区生态环境局"), ("action", "accept")])
            #expect(again.status == .badRequest)
            await registry.close()
        }
        try await harness.stop()
    }
}
