import Foundation
import Testing

@testable import Schema

@Suite struct TimestampTests {
    @Test func parsesOffsetsAndFractions() throws {
        let a = try #require(Timestamp.parse("2026-03-05T09:30:00+08:00"))
        let b = try #require(Timestamp.parse("2026-03-05T01:30:00Z"))
        #expect(a == b)
        let c = try #require(Timestamp.parse("2026-03-05T01:30:00.250Z"))
        #expect(abs(c.timeIntervalSince(b) - 0.25) < 1e-6)
        #expect(Timestamp.parse("2026-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-03-05T09:30:00") == nil, "an offset is required")
        #expect(Timestamp.parse("yesterday") == nil)
    }

    @Test func formatsInDistrictTime() throws {
        let date = try #require(Timestamp.parse("2025-12-31T16:00:00Z"))
        #expect(Timestamp.format(date, fractional: false) == "2026-01-01T00:00:00+08:00")
        #expect(Timestamp.districtDate(date) == "2026-01-01")
        #expect(Timestamp.startOfDistrictDay("2026-01-01") == date)
        let now = Date()
        let roundTrip = try #require(Timestamp.parse(Timestamp.format(now)))
        #expect(abs(roundTrip.timeIntervalSince(now)) < 0.001)
    }
}

@Suite struct RequestDecodingTests {
    struct Body: Codable, Sendable {
        var id: String
        var count: Int?
    }

    let table: RequestTypeTable = {
        var table = RequestTypeTable()
        table.register("task.get", body: Body.self)
        table.register("reading.submit", body: ReadingSubmitRequest.self)
        table.register("sys.ping", body: Empty.self)
        return table
    }()

