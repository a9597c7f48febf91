import Foundation
import Prometheus
import Schema
import Synchronization

/// One service's metrics, in a registry of its own: tests run several services in one process,
/// and `MetricsSystem.bootstrap` may run only once per process, so nothing here is global. Every
/// service has one (counting costs a lock and a dictionary look-up per request); it is served only
/// when the service is given `--metrics HOST:PORT` (`MetricsServer`).
public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Work run before each scrape, to set gauges from the service's state (stream heads, outbox).
    /// Each is handed these metrics rather than capturing them: a collector holding its own
    /// `ServiceMetrics` is a cycle that keeps the metrics, and the store, peers and socket loops
    /// the collectors reach, alive after the service has stopped.
    private let collectors = Mutex<[@Sendable (ServiceMetrics) async -> Void]>([])
    private let inFlight: Gauge
    private let queuedRequests: Gauge
    private let queuedBytes: Gauge

    public init() {
        inFlight = registry.makeGauge(name: "duban_requests_in_flight", help: "Requests whose handler is running.")
        queuedRequests = registry.makeGauge(
            name: "duban_requests_queued", help: "Requests read and not yet answered (waiting for their turn or running).")
        queuedBytes = registry.makeGauge(name: "duban_requests_queued_bytes", help: "Payload bytes of the requests queued.")
        // Exported from the start (at 0), so an alert on its increase has a series to watch.
        _ = registry.makeCounter(name: "duban_certificate_refusals_total", help: "Connections refused for their key.")
    }

    /// A connection refused by the ZAP handler: a key not admitted, or revoked, or no CURVE
    /// (the start-up check's own stranger counts too, once).
    func certificateRefused() {
        registry.makeCounter(name: "duban_certificate_refusals_total", help: "Connections refused for their key.").increment()
    }

    /// The queue between the socket and the handlers (set on the socket thread).
    func queued(_ count: Int, bytes: Int) {
        queuedRequests.set(Int64(count))
        queuedBytes.set(Int64(bytes))
    }

    /// Latency buckets, seconds: a ping takes well under a millisecond, a report a few seconds.
    static let buckets: [Duration] = [
        .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10),
    ]

    /// A counter of the service's own (`duban_readings_accepted_total`).
    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(name: name, labels: labels, help: help)
    }

    /// A gauge of the service's own (`duban_alerts_open`).
    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(name: name, labels: labels, help: help)
    }

    /// Lines `/readyz` adds to its body (a peer's state); never a reason to be unready.
    private let readinessNotes = Mutex<[@Sendable () async -> [String]]>([])

    /// Adds lines to `/readyz`'s body, e.g. `PeerClients.readiness`.
    public func onReadiness(_ note: @escaping @Sendable () async -> [String]) {
        readinessNotes.withLock { $0.append(note) }
    }

    /// The notes for `/readyz`.
    func readiness() async -> [String] {
        var lines: [String] = []
        for note in readinessNotes.withLock({ $0 }) { lines += await note() }
        return lines
    }

    /// Runs `collect` before every scrape, with these metrics (it sets gauges from what the
    /// service holds). It must not capture the metrics themselves: use the argument.
    public func onScrape(_ collect: @escaping @Sendable (ServiceMetrics) async -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    /// The text exposition, after every collector has run.
    public func exposition() async -> String {
        for collect in collectors.withLock({ $0 }) { await collect(self) }
        return registry.emitToString()
    }

    /// A request's handler has started, and ended.
    func began() { inFlight.increment() }
    func ended() { inFlight.decrement() }

    /// The request counters and latency histograms made so far, by type and code: making one
    /// through the registry validates its name and help text, a cost per request that showed in
    /// profiles of the socket thread. Bounded: types are declared ones or `-`, codes are the
    /// protocol's or `unknown`.
    private let requestSeries = Mutex<(counters: [SeriesKey: Counter], histograms: [String: DurationHistogram])>(([:], [:]))

    private struct SeriesKey: Hashable {
        var type: String
        var code: String
    }

    /// Counts one reply by its request type and result (`ok` or the error code) and, when the
    /// handler ran, records how long it took. `type` is a declared type or `-`: a hostile client's
    /// invented type names must not grow the series without bound.
    func observe(reply: Data, type: String, duration: Duration?) {
        let code = Self.resultCode(of: reply)
        let (counter, histogram) = requestSeries.withLock { series -> (Counter, DurationHistogram?) in
            let key = SeriesKey(type: type, code: code)
            let counter: Counter
            if let known = series.counters[key] {
                counter = known
            } else {
                counter = registry.makeCounter(
                    name: "duban_requests_total", labels: [("type", type), ("code", code)],
                    help: "Requests answered, by type and result code.")
                series.counters[key] = counter
            }
            guard duration != nil else { return (counter, nil) }
            if let known = series.histograms[type] { return (counter, known) }
            let histogram = registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(
                    metricName: "duban_request_duration_seconds", helpText: "Time from a request's turn to its reply, by type."),
                labels: [("type", type)], buckets: Self.buckets)
            series.histograms[type] = histogram
            return (counter, histogram)
        }
        counter.increment()
        if let duration { histogram?.record(duration) }
    }

    /// `ok`, or the error code of an error reply, read from the envelope's header (EnvelopeWriter
    /// writes `"ok"` and then the error object, whose `code` comes first, before any body).
    static func resultCode(of reply: Data) -> String {
        reply.prefix(1200).withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> String in
            if find(okTrue, in: bytes) != nil { return "ok" }
            guard let start = find(codeKey, in: bytes) else { return "unknown" }
            var end = start + codeKey.count
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), end - start < 64 { end += 1 }
            let code = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(start + codeKey.count)..<end]), as: UTF8.self)
            return ErrorCode(rawValue: code) != nil ? code : "unknown"
        }
    }

    private static let okTrue = Array(#","ok":true,"#.utf8)
    private static let codeKey = Array(#""code":""#.utf8)

    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            var matched = 1
            while matched < needle.count, haystack[index + matched] == needle[matched] { matched += 1 }
            if matched == needle.count { return index }
        }
        return nil
    }
}
