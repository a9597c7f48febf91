import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// The real executables, as separate processes: crash, restart, signals, foreign clients.
@Suite(.serialized) struct ProcessTests {
    static func channel(_ name: String) -> ChannelSetRequest {
        ChannelSetRequest(channel: Channel(name: name, kind: .file, target: "duban-\(name).jsonl"))
    }

    @Test func everyServiceExecutableStartsAnswersAndStopsOnSIGTERM() async throws {
        for (executable, service) in [
            ("duban-registry", "registry"), ("duban-ingest", "ingest"), ("duban-cases", "cases"), ("duban-notify", "notify"),
        ] {
            let dir = try TestSupport.temporaryDirectory()
            let process = try await ServiceProcess.start(
                executable, arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints())
            let client = try await RPCClient.connect(to: process.endpoints.rpc, from: "test")
            let ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
            #expect(ping.service == service && ping.protocol == 1)
            // The registry publishes each task's initial status on its first start; the others start empty.
            #expect(ping.streams[service] == (service == "registry" ? 26 : 0))
            await client.close()
            #expect(await process.terminate() == 0, "\(executable) exits cleanly on SIGTERM; log:\n\(process.log)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(service).sqlite"))
        }
    }

    @Test func afterKill9TheEventLogAndSeqContinueAndASubscriberMissesNothing() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let endpoints = TestSupport.freeEndpoints()
        var process = try await ServiceProcess.start("duban-notify", arguments: ["--data-dir", dir], endpoints: endpoints)
        let subscriber = try await EventSubscriber.start(
            events: endpoints.events, rpc: endpoints.rpc, topics: ["notify."], from: .beginning, heartbeat: .milliseconds(250))
        let client = try await RPCClient.connect(to: endpoints.rpc, from: "test")
        for index in 1...20 { _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self) }

        process.kill()  // SIGKILL: no shutdown, no flush
        process = try await ServiceProcess.start("duban-notify", arguments: ["--data-dir", dir], endpoints: endpoints)
        var ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(2), retries: 5)
        #expect(ping.streams["notify"] == 20, "every acknowledged change survived the crash")
        // Events published while the subscriber was still reconnecting reach it through catch-up.
        for index in 21...40 { _ = try await client.call(NotifyTypes.channelSet, Self.channel("c\(index)"), as: ListReply<Channel>.self) }
        ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 40, "seq continued from where it was")
        let channels = try await client.call(NotifyTypes.channelList, Empty(), as: ListReply<Channel>.self)
        #expect(channels.items.count == 40)

        var seqs: [Int] = []
        for await event in subscriber.events {
            seqs.append(event.seq)
            if seqs.count == 40 { break }
        }
        #expect(seqs == Array(1...40))
        await subscriber.stop()
        await client.close()
        #expect(await process.terminate() == 0)
    }

    @Test func aRetryAfterACrashBeforeTheReplyIsNotAppliedTwice() async throws {
        // The first attempt is stored with its key; the process dies before the client reads the
        // reply; the retry with the same key against the restarted process returns the first reply.
        let dir = try TestSupport.temporaryDirectory()
        let endpoints = TestSupport.freeEndpoints()
        var process = try await ServiceProcess.start("duban-notify", arguments: ["--data-dir", dir], endpoints: endpoints)
        let client = try await RPCClient.connect(to: endpoints.rpc, from: "test")
        _ = try await client.call(NotifyTypes.channelSet, Self.channel("once"), as: ListReply<Channel>.self, key: "crash-key")
        process.kill()
        process = try await ServiceProcess.start("duban-notify", arguments: ["--data-dir", dir], endpoints: endpoints)
        let retried = try await client.call(
            NotifyTypes.channelSet, Self.channel("once"), as: ListReply<Channel>.self, key: "crash-key", retries: 5)
        #expect(retried.items.map(\.name) == ["once"])
        let ping = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self)
        #expect(ping.streams["notify"] == 1)
        await client.close()
        #expect(await process.terminate() == 0)
    }

    @Test func aPortInUseFailsWithAClearMessage() async throws {
        let endpoints = TestSupport.freeEndpoints()
        let first = try await ServiceProcess.start(
            "duban-notify", arguments: ["--data-dir", try TestSupport.temporaryDirectory()], endpoints: endpoints)
        let second = try await ServiceProcess.start(
            "duban-notify", arguments: ["--data-dir", try TestSupport.temporaryDirectory()], endpoints: endpoints, waitForPing: false)
        #expect(await second.waitForExit())
        #expect(second.terminationStatus != 0)
        #expect(second.log.contains("bind") && second.log.contains(endpoints.rpc), "\(second.log)")
        #expect(await first.terminate() == 0)
    }

    @Test func aBrokenConfigurationIsRefusedNamingTheFile() async throws {
        let dir = try TestSupport.temporaryDirectory()
        try Data("{broken".utf8).write(to: URL(fileURLWithPath: "\(dir)/duban.json"))
        let process = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir, "--config", "\(dir)/duban.json"], endpoints: TestSupport.freeEndpoints(),
            waitForPing: false)
        #expect(await process.waitForExit())
        #expect(process.terminationStatus != 0)
        #expect(process.log.contains("duban.json"), "\(process.log)")
    }

    @Test func aBrokenPlanFileStopsTheRegistryNamingFileLineAndProblem() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let yaml =
            "title: 测试\nstart: 2024-01-01\nend: 2026-12-31\nunits:\n  - {name: 区生态环境局, kind: spaceship}\n"
            + "categories: []\ntasks: []\ntargets: []\n"
        try yaml.write(toFile: "\(dir)/plan.yaml", atomically: true, encoding: .utf8)
        let process = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", dir, "--plan", "\(dir)/plan.yaml"], endpoints: TestSupport.freeEndpoints(),
            waitForPing: false)
        #expect(await process.waitForExit())
        #expect(process.terminationStatus != 0)
        #expect(process.log.contains("\(dir)/plan.yaml:5: units[0].kind: 未知的单位类型 spaceship"), "\(process.log)")
    }

    @Test func anIndependentPythonClientSpeaksTheProtocol() async throws {
        let process = try await ServiceProcess.start(
            "duban-notify", arguments: ["--data-dir", try TestSupport.temporaryDirectory()], endpoints: TestSupport.freeEndpoints())
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "clients/pyzmq_client.py")
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", script.path, process.endpoints.rpc, process.endpoints.events]
        let outputPath = "\(try TestSupport.temporaryDirectory())/pyzmq.log"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        python.standardOutput = output
        python.standardError = output
        try python.run()
        let exited = await TestSupport.eventually(timeout: .seconds(30)) { ServiceProcess.reap(python, timeout: 0) }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        #expect(exited, "pyzmq client did not finish:\n\(text)")
        #expect(text.contains("ALL OK") && !text.contains("FAILED"), "pyzmq client failed:\n\(text)")
        #expect(await process.terminate() == 0)
    }
}
