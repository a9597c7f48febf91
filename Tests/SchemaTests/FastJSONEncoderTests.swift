import Foundation
import Testing

@testable import Schema

/// What the client's encoder writes must read back through JSONDecoder (and the services' fast
/// path) to the value it was given; whatever it cannot be sure of, it leaves to JSONEncoder.
@Suite struct FastJSONEncoderTests {
    struct Inner: Codable, Equatable {
        var name: String
        var values: [Double]
        var flag: Bool?
    }

    struct Sample: Codable, Equatable {
        var text: String
        var count: Int
        var big: Int64
        var unsigned: UInt64
        var small: Int8
        var ratio: Double
        var single: Float
        var optional: String?
        var inner: Inner
        var list: [Inner]
        var map: [String: Int]
        var numbered: [Int: String]
        var nested: [[String]]
        var status: TaskStatus
        var any: JSONValue
    }

    static let sample = Sample(
        text: "以湟水流域为重点 \"引号\" \\ 斜杠/ \n\r\t\u{01}\u{1F} 😀 end", count: -42, big: Int64.min, unsigned: UInt64.max, small: -128,
        ratio: -0.0, single: 0.1, optional: nil,
        inner: Inner(name: "", values: [1.5, 1e-7, 1e300, 123_456_789.125, 7], flag: false),
        list: [Inner(name: "a", values: [], flag: nil), Inner(name: "b", values: [-1], flag: true)], map: ["区生态环境局": 1, "": 0],
        numbered: [1: "一", -3: "负三"], nested: [[], ["x"], ["y", "z"]], status: .awaitingAcceptance,
        any: .object(["a": .array([.null, .bool(true), .number(2.5), .string("s")]), "b": .object([:])]))

    @Test func aValueReadsBackToItself() throws {
        let data = try #require(FastJSONEncoding.encode(Self.sample))
        #expect(try JSONDecoder().decode(Sample.self, from: data) == Self.sample)
        // The services read bodies with FastJSON first: it must take these bytes as JSON too.
        #expect(FastJSON.parse(data) != nil)
        // Its tree decoder leaves some of this to JSONDecoder (integers past 2^53, inexact floats);
        // what it reads must be the value.
        if let read = FastJSONDecoding.decode(Sample.self, from: data) { #expect(read == Self.sample) }
    }

    @Test func requestBodiesReadBackToThemselves() throws {
        let bodies: [any Codable & Sendable] = [
            TaskGetRequest(id: "7.3"),
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "六一桥", parameter: "COD", ts: "2026-11-30T08:00:00+08:00", value: 12.5, unit: "mg/L")
            ]),
            Self.sample,
        ]
        for body in bodies {
            func check<T: Codable>(_ value: T) throws {
                let fast = try #require(FastJSONEncoding.encode(value))
                #expect(try WireCoding.canonical(JSONDecoder().decode(T.self, from: fast)) == WireCoding.canonical(value))
            }
            try check(body)
        }
    }

    @Test func theCompactFormIsWhatItSays() {
        #expect(FastJSONEncoding.encode(TaskGetRequest(id: "7.3")) == Data(#"{"id":"7.3"}"#.utf8))
        #expect(FastJSONEncoding.encode([1, -2, 0]) == Data("[1,-2,0]".utf8))
        #expect(FastJSONEncoding.encode("a\"b") == Data(#""a\"b""#.utf8))
    }

    @Test func whatItCannotBeSureOfIsLeftToJSONEncoder() throws {
        #expect(FastJSONEncoding.encode(Date(timeIntervalSince1970: 0)) == nil)
        #expect(FastJSONEncoding.encode(["d": Data([1, 2])]) == nil)
        #expect(FastJSONEncoding.encode([URL(string: "file:///x")!]) == nil)
        #expect(FastJSONEncoding.encode(Decimal(1)) == nil)
        #expect(FastJSONEncoding.encode([Double.nan]) == nil)
        #expect(FastJSONEncoding.encode(["x": Float.infinity]) == nil)
        #expect(FastJSONEncoding.encode(WritesNothing()) == nil)
        #expect(FastJSONEncoding.encode(SameKeyTwice()) == nil)
        #expect(FastJSONEncoding.encode(ClosedContainerReused()) == nil)
        #expect(FastJSONEncoding.encode(TwoContainers()) == nil)
        #expect(FastJSONEncoding.encode(UsesSuperEncoder()) == nil)
        #expect(FastJSONEncoding.encode(CatchesAndGoesOn()) == nil)
        // The fallback still gives JSONEncoder's answer.
        #expect(try FastJSONEncoding.encodeOrFallBack(Date(timeIntervalSince1970: 0)) == WireCoding.encode(Date(timeIntervalSince1970: 0)))
        #expect(throws: (any Error).self) { try FastJSONEncoding.encodeOrFallBack([Double.nan]) }
    }

    /// Members written after a sibling container opened are fine; going back to a closed one is not.
    @Test func containersOpenAndCloseAsEncodeFillsThem() throws {
        let data = try #require(FastJSONEncoding.encode(Siblings()))
        #expect(
            try JSONDecoder().decode(JSONValue.self, from: data)
                == JSONDecoder().decode(JSONValue.self, from: WireCoding.encode(Siblings())))
    }

    struct WritesNothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    struct SameKeyTwice: Encodable {
        enum Key: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(1, forKey: .a)
            try container.encode(2, forKey: .a)
        }
    }

    struct ClosedContainerReused: Encodable {
        enum Key: String, CodingKey { case a, b, c }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            var first = container.nestedContainer(keyedBy: Key.self, forKey: .a)
            var second = container.nestedUnkeyedContainer(forKey: .b)
            try second.encode(1)
            try first.encode(2, forKey: .c)
        }
    }

    struct TwoContainers: Encodable {
        enum Key: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var one = encoder.container(keyedBy: Key.self)
            try one.encode(1, forKey: .a)
            var two = encoder.unkeyedContainer()
            try two.encode(2)
        }
    }

    struct UsesSuperEncoder: Encodable {
        enum Key: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try "x".encode(to: container.superEncoder(forKey: .a))
        }
    }

    /// A refusal caught by the value's own code: JSONEncoder leaves the member out; a key with
    /// nothing after it (`{"x":,"y":1}`) must never be the answer.
    struct CatchesAndGoesOn: Encodable {
        enum Key: String, CodingKey { case x, y, z }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try? container.encode(Double.nan, forKey: .x)
            try? container.encode([Date(timeIntervalSince1970: 0)], forKey: .z)
            try container.encode(1, forKey: .y)
        }
    }

    struct Siblings: Encodable {
        enum Key: String, CodingKey { case a, b, c }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            var first = container.nestedContainer(keyedBy: Key.self, forKey: .a)
            try first.encode("x", forKey: .c)
            var second = container.nestedUnkeyedContainer(forKey: .b)
            try second.encode(1)
            var deeper = second.nestedContainer(keyedBy: Key.self)
            try deeper.encode(true, forKey: .a)
            try second.encode(2)
            try container.encode(3, forKey: .c)
        }
    }
}
