import DubanTesting
import Foundation
import GRDB
import Logging
import Schema
import ServiceKit
import Testing

@testable import Notifications

/// The outbox's deliverer against a real HTTP receiver: what is marked sent is exactly what the
/// receiver got, and no notice is lost to a send in flight, a failure or a crash.
@Suite(.serialized) struct DeliveryTests {
    /// A webhook receiver (Tests/clients/webhook_receiver.py) that fails its first `failures`
    /// requests and waits `delay` seconds before answering each, or answers each with a redirect.
    struct Receiver {
        let process: Process
        let port: Int
        let log: String

        init(
            directory: String, failures: Int = 0, delay: Double = 0, redirect: String = "", answer: String = "", name: String = "webhook"
        ) async throws {
            port = TestSupport.freePort()
            log = "\(directory)/\(name).jsonl"
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("clients/webhook_receiver.py")
            process.arguments = ["python3", script.path, "\(port)", log, "\(failures)", "\(delay)", redirect, answer]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let port = self.port
            _ = await TestSupport.eventually(timeout: .seconds(5)) { HostileClients.accepts(port: port) }
        }

        /// The notice ids of each request received, in order, with its delivery id.
        func requests() throws -> [(delivery: String, notices: [String], status: Int)] {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
            return try text.split(separator: "\n").map { line in
                let json = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
                let notices = json["body"]?["notices"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
                return (json["delivery"]?.stringValue ?? "", notices, json["status"]?.intValue ?? 0)
            }
        }

        /// Each request as the receiver logged it: `n`, `status`, `delivery`, `path`, `host`, `body`.
        func lines() throws -> [JSONValue] {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
            return try text.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        }

        func stop() { kill(process.processIdentifier, SIGKILL) }
    }

    struct Fixture {
        let store: ServiceStore
        let deliverer: Deliverer
        let channel: Schema.Channel
        let webhooks: WebhookClient

        /// A deliverer whose allow-list names the receivers' loopback address, run for `body` and
        /// shut down after it, however it ends.
        static func with<T>(
            directory: String, port: Int, retryBaseSeconds: Double = 0.05, kind: ChannelKind = .webhook,
            _ body: (Fixture) async throws -> T
        ) async throws -> T {
            let fixture = try Fixture(directory: directory, port: port, retryBaseSeconds: retryBaseSeconds, kind: kind)
            fixture.webhooks.start()
            do {
                let result = try await body(fixture)
                try await fixture.webhooks.stop()
                return result
            } catch {
                try? await fixture.webhooks.stop()
                throw error
            }
        }

        private init(directory: String, port: Int, retryBaseSeconds: Double, kind: ChannelKind) throws {
            store = try ServiceStore(
                path: "\(directory)/notify.sqlite", stream: "notify", origin: "notify", migrations: NotifyService.migrations)
            var rules = NotifyRules()
            rules.retryBaseSeconds = retryBaseSeconds
            webhooks = WebhookClient()
            let policy = ChannelPolicy(
                files: FileChannelDirectory(path: "\(directory)/channels"), webhooks: try WebhookAllowList(["127.0.0.1/32"]))
            try policy.files.prepare()
            deliverer = Deliverer(
                store: store, rules: rules, clock: ServiceClock(), logger: Logger(label: "test.delivery"), policy: policy,
                webhooks: webhooks)
            channel = Schema.Channel(name: "水环境群", kind: kind, target: "http://127.0.0.1:\(port)/hook")
            let definition = try WireCoding.encode(channel)
            try store.pool.write { db in
                try db.execute(
                    sql: "INSERT INTO channels (name, definition, updated_at) VALUES (?, ?, ?)",
                    arguments: [channel.name, definition, Timestamp.now()])
            }
        }

        /// Issues one notice for 区生态环境局 and returns its id.
        func issue(_ title: String) async throws -> String {
            let channel = self.channel
            let notices = try await store.write { db, events in
                try NotifyStore.issue(
                    [
                        NoticeDraft(
                            kind: .indicatorBreach, severity: .warning, units: ["区生态环境局"], title: title, text: "\(title)：六一桥氨氮超标",
                            refs: NoticeRefs(), dedupKey: "test:\(title)")
                    ], db: db, events: &events, now: Date(), channels: [channel])
            }
            return notices[0].id
        }

        func log() async throws -> [DeliveryAttempt] {
            try await store.pool.read { db in try NotifyStore.deliveries(db, DeliveryListRequest()) }
        }
    }

