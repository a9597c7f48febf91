import DubanTesting
import Formats
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

@testable import CaseTracking

/// 群众举报: a public report becomes a ledger case; its contact is the office's alone, never in a
/// case, an event, an export or the public summary, and is erased after the retention period.
@Suite struct ComplaintTests {
    @Test func aComplainantsContactNeverLeavesTheOfficeAndIsErasedAfterRetention() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let dir = try TestSupport.temporaryDirectory()
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.1) {
            $0.endpoints[.registry] = registry.endpoints
            $0.complaintRetentionDays = 30
        }
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        let unit = try await RPCClient.connect(to: cases.endpoints.rpc, from: "区生态环境局")
        let name = "王某某"
        let phone = "139-0971-2345"

        #expect(
            try await refusal(office, ComplaintTypes.submit, ComplaintSubmitRequest(title: " ", description: "x")).field == "body.title")
        #expect(
            try await refusal(
                office, ComplaintTypes.submit,
                ComplaintSubmitRequest(title: "偷排", description: "夜间偷排", contact: ComplaintContactDetails(phone: "call me"))
            ).field == "body.contact.phone")
        let receipt = try await office.call(
            ComplaintTypes.submit,
            ComplaintSubmitRequest(
                title: "南川河夜间偷排污水", description: "每晚十点后有暗管向南川河排放黑色污水", location: "南川河总寨段东岸",
                contact: ComplaintContactDetails(name: name, phone: phone)))
        #expect(receipt.reference == "JB-2026-0001" && receipt.code.count == 8)

        // The case: the ledger's first lead unit deals with it; nothing of the complainant in it.
        let item = try await office.call(CaseTypes.get, CaseGetRequest(id: receipt.reference), as: Case.self)
        #expect(item.source == .publicReport && item.unit == "区生态环境局" && item.history?.first?.actor == officeUnit)
        // The complainant looks it up with the code; a wrong code learns nothing.
        #expect(
            try await refusal(office, ComplaintTypes.status, ComplaintStatusRequest(reference: receipt.reference, code: "AAAAAAAA")).code
                == .notFound)
        let status = try await office.call(
            ComplaintTypes.status, ComplaintStatusRequest(reference: receipt.reference, code: receipt.code.lowercased()))
        #expect(status.state == .registered && status.stateLabel == "已登记" && status.reply == nil)

        // The contact: the office only.
        #expect(try await refusal(unit, ComplaintTypes.contact, ComplaintContactRequest(id: receipt.reference)).code == .permissionDenied)
        let contact = try await office.call(ComplaintTypes.contact, ComplaintContactRequest(id: receipt.reference))
        #expect(contact.contact == ComplaintContactDetails(name: name, phone: phone) && contact.erasedAt == nil)

        // The case is worked and closed; the office replies to the complainant.
        for (action, client, evidence) in [
            (CaseAction.assign, office, [EvidenceRef]()), (.start, unit, []), (.submit, unit, []),
            (.accept, office, [EvidenceRef(name: "现场核查记录", uri: "https://files.example/hc.pdf")]), (.close, office, []),
        ] {
            _ = try await client.call(
                CaseTypes.transition, CaseTransitionRequest(id: receipt.reference, action: action, comment: "办理", evidence: evidence),
                as: Case.self)
        }
        let replied = try await office.call(
            ComplaintTypes.reply, ComplaintReplyRequest(id: receipt.reference, text: "经查属实，已封堵暗管并立案处罚，感谢您的监督。"))
        #expect(replied.state == .closed && replied.reply == "经查属实，已封堵暗管并立案处罚，感谢您的监督。")
        #expect(try await unit.call(ComplaintTypes.publicList, ComplaintPublicListRequest()).items.map(\.reference) == [receipt.reference])

        // Nowhere else: not in any event, not in the export, not in the public summary, not in the audit trail.
        let events = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0, limit: 10_000), as: EventsSinceReply<AnyEvent>.self)
        let everything = [
            String(decoding: try WireCoding.encode(events), as: UTF8.self),
            try await office.call(CaseTypes.export, CaseExportRequest(), as: CaseExportReply.self).content,
            String(
                decoding: try WireCoding.encode(try await unit.call(ComplaintTypes.publicList, ComplaintPublicListRequest())), as: UTF8.self
            ),
            String(decoding: try WireCoding.encode(try await office.call(SystemTypes.auditList, AuditListRequest())), as: UTF8.self),
            String(
                decoding: try WireCoding.encode(try await office.call(CaseTypes.get, CaseGetRequest(id: receipt.reference), as: Case.self)),
                as: UTF8.self),
        ]
        for (index, text) in everything.enumerated() {
            #expect(!text.contains(name) && !text.contains(phone) && !text.contains("0971"), "place \(index)")
        }
        #expect(everything[0].contains(ComplaintTypes.replied))

        // Thirty days after it closed, the contact is gone; the case and the reply stay.
        clock.set(date("2026-12-21T10:00:00+08:00"))
        #expect(
            try await TestSupport.eventually {
                try await office.call(ComplaintTypes.contact, ComplaintContactRequest(id: receipt.reference)).erasedAt != nil
            })
        let erased = try await office.call(ComplaintTypes.contact, ComplaintContactRequest(id: receipt.reference))
        #expect(erased.contact == nil)
        #expect(
            try await office.call(ComplaintTypes.status, ComplaintStatusRequest(reference: receipt.reference, code: receipt.code)).reply
                != nil)
        await office.close()
        await unit.close()
        try await cases.stop()
        try await registry.stop()
    }

    /// The office's reply reaches the complainant's phone through the district's SMS platform once
    /// the case is over (not before), through a failure and a retry, and the number goes nowhere else.
    @Test func theReplyReachesTheComplainantsPhoneOnceTheCaseIsOver() async throws {
        let clock = ServiceClock.starting(at: date("2026-11-20T10:00:00+08:00"))
        let dir = try TestSupport.temporaryDirectory()
        let port = TestSupport.freePort()
        let log = "\(dir)/sms.jsonl"
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/webhook_receiver.py")
        // The platform refuses the first request.
        receiver.arguments = ["python3", script.path, "\(port)", log, "1"]
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        defer { kill(receiver.processIdentifier, SIGKILL) }
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.1) {
            $0.endpoints[.registry] = registry.endpoints
            $0.complaintReplyURL = "http://127.0.0.1:\(port)/sms"
        }
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        let unit = try await RPCClient.connect(to: cases.endpoints.rpc, from: "区生态环境局")
        let phone = "13909712345"
        let receipt = try await office.call(
            ComplaintTypes.submit,
            ComplaintSubmitRequest(
                title: "南川河夜间偷排污水", description: "每晚十点后有暗管向南川河排放黑色污水",
                contact: ComplaintContactDetails(name: "王某某", phone: phone)))
        let anonymous = try await office.call(
            ComplaintTypes.submit, ComplaintSubmitRequest(title: "工地扬尘", description: "夜间施工扬尘大"))
        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func delivery(_ id: String) async throws -> ComplaintReplyDelivery? {
            try await office.call(ComplaintTypes.contact, ComplaintContactRequest(id: id)).replyDelivery
        }

        // A reply recorded while the case is still open waits for it to end.
        _ = try await office.call(ComplaintTypes.reply, ComplaintReplyRequest(id: receipt.reference, text: "已受理，正在核查。"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(lines().isEmpty)
        #expect(try await delivery(receipt.reference)?.state == .waiting)

        for (action, client) in [(CaseAction.assign, office), (.start, unit), (.submit, unit), (.accept, office), (.close, office)] {
            let evidence = action == .accept ? [EvidenceRef(name: "现场核查记录", uri: "https://files.example/hc.pdf")] : []
            _ = try await client.call(
                CaseTypes.transition, CaseTransitionRequest(id: receipt.reference, action: action, comment: "办理", evidence: evidence),
                as: Case.self)
        }
        let text = "经查属实，已封堵暗管并立案处罚，感谢您的监督。"
        _ = try await office.call(ComplaintTypes.reply, ComplaintReplyRequest(id: receipt.reference, text: text))
        // The first attempt is refused; the next waits a minute.
        #expect(try await TestSupport.eventually { lines().count == 1 })
        #expect(try await TestSupport.eventually { try await delivery(receipt.reference)?.lastError == "短信平台返回 HTTP 500" })
        try await Task.sleep(for: .milliseconds(500))
        #expect(lines().count == 1, "no retry before its time")
        clock.set(date("2026-11-20T10:02:00+08:00"))
        #expect(try await TestSupport.eventually { try await delivery(receipt.reference)?.state == .sent })
        let sent = try #require(lines().last)
        #expect(sent.contains(phone) && sent.contains(text) && sent.contains(receipt.reference) && sent.contains("【城中区生态环境局】"))
        #expect(try await delivery(receipt.reference)?.attempts == 2)
        try await Task.sleep(for: .milliseconds(500))
        #expect(lines().count == 2, "sent once")

        // A complainant who left no number: the reply is recorded and nothing is sent.
        for (action, client) in [(CaseAction.assign, office), (.start, unit), (.submit, unit), (.accept, office), (.close, office)] {
            let evidence = action == .accept ? [EvidenceRef(name: "现场核查记录", uri: "https://files.example/yc.pdf")] : []
            _ = try await client.call(
                CaseTypes.transition, CaseTransitionRequest(id: anonymous.reference, action: action, comment: "办理", evidence: evidence),
                as: Case.self)
        }
        _ = try await office.call(ComplaintTypes.reply, ComplaintReplyRequest(id: anonymous.reference, text: "已责令整改。"))
        #expect(try await delivery(anonymous.reference)?.state == .noPhone)
        // The number is in no event.
        let events = try await office.call(
            SystemTypes.eventsSince, EventsSinceRequest(stream: "cases", after: 0, limit: 10_000), as: EventsSinceReply<AnyEvent>.self)
        #expect(!String(decoding: try WireCoding.encode(events), as: UTF8.self).contains(phone))
        await office.close()
        await unit.close()
        try await cases.stop()
        try await registry.stop()
    }
}
