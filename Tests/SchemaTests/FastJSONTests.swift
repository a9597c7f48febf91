import Foundation
import Testing

@testable import Schema

/// The fast path must read exactly what JSONDecoder reads, and leave to JSONDecoder everything else.
@Suite struct FastJSONTests {
    static let table: RequestTypeTable = {
        var table = RequestTypeTable()
        table.register("reading.submit", body: ReadingSubmitRequest.self)
        table.register("sys.ping", body: Empty.self)
        return table
    }()

    /// What JSONDecoder alone makes of a frame.
    static func slow(_ frame: String) -> Result<DecodedRequest, RequestDecodingFailure> {
        let decoder = JSONDecoder()
        decoder.userInfo[RequestTypeTable.userInfoKey] = table
        do {
            return .success(try decoder.decode(DecodedRequest.self, from: Data(frame.utf8)))
        } catch let failure as RequestDecodingFailure {
            return .failure(failure)
        } catch {
            // As RequestTypeTable.decode answers what is not JSON at all.
            return .failure(RequestTypeTable.undecodable(Data(frame.utf8)))
        }
    }

    static func same(_ a: DecodedRequest, _ b: DecodedRequest) -> Bool {
        a.id == b.id && a.type == b.type && a.ts == b.ts && a.from == b.from && a.key == b.key
            && (a.body as? ReadingSubmitRequest).map { x in (b.body as? ReadingSubmitRequest).map { y in equal(x, y) } ?? false } ?? false
    }

    /// Readings compare equal, NaN aside (none reaches the fast path).
    static func equal(_ x: ReadingSubmitRequest, _ y: ReadingSubmitRequest) -> Bool {
        x.readings.count == y.readings.count
            && zip(x.readings, y.readings).allSatisfy {
                $0.station == $1.station && $0.parameter == $1.parameter && $0.ts == $1.ts && $0.value.bitPattern == $1.value.bitPattern
                    && $0.unit == $1.unit && $0.flag == $1.flag && $0.problem == nil && $1.problem == nil && $0.mark == $1.mark
                    && $0.detectionLimit?.bitPattern == $1.detectionLimit?.bitPattern
            }
    }

    @Test(arguments: [
        #"{"v":1,"id":"a","type":"reading.submit","key":"k1","body":{"readings":["#
            + #"{"station":"liuyiqiao","parameter":"nh3n","ts":"2026-11-20T08:00:00+08:00","value":1.2}]}}"#,
        #"{ "body" : { "readings" : [ "#
            + #"{ "value" : 35, "ts" : "2026-11-20T08:00:00Z", "parameter" : "pm25", "station" : "chengzhong_air", "unit" : "µg/m³" } "#
            + #"] } , "type" : "reading.submit", "id" : "b", "v" : 1 }"#,
        #"{"v":1,"id":"c","type":"reading.submit","from":"\u516d\u4e00\u6865\ud83d\ude00 \"站\"\n","body":{"readings":["#
            + #"{"station":"s","parameter":"p","ts":"t","value":-0.5e-3,"unit":null,"flag":"revision","extra":[1,{"x":true}]}]}}"#,
        #"{"v":1,"id":"d","type":"reading.submit","ts":42,"from":false,"body":{"readings":["#
            + #"{"station":"s","parameter":"p","ts":"t","value":-0,"unit":7}],"other":1}}"#,
        #"{"v":1,"id":"e","type":"reading.submit","body":{"readings":[]}}"#,
        #"{"v":1,"id":"f","type":"reading.submit","body":{"readings":["#
            + #"{"station":"a","station":"b","parameter":"p","ts":"t","value":12345678901234567890}]}}"#,
        #"{"v":1,"id":"g","id":"h","type":"reading.submit","body":{"readings":["#
            + #"{"station":"a","value":1,"value":2,"parameter":"p","ts":"t","unit":"mg/L","unit":7}]}}"#,
        // Quality marks: a below-detection reading without a value, a 维护 one with and without, null as absent.
        #"{"v":1,"id":"m","type":"reading.submit","body":{"readings":["#
            + #"{"station":"s","parameter":"p","ts":"t","mark":"below_detection","detection_limit":0.01},"#
            + #"{"station":"s","parameter":"p","ts":"u","mark":"maintenance","value":500,"detection_limit":null},"#
            + #"{"station":"s","parameter":"p","ts":"v","mark":"stopped","value":null},"#
            + #"{"station":"s","parameter":"p","ts":"w","value":1,"mark":null,"mark":"x"}]}}"#,
    ])
    func wellFormedRequestsReadTheSameBothWays(frame: String) throws {
        let fast = try #require(Self.table.decodeFast(Data(frame.utf8)), "the fast path should take \(frame)")
        guard case .success(let slow) = Self.slow(frame) else {
            Issue.record("JSONDecoder refused \(frame)")
            return
        }
        #expect(Self.same(fast, slow), "\(frame)")
    }

