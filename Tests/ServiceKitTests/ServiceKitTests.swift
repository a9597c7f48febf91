import DubanTesting
import Foundation
import GRDB
import Logging
import Schema
import Testing

@testable import ServiceKit

@Suite struct FingerprintTests {
    @Test func knownVectors() {
        #expect(Fingerprint.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Fingerprint.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Fingerprint.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}

@Suite struct ServiceStoreTests {
    func makeStore(_ dir: String) throws -> ServiceStore {
        try ServiceStore(path: "\(dir)/test.sqlite", stream: "test", origin: "test") { migrator in
            migrator.registerMigration("t1") { db in try db.execute(sql: "CREATE TABLE things (name TEXT PRIMARY KEY NOT NULL)") }
        }
    }

    @Test func eventsAreContiguousAndSurviveReopening() async throws {
        let dir = try TestSupport.temporaryDirectory()
        do {
            let store = try makeStore(dir)
            for index in 1...3 {
                try await store.write { db, events in
                    try db.execute(sql: "INSERT INTO things VALUES (?)", arguments: ["t\(index)"])
                    try events.emit("test.thing.added", ["name": "t\(index)"])
                    try events.emit("test.thing.counted", ["count": index])
                }
            }
            #expect(try store.headsNow() == ["test": 6])
        }
        let reopened = try makeStore(dir)
        #expect(try reopened.headsNow() == ["test": 6])
        try await reopened.write { _, events in try events.emit("test.thing.touched", Empty()) }
        let page = try #require(try reopened.eventsNow(stream: "test", after: 0, limit: 100))
        let seqs = try page.envelopes.map { try JSONDecoder().decode(AnyEvent.self, from: $0).seq }
        #expect(seqs == Array(1...7))
        #expect(page.head == 7)
        #expect(try reopened.eventsNow(stream: "other", after: 0, limit: 10) == nil)
    }

    @Test func aFailedWriteLeavesNeitherChangeNorEvent() async throws {
        let store = try makeStore(try TestSupport.temporaryDirectory())
        await #expect(throws: ErrorBody.self) {
            try await store.write { db, events in
                try db.execute(sql: "INSERT INTO things VALUES ('x')")
                try events.emit("test.thing.added", ["name": "x"])
                throw ErrorBody.conflict("no")
            }
        }
        #expect(try store.headsNow() == ["test": 0])
        let count = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM things") }
        #expect(count == 0)
    }

    @Test func publishesOnlyAfterCommitInOrder() async throws {
        let store = try makeStore(try TestSupport.temporaryDirectory())
        let published = Published()
        store.setPublisher { topic, envelope in published.append(topic, envelope) }
        for index in 1...5 { try await store.write { _, events in try events.emit("test.n", ["n": index]) } }
        let seqs = try published.envelopes.map { try JSONDecoder().decode(AnyEvent.self, from: $0).seq }
        #expect(seqs == [1, 2, 3, 4, 5])
    }

    @Test func expiredKeysArePurged() async throws {
        let store = try makeStore(try TestSupport.temporaryDirectory())
        try await store.pool.write { db in
            try store.remember(db, key: "k", reply: .init(type: "t", fingerprint: "f", ok: true, payload: Data("{}".utf8)))
        }
        #expect(try await store.purgeExpiredKeys(now: Date()) == 0)
        #expect(try await store.purgeExpiredKeys(now: Date().addingTimeInterval(ServiceStore.keyRetention + 60)) == 1)
        #expect(try store.storedReplyNow(forKey: "k") == nil)
    }
}

final class Published: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(String, Data)] = []
    func append(_ topic: String, _ envelope: Data) { lock.withLock { items.append((topic, envelope)) } }
    var envelopes: [Data] { lock.withLock { items.map(\.1) } }
}

@Suite struct BindPolicyTests {
    @Test func onlyLoopbackTCPAndLocalTransportsMayGoWithoutKeys() throws {
        let endpoints = [
            "tcp://127.0.0.1:7101", "tcp://localhost:7102", "tcp://[::1]:7103", "ipc:///tmp/duban.sock", "inproc://x",
            ">tcp://10.0.0.1:7211", "tcp://0.0.0.0:7104", "tcp://registry:7101", "epgm://eth0;239.1.1.1:5555", "ws://0.0.0.0:8080",
        ]
        #expect(
            BindPolicy.nonLoopback(endpoints) == [
                "tcp://0.0.0.0:7104", "tcp://registry:7101", "epgm://eth0;239.1.1.1:5555", "ws://0.0.0.0:8080",
            ])
        #expect(throws: InsecureBindError.self) {
            try BindPolicy.check(["tcp://0.0.0.0:7104"], hasKeys: false, insecure: false, logger: Logger(label: "test"))
        }
        try BindPolicy.check(["tcp://0.0.0.0:7104"], hasKeys: true, insecure: false, logger: Logger(label: "test"))
    }
}

@Suite struct ConfigurationTests {
    @Test func defaultsFollowTheProtocol() async throws {
        let config = try await DeploymentConfiguration.load(environment: [:])
        #expect(config[.registry] == Endpoints(rpc: "tcp://127.0.0.1:7101", events: "tcp://127.0.0.1:7102"))
        #expect(config[.notify] == Endpoints(rpc: "tcp://127.0.0.1:7401", events: "tcp://127.0.0.1:7402"))
        #expect(config.maxPayloadBytes == 16 * 1024 * 1024)
    }

