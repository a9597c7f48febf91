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

/// 监测 (charts drawn from `readings.query`, the month-by-month class, open breaches) and 督办单 with
/// 原因报告 (answers with evidence, the office's review, forged POSTs refused).
@Suite(.serialized) struct MonitoringSupervisionTests {
    /// 29 days of hourly 氨氮 at 六一桥 up to 2026-11-19, class IV on 2026-11-10, then a class V reading on the 20th.
    static func submitReadings(_ harness: WebHarness, breach: Bool = true) async throws {
        let station = try await harness.rpc(.ingest, from: "station")
        var readings: [SubmittedReading] = []
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        formatter.dateFormat = "yyyy-MM-dd"
        var day = formatter.date(from: "2026-10-22")!
        while formatter.string(from: day) < "2026-11-20" {
            let text = formatter.string(from: day)
            for hour in 0..<24 {
                let value = text == "2026-11-10" ? 1.2 : 0.4
                readings.append(
                    SubmittedReading(
                        station: "liuyiqiao", parameter: "nh3n", ts: String(format: "\(text)T%02d:00:00+08:00", hour), value: value))
            }
            day = day.addingTimeInterval(86_400)
        }
        _ = try await station.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        if breach {
            let live = ["ph": 7.8, "do": 6.5, "codmn": 3.5, "cod": 14, "nh3n": 1.8, "tp": 0.08].map {
                SubmittedReading(station: "liuyiqiao", parameter: $0.key, ts: "2026-11-20T08:00:00+08:00", value: $0.value)
            }
            _ = try await station.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: live), as: ReadingSubmitReply.self)
        }
        await station.close()
    }

    @Test func theMonitoringPageDrawsDailyMeansByClassWithTheLimitTheMonthsAndOpenBreaches() async throws {
        let harness = try await WebHarness.start()
        try await Self.submitReadings(harness)
        try await harness.console.application().test(.live) { client in
            let leader = Browser(client)
            _ = try await leader.login("leader")
            #expect(try await Browser(client).get("/monitoring").status == .seeOther)
            // The breach reaches notify as an open 指标超标 notice.
            #expect(
                try await TestSupport.eventually {
                    String(buffer: try await leader.get("/monitoring?to=2026-11-20").body).contains("<ul class=\"feed\" id=\"alerts\"><li>")
                })
            let response = try await leader.get("/monitoring?to=2026-11-20")
            let page = String(buffer: response.body)
            #expect(response.status == .ok && page.contains("监测") && page.contains("id=\"station-liuyiqiao\""))
            let chart = try #require(page.range(of: "id=\"chart-nh3n\"").map { String(page[$0.lowerBound...].prefix(20_000)) })
            #expect(chart.contains("氨氮（mg/L）") && chart.contains("<svg") && chart.contains("III类限值 1<"))
            // Class II days blue, the class IV day yellow, today's class V mean orange.
            #expect(chart.contains("fill=\"#4393c3\"") && chart.contains("fill=\"#c99a06\"><title>2026-11-10：1.2 mg/L，IV类</title>"))
            #expect(chart.contains("<title>2026-11-20：1.8 mg/L，V类</title>"))
            #expect(page.contains("id=\"months-liuyiqiao\"") && page.contains("10月") && page.contains("11月"))
            #expect(page.contains("数据覆盖：30/30 天（100%）"))
            // A day that is not one falls back to today.
            #expect(try await leader.get("/monitoring?to=%3Cscript%3E").status == .ok)
        }
        try await harness.stop()
    }

    /// Quality marks (#17) on the page: a day of nothing but a below-detection reading reads `<limit（未检出）`,
    /// drawn hollow; a 维护 day is ticked and listed, though it has no value to draw.
    @Test func theMonitoringPageShowsBelowDetectionAndMaintenanceInChinese() async throws {
        let harness = try await WebHarness.start()
        let station = try await harness.rpc(.ingest, from: "station")
        let reply = try await station.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-17T08:00:00+08:00", value: 0.4),
                SubmittedReading(
                    station: "liuyiqiao", parameter: "nh3n", ts: "2026-11-18T08:00:00+08:00", value: .nan, mark: "below_detection",
                    detectionLimit: 0.05),
                SubmittedReading(station: "liuyiqiao", parameter: "tp", ts: "2026-11-19T08:00:00+08:00", value: 9, mark: "maintenance"),
            ]), as: ReadingSubmitReply.self)
        #expect(reply.accepted == 3)
        await station.close()
        try await harness.console.application().test(.live) { client in
            let leader = Browser(client)
            _ = try await leader.login("leader")
            let page = String(buffer: try await leader.get("/monitoring?to=2026-11-20").body)
            let chart = try #require(page.range(of: "id=\"chart-nh3n\"").map { String(page[$0.lowerBound...].prefix(20_000)) })
            #expect(chart.contains("fill=\"#fff\""), "an all-below-detection day is hollow")
            #expect(chart.contains("<title>2026-11-18：&lt;0.05 mg/L（未检出）"), "\(chart)")
            #expect(chart.contains("id=\"marks-nh3n\">未检出：11-18 &lt;0.05 mg/L（未检出）</p>"))
            let tp = try #require(page.range(of: "id=\"chart-tp\"").map { String(page[$0.lowerBound...].prefix(20_000)) })
            #expect(tp.contains("<title>2026-11-19：维护 1 条</title>") && tp.contains("id=\"marks-tp\">维护：11-19（1 条）</p>"), "\(tp)")
        }
        try await harness.stop()
    }

    @Test func aUnitAnswersItsSupervisionItemWithEvidenceTheOfficeReviewsAndOthersAreRefused() async throws {
        let harness = try await WebHarness.start()
        let registry = try await harness.rpc(.registry)
        let order = try await registry.call(
            SupervisionTypes.issue,
            SupervisionIssueRequest(
                title: "六一桥专项督办单", replyDeadline: "2026-11-30",
                items: [
                    SupervisionItemDraft(unit: WebHarness.ecology, tasks: ["7.1"], problem: "六一桥断面氨氮超标原因未报告", measure: "3日内报送原因分析"),
                    SupervisionItemDraft(unit: "区城乡建设局", problem: "混错接点位整治进度滞后", measure: "11月底前报送整治计划"),
                ]))
        try await harness.console.application().test(.live) { client in
            let unit = Browser(client)
            _ = try await unit.login("eco")
            let page = String(buffer: try await unit.get("/supervision").body)
            #expect(page.contains(order.id) && page.contains("六一桥断面氨氮超标原因未报告") && !page.contains("混错接点位整治进度滞后"))
            #expect(page.contains("id=\"reply-\(order.id)-1\"") && !page.contains("id=\"review-"))
            let csrf = try Browser.hidden("_csrf", in: page)
            // Not its item, and not the office's decision: 403, nothing sent.
            let (type2, body2) = Browser.multipart([("_csrf", csrf), ("measures", "x")], file: nil)
            #expect(try await unit.request(.post, "/supervision/\(order.id)/2/reply", contentType: type2, body: body2).status == .forbidden)
            let forgedReview = try await unit.post(
                "/supervision/\(order.id)/1/review", [("_csrf", csrf), ("decision", "accept"), ("comment", "x")])
            #expect(forgedReview.status == .forbidden)
            let pdf = Array("%PDF-1.4\n% 原因分析\n".utf8)
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("measures", "已完成原因分析：上游生活污水溢流")], file: ("evidence", "原因分析.pdf", "application/pdf", pdf))
            let replied = try await unit.request(.post, "/supervision/\(order.id)/1/reply", contentType: type, body: body)
            #expect(replied.status == .seeOther)
            var stored = try await registry.callAll(SupervisionTypes.list, SupervisionListRequest(order: order.id))[0].items[0]
            #expect(
                stored.state == .replied && stored.reply?.evidence.first?.name == "原因分析.pdf" && stored.reply?.evidence.first?.sha256 != nil)

            // A leader reads and cannot answer or decide; the office decides.
            let leader = Browser(client)
            _ = try await leader.login("leader")
            let leaderPage = String(buffer: try await leader.get("/supervision").body)
            #expect(leaderPage.contains("混错接点位整治进度滞后") && !leaderPage.contains("id=\"review-") && !leaderPage.contains("id=\"reply-"))
            let leaderCSRF = try Browser.hidden("_csrf", in: leaderPage)
            #expect(
                try await leader.post(
                    "/supervision/\(order.id)/1/review", [("_csrf", leaderCSRF), ("decision", "accept"), ("comment", "x")]
                )
                .status == .forbidden)
            let office = Browser(client)
            _ = try await office.login("office1")
            let officePage = String(buffer: try await office.get("/supervision").body)
            #expect(officePage.contains("id=\"review-\(order.id)-1\"") && officePage.contains("上游生活污水溢流"))
            let officeCSRF = try Browser.hidden("_csrf", in: officePage)
            #expect(
                try await office.post("/supervision/\(order.id)/1/review", [("decision", "return"), ("comment", "x")]).status == .forbidden)
            let returned = try await office.post(
                "/supervision/\(order.id)/1/review",
                [("_csrf", officeCSRF), ("decision", "return"), ("comment", "请补充溢流点位清单"), ("deadline", "2026-12-05")])
            #expect(returned.status == .seeOther)
            stored = try await registry.callAll(SupervisionTypes.list, SupervisionListRequest(order: order.id))[0].items[0]
            #expect(stored.state == .returned && stored.deadline == "2026-12-05" && stored.review?.comment == "请补充溢流点位清单")
            let again = String(buffer: try await unit.get("/supervision").body)
            #expect(again.contains("已退回待重新答复") && again.contains("请补充溢流点位清单") && again.contains("id=\"reply-\(order.id)-1\""))
        }
        await registry.close()
        try await harness.stop()
    }

    @Test func anOwingUnitReportsABreachsCauseAndNoOneElseCan() async throws {
        let harness = try await WebHarness.start()
        try await Self.submitReadings(harness)
        let notify = try await harness.rpc(.notify)
        #expect(try await TestSupport.eventually { try await !notify.callAll(CauseReportTypes.list, CauseListRequest()).isEmpty })
        let report = try #require(try await notify.callAll(CauseReportTypes.list, CauseListRequest()).first)
        let owing = try #require(report.pendingUnits.first)
        _ = try harness.console.store.addUser(
            name: "owing", unit: owing, role: .unit, passwordHash: try await Passwords(cost: 4).hash(WebHarness.password))
        let stranger = ["区教育局", "区城乡建设局", "区生态环境局"].first { !report.units.contains($0) }!
        _ = try harness.console.store.addUser(
            name: "stranger", unit: stranger, role: .unit, passwordHash: try await Passwords(cost: 4).hash(WebHarness.password))
        try await harness.console.application().test(.live) { client in
            let other = Browser(client)
            _ = try await other.login("stranger")
            let otherPage = String(buffer: try await other.get("/supervision").body)
            #expect(!otherPage.contains("id=\"cause-form-"))
            let otherCSRF = try Browser.hidden("_csrf", in: otherPage)
            let (type0, body0) = Browser.multipart([("_csrf", otherCSRF), ("cause", "x")], file: nil)
            #expect(try await other.request(.post, "/causes/\(report.id)/report", contentType: type0, body: body0).status == .forbidden)

            let unit = Browser(client)
            _ = try await unit.login("owing")
            let page = String(buffer: try await unit.get("/supervision").body)
            #expect(page.contains("水质超标原因报告") && page.contains(report.id) && page.contains("id=\"cause-form-\(report.id)\""))
            let csrf = try Browser.hidden("_csrf", in: page)
            let (type, body) = Browser.multipart(
                [("_csrf", csrf), ("cause", "上游雨污混流，降雨后溢流"), ("measures", "封堵溢流口两处")],
                file: ("evidence", "现场.png", "image/png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0]))
            #expect(try await unit.request(.post, "/causes/\(report.id)/report", contentType: type, body: body).status == .seeOther)
            let after = try #require(try await notify.callAll(CauseReportTypes.list, CauseListRequest()).first { $0.id == report.id })
            #expect(after.entries.contains { $0.unit == owing && $0.cause == "上游雨污混流，降雨后溢流" && $0.evidence.first?.sha256 != nil })
            #expect(String(buffer: try await unit.get("/supervision").body).contains("封堵溢流口两处"))
        }
        await notify.close()
        try await harness.stop()
    }
}
