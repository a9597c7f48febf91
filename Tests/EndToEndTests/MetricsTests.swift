import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import Testing

/// The operator's port (`--metrics HOST:PORT`): the Prometheus families, /healthz and /readyz,
/// from a service running as its own process, read with curl as an operator would.
@Suite(.serialized) struct MetricsTests {
    static func curl(_ url: String) throws -> String {
        try TestSupport.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-w", "\nHTTP %{http_code}\n", url])
    }

    /// The service's metrics page. Its port is bound before the service answers `sys.ping`, so it
    /// should answer at once; one CI run found it refusing right after start (cause not found):
    /// asked again for up to 5 s, and a port that stays closed fails with the service's own log.
    static func metrics(_ port: Int, of process: ServiceProcess) async throws -> String {
        var last: (any Error)?
        let deadline = ContinuousClock.now + .seconds(5)
        repeat {
            do {
                return try curl("http://127.0.0.1:\(port)/metrics")
            } catch {
                last = error
                try await Task.sleep(for: .milliseconds(100))
            }
        } while ContinuousClock.now < deadline
        throw TestFailure("metrics port \(port) closed: \(String(describing: last))\nservice log:\n\(process.log)")
    }

    /// The value of the first sample line that starts with `prefix` (`name{labels}`).
    static func value(_ exposition: String, _ prefix: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test func ingestExportsRequestsLatencyStreamHeadsAndReadings() async throws {
        let port = TestSupport.freePort()
        let process = try await ServiceProcess.start(
            "duban-ingest", arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--metrics", "127.0.0.1:\(port)"],
            endpoints: TestSupport.freeEndpoints())
        let station = try await RPCClient.connect(to: process.endpoints.rpc, from: "六一桥自动站")
        _ = try await station.call(SystemTypes.ping, Empty(), as: PingReply.self)
        let now = Timestamp.now()
        let reply = try await station.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [
                SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: now, value: 0.5),
                SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: "1900-01-01T00:00:00+08:00", value: 0.5),
            ]), as: ReadingSubmitReply.self)
        #expect(reply.accepted == 1 && reply.rejected.count == 1)
        _ = try? await station.send(payload: Data(#"{"v":1,"id":"u1","type":"no.such","body":{}}"#.utf8), id: "u1", timeout: .seconds(5))

        let metrics = try await Self.metrics(port, of: process)
        #expect(metrics.hasSuffix("HTTP 200\n"), "\(metrics)")
        for family in [
            "# TYPE duban_requests_total counter", "# TYPE duban_request_duration_seconds histogram",
            "# TYPE duban_requests_in_flight gauge", "# TYPE duban_requests_queued gauge",
            "# TYPE duban_stream_head gauge", "# TYPE duban_readings_accepted_total counter", "# TYPE duban_readings_refused_total counter",
            "# TYPE duban_alerts_open gauge",
        ] {
            #expect(metrics.contains(family), "\(family) missing:\n\(metrics)")
        }
        // The start-up wait pinged too.
        #expect((Self.value(metrics, #"duban_requests_total{type="sys.ping",code="ok"}"#) ?? 0) >= 1, "\(metrics)")
        #expect(Self.value(metrics, #"duban_requests_total{type="reading.submit",code="ok"}"#) == 1, "\(metrics)")
        // An invented type is counted under "-": a client cannot grow the series without bound.
        #expect(Self.value(metrics, #"duban_requests_total{type="-",code="unknown_type"}"#) == 1, "\(metrics)")
        #expect(!metrics.contains("no.such"))
        #expect(Self.value(metrics, #"duban_request_duration_seconds_count{type="reading.submit"}"#) == 1, "\(metrics)")
        #expect(Self.value(metrics, "duban_readings_accepted_total") == 1)
        #expect(Self.value(metrics, "duban_readings_refused_total") == 1)
        #expect((Self.value(metrics, #"duban_stream_head{stream="ingest"}"#) ?? 0) >= 1, "\(metrics)")

        #expect(try Self.curl("http://127.0.0.1:\(port)/healthz") == "ok\n\nHTTP 200\n")
        #expect(try Self.curl("http://127.0.0.1:\(port)/readyz") == "ready\n\nHTTP 200\n")
        #expect(try Self.curl("http://127.0.0.1:\(port)/nothing").hasSuffix("HTTP 404\n"))
        await station.close()
        #expect(await process.terminate() == 0, "\(process.log)")
    }

    /// `--log-format json` for log shippers: every line one JSON object with the time, level, label
    /// and message, and a line a request causes names its envelope id.
    @Test func jsonLogLinesAreObjectsAndNameTheRequestsEnvelopeID() async throws {
        let process = try await ServiceProcess.start(
            "duban-registry",
            arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--log-format", "json", "--log-level", "debug"],
            endpoints: TestSupport.freeEndpoints())
        let client = try await RPCClient.connect(to: process.endpoints.rpc, from: officeUnit)
        _ = try? await client.send(
            payload: Data(#"{"v":1,"id":"log-probe-1","type":"task.get","body":{"task":1}}"#.utf8), id: "log-probe-1",
            timeout: .seconds(5))
        await client.close()
        #expect(await process.terminate() == 0, "\(process.log)")
        let lines = process.log.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count >= 2, "\(process.log)")
        var probe = false
        for line in lines {
            let object = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
            #expect(object?["ts"]?.stringValue?.hasSuffix("Z") == true && object?["msg"]?.stringValue != nil, "\(line)")
            #expect(object?["label"]?.stringValue == "duban.registry" && object?["level"]?.stringValue != nil, "\(line)")
            if object?["metadata"]?["msg.id"]?.stringValue == "log-probe-1" { probe = true }
        }
        #expect(probe, "no line names the request:\n\(process.log)")
        // A format the executable does not know is refused at start.
        #expect(throws: (any Error).self) {
            try TestSupport.run(
                (TestSupport.binDirectory as NSString).appendingPathComponent("duban-registry"),
                [
                    "--data-dir", try TestSupport.temporaryDirectory(), "--log-format", "xml", "--rpc", "tcp://127.0.0.1:1", "--events",
                    "tcp://127.0.0.1:1",
                ])
        }
    }

    /// deploy/'s alert rules and Grafana dashboard query only what the services export: all four run
    /// as processes with their metrics ports, and every `duban_*` name in the two files is a family
    /// one of them serves (a histogram's `_bucket`, `_sum` and `_count` count as its family).
    @Test func theAlertRulesAndTheDashboardQueryOnlyExportedMetrics() async throws {
        let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy")
        let rules = try String(contentsOf: deploy.appendingPathComponent("prometheus/duban-alerts.yml"), encoding: .utf8)
        let dashboardData = try Data(contentsOf: deploy.appendingPathComponent("grafana/duban-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: dashboardData) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(panels.count >= 8 && expressions.count >= panels.count)
        for alert in [
            "DubanServiceDown", "DubanRequestQueueGrowing", "DubanDeliveryFailing", "DubanSubscriberLag", "DubanStationReadingsStopped",
        ] {
            #expect(rules.contains("alert: \(alert)"), "\(alert)")
        }
        func names(_ text: String) -> Set<String> {
            Set(text.matches(of: /duban_[a-z_]+/).map { String($0.output) })
        }
        let queried = names(rules).union(expressions.flatMap(names))

        let services: [(ServiceName, String)] = [
            (.registry, "duban-registry"), (.ingest, "duban-ingest"), (.cases, "duban-cases"), (.notify, "duban-notify"),
        ]
        let endpoints = Dictionary(uniqueKeysWithValues: services.map { ($0.0, TestSupport.freeEndpoints()) })
        let dir = try TestSupport.temporaryDirectory()
        let config =
            "{"
            + services.map { "\"\($0.0.rawValue)\": {\"rpc\": \"\(endpoints[$0.0]!.rpc)\", \"events\": \"\(endpoints[$0.0]!.events)\"}" }
            .joined(separator: ", ") + ", \"keysDir\": \"\"}"
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        var processes: [ServiceProcess] = []
        var ports: [Int] = []
        for (service, executable) in services {
            let port = TestSupport.freePort()
            processes.append(
                try await ServiceProcess.start(
                    executable,
                    arguments: [
                        "--config", "\(dir)/config.json", "--data-dir", "\(dir)/\(service.rawValue)", "--metrics", "127.0.0.1:\(port)",
                    ],
                    endpoints: endpoints[service]!))
            ports.append(port)
        }
        let station = try await RPCClient.connect(to: endpoints[.ingest]!.rpc, from: "六一桥自动站")
        _ = try await station.call(
            IngestTypes.readingSubmit,
            ReadingSubmitRequest(readings: [SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: Timestamp.now(), value: 0.5)]),
            as: ReadingSubmitReply.self)
        await station.close()
        // Notify follows the registry's events (its first statuses) and records its cursor.
        #expect(
            try await TestSupport.eventually(timeout: .seconds(20)) {
                (try? Self.curl("http://127.0.0.1:\(ports[3])/metrics"))?.contains("duban_subscriber_cursor{") == true
            })
        var families: Set<String> = []
        for port in ports {
            for line in try Self.curl("http://127.0.0.1:\(port)/metrics").split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                let name = String(parts[2])
                families.insert(name)
                if parts.last == "histogram" { families.formUnion(["_bucket", "_sum", "_count"].map { name + $0 }) }
            }
        }
        #expect(queried.count >= 12)
        for name in queried.sorted() {
            #expect(families.contains(name), "\(name) is queried but no service exports it: \(families.sorted())")
        }
        for process in processes { #expect(await process.terminate() == 0, "\(process.log)") }
    }

    @Test func notifyExportsItsOutbox() async throws {
        let port = TestSupport.freePort()
        let process = try await ServiceProcess.start(
            "duban-notify", arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--metrics", "127.0.0.1:\(port)"],
            endpoints: TestSupport.freeEndpoints())
        let metrics = try await Self.metrics(port, of: process)
        for family in ["duban_outbox_pending 0", "duban_outbox_given_up 0", "duban_delivery_attempts_failed 0"] {
            #expect(metrics.contains(family), "\(family) missing:\n\(metrics)")
        }
        // Its peers are not running: ready (it keeps working without them), and says so.
        let ready = try Self.curl("http://127.0.0.1:\(port)/readyz")
        #expect(ready.hasPrefix("ready, degraded\n") && ready.hasSuffix("HTTP 200\n"), "\(ready)")
        for peer in ["cases", "ingest", "registry"] { #expect(ready.contains("peer \(peer): degraded"), "\(ready)") }
        #expect(await process.terminate() == 0, "\(process.log)")
    }

    @Test func aStrangersKeyIsCountedAsARefusal() async throws {
        let keys = try TestKeys.make()
        let port = TestSupport.freePort()
        let endpoints = TestSupport.freeEndpoints()
        let process = try await ServiceProcess.start(
            "duban-registry",
            arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--keys", keys.path, "--metrics", "127.0.0.1:\(port)"],
            endpoints: endpoints, curve: try keys.curve("reader", toward: .registry))
        let before = Self.value(try await Self.metrics(port, of: process), "duban_certificate_refusals_total") ?? 0
        let pair = try ZMQCurve.generateKeyPair()
        let stranger = try await RPCClient.connect(
            to: endpoints.rpc, from: nil,
            curve: .client(
                serverKey: try keys.directory.publicCertificate("registry").publicKey, publicKey: pair.publicKey, secretKey: pair.secretKey)
        )
        let answered = try? await stranger.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .milliseconds(500), retries: 0)
        #expect(answered == nil)
        await stranger.close()
        let counted = await TestSupport.eventually(timeout: .seconds(5)) {
            (Self.value((try? Self.curl("http://127.0.0.1:\(port)/metrics")) ?? "", "duban_certificate_refusals_total") ?? 0) > before
        }
        #expect(counted, "refusals stayed at \(before)")
        #expect(await process.terminate() == 0, "\(process.log)")
    }

    @Test func aMetricsPortBeyondLoopbackNeedsKeys() async throws {
        let process = try await ServiceProcess.start(
            "duban-cases",
            arguments: ["--data-dir", try TestSupport.temporaryDirectory(), "--metrics", "0.0.0.0:\(TestSupport.freePort())"],
            endpoints: TestSupport.freeEndpoints(), waitForPing: false)
        #expect(await process.waitForExit())
        #expect(process.terminationStatus != 0)
        #expect(process.log.contains("0.0.0.0"), "\(process.log)")
    }
}
