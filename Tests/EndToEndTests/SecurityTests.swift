import CaseTracking
import DubanTesting
import Foundation
import GRDB
import IndicatorIngest
import Logging
import Messaging
import Notifications
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization
import TaskRegistry
import Testing

/// PROTOCOL.md section 7 against real sockets: CURVE with a ZAP handler, principals from `User-Id`,
/// authorization from each request's declaration, keys added and taken out while running.
@Suite(.serialized) struct SecurityTests {
    static let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("clients")

    /// The four services, in this process, each with the key directory and its own certificate.
    struct SecuredDeployment {
        let keys: TestKeys
        let services: [ServiceName: InProcessService]

        static func start(keys: TestKeys) async throws -> SecuredDeployment {
            let dir = try TestSupport.temporaryDirectory()
            let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
            var services: [ServiceName: InProcessService] = [:]
            func configure(_ deployment: inout DeploymentConfiguration) {
                deployment.keysDirectory = keys.path
                for (name, service) in services { deployment.endpoints[name] = service.endpoints }
            }
            services[.registry] = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock) {
                configure(&$0)
            }
            services[.ingest] = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock) { configure(&$0) }
            services[.cases] = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock) { configure(&$0) }
            services[.notify] = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock) { configure(&$0) }
            return SecuredDeployment(keys: keys, services: services)
        }

        func client(_ certificate: String, _ service: ServiceName, from: String? = nil) async throws -> RPCClient {
            try await keys.client(certificate, service, at: services[service]!.endpoints.rpc, from: from)
        }

        /// Every stream's head on every service: what a refused request must leave as it was.
        func heads() async throws -> [String: Int] {
            var heads: [String: Int] = [:]
            for service in ServiceName.allCases {
                let client = try await client("admin", service)
                let ping = try await client.call(SystemTypes.ping, Empty())
                await client.close()
                for (stream, head) in ping.streams { heads["\(service.rawValue)/\(stream)"] = head }
            }
            return heads
        }

        func stop() async throws {
            for service in [ServiceName.notify, .cases, .ingest, .registry] { try await services[service]?.stop() }
        }
    }

    /// Runs Tests/clients/curve_client.py and returns its output once it has exited.
    static func python(_ arguments: [String], whileWaiting: @escaping @Sendable () async throws -> Void = {}) async throws -> (
        ok: Bool, output: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", clients.appendingPathComponent("curve_client.py").path] + arguments
        let outputPath = "\(try TestSupport.temporaryDirectory())/curve.log"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let read = { () -> String in (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
        // Once it is ready for an event, make some until it has exited.
        _ = await TestSupport.eventually(timeout: .seconds(10)) { read().contains("ready") || !process.isRunning }
        let exited = await TestSupport.eventually(timeout: .seconds(20)) {
            if process.isRunning && read().contains("ready") { try? await whileWaiting() }
            return ServiceProcess.reap(process, timeout: 0)
        }
        if !exited { process.terminate() }
        // Judged by what it printed: its exit status may already have been reaped above.
        let printed = read()
        return (exited && printed.contains("ALL OK") && !printed.contains("FAILED"), printed)
    }

    /// Whether a new connection with `curve` is answered within a second (libzmq does not
    /// reconnect after a refused handshake, so each try is a new connection).
    static func admitsNewConnections(at endpoint: String, curve: ZMQCurve) async -> Bool {
        await TestSupport.eventually(timeout: .seconds(1)) {
            let client = try? await RPCClient.connect(to: endpoint, curve: curve)
            let answered = (try? await client?.call(SystemTypes.ping, Empty(), timeout: .milliseconds(200), retries: 0)) != nil
            await client?.close()
            return answered
        }
    }

    @Test func aStrangerGetsNoReplyAndNoEventAReaderGetsBothAndAPyzmqCertificateWorksUnchanged() async throws {
        let keys = try TestKeys.make()
        let registry = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--keys", keys.path],
            endpoints: TestSupport.freeEndpoints(), curve: try keys.curve("office", toward: .registry))
        let serverCertificate = keys.directory.publicCertificatePath("registry")
        let office = try await keys.client("office", .registry, at: registry.endpoints.rpc)
        let report: @Sendable () async throws -> Void = {
            _ = try await office.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: 10, summary: "按计划推进"))
        }

        // A key pair made by pyzmq but never put in clients/: nothing at all.
        let pyzmqDir = try TestSupport.temporaryDirectory()
        try TestSupport.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import zmq.auth, sys; zmq.auth.create_certificates(sys.argv[1], 'stranger'); "
                    + "zmq.auth.create_certificates(sys.argv[1], 'tool', metadata={'role': 'reader'})",
                pyzmqDir,
            ])
        let stranger = try await Self.python(
            [registry.endpoints.rpc, registry.endpoints.events, serverCertificate, "\(pyzmqDir)/stranger.key_secret", "refused"],
            whileWaiting: report)
        #expect(stranger.ok, "\(stranger.output)")

        // The reader certificate `duban keys init` made: a reply that says curve, and events.
        let reader = try await Self.python(
            [
                registry.endpoints.rpc, registry.endpoints.events, serverCertificate, keys.directory.secretCertificatePath("reader"),
                "admitted",
            ],
            whileWaiting: report)
        #expect(reader.ok, "\(reader.output)")

        // pyzmq writes metadata only into the secret file; its public key goes into clients/ with
        // that metadata, as czmq writes public certificates, and its secret file works unchanged.
        let secret = try Certificate.load(path: "\(pyzmqDir)/tool.key_secret")
        #expect(secret.metadata["role"] == "reader")
        try Certificate(publicKey: secret.publicKey, metadata: secret.metadata).publicText.write(
            toFile: keys.directory.clientCertificatePath("tool"), atomically: true, encoding: .utf8)
        let registryKey = try keys.directory.publicCertificate("registry").publicKey
        let toolCurve = ZMQCurve.client(serverKey: registryKey, publicKey: secret.publicKey, secretKey: secret.secretKey ?? "")
        #expect(await Self.admitsNewConnections(at: registry.endpoints.rpc, curve: toolCurve), "the new key was not admitted")
        let tool = try await Self.python(
            [registry.endpoints.rpc, registry.endpoints.events, serverCertificate, "\(pyzmqDir)/tool.key_secret", "admitted"],
            whileWaiting: report)
        #expect(tool.ok, "\(tool.output)")

        await office.close()
        #expect(await registry.terminate() == 0)
    }

    /// A representative body for each request type: valid where a valid one is short, so that an
    /// allowed role's request reaches its handler.
    static let bodies: [String: JSONValue] = [
        "progress.report": .object([
            "task": .string("8"), "period": .string("2026-10"), "unit": .string("区生态环境局"), "percent": .number(10),
            "summary": .string("按计划推进"),
        ]),
        "escalation.record": .object(["unit": .string("区城市管理局"), "level": .string("notice"), "reason": .string("进度滞后")]),
        "case.open": .object(["source": .string("other"), "title": .string("矩阵测试问题"), "unit": .string("区城市管理局")]),
        "silence.set": .object([
            "matchers": .object(["kind": .string("overdue")]), "ends_at": .string("2026-11-21T00:00:00+08:00"),
            "comment": .string("矩阵测试"),
        ]),
        "report.generate": .object(["kind": .string("monthly"), "period": .string("2026-10")]),
        "dispatch.overview": .object(["period": .string("2026-10")]),
        "indicator.get": .object(["id": .string("water_quality_liuyiqiao")]),
        "water.class": .object(["station": .string("liuyiqiao"), "from": .string("2026-10-01"), "to": .string("2026-10-31")]),
        "channel.set": .object([
            "channel": .object(["name": .string("矩阵"), "kind": .string("file"), "target": .string("matrix.jsonl")])
        ]),
        "task.get": .object(["id": .string("8")]),
        "reading.submit": .object([
            "readings": .array([
                .object([
                    "station": .string("liuyiqiao"), "parameter": .string("nh3n"), "value": .number(0.5),
                    "ts": .string("2026-11-20T09:00:00+08:00"),
                ])
            ])
        ]),
    ]

    @Test func everyRoleMayCallExactlyWhatEachDeclarationAllowsAndARefusalChangesNothing() async throws {
        let keys = try TestKeys.make()
        let deployment = try await SecuredDeployment.start(keys: keys)
        let ecology = try keys.certificate(ofUnit: "区生态环境局")
        // (certificate, from, the role it acts with)
        let callers: [(String, String?, Role)] = [
            ("admin", nil, .admin), ("office", nil, .office), (ecology, nil, .unit), ("station-liuyiqiao", nil, .station),
            ("reader", nil, .reader), ("cases", nil, .service), ("gateway", "区生态环境局", .unit), ("gateway", nil, .reader),
            ("gateway", officeUnit, .office),
        ]
        let catalog: [ServiceName: [any RequestDeclaration]] = [
            .registry: RequestCatalog.system + RequestCatalog.registry, .ingest: RequestCatalog.system + RequestCatalog.ingest,
            .cases: RequestCatalog.system + RequestCatalog.cases, .notify: RequestCatalog.system + RequestCatalog.notify,
        ]
        // Every type a service answers has a declaration, hence an access rule.
        for (service, declarations) in catalog {
            let client = try await deployment.client("admin", service)
            let types = try await client.call(SystemTypes.types, Empty())
            await client.close()
            #expect(Set(types.requests) == Set(declarations.map(\.name)), "\(service)")
            #expect(Set(types.access?.keys.map { $0 } ?? []) == Set(types.requests), "\(service): every type has its roles")
        }

        func attempt(allowed wanted: Bool) async throws -> [String] {
            var wrong: [String] = []
            for (service, declarations) in catalog.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                for (certificate, from, role) in callers {
                    let client = try await deployment.client(certificate, service, from: from)
                    for declaration in declarations where declaration.access.allows(role) == wanted {
                        let rpc = RPC<JSONValue, JSONValue>(declaration.name, declaration.kind, allow: declaration.access)
                        let outcome: ErrorCode?
                        do {
                            _ = try await client.call(rpc, Self.bodies[declaration.name] ?? .object([:]), timeout: .seconds(5), retries: 0)
                            outcome = nil
                        } catch let error as ErrorBody {
                            outcome = error.code
                        }
                        let denied = outcome == .permissionDenied || outcome == .unauthenticated
                        // Allowed: it succeeds, or its handler judges the body's content (the bodies
                        // here are minimal); never refused, never a failure of the service.
                        let reachedTheHandler = outcome == nil || [.invalidArgument, .notFound, .conflict].contains(outcome!)
                        if denied == wanted || (wanted && !reachedTheHandler) {
                            wrong.append("\(certificate)(\(from ?? "-")) \(declaration.name): \(outcome?.rawValue ?? "ok")")
                        }
                    }
                    await client.close()
                }
            }
            return wrong
        }
        // Notify issues its first notices on its own at start: wait until nothing moves.
        var before = try await deployment.heads()
        while true {
            try await Task.sleep(for: .milliseconds(700))
            let again = try await deployment.heads()
            if again == before { break }
            before = again
        }
        let wronglyAllowed = try await attempt(allowed: false)
        #expect(wronglyAllowed.isEmpty, "\(wronglyAllowed)")
        let after = try await deployment.heads()
        #expect(after == before, "a refused request changed something: \(before) → \(after)")
        let wronglyRefused = try await attempt(allowed: true)
        #expect(wronglyRefused.isEmpty, "\(wronglyRefused)")
        try await deployment.stop()
    }

    @Test func aUnitActsForItselfOnlyAndFromMustBeThePrincipal() async throws {
        let keys = try TestKeys.make()
        let deployment = try await SecuredDeployment.start(keys: keys)
        let construction = try keys.certificate(ofUnit: "区城乡建设局")
        let registry = try await deployment.client(construction, .registry)
        // Progress for another unit.
        let forOther = try await refusal(
            registry, RegistryTypes.progressReport,
            ProgressReportRequest(task: "8", period: "2026-10", unit: "区城市管理局", percent: 10, summary: "代报"))
        #expect(forOther.code == .permissionDenied && forOther.field == "body.unit", "\(forOther)")
        // `from` naming another unit than the certificate's.
        let spoofed = try await deployment.client(construction, .registry, from: "区城市管理局")
        let asOther = try await refusal(spoofed, RegistryTypes.taskList, TaskListRequest())
        #expect(asOther.code == .permissionDenied && asOther.field == "from", "\(asOther)")
        await spoofed.close()
        await registry.close()

        // Starting a case assigned to another unit.
        let office = try await deployment.client("office", .cases)
        let opened = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .other, title: "河道垃圾", unit: "区城市管理局"))
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .assign))
        await office.close()
        let cases = try await deployment.client(construction, .cases)
        let started = try await refusal(cases, CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .start))
        #expect(started.code == .permissionDenied, "\(started)")
        let registered = try await refusal(cases, CaseTypes.open, CaseOpenRequest(source: .other, title: "越权登记", unit: "区城乡建设局"))
        #expect(registered.code == .permissionDenied, "\(registered)")
        await cases.close()
        // The responsible unit may.
        let city = try await deployment.client(try keys.certificate(ofUnit: "区城市管理局"), .cases)
        let moved = try await city.call(CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .start))
        #expect(moved.state == .rectifying)
        let cityCertificate = try keys.certificate(ofUnit: "区城市管理局")
        #expect(moved.history?.last?.actor == "区城市管理局" && moved.history?.last?.principal == cityCertificate)
        await city.close()

        // A station submits for its own stations only.
        let station = try await deployment.client("station-liuyiqiao", .ingest)
        let foreign = try await refusal(
            station, IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "chengzhong_air", parameter: "pm25", ts: "2026-11-20T09:00:00+08:00", value: 30)
            ]))
        #expect(foreign.code == .permissionDenied, "\(foreign)")
        await station.close()
        try await deployment.stop()
    }

    @Test func aKeyTakenOutIsRefusedWithinASecondAndAKeyAddedIsAdmittedWithoutARestart() async throws {
        let keys = try TestKeys.make()
        let deployment = try await SecuredDeployment.start(keys: keys)
        let reader = try await deployment.client("reader", .registry)
        _ = try await reader.call(SystemTypes.ping, Empty())
        let readerKey = try keys.directory.publicCertificate("reader")
        try FileManager.default.removeItem(atPath: keys.directory.clientCertificatePath("reader"))
        let refused = await TestSupport.eventually(timeout: .seconds(1)) {
            (try? await refusal(reader, SystemTypes.ping, Empty()))?.code == .unauthenticated
        }
        #expect(refused, "the open connection's next request was not refused within a second")
        await reader.close()
        // Kept out for good: a copy restored from a backup is not admitted again.
        #expect(await TestSupport.eventually(timeout: .seconds(3)) { keys.directory.revokedKeys().contains(readerKey.publicKey) })

        // A key added is admitted within a second.
        let pair = try ZMQCurve.generateKeyPair()
        let added = Certificate(publicKey: pair.publicKey, secretKey: pair.secretKey, metadata: ["role": "reader"])
        try added.publicText.write(toFile: keys.directory.clientCertificatePath("late"), atomically: true, encoding: .utf8)
        let admitted = await Self.admitsNewConnections(
            at: deployment.services[.registry]!.endpoints.rpc,
            curve: .client(
                serverKey: try keys.directory.publicCertificate("registry").publicKey, publicKey: pair.publicKey, secretKey: pair.secretKey)
        )
        #expect(admitted, "a key added was not admitted within a second")
        try await deployment.stop()
    }

    @Test func aKeyTakenOutLosesItsEventSubscriptionAndOthersKeepTheirs() async throws {
        let keys = try TestKeys.make()
        let dir = try TestSupport.temporaryDirectory()
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir) { $0.keysDirectory = keys.path }
        let loop = ZMQPollLoop(name: "subscribers")
        let received = Mutex<[String: Int]>([:])
        for name in ["reader", "cases"] {
            _ = try await loop.addSocket(
                .sub, options: ZMQSocketOptions(subscriptions: [""], curve: try keys.curve(name, toward: .registry)),
                setup: { try $0.connect(registry.endpoints.events) },
                onMessage: { _ in received.withLock { $0[name, default: 0] += 1 } })
        }
        let office = try await keys.client("office", .registry, at: registry.endpoints.rpc)
        // Each report of the same month is a new revision, and a new event (the real clock: any month
        // up to October 2026 has begun).
        func report() async throws {
            _ = try await office.call(
                RegistryTypes.progressReport,
                ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: 10, summary: "推进"))
        }
        #expect(
            try await TestSupport.eventually(timeout: .seconds(5)) {
                try await report()
                return received.withLock { ($0["reader"] ?? 0) > 0 && ($0["cases"] ?? 0) > 0 }
            })
        try FileManager.default.removeItem(atPath: keys.directory.clientCertificatePath("reader"))
        // Within a minute (here: the watcher's second and a rebind), the reader hears nothing more.
        try await Task.sleep(for: .seconds(2))
        let before = received.withLock { $0 }
        #expect(
            try await TestSupport.eventually(timeout: .seconds(10)) {
                try await report()
                return (received.withLock { $0["cases"] ?? 0 }) > (before["cases"] ?? 0)
            }, "a subscriber whose key stays in clients/ reconnects and hears on")
        for _ in 0..<5 { try await report() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(received.withLock { $0["reader"] ?? 0 } == before["reader"] ?? 0, "the revoked key still heard events")
        await office.close()
        await loop.shutdown()
        try await registry.stop()
    }

    @Test func aServiceWithoutKeysRefusesToListenBeyondLoopback() async throws {
        let port = TestSupport.freePort()
        let process = try await ServiceProcess.start(
            "duban-registry", arguments: ["--data-dir", try TestSupport.temporaryDirectory()],
            endpoints: Endpoints(rpc: "tcp://0.0.0.0:\(port)", events: "tcp://127.0.0.1:\(TestSupport.freePort())"), waitForPing: false)
        #expect(await process.waitForExit())
        #expect(process.terminationStatus != 0)
        #expect(process.log.contains("tcp://0.0.0.0:\(port)") && process.log.contains("--keys"), "\(process.log)")
    }
}

