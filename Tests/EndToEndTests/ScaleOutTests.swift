import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// Several ingest instances behind the broker, sharing PostgreSQL.
@Suite(.serialized) struct ScaleOutTests {
    struct Deployment {
        let cluster: PostgresCluster
        let broker: ServiceProcess
        var instances: [ServiceProcess]
        let front: Endpoints
        let backend: String
        let eventsIn: String

        static func start(instances count: Int) async throws -> Deployment {
            let cluster = try PostgresCluster.start()
            let front = TestSupport.freeEndpoints()
            let backend = "tcp://127.0.0.1:\(TestSupport.freePort())"
            let eventsIn = "tcp://127.0.0.1:\(TestSupport.freePort())"
            let broker = try await ServiceProcess.start(
                "duban-broker",
                arguments: ["--frontend", front.rpc, "--backend", backend, "--events-in", eventsIn, "--events-out", front.events],
                endpoints: front, waitForPing: false, passEndpoints: false)
            var deployment = Deployment(cluster: cluster, broker: broker, instances: [], front: front, backend: backend, eventsIn: eventsIn)
            for index in 1...count { deployment.instances.append(try await deployment.instance(index)) }
            return deployment
        }

        func instance(_ index: Int) async throws -> ServiceProcess {
            try await ServiceProcess.start(
                "duban-ingest",
                arguments: [
                    "--instance", "ingest-\(index)", "--database-url", cluster.url, "--data-dir", try TestSupport.temporaryDirectory(),
                ],
                endpoints: Endpoints(rpc: ">\(backend)", events: ">\(eventsIn)"), environment: ["DUBAN_NOW": "2026-11-20T12:00:00+08:00"],
                pingAt: front.rpc)
        }

        func stop() async {
            for instance in instances { _ = await instance.terminate() }
            _ = await broker.terminate()
            cluster.stop()
        }
    }

    /// 200 PM2.5 readings per batch, each at its own minute.
    static func batch(_ number: Int) -> ReadingSubmitRequest {
        ReadingSubmitRequest(
            readings: (0..<200).map { index in
                let minute = number * 200 + index
                let time = Date(
                    timeIntervalSince1970: Timestamp.parse("2026-10-01T00:00:00+08:00")!.timeIntervalSince1970 + Double(minute) * 60)
                return SubmittedReading(
                    station: "chengzhong_air", parameter: "pm25", ts: Timestamp.format(time, fractional: false),
                    value: Double(20 + index % 40))
            })
    }

    @Test func killingAnInstanceMidStreamLosesNoAcknowledgedReadingAndRetriesDoNotDoubleCount() async throws {
        var deployment = try await Deployment.start(instances: 2)
        let client = try await RPCClient.connect(to: deployment.front.rpc, from: "scale-out-test")
        // Both instances answer through the one endpoint (a new instance's readiness check may be
        // answered by another one, so wait until each has been seen).
        var instancesSeen: Set<String> = []
        #expect(
            try await TestSupport.eventually {
                instancesSeen.insert(try await client.call(SystemTypes.ping, Empty(), as: PingReply.self).instance)
                return instancesSeen == ["ingest-1", "ingest-2"]
            })

        let batches = 60
        var acknowledged = 0
        var duplicates = 0
        var replies: [Int: ReadingSubmitReply] = [:]
        // Six batches in flight at a time; when the 20th is acknowledged, instance 1 is killed with
        // requests of its own still open. Their clients time out and retry with the same key.
        let instance1 = deployment.instances[0]
        try await withThrowingTaskGroup(of: (Int, ReadingSubmitReply).self) { group in
            var next = 0
            func submit(_ number: Int) {
                group.addTask {
                    (
                        number,
                        try await client.call(
                            IngestTypes.readingSubmit, Self.batch(number), as: ReadingSubmitReply.self, key: "batch-\(number)",
                            timeout: .seconds(2), retries: 10)
                    )
                }
            }
            while next < 6 {
                submit(next)
                next += 1
            }
            while let (number, reply) = try await group.next() {
                replies[number] = reply
                if replies.count == 20 { instance1.kill() }
                if next < batches {
                    submit(next)
                    next += 1
                }
            }
        }
        #expect(replies.count == batches)
        for reply in replies.values {
            #expect(reply.rejected.isEmpty)
            acknowledged += reply.accepted
            duplicates += reply.duplicates
        }
        // Retrying an acknowledged batch (a lost reply) returns the first reply and stores nothing more.
        let again = try await client.call(IngestTypes.readingSubmit, Self.batch(40), as: ReadingSubmitReply.self, key: "batch-40")
        #expect(again == replies[40])
        #expect(instance1.process.isRunning == false)
        #expect(acknowledged + duplicates == batches * 200)
        #expect(duplicates == 0)
        let stored = try deployment.cluster.psql("SELECT count(*), count(DISTINCT (station, parameter, ts)) FROM readings")
        #expect(stored == "\(batches * 200)|\(batches * 200)", "every acknowledged reading is stored exactly once")
        #expect(acknowledged == batches * 200)