    @Test func environmentOverridesFileOverridesDefaults() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let file = "\(dir)/duban.json"
        let json =
            #"{"dataDir": "/srv/duban", "registry": {"rpc": "tcp://10.0.0.1:7101", "events": "tcp://10.0.0.1:7102"}, "cases": "#
            + #"{"rpc": "tcp://10.0.0.3:7301"}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: file))
        let config = try await DeploymentConfiguration.load(
            configFile: file, environment: ["DUBAN_REGISTRY_RPC": "tcp://registry.example:7101", "DUBAN_DATA_DIR": "/var/lib/duban"])
        #expect(config[.registry].rpc == "tcp://registry.example:7101")
        #expect(config[.registry].events == "tcp://10.0.0.1:7102")
        #expect(config[.cases].rpc == "tcp://10.0.0.3:7301")
        #expect(config[.cases].events == "tcp://127.0.0.1:7302")
        #expect(config.dataDirectory == "/var/lib/duban")
    }

    @Test func flagsOverrideEnvironment() async throws {
        let options = try ServiceOptions.parse(["--rpc", "tcp://127.0.0.1:9101", "--data-dir", "/tmp/x"])
        let settings = try await options.settings(
            for: .registry, environment: ["DUBAN_REGISTRY_RPC": "tcp://h:1", "DUBAN_REGISTRY_EVENTS": "tcp://h:2"])
        #expect(settings.endpoints == Endpoints(rpc: "tcp://127.0.0.1:9101", events: "tcp://h:2"))
        #expect(settings.databasePath == "/tmp/x/registry.sqlite")
    }

    @Test func instancesBehindTheBrokerConnectToItsConfiguredEndpoints() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let file = "\(dir)/duban.json"
        try Data(#"{"ingest": {"rpc": "tcp://broker:7201"}, "broker": {"backend": "tcp://broker:7211"}}"#.utf8).write(
            to: URL(fileURLWithPath: file))
        let options = try ServiceOptions.parse(["--config", file, "--behind-broker"])
        let settings = try await options.settings(for: .ingest, environment: ["DUBAN_BROKER_EVENTS_IN": "tcp://broker:7999"])
        #expect(settings.endpoints == Endpoints(rpc: ">tcp://broker:7211", events: ">tcp://broker:7999"))
        #expect(settings.deployment[.ingest].rpc == "tcp://broker:7201", "clients still use the broker's front")
        let plain = try await ServiceOptions.parse(["--config", file]).settings(for: .ingest, environment: [:])
        #expect(plain.endpoints.rpc == "tcp://broker:7201")
    }

    @Test func notifysChannelKeysComeFromTheNotifyObjectOrTheirVariables() async throws {
        #expect(try await DeploymentConfiguration.load(environment: [:]).notifyWebhookAllow == nil, "nil: the robots' hosts")
        let dir = try TestSupport.temporaryDirectory()
        let file = "\(dir)/duban.json"
        let json =
            #"{"notify": {"rpc": "tcp://notify:7401", "fileChannelDir": "/srv/channels", "#
            + #""webhookAllow": ["oapi.dingtalk.com", "10.0.0.0/8"]}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: file))
        let fromFile = try await DeploymentConfiguration.load(configFile: file, environment: [:])
        #expect(fromFile.notifyFileChannelDir == "/srv/channels")
        #expect(fromFile.notifyWebhookAllow == ["oapi.dingtalk.com", "10.0.0.0/8"])
        let fromEnvironment = try await DeploymentConfiguration.load(
            configFile: file,
            environment: [
                "DUBAN_NOTIFY_FILE_CHANNEL_DIR": "/var/channels", "DUBAN_NOTIFY_WEBHOOK_ALLOW": "qyapi.weixin.qq.com, 127.0.0.1/32",
            ])
        #expect(fromEnvironment.notifyFileChannelDir == "/var/channels")
        #expect(fromEnvironment.notifyWebhookAllow == ["qyapi.weixin.qq.com", "127.0.0.1/32"])
        try Data(#"{"notify": {"webhookAllow": "oapi.dingtalk.com,fd00::/8"}}"#.utf8).write(to: URL(fileURLWithPath: file))
        #expect(
            try await DeploymentConfiguration.load(configFile: file, environment: [:]).notifyWebhookAllow == [
                "oapi.dingtalk.com", "fd00::/8",
            ])
        #expect(DeploymentConfiguration.environmentVariable(for: "notify.fileChannelDir") == "DUBAN_NOTIFY_FILE_CHANNEL_DIR")
        #expect(DeploymentConfiguration.environmentVariable(for: "notify.webhookAllow") == "DUBAN_NOTIFY_WEBHOOK_ALLOW")
    }

    @Test func aMissingOrBrokenFileIsNamed() async throws {
        await #expect(throws: ConfigurationError.self) {
            try await DeploymentConfiguration.load(configFile: "/nonexistent/duban.json", environment: [:])
        }
        let dir = try TestSupport.temporaryDirectory()
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.json"))
        do {
            _ = try await DeploymentConfiguration.load(configFile: "\(dir)/bad.json", environment: [:])
            Issue.record("a broken file must be refused")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("bad.json"))
        }
    }
}