/// The audit trail: every stored change with its principal, key and unit; chained so that a
/// changed entry is found.
@Suite(.serialized) struct AuditTrailTests {
    @Test func aGatewayActingForAUnitIsRecordedWithBothAndTheChainFindsATamperedEntry() async throws {
        let keys = try TestKeys.make()
        let dir = try TestSupport.temporaryDirectory()
        var registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir) { $0.keysDirectory = keys.path }
        let gateway = try await keys.client("gateway", .registry, at: registry.endpoints.rpc, from: "区生态环境局")
        let report = try await gateway.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "8", period: "2026-10", unit: "区生态环境局", percent: 30, summary: "网页控制台报送"))
        #expect(report.reportedBy == "区生态环境局" && report.principal == "gateway")
        #expect(report.principalKey == (try keys.directory.publicCertificate("gateway")).publicKey)
        // The gateway may not act for the office's rights beyond what it names, nor as admin.
        let load = try await refusal(gateway, RegistryTypes.planLoad, PlanLoadRequest(content: "x"))
        #expect(load.code == .permissionDenied)
        await gateway.close()
        let office = try await keys.client("office", .registry, at: registry.endpoints.rpc)
        _ = try await office.call(
            RegistryTypes.escalationRecord, EscalationRecordRequest(unit: "区城市管理局", level: .notice, reason: "连续两月未报送"))
        let entries = try await office.callAll(SystemTypes.auditList, AuditListRequest())
        #expect(entries.count == 2)
        let first = try #require(entries.first)
        #expect(first.type == "progress.report" && first.principal == "gateway" && first.role == "unit" && first.unit == "区生态环境局")
        #expect(first.principalKey == (try keys.directory.publicCertificate("gateway")).publicKey)
        #expect(entries[1].principal == "office" && entries[1].unit == officeUnit && entries[1].prev == first.hash)
        let byUnit = try await office.callAll(SystemTypes.auditList, AuditListRequest(unit: "区生态环境局"))
        #expect(byUnit.map(\.seq) == [1])
        #expect(try await office.call(SystemTypes.auditVerify, Empty()).ok)
        // A unit may not read the trail.
        let unit = try await keys.client(try keys.certificate(ofUnit: "区城乡建设局"), .registry, at: registry.endpoints.rpc)
        #expect(try await refusal(unit, SystemTypes.auditList, AuditListRequest()).code == .permissionDenied)
        await unit.close()
        await office.close()
        try await registry.stop()

        // The trail refuses to be changed; someone who gets around that is found by the chain.
        func tamper(_ statements: [String]) throws {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let database = try DatabaseQueue(path: "\(dir)/registry.sqlite", configuration: configuration)
            defer { try? database.close() }
            try database.inDatabase { db in for statement in statements { try db.execute(sql: statement) } }
        }
        #expect(throws: (any Error).self) { try tamper(["UPDATE duban_audit SET unit = '区财政局'"]) }
        try tamper(["DROP TRIGGER duban_audit_no_update", "UPDATE duban_audit SET summary = '{}' WHERE seq = 1"])
        registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir) { $0.keysDirectory = keys.path }
        let admin = try await keys.client("admin", .registry, at: registry.endpoints.rpc)
        let verdict = try await admin.call(SystemTypes.auditVerify, Empty())
        #expect(!verdict.ok && verdict.firstBad == 1, "\(verdict)")
        #expect(AuditChain.firstBreak(try await admin.callAll(SystemTypes.auditList, AuditListRequest()))?.seq == 1)
        await admin.close()
        try await registry.stop()
    }
}