    @Test func aNoticeIssuedWhileASendIsInFlightGoesIntoTheNextDigest() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await Receiver(directory: dir, delay: 1.5)
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port) { fixture in
            let first = try await fixture.issue("第一条")
            async let round: Void = fixture.deliverer.deliverDue()
            // The first digest is at the receiver, which takes 1.5 s to answer.
            #expect(await TestSupport.eventually(timeout: .seconds(5)) { (try? receiver.requests().count) == 1 })
            let second = try await fixture.issue("第二条")
            try await round

            var log = try await fixture.log()
            #expect(log.count == 1)
            #expect(log.first?.ok == true)
            #expect(log.first?.notices == [first], "the delivery log names only what the payload held")
            #expect(try receiver.requests().map(\.notices) == [[first]])

            try await fixture.deliverer.deliverDue()
            log = try await fixture.log()
            #expect(log.map(\.notices) == [[first], [second]])
            #expect(log.allSatisfy { $0.ok })
            #expect(try receiver.requests().map(\.notices) == [[first], [second]], "the second notice was sent, not only marked")
        }
    }

    @Test func aFailingWebhookGetsEveryNoticeOnceItRecoversAndTheLogSaysEachAttempt() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await Receiver(directory: dir, failures: 2)
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port) { fixture in
            let first = try await fixture.issue("第一条")
            try await fixture.deliverer.deliverDue()
            // Issued after the first attempt failed: the failed digest is sealed, so this one waits
            // for a digest of its own instead of riding on a retry that never said it.
            let second = try await fixture.issue("第二条")
            #expect(
                await TestSupport.eventually(timeout: .seconds(10)) {
                    try? await fixture.deliverer.deliverDue()
                    return (try? await fixture.log().filter(\.ok).count) == 2
                })
            let log = try await fixture.log()
            #expect(log.filter { !$0.ok }.count == 2, "the receiver failed exactly two requests")
            #expect(Set(log.filter(\.ok).map(\.notices)) == [[first], [second]])
            let received = try receiver.requests()
            #expect(received.filter { $0.status == 200 }.map(\.notices).sorted { $0.joined() < $1.joined() } == [[first], [second]])
            // Every attempt's log line names what that attempt's payload held.
            for attempt in log {
                let sent = received.filter { $0.delivery == "\(attempt.delivery)" }.map(\.notices)
                #expect(sent.allSatisfy { $0 == attempt.notices })
            }
        }
    }

    @Test func aCrashBetweenSendAndRecordSendsTheSameDigestAgain() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await Receiver(directory: dir)
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port) { fixture in
            let first = try await fixture.issue("第一条")
            // A round that sealed the digest and sent it, then died before recording the result.
            let digest = try await fixture.store.pool.write { db -> Int64 in
                try db.execute(sql: "UPDATE outbox SET sealed = 1")
                return try Int64.fetchOne(db, sql: "SELECT id FROM outbox")!
            }
            let notice = try await fixture.store.pool.read { db in try NotifyStore.fetch(db, id: first)! }
            let result = await fixture.deliverer.send([notice], delivery: digest, unit: "区生态环境局", channel: fixture.channel)
            #expect(result.ok)
            // Joins nothing sealed: it goes into a digest of its own.
            let second = try await fixture.issue("第二条")

            // After the restart, the same digest goes again (at least once), under the same delivery id:
            // the outbox is all the deliverer keeps.
            let restarted = fixture
            try await restarted.deliverer.deliverDue()
            let received = try receiver.requests()
            #expect(received.map(\.notices) == [[first], [first], [second]])
            #expect(received[0].delivery == received[1].delivery)
            #expect(try await restarted.log().map(\.notices) == [[first], [second]])
        }
    }

    @Test func aRedirectIsNotFollowedAndIsAFailedDelivery() async throws {
        let dir = try TestSupport.temporaryDirectory()
        // Where a sender that follows redirects would end up: it must hear nothing.
        let elsewhere = try await Receiver(directory: dir, name: "elsewhere")
        defer { elsewhere.stop() }
        let receiver = try await Receiver(directory: dir, redirect: "http://127.0.0.1:\(elsewhere.port)/stolen")
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port) { fixture in
            let notice = try await fixture.issue("重定向")
            try await fixture.deliverer.deliverDue()
            let log = try await fixture.log()
            #expect(log.count == 1)
            #expect(log.first?.ok == false && log.first?.status == 302, "\(log)")
            #expect(log.first?.notices == [notice])
            #expect(log.first?.error?.contains("重定向") == true)
            #expect(try receiver.requests().count == 1)
            #expect(try elsewhere.requests().isEmpty, "the redirect was not followed")
        }
    }

    /// A robot's answer is read for its `errcode`. JSONDecoder kills the process on a document whose
    /// 513th level of nesting opens with its last byte (or the last but a CR): an endpoint answering that is one delivery
    /// with an answer that is not JSON, not a dead notifier (this test ran the deliverer in its
    /// own process: before the guard it crashed the run).
    @Test(arguments: ["", "\r"])
    func aRobotAnsweringWhatKillsJSONDecoderIsOneDeliveryNotACrash(ending: String) async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await Receiver(directory: dir, answer: String(repeating: "[", count: 513) + ending)
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port, kind: .wecom) { fixture in
            let notice = try await fixture.issue("机器人")
            try await fixture.deliverer.deliverDue()
            let log = try await fixture.log()
            #expect(log.count == 1 && log.first?.status == 200 && log.first?.notices == [notice], "\(log)")
            #expect(try receiver.lines().count == 1)
        }
    }

    @Test func aFileTargetThatALinkPlantedLaterLeadsOutOfTheDirectoryIsAFailedDeliveryAndNoWrite() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let outside = try TestSupport.temporaryDirectory()
        try await Fixture.with(directory: dir, port: TestSupport.freePort()) { fixture in
            let file = Schema.Channel(name: "台账文件", kind: .file, target: "eco/notices.jsonl")
            try fixture.deliverer.policy.files.validate(file.target)
            try await fixture.store.pool.write { db in
                try db.execute(sql: "DELETE FROM channels")
                try db.execute(
                    sql: "INSERT INTO channels (name, definition, updated_at) VALUES (?, ?, ?)",
                    arguments: [file.name, try WireCoding.encode(file), Timestamp.now()])
            }
            func issue(_ title: String) async throws -> String {
                try await fixture.store.write { db, events in
                    try NotifyStore.issue(
                        [
                            NoticeDraft(
                                kind: .indicatorBreach, severity: .warning, units: ["区生态环境局"], title: title, text: title,
                                refs: NoticeRefs(), dedupKey: "test:\(title)")
                        ], db: db, events: &events, now: Date(), channels: [file])
                }[0].id
            }
            let first = try await issue("第一条")
            try await fixture.deliverer.deliverDue()
            #expect(try String(contentsOfFile: "\(dir)/channels/eco/notices.jsonl", encoding: .utf8).contains(first))
            // Someone with access to the directory swaps `eco` for a link out of it.
            try FileManager.default.removeItem(atPath: "\(dir)/channels/eco")
            try FileManager.default.createSymbolicLink(atPath: "\(dir)/channels/eco", withDestinationPath: outside)
            let second = try await issue("第二条")
            try await fixture.deliverer.deliverDue()
            let log = try await fixture.log()
            #expect(log.map(\.ok) == [true, false])
            #expect(log.last?.notices == [second] && log.last?.error?.contains("渠道目录之外") == true, "\(log)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "nothing was written outside")
        }
    }

    @Test func aTargetTheAllowListDoesNotCoverIsNotSentTo() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let receiver = try await Receiver(directory: dir)
        defer { receiver.stop() }
        try await Fixture.with(directory: dir, port: receiver.port) { fixture in
            // Stored by hand (channel.set would refuse it): a loopback address the list does not name.
            let stray = Schema.Channel(name: "未授权", kind: .webhook, target: "http://127.0.0.2:\(receiver.port)/hook")
            try await fixture.store.pool.write { db in
                try db.execute(sql: "DELETE FROM channels")
                try db.execute(
                    sql: "INSERT INTO channels (name, definition, updated_at) VALUES (?, ?, ?)",
                    arguments: [stray.name, try WireCoding.encode(stray), Timestamp.now()])
            }
            let notice = try await fixture.store.write { db, events in
                try NotifyStore.issue(
                    [
                        NoticeDraft(
                            kind: .indicatorBreach, severity: .warning, units: ["区生态环境局"], title: "未授权", text: "未授权地址",
                            refs: NoticeRefs(), dedupKey: "test:stray")
                    ], db: db, events: &events, now: Date(), channels: [stray])
            }[0]
            try await fixture.deliverer.deliverDue()
            let log = try await fixture.log()
            #expect(log.map(\.notices) == [[notice.id]])
            #expect(log.first?.ok == false && log.first?.status == nil)
            #expect(log.first?.error?.hasPrefix("未发送") == true, "\(log)")
            #expect(try receiver.requests().isEmpty)
        }
    }
}
