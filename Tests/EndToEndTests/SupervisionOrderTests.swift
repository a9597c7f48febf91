import DubanTesting
import Foundation
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// 督办单 with replies (issue #16): the quarter's order issued by the registry itself, the office's
/// own, replies item by item, acceptance and return, and an item unanswered past its deadline
/// raising a notice and an escalation proposal until it is answered.
@Suite(.serialized) struct SupervisionOrderTests {
    typealias Bench = NotifyEndToEndTests.RhythmBench
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func anUnansweredItemRaisesANoticeAndAProposalAndAReplyEndsThem() async throws {
        // October's dispatch (for September) closes the third quarter: its order is due.
        let bench = try await Bench.start(at: "2026-10-10T10:00:00+08:00", supervisionStart: "2024-01-01")
        let office = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: officeUnit)
        let construction = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区城乡建设局")
        let ecology = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区生态环境局")
        let stranger = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区教育局")

        // The quarter's order, by the registry on its own: lagging units, their tasks and reasons.
        #expect(
            try await TestSupport.eventually {
                try await office.call(SupervisionTypes.list, SupervisionListRequest(order: "DB-2026-Q3")).items.count == 1
            })
        let quarterly = try #require(try await office.call(SupervisionTypes.list, SupervisionListRequest(order: "DB-2026-Q3")).items.first)
        #expect(
            quarterly.kind == .quarterly && quarterly.period == "2026-Q3" && quarterly.replyDeadline == "2026-10-26",
            "15 days on is Sunday 10-25: the next working day")
        #expect(!quarterly.items.isEmpty && quarterly.items.allSatisfy { !$0.tasks.isEmpty && $0.state == .pending })
        #expect(quarterly.items.allSatisfy { $0.problem.contains("任务") })
        #expect(
            try await refusal(
                office, SupervisionTypes.issue, SupervisionIssueRequest(kind: .quarterly, period: "2026-Q3", replyDeadline: "2026-10-30")
            )
            .code == .conflict, "a quarter has one order")
        let firstUnit = quarterly.items[0].unit
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.supervisionOrder).contains { $0.dedupKey == "supervision:DB-2026-Q3:\(firstUnit)" }
            })

        // The office's own order: only the office issues; every item checked.
        let items = [
            SupervisionItemDraft(
                unit: "区城乡建设局", tasks: ["10"], cases: ["HCJ-2026-0001"], problem: "混错接点位整治进度滞后", measure: "制定分批整治计划，11月底前报送"),
            SupervisionItemDraft(unit: "区生态环境局", tasks: ["7.1"], problem: "六一桥断面氨氮超标原因未报告", measure: "3日内报送原因分析"),
        ]
        #expect(
            try await refusal(construction, SupervisionTypes.issue, SupervisionIssueRequest(replyDeadline: "2026-10-20", items: items)).code
                == .permissionDenied)
        var broken = items
        broken[1].unit = "区农业局"
        #expect(
            try await refusal(office, SupervisionTypes.issue, SupervisionIssueRequest(replyDeadline: "2026-10-20", items: broken)).field
                == "body.items[1].unit")
        #expect(
            try await refusal(office, SupervisionTypes.issue, SupervisionIssueRequest(replyDeadline: "2026-10-01", items: items)).field
                == "body.reply_deadline", "not a day already past")
        let order = try await office.call(
            SupervisionTypes.issue, SupervisionIssueRequest(title: "混错接和六一桥专项督办单", replyDeadline: "2026-10-20", items: items))
        #expect(order.id == "DB-2026-001" && order.items.map(\.state) == [.pending, .pending])

        // Replies: by the item's unit only, once until reviewed.
        #expect(
            try await refusal(stranger, SupervisionTypes.reply, SupervisionReplyRequest(order: order.id, item: 1, measures: "已整改")).code
                == .permissionDenied)
        #expect(
            try await refusal(construction, SupervisionTypes.reply, SupervisionReplyRequest(order: order.id, item: 3, measures: "x")).code
                == .notFound)
        let replied = try await construction.call(
            SupervisionTypes.reply,
            SupervisionReplyRequest(
                order: order.id, item: 1, measures: "已制定分五批整治计划",
                evidence: [EvidenceRef(name: "整治计划", uri: "https://files.example/plan.pdf")]))
        #expect(replied.items[0].state == .replied && replied.items[0].reply?.measures == "已制定分五批整治计划")
        #expect(
            try await refusal(construction, SupervisionTypes.reply, SupervisionReplyRequest(order: order.id, item: 1, measures: "再答")).code
                == .conflict)

        // Past the deadline, item 2 unanswered: a notice to the unit and the office, a proposal to the office.
        bench.clock.set(date("2026-10-21T09:00:00+08:00"))
        let overdueKey = "supervision_overdue:\(order.id):2"
        let proposalKey = "proposal-supervision:\(order.id):2"
        #expect(try await TestSupport.eventually { try await bench.notices(.supervisionOverdue).contains { $0.dedupKey == overdueKey } })
        let overdue = try #require(try await bench.notices(.supervisionOverdue).first { $0.dedupKey == overdueKey })
        #expect(overdue.units == ["区生态环境局", officeUnit] && overdue.state == .open)
        #expect(try await bench.notices(.escalationProposal).contains { $0.dedupKey == proposalKey && $0.title == "建议通报：区生态环境局" })
        #expect(
            try await !bench.notices(.supervisionOverdue).contains { $0.dedupKey == "supervision_overdue:\(order.id):1" },
            "an item answered in time is not late")

        // The office returns item 1 (answered again within seven days) and item 2 is answered and accepted.
        #expect(
            try await refusal(
                office, SupervisionTypes.review, SupervisionReviewRequest(order: order.id, item: 1, decision: .return, comment: "")
            )
            .field == "body.comment")
        let returned = try await office.call(
            SupervisionTypes.review, SupervisionReviewRequest(order: order.id, item: 1, decision: .return, comment: "计划未明确各批完成时限"))
        #expect(returned.items[0].state == .returned && returned.items[0].deadline == "2026-10-28")
        _ = try await ecology.call(
            SupervisionTypes.reply, SupervisionReplyRequest(order: order.id, item: 2, measures: "原因为上游生活污水溢流，已报告"))
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.supervisionOverdue).first { $0.dedupKey == overdueKey }?.state == .resolved
            })
        #expect(try await bench.notices(.escalationProposal).first { $0.dedupKey == proposalKey }?.state == .resolved)
        let accepted = try await office.call(
            SupervisionTypes.review, SupervisionReviewRequest(order: order.id, item: 2, decision: .accept, comment: ""))
        #expect(accepted.items[1].state == .accepted && accepted.items[1].review?.comment == "同意办结")

        // The returned item left unanswered past its new day is late again.
        bench.clock.set(date("2026-10-29T09:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.supervisionOverdue).contains { $0.dedupKey == "supervision_overdue:\(order.id):1" }
            })
        let mine = try await office.call(SupervisionTypes.list, SupervisionListRequest(unit: "区城乡建设局", overdue: true)).items
        #expect(mine.map(\.id).contains(order.id) && mine.allSatisfy { $0.items.allSatisfy { $0.unit == "区城乡建设局" && $0.overdue } })
        for client in [office, construction, ecology, stranger] { await client.close() }
        try await bench.stop()
    }

    @Test func anInterviewsFollowUpDayRemindsItsUnitNamingItsFirstResponsiblePerson() async throws {
        let bench = try await Bench.start(at: "2026-10-10T10:00:00+08:00", supervisionStart: nil)
        let office = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: officeUnit)
        let unit = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区城乡建设局")
        #expect(
            try await refusal(unit, AccountabilityTypes.responsibleSet, ResponsibleSetRequest(unit: "区城乡建设局", name: "张某", position: "局长"))
                .code == .permissionDenied)
        _ = try await office.call(AccountabilityTypes.responsibleSet, ResponsibleSetRequest(unit: "区城乡建设局", name: "张某", position: "局长"))
        #expect(try await office.call(AccountabilityTypes.responsibleList, Empty()).items.map(\.name) == ["张某"])

        // 问责 naming persons needs the deciding authority; days are checked.
        #expect(
            try await refusal(
                office, RegistryTypes.escalationRecord,
                EscalationRecordRequest(
                    unit: "区城乡建设局", level: .accountability, reason: "履责不力",
                    details: AccountabilityDetails(persons: [AccountablePerson(name: "李某", position: "副局长")]))
            ).field == "body.details.authority")
        #expect(
            try await refusal(
                office, RegistryTypes.escalationRecord,
                EscalationRecordRequest(
                    unit: "区城乡建设局", level: .interview, reason: "滞后", details: AccountabilityDetails(followUp: "2026-10-01"))
            ).field == "body.details.follow_up")

        let interview = try await office.call(
            RegistryTypes.escalationRecord,
            EscalationRecordRequest(
                unit: "区城乡建设局", level: .interview, reason: "混错接点位整治连续三个月滞后", tasks: ["10"],
                details: AccountabilityDetails(
                    date: "2026-10-09", participants: ["专项工作组办公室主任", "区城乡建设局局长张某"], minutes: "约谈纪要见附件",
                    commitments: ["10月底前完成第一批50处整治", "每周报送进度"], followUp: "2026-10-31")),
            as: Escalation.self)
        #expect(interview.responsiblePerson?.name == "张某" && interview.details?.followUp == "2026-10-31")
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.escalation).contains { $0.title == "约谈：区城乡建设局" && $0.text.contains("第一责任人：张某（局长）") }
            })
        #expect(try await !bench.notices(.escalation).contains { $0.dedupKey == "follow_up:\(interview.id)" }, "not before its day")

        bench.clock.set(Timestamp.parse("2026-10-31T09:00:00+08:00")!)
        #expect(
            try await TestSupport.eventually {
                try await bench.notices(.escalation).contains { $0.dedupKey == "follow_up:\(interview.id)" }
            })
        let reminder = try #require(try await bench.notices(.escalation).first { $0.dedupKey == "follow_up:\(interview.id)" })
        #expect(reminder.units == ["区城乡建设局", officeUnit] && reminder.text.contains("10月底前完成第一批50处整治"))
        #expect(try await office.call(RegistryTypes.escalationList, EscalationListRequest()).items.first?.details?.commitments?.count == 2)
        // The minutes and who took part: the office and the unit concerned; another unit, a reader and
        // the event stream get the rest of the record without them.
        #expect(try await unit.call(RegistryTypes.escalationList, EscalationListRequest()).items.first?.details?.minutes == "约谈纪要见附件")
        let other = try await RPCClient.connect(to: bench.registry.endpoints.rpc, from: "区农业农村局")
        let reader = try await RPCClient.connect(to: bench.registry.endpoints.rpc)
        for client in [other, reader] {
            let seen = try #require(try await client.call(RegistryTypes.escalationList, EscalationListRequest()).items.first?.details)
            #expect(seen.minutes == nil && seen.participants == nil && seen.commitments?.count == 2 && seen.followUp == "2026-10-31")
            await client.close()
        }
        let stream = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "registry", after: 0, limit: 10_000), as: EventsSinceReply<AnyEvent>.self)
        #expect(!String(decoding: try WireCoding.encode(stream), as: UTF8.self).contains("约谈纪要见附件"))
        await office.close()
        await unit.close()
        try await bench.stop()
    }
}