/// The broker's instance-facing side and acknowledgement under CURVE.
@Suite(.serialized) struct BrokerTrustTests {
    @Test func theBrokerSendsWorkOnlyToIngestInstancesAndForwardsOnlyAnInstancesOwnStream() async throws {
        let keys = try TestKeys.make()
        let endpoints = Broker.Endpoints(
            frontend: "tcp://127.0.0.1:\(TestSupport.freePort())", backend: "tcp://127.0.0.1:\(TestSupport.freePort())",
            eventsIn: "tcp://127.0.0.1:\(TestSupport.freePort())", eventsOut: "tcp://127.0.0.1:\(TestSupport.freePort())")
        var logger = Logger(label: "test.broker")
        logger.logLevel = .warning
        let broker = try await Broker.start(endpoints: endpoints, keys: keys.directory, insecure: false, logger: logger)
        let group = ServiceGroup(services: [broker], logger: logger)
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask { try await group.run() }
            let brokerKey = try keys.directory.publicCertificate("broker").publicKey
            func asInstance(_ name: String) throws -> ZMQCurve {
                let own = try keys.directory.secretCertificate(name)
                return .client(serverKey: brokerKey, publicKey: own.publicKey, secretKey: own.secretKey!)
            }
            // A rogue "instance" holding a reader's certificate, and a real one.
            let loop = ZMQPollLoop(name: "instances")
            let rogueGot = Mutex(0)
            _ = try await loop.addSocket(
                .router, options: ZMQSocketOptions(curve: try asInstance("reader")), setup: { try $0.connect(endpoints.backend) },
                onMessage: { _ in rogueGot.withLock { $0 += 1 } })
            let dir = try TestSupport.temporaryDirectory()
            let instance = try await InProcessService.start(
                IngestService.self, dataDirectory: dir, endpoints: Endpoints(rpc: ">\(endpoints.backend)", events: ">\(endpoints.eventsIn)")
            ) { $0.keysDirectory = keys.path }
            let client = try await keys.client("reader", .ingest, at: endpoints.frontend)
            for _ in 0..<20 { #expect(try await client.call(SystemTypes.ping, Empty(), timeout: .seconds(5)).security == "curve") }
            #expect(rogueGot.withLock { $0 } == 0, "a peer that is not an ingest instance got requests")
            // A DEALER that sends no empty delimiter gets its reply framed the same way through the
            // broker as from a service (the broker adds the delimiter the instance needs, and takes it out).
            let bare = Mutex<[[Data]]>([])
            let dealer = try await loop.addSocket(
                .dealer, options: ZMQSocketOptions(curve: try keys.curve("reader", toward: .ingest)),
                setup: { try $0.connect(endpoints.frontend) }, onMessage: { frames in bare.withLock { $0.append(frames) } })
            loop.send(dealer, [Data(#"{"v":1,"id":"bare-1","type":"sys.ping","body":{}}"#.utf8)])
            #expect(await TestSupport.eventually(timeout: .seconds(5)) { !bare.withLock { $0 }.isEmpty })
            let reply = try #require(bare.withLock { $0.first })
            #expect(
                reply.count == 1 && FastJSON.topLevelString("re", in: reply[0]) == "bare-1",
                "\(reply.map { String(decoding: $0, as: UTF8.self) })")

            // Events: an instance publishes into its own stream only.
            let heard = Mutex<[String]>([])
            _ = try await loop.addSocket(
                .sub, options: ZMQSocketOptions(subscriptions: [""], curve: try keys.curve("reader", toward: .ingest)),
                setup: { try $0.connect(endpoints.eventsOut) },
                onMessage: { frames in
                    if frames.count == 2, let stream = FastJSON.topLevelString("stream", in: frames[1]) {
                        heard.withLock { $0.append(stream) }
                    }
                })
            let forger = try await loop.addSocket(
                .pub, options: ZMQSocketOptions(curve: try asInstance("ingest-2")), setup: { try $0.connect(endpoints.eventsIn) })
            func event(stream: String, seq: Int) -> [Data] {
                [
                    Data("ingest.alert.raised".utf8),
                    EnvelopeWriter.event(
                        id: MessageID.next(), type: "ingest.alert.raised", ts: Timestamp.now(), from: "ingest", stream: stream, seq: seq,
                        body: Data("{}".utf8)),
                ]
            }
            #expect(
                await TestSupport.eventually(timeout: .seconds(5)) {
                    loop.send(forger, event(stream: "ingest", seq: 999))
                    loop.send(forger, event(stream: "ingest-2", seq: 1))
                    try? await Task.sleep(for: .milliseconds(50))
                    return heard.withLock { $0.contains("ingest-2") }
                })
            #expect(!heard.withLock { $0.contains("ingest") }, "an instance published into another's stream")
            await client.close()
            await loop.shutdown()
            try await instance.stop()
            await group.triggerGracefulShutdown()
        }
    }

    @Test func eachUnitAcknowledgesForItselfAsItsCertificateSays() async throws {
        let keys = try TestKeys.make()
        let deployment = try await SecurityTests.SecuredDeployment.start(keys: keys)
        let office = try await deployment.client("office", .notify)
        var notices: [Notice] = []
        #expect(
            try await TestSupport.eventually(timeout: .seconds(10)) {
                notices = try await office.callAll(NotifyTypes.noticeList, NoticeListRequest())
                return !notices.isEmpty
            })
        let notice = try #require(notices.first { $0.units.contains { $0.hasPrefix("区") } })
        let unit = try #require(notice.units.first { $0.hasPrefix("区") })
        let other = try #require(
            ["区城乡建设局", "区城市管理局", "区财政局"].first { !notice.units.contains($0) })
        // Another unit, by its own certificate: refused, nothing changes.
        let stranger = try await deployment.client(try keys.certificate(ofUnit: other), .notify)
        let refused = try await refusal(stranger, NotifyTypes.noticeAck, NoticeAckRequest(id: notice.id))
        #expect(refused.code == .permissionDenied, "\(refused)")
        await stranger.close()
        let certificate = try keys.certificate(ofUnit: unit)
        let own = try await deployment.client(certificate, .notify)
        let acknowledged = try await own.call(NotifyTypes.noticeAck, NoticeAckRequest(id: notice.id, comment: "已签收"))
        #expect(acknowledged.acks.contains { $0.unit == unit && $0.by == certificate })
        #expect(!acknowledged.pendingUnits.contains(unit))
        await own.close()
        await office.close()
        try await deployment.stop()
    }
}