        // The events of both streams are in the shared log; a late subscriber reads them all through the broker.
        let heads = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self).streams
        #expect(heads.keys.contains("ingest-1") && heads.keys.contains("ingest-2"))
        let subscriber = try await EventSubscriber.start(
            events: deployment.front.events, rpc: deployment.front.rpc, topics: [IngestTypes.readingsAccepted], from: .beginning,
            heartbeat: .milliseconds(300))
        var counted = 0
        for await event in subscriber.events {
            counted += try event.body(as: ReadingsAccepted.self).count
            if counted >= batches * 200 { break }
        }
        #expect(counted == batches * 200)
        await subscriber.stop()

        // The audit trail in the shared database: one chain, whichever instance stored each batch,
        // read and verified through the broker, filters included.
        let audit = try await client.callAll(SystemTypes.auditList, AuditListRequest())
        #expect(audit.filter { $0.type == IngestTypes.readingSubmit.name }.count >= batches)
        #expect(Set(audit.map(\.stream)) == ["ingest-1", "ingest-2"])
        #expect(AuditChain.firstBreak(audit) == nil)
        #expect(try await client.call(SystemTypes.auditVerify, Empty()).ok)
        let filtered = try await client.callAll(
            SystemTypes.auditList, AuditListRequest(type: "reading.submit", since: "2020-01-01", limit: 5))
        #expect(filtered.count == 5 && filtered.allSatisfy { $0.type == "reading.submit" })

        // A new instance joins; clients change nothing.
        deployment.instances.append(try await deployment.instance(3))
        var seen: Set<String> = []
        #expect(
            try await TestSupport.eventually {
                seen.insert(try await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(2), retries: 5).instance)
                return seen.contains("ingest-3")
            })
        await client.close()
        await deployment.stop()
    }

    /// PostgreSQL stops under a running instance: submits are answered `unavailable` (retryable),
    /// not `internal`, with a message for people; once it is back, the same keys succeed, once.
    @Test func aPostgresOutageIsUnavailableAndTheSameKeysSucceedOnceAfter() async throws {
        let cluster = try PostgresCluster.start()
        defer { cluster.stop() }
        let endpoints = TestSupport.freeEndpoints()
        let instance = try await ServiceProcess.start(
            "duban-ingest",
            arguments: ["--instance", "ingest-1", "--database-url", cluster.url, "--data-dir", try TestSupport.temporaryDirectory()],
            endpoints: endpoints, environment: ["DUBAN_NOW": "2026-11-20T12:00:00+08:00", "LOG_LEVEL": "error"])
        defer { instance.kill() }
        let client = try await RPCClient.connect(to: endpoints.rpc, from: "六一桥自动站")
        let first = try await client.call(IngestTypes.readingSubmit, Self.batch(0), key: "outage-0", timeout: .seconds(20))
        #expect(first.accepted == 200)

        try cluster.pause()
        for number in 1...1 {
            do {
                _ = try await client.call(
                    IngestTypes.readingSubmit, Self.batch(number), key: "outage-\(number)", timeout: .seconds(30), retries: 0)
                Issue.record("a submit with PostgreSQL stopped was accepted")
            } catch let error as ErrorBody {
                #expect(error.code == .unavailable, "\(error)")
                #expect(!error.message.contains("PSQLError") && !error.message.contains("NIO"), "a program dump: \(error.message)")
            }
        }
        #expect(instance.process.isRunning)

        try cluster.resume()
        var replies: [ReadingSubmitReply] = []
        for number in 1...2 {
            // Retried as a client would after `unavailable`, with the same key, until the pool reconnects.
            var reply: ReadingSubmitReply?
            let deadline = ContinuousClock.now + .seconds(60)
            while reply == nil, ContinuousClock.now < deadline {
                reply = try? await client.call(
                    IngestTypes.readingSubmit, Self.batch(number), key: "outage-\(number)", timeout: .seconds(30), retries: 0)
                if reply == nil { try await Task.sleep(for: .milliseconds(500)) }
            }
            replies.append(try #require(reply, "batch \(number) after the restart"))
        }
        #expect(replies.map(\.accepted) == [200, 200])
        // The same keys again: the first replies, nothing stored twice.
        for number in 1...2 {
            let again = try await client.call(IngestTypes.readingSubmit, Self.batch(number), key: "outage-\(number)", timeout: .seconds(20))
            #expect(again.accepted == 200 && again.duplicates == 0)
        }
        #expect(try cluster.psql("SELECT count(*) FROM readings") == "600")
        await client.close()
        _ = await instance.terminate()
    }
}