    @Test(arguments: [
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","value":"NaN"}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":1,"parameter":"p","ts":"t","value":1}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[7]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t"}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","value":1},]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","value":01}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","value":1.}]}}"#,
        #"{"v":1.0,"id":"a","type":"reading.submit","body":{"readings":[]}}"#,
        #"{"v":2,"id":"a","type":"reading.submit","body":{"readings":[]}}"#,
        #"{"v":1,"id":"","type":"reading.submit","body":{"readings":[]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","key":"","body":{"readings":[]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","key":5,"body":{"readings":[]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit"}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":"none"}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[]}} trailing"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"a\u","parameter":"p","ts":"t","value":1}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"\udc00","parameter":"p","ts":"t","value":1}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"tab\#tinside","parameter":"p","ts":"t","value":1}]}}"#,
        #"{"v":1,"id":"a","type":"task.get","body":{"note":"reading.submit"}}"#,
        // A mark or limit of another type, "NaN" on a marked reading: the JSONDecoder path names the problem.
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","value":1,"mark":5}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","#
            + #""mark":"below_detection","detection_limit":"x"}]}}"#,
        #"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":"s","parameter":"p","ts":"t","#
            + #""mark":"maintenance","value":"NaN"}]}}"#,
    ])
    func anythingUnusualTakesTheJSONDecoderPath(frame: String) {
        #expect(Self.table.decodeFast(Data(frame.utf8)) == nil, "\(frame)")
        // And the table as a whole still answers it the way JSONDecoder does.
        switch (Result { try Self.table.decode(Data(frame.utf8)) }, Self.slow(frame)) {
        case (.success(let a), .success(let b)): #expect(a.id == b.id && a.type == b.type)
        case (.failure(let a as RequestDecodingFailure), .failure(let b)): #expect(a.error == b.error && a.re == b.re)
        default: Issue.record("fast and slow disagree on \(frame)")
        }
    }

    /// Idempotency fingerprints: an unmarked reading's bytes are what they were before marks (a retry
    /// across the upgrade matches its key); a mark or a limit changes them.
    @Test func marksChangeTheFingerprintAndUnmarkedReadingsKeepTheirs() {
        func bytes(_ readings: [SubmittedReading]) -> [UInt8] {
            var out: [UInt8] = []
            ReadingSubmitRequest(readings: readings).fingerprint(into: &out)
            return out
        }
        let plain = SubmittedReading(station: "s", parameter: "p", ts: "t", value: 1.5)
        var before: [UInt8] = []
        for text in ["s", "p", "t", "\u{1}", "\u{1}"] { before += Array(text.utf8) + [0] }
        withUnsafeBytes(of: (1.5).bitPattern.littleEndian) { before += $0 }
        #expect(bytes([plain]) == before)
        var variants: [[SubmittedReading]] = [[plain]]
        for (mark, limit) in [("maintenance", nil), ("calibration", nil), ("below_detection", 0.01), ("below_detection", 0.02)] {
            var marked = plain
            marked.mark = mark
            marked.detectionLimit = limit
            variants.append([marked])
        }
        #expect(Set(variants.map(bytes)).count == variants.count)
    }

    /// The type is the one the frame has, whichever other type names its body mentions.
    @Test func theFramesOwnTypeDecidesNotANameInItsBody() throws {
        let frame = Data(#"{"v":1,"id":"a","type":"sys.ping","body":{"note":"reading.submit"}}"#.utf8)
        for _ in 0..<20 {
            let decoded = try #require(Self.table.decodeFast(frame))
            #expect(decoded.type == "sys.ping" && decoded.body is Empty)
        }
    }

    /// FoundationEssentials' JSONDecoder traps (the process dies) when the 513th level of nesting
    /// opens with a `[` that is the last byte, or the last but a `\r`; it reads UTF-16 and UTF-32
    /// too. `fuzz-envelope` found a 527-byte frame that killed every service. Every depth around the
    /// limit, cut after a bracket, in each encoding JSONDecoder reads, is `bad_frame`; the decoders
    /// of replies and events refuse it too. Before the guard this test crashed the run.
    @Test func aFrameCutAtTheNestingLimitIsRefusedNotACrash() {
        let encodings: [String.Encoding] = [.utf8, .utf16LittleEndian, .utf16BigEndian, .utf32LittleEndian, .utf32BigEndian]
        let prefixes = ["", #"{"v":1,"id":"deep","type":"sys.ping","body":{"x":"#, #"{"v":1,"id":"deep","type":"reading.submit","body":"#]
        for depth in 505...520 {
            for prefix in prefixes {
                for ending in ["", "\r", " \r\n"] {
                    for encoding in encodings {
                        let text = prefix + String(repeating: "[", count: depth) + ending
                        guard let frame = text.data(using: encoding) else { continue }
                        do {
                            _ = try Self.table.decode(frame)
                            Issue.record("\(depth) brackets after \(prefix) decoded")
                        } catch {
                            #expect(error.error.code == .badFrame, "\(depth): \(error.error)")
                        }
                        #expect(throws: (any Error).self) {
                            try FastJSONDecoding.decodeOrFallBack(ReplyEnvelope<JSONValue>.self, from: frame)
                        }
                        #expect(throws: DecodingError.self) { try JSONDecoder().decode(JSONValue.self, fromUntrusted: frame) }
                    }
                }
            }
        }
    }

    /// PROTOCOL.md: a frame is UTF-8. JSONDecoder alone would read a request in UTF-16 or UTF-32.
    @Test func aRequestInUTF16OrUTF32IsBadFrame() throws {
        let ping = #"{"v":1,"id":"p","type":"sys.ping","body":{}}"#
        #expect((try? Self.table.decode(Data(ping.utf8))) != nil)
        for encoding: String.Encoding in [.utf16LittleEndian, .utf16BigEndian, .utf16, .utf32LittleEndian, .utf32BigEndian] {
            let frame = try #require(ping.data(using: encoding))
            #expect(throws: RequestDecodingFailure.self) { try Self.table.decode(frame) }
        }
    }

    @Test func invalidUTF8IsLeftToJSONDecoder() {
        var frame = Data(#"{"v":1,"id":"a","type":"reading.submit","body":{"readings":[{"station":""#.utf8)
        frame.append(contentsOf: [0xFF, 0xFE])
        frame.append(contentsOf: Data(#"","parameter":"p","ts":"t","value":1}]}}"#.utf8))
        #expect(Self.table.decodeFast(frame) == nil)
    }

    /// Strings are made by decoding, which repairs invalid UTF-8; every repair must still be a
    /// refusal. Among these, a truncated four-byte sequence repairs to one U+FFFD of the same
    /// length, and some invalid bytes sit after an escape (the other path).
    @Test(
        arguments: [
            [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x98], [0xE4, 0xB8], [0xF4, 0x90, 0x80, 0x80], [0x80],
        ] as [[UInt8]])
    func invalidUTF8InAnyStringIsRefused(bytes: [UInt8]) {
        for (before, after) in [("", ""), ("督办", ""), ("a\\n", "治理"), (String(repeating: "长", count: 40), "x")] {
            var document = Data(#"{"key":""#.utf8)
            document.append(contentsOf: Data(before.utf8))
            document.append(contentsOf: bytes)
            document.append(contentsOf: Data(after.utf8))
            document.append(contentsOf: Data(#""}"#.utf8))
            #expect(FastJSON.parse(document) == nil, "\(bytes) after \(before)")
            #expect(FastJSON.topLevelString("key", in: document) == nil)
        }
        let valid = "督办 ✓ 😀 a\\n六一桥"
        let parsed = FastJSON.parse(Data(#"{"key":"\#(valid)"}"#.utf8))?["key"]?.string
        #expect(parsed == "督办 ✓ 😀 a\n六一桥")
    }

    /// Random batches in random layouts: the fast path and JSONDecoder agree on every one.
    @Test func randomBatchesAgree() throws {
        var generator = SystemRandomNumberGenerator()
        let stations = ["liuyiqiao", "chengzhong_air", "站点\"甲\"", "a\\b", "tab\tx"]
        for round in 0..<200 {
            var readings: [SubmittedReading] = []
            for _ in 0..<Int.random(in: 0...20, using: &generator) {
                let value: Double = [
                    Double.random(in: -1e6...1e6, using: &generator), Double(Int.random(in: -1000...1000)), 1e-7, 0.1 + 0.2,
                ][Int.random(in: 0...3)]
                // Some marked, some of those without a value (NaN: encoded as no member at all).
                let mark = [nil, nil, "below_detection", "maintenance", "stopped"].randomElement()!
                readings.append(
                    SubmittedReading(
                        station: stations.randomElement()!, parameter: ["pm25", "nh3n", "hg"].randomElement()!,
                        ts: "2026-11-20T08:00:00+08:00", value: mark != nil && Bool.random() ? .nan : value,
                        unit: Bool.random() ? nil : "µg/L", flag: Bool.random() ? nil : "revision", mark: mark,
                        detectionLimit: mark == "below_detection" ? 0.01 : nil))
            }
            let envelope = RequestEnvelope(
                type: "reading.submit", from: "站\(round)", key: "k\(round)", body: ReadingSubmitRequest(readings: readings))
            let encoder = JSONEncoder()
            encoder.outputFormatting = round % 2 == 0 ? [.prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
            let frame = try encoder.encode(envelope)
            let fast = try #require(Self.table.decodeFast(frame))
            guard case .success(let slow) = Self.slow(String(decoding: frame, as: UTF8.self)) else {
                Issue.record("slow refused")
                return
            }
            #expect(Self.same(fast, slow))
        }
    }

    /// `re` is read off every reply on the client's socket thread without parsing the body; it must
    /// read what a full parse reads, wherever the member is and whatever comes before it.
    @Test func aTopLevelMemberIsReadWithoutTheRest() throws {
        #expect(FastJSON.topLevelString("re", in: Data(#"{"v":1,"id":"a","re":"r-1","body":{"re":"inner"}}"#.utf8)) == "r-1")
        #expect(FastJSON.topLevelString("re", in: Data(#"{"body":{"re":"inner","x":[1,{"re":"y"}]},"re":"r-2"}"#.utf8)) == "r-2")
        #expect(FastJSON.topLevelString("re", in: Data(#" { "s" : "a\"re\":\"no" , "re" : "r\u00e9" } "#.utf8)) == "ré")
        #expect(FastJSON.topLevelString("re", in: Data(#"{"re":null}"#.utf8)) == nil)
        #expect(FastJSON.topLevelString("re", in: Data(#"{"x":1}"#.utf8)) == nil)
        #expect(FastJSON.topLevelString("re", in: Data(#"["re","x"]"#.utf8)) == nil)
        #expect(FastJSON.topLevelString("re", in: Data(#"{"x":tru"#.utf8)) == nil)
        var generator = SystemRandomNumberGenerator()
        let values = [
            #"1"#, #"-2.5e3"#, #"true"#, #"null"#, #""a,b}""#, #""\"}""#, #"{"re":"deep","a":[1,2,{"b":"]"}]}"#, #"[]"#, #"{}"#, #""中文""#,
        ]
        for _ in 0..<300 {
            var members = (0..<Int.random(in: 0...6, using: &generator)).map { index in
                "\"k\(index)\":\(values.randomElement(using: &generator)!)"
            }
            let re = "r-\(Int.random(in: 0...1_000_000, using: &generator))"
            members.insert("\"re\":\"\(re)\"", at: Int.random(in: 0...members.count, using: &generator))
            let document = Data(("{" + members.joined(separator: Bool.random(using: &generator) ? "," : " , ") + "}").utf8)
            #expect(FastJSON.parse(document)?["re"]?.string == re)
            #expect(FastJSON.topLevelString("re", in: document) == re)
        }
    }

    /// Envelopes written by hand read back as JSONDecoder reads what JSONEncoder writes.
    @Test func handWrittenEnvelopesAreValidJSON() throws {
        let awkward = "区生态环境局 \"引号\" back\\slash\ttab\nline \u{01}"
        let request = EnvelopeWriter.request(id: "i-1", type: "task.get", from: awkward, key: "k", body: Data(#"{"id":"7.3"}"#.utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: request) as? [String: Any])
        #expect(
            object["from"] as? String == awkward && object["id"] as? String == "i-1" && object["key"] as? String == "k"
                && object["v"] as? Int == 1)
        #expect((object["body"] as? [String: Any])?["id"] as? String == "7.3")
        let reply = EnvelopeWriter.reply(type: awkward, re: nil, ok: true, payload: Data("{}".utf8))
        let replyObject = try #require(try JSONSerialization.jsonObject(with: reply) as? [String: Any])
        #expect(replyObject["type"] as? String == awkward && replyObject["re"] is NSNull)
    }

    @Test func messageIDsAreVersion4UUIDsAndDoNotRepeat() {
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = MessageID.next()
            let uuid = UUID(uuidString: id)
            #expect(uuid != nil && uuid!.uuidString.lowercased() == id)
            let characters = Array(id)
            #expect(characters[14] == "4" && "89ab".contains(characters[19]))
            seen.insert(id)
        }
        #expect(seen.count == 20_000)
    }
}
