import ArgumentParser
import Foundation
import Logging
import Messaging
import Schema

#if canImport(Glibc)
    import Glibc
#endif

/// A subscriber that persists its cursor, as a real consumer of Duban's events would, to be killed
/// at random by `chaos`. Its log is both the record of what it delivered and its cursor: one line
/// `STREAM SEQ` per event, appended with one write(2) each (a SIGKILL cannot split a write to a
/// regular file), so on restart the last line of each stream is where it resumes. A line cut short
/// by a crash of the machine (not a kill) is dropped on restart.
struct SubscriberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscriber", abstract: "A subscriber with a persisted cursor (used by chaos).")

    @Option(help: "The events endpoint (the broker's XPUB, or a service's PUB).") var events: String
    @Option(help: "The rpc endpoint for catch-up (events.since) and heads (sys.ping).") var rpc: String
    @Option(help: "The delivery log, which is also the cursor.") var log: String
    @Option(help: "Its name (the `from` of its requests).") var name = "chaos-subscriber"

    func run() async throws {
        let cursor = try Self.resume(log)
        var logger = Logger(label: "duban.chaos.subscriber")
        logger.logLevel = .warning
        let subscriber = try await EventSubscriber.start(
            events: events, rpc: rpc, from: cursor.isEmpty ? .beginning : .after(cursor), heartbeat: .milliseconds(500), name: name,
            logger: logger)
        let fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot open \(log)") }
        for await event in subscriber.events {
            let line = Array("\(event.stream) \(event.seq)\n".utf8)
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count else { throw ValidationError("cannot append to \(log)") }
        }
    }

    /// The last `seq` of each stream in a delivery log; a trailing partial line is cut off.
    static func resume(_ path: String) throws -> [String: Int] {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return [:] }
        var text = String(decoding: data, as: UTF8.self)
        if !text.hasSuffix("\n") {
            text = String(text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)])
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        return cursor(text)
    }

    /// The last `seq` of each stream in a log's complete lines.
    static func cursor(_ text: String) -> [String: Int] {
        var cursor: [String: Int] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let parts = line.split(separator: " ")
            if parts.count == 2, let seq = Int(parts[1]) { cursor[String(parts[0])] = seq }
        }
        return cursor
    }

    /// What a delivery log shows against the streams' heads: per stream, events missing and events
    /// delivered more than once (or out of order).
    struct Audit {
        var delivered = 0
        var missing = 0
        var repeated = 0
        var outOfOrder = 0
    }

    static func audit(_ path: String, heads: [String: Int]) -> Audit {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var audit = Audit()
        var seen: [String: Set<Int>] = [:]
        var last: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let seq = Int(parts[1]) else { continue }
            let stream = String(parts[0])
            audit.delivered += 1
            if !seen[stream, default: []].insert(seq).inserted { audit.repeated += 1 }
            if let previous = last[stream], seq != previous + 1 { audit.outOfOrder += 1 }
            if last[stream] == nil, seq != 1 { audit.outOfOrder += 1 }
            last[stream] = seq
        }
        for (stream, head) in heads {
            let got = seen[stream] ?? []
            audit.missing += (1...max(head, 1)).filter { head > 0 && !got.contains($0) }.count
        }
        return audit
    }

    /// How far a log has got in each stream.
    static func positions(_ path: String) -> [String: Int] { cursor((try? String(contentsOfFile: path, encoding: .utf8)) ?? "") }
}