    func decodingFailure(_ text: String) -> RequestDecodingFailure? {
        do {
            _ = try table.decode(Data(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func decodesAValidRequestIgnoringUnknownFields() throws {
        let request = try table.decode(Data(#"{"v":1,"id":"a","type":"task.get","extra":true,"body":{"id":"7.3","more":1}}"#.utf8))
        #expect(request.id == "a")
        #expect((request.body as? Body)?.id == "7.3")
    }

    @Test func missingBodyIsAnEmptyObject() throws {
        let request = try table.decode(Data(#"{"v":1,"id":"a","type":"sys.ping"}"#.utf8))
        #expect(request.body is Empty)
    }

    @Test(arguments: [
        ("\u{FF}\u{FE}", ErrorCode.badFrame, nil as String?, nil as String?),
        ("not json", .badFrame, nil, nil),
        ("[1,2,3]", .badFrame, nil, nil),
        (#"{"v":1,"type":"task.get"}"#, .badFrame, nil, "id"),
        (#"{"id":"x","type":"task.get"}"#, .badFrame, "x", "v"),
        (#"{"v":1,"id":"x"}"#, .badFrame, "x", "type"),
        (#"{"v":2,"id":"x","type":"task.get"}"#, .unsupportedVersion, "x", "v"),
        (#"{"v":1,"id":"x","type":"no.such"}"#, .unknownType, "x", "type"),
        (#"{"v":1,"id":"x","type":"task.get","body":{}}"#, .invalidArgument, "x", "body.id"),
        (#"{"v":1,"id":"x","type":"task.get","body":{"id":7}}"#, .invalidArgument, "x", "body.id"),
        (#"{"v":1,"id":"x","type":"task.get","body":[1]}"#, .invalidArgument, "x", "body"),
        (#"{"v":1,"id":"x","type":"task.get","key":5,"body":{"id":"1"}}"#, .invalidArgument, "x", "key"),
    ])
    func refusesWithTheRightCode(input: String, code: ErrorCode, re: String?, field: String?) throws {
        let failure = try #require(decodingFailure(input))
        #expect(failure.error.code == code)
        #expect(failure.re == re)
        if let field { #expect(failure.error.field == field) }
    }

    @Test func readingsAreJudgedOneByOne() throws {
        let text = #"""
            {"v":1,"id":"r","type":"reading.submit","body":{"readings":[
              {"station":"liuyiqiao","parameter":"nh3n","ts":"2026-03-01T08:00:00+08:00","value":1.2},
              {"station":"liuyiqiao","parameter":"nh3n","ts":"2026-03-01T09:00:00+08:00","value":"NaN"},
              {"station":"liuyiqiao","parameter":"nh3n","ts":"2026-03-01T10:00:00+08:00","value":"abc"},
              {"station":"liuyiqiao","ts":"2026-03-01T11:00:00+08:00","value":1}
            ]}}
            """#
        let request = try table.decode(Data(text.utf8))
        let readings = try #require(request.body as? ReadingSubmitRequest).readings
        #expect(readings.count == 4)
        #expect(readings[0].problem == nil && readings[0].value == 1.2)
        #expect(readings[1].problem == nil && readings[1].value.isNaN, "NaN is read; finiteness is judged by the service")
        #expect(readings[2].problem?.field == "value")
        #expect(readings[3].problem?.field == "parameter")
    }
}

@Suite struct EnvelopeWriterTests {
    @Test func repliesAreValidJSONWithEscapedStrings() throws {
        let payload = try WireCoding.encode(["name": "区生态环境局 \"quoted\"\n"])
        let data = EnvelopeWriter.reply(type: "t\"y\\pe\u{01}", re: "r\ne", ok: true, payload: payload)
        let reply = try JSONDecoder().decode(ReplyEnvelope<[String: String]>.self, from: data)
        #expect(reply.type == "t\"y\\pe\u{01}")
        #expect(reply.re == "r\ne")
        #expect(reply.body?["name"] == "区生态环境局 \"quoted\"\n")
        #expect(reply.ok)
    }

    @Test func errorRepliesCarryCodeAndField() throws {
        let data = EnvelopeWriter.errorReply(type: "", re: nil, error: .invalidArgument("bad", field: "body.x"))
        let reply = try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: data)
        #expect(!reply.ok && reply.re == nil)
        #expect(reply.error == ErrorBody(code: .invalidArgument, message: "bad", field: "body.x"))
    }

    @Test func eventsDecodeWithStreamAndSeq() throws {
        let data = EnvelopeWriter.event(
            id: "e", type: "cases.case.opened", ts: "2026-01-01T00:00:00+08:00", from: "cases", stream: "cases", seq: 42,
            body: Data(#"{"a":1}"#.utf8))
        let event = try JSONDecoder().decode(AnyEvent.self, from: data)
        #expect(event.seq == 42 && event.stream == "cases" && event.body["a"]?.intValue == 1)
    }
}

@Suite struct CaseStateMachineTests {
    @Test func onlyTheProtocolsTransitionsAreLegal() {
        let legal: [CaseAction: (CaseState, CaseState)] = [
            .assign: (.registered, .assigned), .start: (.assigned, .rectifying), .submit: (.rectifying, .pendingAcceptance),
            .accept: (.pendingAcceptance, .accepted), .reject: (.pendingAcceptance, .rectifying), .close: (.accepted, .closed),
            .reopen: (.closed, .rectifying),
        ]
        for action in CaseAction.allCases {
            for state in CaseState.allCases {
                // Voiding (case.void) leads from every state but 已销号 and 已作废 to 已作废.
                let expected =
                    action == .void
                    ? (state == .closed || state == .voided ? nil : .voided) : legal[action].flatMap { $0.0 == state ? $0.1 : nil }
                #expect(action.target(from: state) == expected, "\(action) from \(state)")
            }
        }
    }
}

@Suite struct NoticeAckWireTests {
    static let older = #"""
        {"id": "TZ-20261120-00001", "kind": "indicator_breach", "severity": "warning", "units": ["区生态环境局"], "title": "t",
         "text": "x", "refs": {}, "issued_at": "2026-11-20T10:00:00+08:00", "acknowledged": true, "ack_by": "区生态环境局",
         "state": "acknowledged", "dedup_key": "k", "repeats": 0}
        """#

    @Test func aNoticeFromBeforePerUnitAcknowledgementReadsWithNone() throws {
        let notice = try JSONDecoder().decode(Notice.self, from: Data(Self.older.utf8))
        #expect(notice.acks.isEmpty && notice.pendingUnits.isEmpty && notice.ackBy == "区生态环境局")
    }

    @Test func theAcknowledgedEventIsTheNoticeWithItsAckBeside() throws {
        var notice = try JSONDecoder().decode(Notice.self, from: Data(Self.older.utf8))
        let ack = NoticeAck(unit: "区生态环境局", at: "2026-11-20T11:00:00+08:00", comment: "已知悉", by: "区生态环境局")
        notice.acks = [ack]
        let body = try JSONDecoder().decode(JSONValue.self, from: WireCoding.encode(NoticeAcknowledged(notice: notice, ack: ack)))
        #expect(body["id"]?.stringValue == notice.id && body["state"]?.stringValue == "acknowledged")
        #expect(body["ack"]?["unit"]?.stringValue == "区生态环境局" && body["ack"]?["comment"]?.stringValue == "已知悉")
        #expect(body["acks"]?.arrayValue?.count == 1 && body["pending_units"]?.arrayValue?.isEmpty == true)
        let decoded = try JSONDecoder().decode(
            NoticeAcknowledged.self, from: WireCoding.encode(NoticeAcknowledged(notice: notice, ack: ack)))
        #expect(decoded.notice == notice && decoded.ack == ack)
    }
}
