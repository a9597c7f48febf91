import DubanTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import NIOCore
import Schema
import Testing
import WebConsole

/// The case page's follow-through: progress with a file, an extension asked and granted, a site
/// visit with photos, a link, a void; each form shown to those the ledger allows, a forged POST 403.
@Suite(.serialized) struct WebCaseStepsTests {
    static let builder = "区城乡建设局"
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]

    @Test func eachFollowThroughStepIsOfferedOnlyToThoseAllowedAndShownInTheTimelineInChinese() async throws {
        let harness = try await WebHarness.start()
        _ = try harness.console.store.addUser(
            name: "builder", unit: Self.builder, role: .unit, passwordHash: try await Passwords(cost: 4).hash(WebHarness.password))
        let cases = try await harness.rpc(.cases)
        let item = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "解放大街雨污混接", unit: Self.builder, deadline: "2026-12-31"))
        let other = try await cases.call(
            CaseTypes.open, CaseOpenRequest(source: .selfInspection, title: "胜利路雨污混接", unit: Self.builder, deadline: "2026-12-31"))
        _ = try await cases.call(CaseTypes.transition, CaseTransitionRequest(id: item.id, action: .assign))
        try await harness.console.application().test(.live) { client in
            let path = "/cases/\(item.id)"
            // The responsible unit: progress and an extension request, nothing else.
            let unit = Browser(client)
            _ = try await unit.login("builder")
            var page = String(buffer: try await unit.get(path).body)
            #expect(page.contains("id=\"update-form\"") && page.contains("id=\"extend-request-form\""))
            #expect(!page.contains("id=\"visit-form\"") && !page.contains("id=\"void-form\"") && !page.contains("id=\"link-form\""))
            #expect(!page.contains("id=\"extend-decide-form\""))
            let csrf = try Browser.hidden("_csrf", in: page)
            let pdf = Array("%PDF-1.4\n% 混接点位改造照片\n".utf8)
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("text", "已完成 12 处混接点改造"), ("progress", "60")], file: ("evidence", "改造.pdf", "application/pdf", pdf))
            #expect(try await unit.request(.post, "\(path)/update", contentType: type, body: body).status == .seeOther)
            let (badType, badBody) = Browser.multipart([("_csrf", csrf), ("text", "x"), ("progress", "160")], file: nil)
            let bad = try await unit.request(.post, "\(path)/update", contentType: badType, body: badBody)
            #expect(bad.status == .badRequest && String(buffer: bad.body).contains("完成进度应为 0 到 100 的整数"))
            // Forged: the office's and the supervisors' steps.
            #expect(try await unit.post("\(path)/void", [("_csrf", csrf), ("reason", "x")]).status == .forbidden)
            #expect(try await unit.post("\(path)/extend", [("_csrf", csrf), ("action", "grant"), ("reason", "x")]).status == .forbidden)
            #expect(try await unit.post("\(path)/link", [("_csrf", csrf), ("related", other.id)]).status == .forbidden)
            let (visitType, visitBody) = Browser.multipart(
                [("_csrf", csrf), ("date", "2026-11-19"), ("inspectors", "李明"), ("findings", "x")], file: nil)
            #expect(try await unit.request(.post, "\(path)/visit", contentType: visitType, body: visitBody).status == .forbidden)
            #expect(
                try await unit.post("\(path)/extend", [("action", "request"), ("deadline", "2027-01-31"), ("reason", "x")]).status
                    == .forbidden)
            let asked = try await unit.post(
                "\(path)/extend", [("_csrf", csrf), ("action", "request"), ("deadline", "2027-01-31"), ("reason", "冬季停工，管网开挖须待春季")])
            #expect(asked.status == .seeOther)
            page = String(buffer: try await unit.get(path).body)
            #expect(page.contains("申请延期至 2027-01-31") && !page.contains("id=\"extend-request-form\""))

            // A ledger lead unit visits the site (photos with their sha256) and may link; it does not report for the unit.
            let lead = Browser(client)
            _ = try await lead.login("eco")
            page = String(buffer: try await lead.get(path).body)
            #expect(page.contains("id=\"visit-form\"") && page.contains("id=\"link-form\"") && !page.contains("id=\"update-form\""))
            #expect(!page.contains("id=\"void-form\""))
            let leadCSRF = try Browser.hidden("_csrf", in: page)
            let (photoType, photoBody) = Browser.multipart(
                [("_csrf", leadCSRF), ("date", "2026-11-19"), ("inspectors", "李明、王芳"), ("findings", "两处混接点已封堵，一处仍在施工")],
                file: ("photo1", "现场.png", "image/png", Self.png))
            #expect(try await lead.request(.post, "\(path)/visit", contentType: photoType, body: photoBody).status == .seeOther)
            let (updType, updBody) = Browser.multipart([("_csrf", leadCSRF), ("text", "x")], file: nil)
            #expect(try await lead.request(.post, "\(path)/update", contentType: updType, body: updBody).status == .forbidden)

            // A leader: no form, every POST refused.
            let leader = Browser(client)
            _ = try await leader.login("leader")
            page = String(buffer: try await leader.get(path).body)
            #expect(!page.contains("<form method=\"post\" action=\"/cases/"))
            let leaderCSRF = try Browser.hidden("_csrf", in: page)
            #expect(try await leader.post("\(path)/void", [("_csrf", leaderCSRF), ("reason", "x")]).status == .forbidden)

            // The office grants the extension, links the similar case and voids it.
            let office = Browser(client)
            _ = try await office.login("office1")
            page = String(buffer: try await office.get(path).body)
            #expect(
                page.contains("id=\"extend-decide-form\"") && page.contains("id=\"extend-refuse\"") && page.contains("id=\"void-form\""))
            let officeCSRF = try Browser.hidden("_csrf", in: page)
            #expect(
                try await office.post("\(path)/extend", [("_csrf", officeCSRF), ("action", "grant"), ("reason", "同意")]).status == .seeOther)
            #expect(
                try await office.post("\(path)/link", [("_csrf", officeCSRF), ("related", other.id), ("comment", "同类问题")]).status
                    == .seeOther)
            let voidMissing = try await office.post("/cases/\(other.id)/void", [("_csrf", officeCSRF), ("reason", "")])
            #expect(voidMissing.status == .badRequest && String(buffer: voidMissing.body).contains("请填写作废原因"))
            #expect(
                try await office.post("/cases/\(other.id)/void", [("_csrf", officeCSRF), ("reason", "与 \(item.id) 重复登记")]).status
                    == .seeOther)

            let stored = try await cases.call(CaseTypes.get, CaseGetRequest(id: item.id))
            #expect(stored.deadline == "2027-01-31" && stored.originalDeadline == "2026-12-31" && stored.pendingExtension == nil)
            #expect(stored.latestUpdate?.progress == 60 && stored.related == [other.id])
            let visit = try #require(stored.history?.first { $0.action == "visit" })
            #expect(visit.visit?.inspectors == ["李明", "王芳"] && visit.evidence.first?.sha256?.count == 64)
            #expect(try await cases.call(CaseTypes.get, CaseGetRequest(id: other.id)).state == .voided)

            // The timeline in the ledger's words.
            page = String(buffer: try await office.get(path).body)
            for text in [
                "报送进展", "进度 60%", "申请延期", "同意延期", "完成时限 2026-12-31 → 2027-01-31", "实地督导", "督导日期 2026-11-19，督导人员 李明、王芳",
                "关联问题", "最新进展：</b>已完成 12 处混接点改造", "原完成时限：</b>2026-12-31",
            ] {
                #expect(page.contains(text), "\(text)")
            }
            let voided = String(buffer: try await office.get("/cases/\(other.id)").body)
            #expect(
                voided.contains("作废原因：</b>与 \(item.id) 重复登记") && !voided.contains("id=\"void-form\"")
                    && !voided.contains("id=\"update-form\""))
        }
        await cases.close()
        try await harness.stop()
    }

    @Test func theOfficeAssignsABatchAtOnceAndNoOneElseCan() async throws {
        let harness = try await WebHarness.start()
        let cases = try await harness.rpc(.cases)
        for index in 1...3 {
            _ = try await cases.call(
                CaseTypes.open,
                CaseOpenRequest(source: .sewerMisconnection, title: "混接点 \(index)", unit: Self.builder, batch: "2026年第一批"))
        }
        try await harness.console.application().test(.live) { client in
            let unit = Browser(client)
            _ = try await unit.login("eco")
            let unitPage = String(buffer: try await unit.get("/cases").body)
            #expect(!unitPage.contains("id=\"batch-form\""))
            let unitCSRF = try Browser.hidden("_csrf", in: unitPage)
            #expect(try await unit.post("/cases/assign-batch", [("_csrf", unitCSRF), ("batch", "2026年第一批")]).status == .forbidden)
            let office = Browser(client)
            _ = try await office.login("office1")
            let page = String(buffer: try await office.get("/cases").body)
            #expect(page.contains("id=\"batch-form\"") && page.contains("2026年第一批（3 个待交办）"))
            let csrf = try Browser.hidden("_csrf", in: page)
            let done = try await office.post("/cases/assign-batch", [("_csrf", csrf), ("batch", "2026年第一批"), ("deadline", "2027-03-31")])
            #expect(done.status == .seeOther && done.headers[.location] == "/cases?assigned=3&skipped=0")
            #expect(String(buffer: try await office.get("/cases?assigned=3&skipped=0").body).contains("已交办 3 个问题"))
            let all = try await cases.callAll(CaseTypes.list, CaseListRequest(batch: "2026年第一批"))
            #expect(all.count == 3 && all.allSatisfy { $0.state == .assigned && $0.deadline == "2027-03-31" })
        }
        await cases.close()
        try await harness.stop()
    }
}