/// Found by Fuzz/fuzz-certificate: a metadata value beginning with a combining mark (U+059A), which
/// the writer quotes, so that the opening quote and the mark were one Character to the reader: the
/// value came back with its quotes, and a certificate written back read differently. The input is
/// the fuzzer's.
@Suite struct CertificateFormatFindingsTests {
    @Test func aValueBeginningWithACombiningMarkReadsTheSameWrittenBack() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/fuzz/certificate-combining-mark-after-quote.key"))
        let text = try #require(String(data: data, encoding: .utf8))
        let certificate = try Certificate.parse(text, path: "fuzz.key_secret")
        #expect(try Certificate.parse(certificate.secretText) == certificate)
        #expect(try Certificate.parse(certificate.publicText).metadata == certificate.metadata)
        #expect(certificate.metadata["\u{1C}stations"] == "\u{059A}tadata")
        // Quoted the way czmq writes it, the value is read without its quotes.
        let quoted = "metadata\n    unit = \"\u{059A}区城乡建设局\"\ncurve\n    public-key = \"\(certificate.publicKey)\"\n"
        #expect(try Certificate.parse(quoted).metadata["unit"] == "\u{059A}区城乡建设局")
        // Saved on Windows (CRLF), the same certificate.
        let windows = certificate.secretText.replacingOccurrences(of: "\n", with: "\r\n")
        let fromWindows = try Certificate.parse(windows)
        #expect(windows.contains("\r\n") && fromWindows == certificate)
    }
}
