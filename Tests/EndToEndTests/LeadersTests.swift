import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import Notifications

/// Leaders in the loop: the 组长's own channel gets the reports and decisions, and a chat robot's
/// message stays within its limit with a link to the whole notice in the console.
@Suite(.serialized) struct LeadersTests {
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func theGroupLeadersChannelReceivesTheMonthlyReportWithALinkAndNothingElse() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: date("2026-11-10T10:00:00+08:00"))
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.supervisionStart = "2024-01-01"
        }
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = TestSupport.freeEndpoints()
            $0.endpoints[.cases] = TestSupport.freeEndpoints()
            $0.notifyFileChannelDir = "\(dir)/channels"
            $0.notifyConsoleURL = "https://duban.example.gov.cn/"
        }
        let office = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        // The 组长's channel: no unit filter, the reports and decisions only.
        _ = try await office.call(
            NotifyTypes.channelSet,
            ChannelSetRequest(
                channel: Channel(
                    name: "组长", kind: .file, target: "leader.jsonl",
                    kinds: [.monthlyDispatch, .quarterlySupervision, .annualNotification, .escalation])))
        let file = "\(dir)/channels/leader.jsonl"
        func delivered() -> [JSONValue] {
            ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))
            }
        }
        #expect(
            try await TestSupport.eventually(timeout: .seconds(15)) {
                delivered().contains { message in
                    message["notices"]?.arrayValue?.contains { $0["dedup_key"]?.stringValue == "monthly_summary:2026-10" } == true
                }
            })
        let notices = delivered().flatMap { $0["notices"]?.arrayValue ?? [] }
        #expect(
            notices.allSatisfy {
                ["monthly_dispatch", "quarterly_supervision", "annual_notification", "escalation"].contains($0["kind"]?.stringValue ?? "")
            })
        let summary = try #require(
            delivered().first { message in
                message["notices"]?.arrayValue?.contains { $0["dedup_key"]?.stringValue == "monthly_summary:2026-10" } == true
            })
        let id = try #require(summary["notices"]?.arrayValue?.first?["id"]?.stringValue)
        // The summary opens the month's report itself in the console, which links back to the notice.
        #expect(summary["links"]?[id]?.stringValue == "https://duban.example.gov.cn/reports/monthly/2026-10?notice=\(id)")
        // Report-missing notices go to units, not to the 组长.
        let all = try await office.callAll(NotifyTypes.noticeList, NoticeListRequest(kind: .reportMissing))
        #expect(!all.isEmpty && !notices.contains { $0["kind"]?.stringValue == "report_missing" })
        await office.close()
        try await notify.stop()
        try await registry.stop()
    }

    @Test func aRobotMessageStaysWithinWeComsLimitAndLinksTheRest() throws {
        let notices = (1...40).map { index in
            Notice(
                id: "N\(index)", kind: .reportMissing, severity: .warning, units: ["区城乡建设局"], title: "未报送2026-10进展：第\(index)项",
                text: String(repeating: "区城乡建设局未按时报送任务进展，请立即补报。", count: 30), refs: NoticeRefs(),
                issuedAt: "2026-11-10T10:00:00+08:00", acknowledged: false, ackBy: nil, ackComment: nil, state: .open,
                dedupKey: "k\(index)",
                repeats: 0, resolvedAt: nil)
        }
        let channel = Channel(name: "区城乡建设局群", kind: .wecom, target: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x")
        for count in [1, 3, 40] {
            let body = try Deliverer.payload(
                Array(notices.prefix(count)), delivery: 1, unit: "区城乡建设局", channel: channel, consoleURL: "https://duban.example.gov.cn")
            let content = try JSONDecoder().decode(JSONValue.self, from: body)["markdown"]?["content"]?.stringValue ?? ""
            #expect(content.utf8.count <= 4096, "\(count) notices: \(content.utf8.count) bytes")
            #expect(content.contains("https://duban.example.gov.cn/notices"), "\(count)")
        }
    }

    @Test func keyDatesOfTaskTwoAreRemindedToItsLeadUnitsTwoWeeksAhead() async throws {
        let bench = try await NotifyEndToEndTests.RhythmBench.start(at: "2026-05-25T10:00:00+08:00", supervisionStart: "2026-05-01")
        #expect(try await TestSupport.eventually { try await bench.notices(.keyDate).contains { $0.dedupKey == "key_date:2026-06-05" } })
        let reminder = try #require(try await bench.notices(.keyDate).first { $0.dedupKey == "key_date:2026-06-05" })
        #expect(reminder.title == "重要节点提醒：六五环境日（6月5日）" && reminder.refs.task == "2" && reminder.text.contains("还有11天"))
        #expect(!reminder.units.isEmpty && !reminder.units.contains(officeUnit))
        #expect(try await !bench.notices(.keyDate).contains { $0.dedupKey == "key_date:2026-08-15" }, "not yet: more than two weeks ahead")
        #expect(try await !bench.notices(.keyDate).contains { $0.dedupKey == "key_date:2026-05-22" }, "past")
        try await bench.stop()
    }
}
