import Foundation
import Testing

@testable import Schema

/// The types that read themselves from the tree (`TreeReadable`) must read a document exactly as
/// their synthesized `init(from:)` does with JSONDecoder: the same value for what both accept, and
/// nothing JSONDecoder refuses. Each sample is encoded, then every member at every depth is removed,
/// set to null and set to a value of each other JSON type, and the two readings compared.
@Suite struct TreeReadableTests {
    static let report = ProgressReport(
        task: "7.3", period: "2026-10", unit: "区生态环境局", percent: 62.5, summary: "完成排污口溯源", measures: "逐一排查",
        problems: nil, nextSteps: "继续整治",
        evidence: [EvidenceRef(name: "整治照片", uri: "file://a.jpg", sha256: String(repeating: "a", count: 64))],
        revision: 2, reportedAt: "2026-10-25T10:00:00+08:00", reportedBy: "张三", principal: "clerk-1", principalKey: "k", backfill: true)

    static var fullTask: PlanTask {
        var task = PlanTask(
            id: "7.3", parent: "7", category: "（三）持续深入打好污染防治攻坚战", title: "以湟水流域为重点，加快推进入河排污口排查整治",
            text: "以湟水流域为重点……", leadUnits: ["区生态环境局"], cooperatingUnits: ["区城乡建设局", "各涉河镇办"],
            deadline: "2025-12-31", ongoing: false,
            milestones: [Milestone(date: "2024-12-31", text: "2024年底前，完成全部排污口溯源及整治任务", percent: 50)],
            targets: ["w1"], subtasks: ["7.3.1"], status: .overdue)
        task.reasons = [
            StatusReason(
                code: "deadline_passed", text: "已过完成时限2025年12月底，进度0%", period: "2025-12", units: ["区生态环境局"], progress: 0,
                expected: 100, date: "2025-12-31", task: "7.3.1", status: .lagging)
        ]
        task.reasons?[0].open = 3
        task.reasons?[0].total = 7
        task.deadlineText = "2025年12月底"
        task.progress = 12.5
        task.latestReports = [report]
        task.ledger = TaskLedger(sources: [.outfall], expected: 237, registered: 200, closed: 196, open: 4, overdue: 1)
        return task
    }

    static let minimalTask = PlanTask(
        id: "1", category: "（一）", title: "t", text: "x", leadUnits: [], cooperatingUnits: [], deadline: nil, ongoing: true)

    static let ping = PingReply(
        service: "registry", instance: "registry", version: "2.0", started: "2026-11-30T00:00:00Z", streams: ["registry": 26, "x": 0],
        security: "none")

    @Test func samplesReadAsJSONDecoderReadsThem() throws {
        try expectSameReadings(Self.fullTask)
        try expectSameReadings(Self.minimalTask)
        try expectSameReadings(Self.ping)
        try expectSameReadings(Self.report)
        try expectSameReadings([Self.fullTask, Self.minimalTask])
    }

    @Test func everyMemberChangedReadsAsJSONDecoderReadsIt() throws {
        try expectSameUnderMutation(Self.fullTask)
        try expectSameUnderMutation(Self.minimalTask)
        try expectSameUnderMutation(Self.ping)
    }

    @Test func aTypedReplyIsReadFromTheTree() throws {
        let frame =
            Data(
                #"{"v":1,"id":"a","type":"task.get","re":"r","ts":"2026-11-30T00:00:00Z","ok":true,"body":"#.utf8)
            + (try WireCoding.encode(Self.fullTask)) + Data("}".utf8)
        #expect(FastJSONDecoding.replyBody(PlanTask.self, from: frame) == Self.fullTask)
    }

    /// Encoded, the sample reads back to itself both ways.
    func expectSameReadings<T: Codable & Equatable>(_ value: T) throws {
        let data = try WireCoding.encode(value)
        #expect(try JSONDecoder().decode(T.self, from: data) == value)
        #expect(FastJSONDecoding.decode(T.self, from: data) == value)
    }

    func expectSameUnderMutation<T: Codable & Equatable>(_ value: T) throws {
        let tree = try JSONDecoder().decode(JSONValue.self, from: WireCoding.encode(value))
        let replacements: [JSONValue?] = [
            nil, .null, .string("x"), .number(7), .number(1.5), .number(-0.0), .bool(true), .array([]), .object([:]),
            .array([.string("outfall")]), .string("overdue"),
        ]
        var compared = 0
        for path in Self.paths(in: tree) {
            for replacement in replacements {
                let document = try WireCoding.encode(Self.replacing(path, in: tree, with: replacement))
                let expected = try? JSONDecoder().decode(T.self, from: document)
                let fast = FastJSONDecoding.decode(T.self, from: document)
                let text = String(decoding: document.prefix(400), as: UTF8.self)
                if let fast {
                    #expect(expected == fast, "\(path) → \(String(describing: replacement)): \(text)")
                } else {
                    #expect(expected == nil, "the fast path left a document JSONDecoder reads: \(path): \(text)")
                }
                compared += 1
            }
        }
        #expect(compared > 50)
    }

    /// Every member and element, by its path of keys and indices.
    static func paths(in value: JSONValue, under prefix: [PathStep] = []) -> [[PathStep]] {
        switch value {
        case .object(let members):
            return members.keys.sorted().flatMap { key in [prefix + [.key(key)]] + paths(in: members[key]!, under: prefix + [.key(key)]) }
        case .array(let items):
            return items.indices.flatMap { index in [prefix + [.index(index)]] + paths(in: items[index], under: prefix + [.index(index)]) }
        default:
            return []
        }
    }

    enum PathStep: CustomStringConvertible {
        case key(String)
        case index(Int)
        var description: String {
            switch self {
            case .key(let key): return key
            case .index(let index): return "[\(index)]"
            }
        }
    }

    /// The document with the value at `path` replaced, or removed when `replacement` is nil.
    static func replacing(_ path: [PathStep], in value: JSONValue, with replacement: JSONValue?) -> JSONValue {
        guard let step = path.first else { return replacement ?? .null }
        let rest = Array(path.dropFirst())
        switch (step, value) {
        case (.key(let key), .object(var members)):
            if rest.isEmpty && replacement == nil {
                members[key] = nil
            } else if let member = members[key] {
                members[key] = replacing(rest, in: member, with: replacement)
            }
            return .object(members)
        case (.index(let index), .array(var items)):
            if rest.isEmpty && replacement == nil {
                items.remove(at: index)
            } else {
                items[index] = replacing(rest, in: items[index], with: replacement)
            }
            return .array(items)
        default:
            return value
        }
    }
}
