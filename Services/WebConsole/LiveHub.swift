import DubanConfig
import Foundation
import Logging
import Messaging
import Schema
import ServiceLifecycle
import Synchronization

/// One event as the console's pages see it: where it is in its stream and a line in Chinese.
public struct LiveEvent: Sendable, Equatable {
    public var stream: String
    public var seq: Int
    public var type: String
    public var ts: String
    public var text: String
}

/// Positions per stream, as an SSE `id:` carries them: `cases:5,notify:3,registry:12`.
public struct StreamCursor: Sendable, Equatable {
    public var positions: [String: Int]

    public init(_ positions: [String: Int] = [:]) { self.positions = positions }

    public var text: String { positions.keys.sorted().map { "\($0):\(positions[$0]!)" }.joined(separator: ",") }

    /// Parses a Last-Event-ID; nil when malformed (then the page starts from now).
    public init?(text: String) {
        var positions: [String: Int] = [:]
        for item in text.split(separator: ",") {
            let kv = item.split(separator: ":")
            guard kv.count == 2, let seq = Int(kv[1]), seq >= 0, kv[0].count <= 40,
                kv[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { return nil }
            positions[String(kv[0])] = seq
        }
        guard positions.count <= 16 else { return nil }
        self.positions = positions
    }
}

/// What a live page's stream receives.
enum LiveItem: Sendable {
    case event(LiveEvent)
    case heartbeat
}

/// The services' events for the pages: one subscriber per service (catch-up by `seq`, the
/// Clone pattern), the last events of each stream kept for pages that reconnect, and every open
/// page's stream fed as they arrive. A Service: on graceful shutdown it ends every page's stream
/// so the HTTP server can drain.
public final class LiveHub: Service, Sendable {
    struct State {
        var buffers: [String: [LiveEvent]] = [:]
        var heads: [String: Int] = [:]
        var listeners: [Int: AsyncStream<LiveItem>.Continuation] = [:]
        var nextListener = 0
        var closed = false
        /// Services whose subscriber has started: their heads are known.
        var following: Set<ServiceName> = []
    }

    let gateway: Gateway
    let services: [ServiceName]
    let logger: Logger
    let keep: Int
    private let state = Mutex(State())

    public init(gateway: Gateway, services: [ServiceName] = [.registry, .cases, .notify], keep: Int = 500, logger: Logger) {
        self.gateway = gateway
        self.services = services
        self.keep = keep
        self.logger = logger
    }

    public func run() async throws {
        // Cancelled on graceful shutdown: each follower's subscriber stops, and every page's
        // stream ends (the pages' handlers also end their streams on the server's own shutdown).
        try? await withGracefulShutdownHandler {
            try await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    for service in self.services {
                        group.addTask { await self.follow(service) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.close()
        }
        close()
    }

    /// Follows one service's events until shutdown, starting again after a failure from where it
    /// was. It starts at the streams' heads as `sys.ping` gives them, so that the hub knows exactly
    /// where its live feed begins: a page that missed older events gets them from the service.
    func follow(_ service: ServiceName) async {
        var positions: [String: Int]?
        while !Task.isCancelled && !isClosed {
            do {
                if positions == nil {
                    positions = try await gateway.call(service, SystemTypes.ping, Empty(), from: nil).streams
                }
                var seen = positions ?? [:]
                for (stream, seq) in seen { setHead(stream, seq) }
                let subscriber = try await EventSubscriber.start(
                    events: gateway.deployment[service].events, rpc: gateway.deployment[service].rpc, from: .after(seen),
                    name: "web-\(service.rawValue)", logger: logger, curve: try gateway.curve(for: service))
                state.withLock { _ = $0.following.insert(service) }
                await withTaskCancellationHandler {
                    for await event in subscriber.events {
                        if isClosed { break }
                        seen[event.stream] = event.seq
                        publish(LiveEvent(stream: event.stream, seq: event.seq, type: event.type, ts: event.ts, text: Self.describe(event)))
                    }
                } onCancel: {
                    Task { await subscriber.stop() }
                }
                positions = seen
                await subscriber.stop()
            } catch {
                logger.warning("live events: cannot follow service", metadata: ["service": "\(service.rawValue)", "error": "\(error)"])
            }
            if isClosed { return }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func setHead(_ stream: String, _ seq: Int) {
        state.withLock { state in state.heads[stream] = max(state.heads[stream] ?? 0, seq) }
    }

    /// Records an event and hands it to every open page.
    ///
    /// The pages' streams are fed outside the lock: a yield may resume a page's task, which takes
    /// that task's own lock, while a page being cancelled holds its task's lock and runs its
    /// stream's termination, which takes this one (`unsubscribe`). Yielding under the lock
    /// deadlocked the console's whole thread pool that way (500 pages reconnecting, seen in
    /// `duban-bench --only web`). A page subscribing meanwhile finds the event in the buffer.
    func publish(_ event: LiveEvent) {
        let listeners = state.withLock { state -> [AsyncStream<LiveItem>.Continuation] in
            guard !state.closed, event.seq > (state.buffers[event.stream]?.last?.seq ?? 0) else { return [] }
            state.buffers[event.stream, default: []].append(event)
            if state.buffers[event.stream]!.count > keep {
                state.buffers[event.stream]!.removeFirst(state.buffers[event.stream]!.count - keep)
            }
            state.heads[event.stream] = max(state.heads[event.stream] ?? 0, event.seq)
            return Array(state.listeners.values)
        }
        for continuation in listeners { continuation.yield(.event(event)) }
    }

    /// Ends every page's stream and refuses new ones.
    func close() {
        let listeners = state.withLock { state in
            state.closed = true
            defer { state.listeners.removeAll() }
            return Array(state.listeners.values)
        }
        for continuation in listeners { continuation.finish() }
    }

    func unsubscribe(_ id: Int) {
        let continuation = state.withLock { $0.listeners.removeValue(forKey: id) }
        continuation?.finish()
    }

    /// The latest events of every stream, newest first.
    /// The sum of the positions of `streams` seen so far: it changes whenever one of them moves.
    func version(_ streams: [String]) -> Int {
        state.withLock { state in streams.reduce(0) { $0 + (state.heads[$1] ?? 0) } }
    }

    public func recent(_ limit: Int) -> [LiveEvent] {
        state.withLock { state in
            Array(state.buffers.values.joined().sorted { $0.ts == $1.ts ? $0.seq > $1.seq : $0.ts > $1.ts }.prefix(limit))
        }
    }

    /// A page's stream: what it missed since `cursor` (from memory, or from the services when
    /// it is older than what the hub keeps), then every new event. Starting without a cursor,
    /// it starts at the streams' current heads.
    func subscribe(after cursor: StreamCursor?) async -> (start: StreamCursor, missed: [LiveEvent], stream: AsyncStream<LiveItem>, id: Int)
    {
        // A page that comes back with a cursor right after this process started (a kiosk after a
        // restart of duban-web) must not be judged against heads not yet known: its missed events
        // would be neither in memory nor fetched, and the live feed starts after them.
        // If a service stays unreachable, the page's stream ends at once and the browser comes back
        // with the same cursor after its retry delay, until the hub can tell what it missed.
        var ready = true
        if let cursor { ready = await waitForHeads(Array(cursor.positions.keys), timeout: .seconds(10)) }
        let (stream, continuation) = AsyncStream.makeStream(of: LiveItem.self, bufferingPolicy: .bufferingNewest(2_000))
        if !ready { continuation.finish() }
        let (id, heads, missed, gaps) = state.withLock { state -> (Int, [String: Int], [LiveEvent], [(String, Int, Int)]) in
            let id = state.nextListener
            state.nextListener += 1
            if state.closed {
                continuation.finish()
            } else {
                state.listeners[id] = continuation
            }
            guard let cursor else { return (id, state.heads, [], []) }
            var missed: [LiveEvent] = []
            var gaps: [(String, Int, Int)] = []
            for (stream, seen) in cursor.positions {
                let buffered = state.buffers[stream] ?? []
                let oldest = buffered.first?.seq ?? ((state.heads[stream] ?? 0) + 1)
                if seen + 1 < oldest { gaps.append((stream, seen, oldest - 1)) }
                missed += buffered.filter { $0.seq > seen }
            }
            return (id, state.heads, missed, gaps)
        }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.listeners.removeValue(forKey: id) } }
        var fetched: [LiveEvent] = []
        for (stream, after, upTo) in gaps { fetched += await fetch(stream: stream, after: after, upTo: upTo) }
        var start = cursor ?? StreamCursor(heads)
        for (stream, head) in heads where start.positions[stream] == nil { start.positions[stream] = head }
        return (start, fetched + missed, stream, id)
    }

    /// Waits until the hub follows the services behind `streams` (their heads known); false when
    /// the timeout passes first (a service that is down).
    func waitForHeads(_ streams: [String], timeout: Duration) async -> Bool {
        let wanted = Set(streams.compactMap(ServiceName.init(rawValue:))).intersection(services)
        let deadline = ContinuousClock.now + timeout
        while !wanted.isSubset(of: state.withLock({ $0.following })) {
            if isClosed || ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Events `after < seq <= upTo` of `stream`, read from its service (`events.since`, as a reader).
    func fetch(stream: String, after: Int, upTo: Int) async -> [LiveEvent] {
        guard let service = ServiceName(rawValue: stream) else { return [] }
        var out: [LiveEvent] = []
        var position = after
        while position < upTo {
            guard
                let reply = try? await gateway.call(
                    service, SystemTypes.eventsSince,
                    EventsSinceRequest(stream: stream, after: position, limit: min(1_000, upTo - position)),
                    from: nil)
            else { break }
            let events = reply.events.filter { $0.seq <= upTo }
            if events.isEmpty { break }
            out += events.map { LiveEvent(stream: $0.stream, seq: $0.seq, type: $0.type, ts: $0.ts, text: Self.describe($0)) }
            position = events.last!.seq
        }
        return out
    }

    /// One line in Chinese for an event (the dashboard's feed).
    static func describe(_ event: AnyEvent) -> String {
        let body = event.body
        func s(_ key: String) -> String { body[key]?.stringValue ?? "" }
        switch event.type {
        case RegistryTypes.progressReported:
            let percent = body["percent"].flatMap { if case .number(let n) = $0 { return n } else { return nil } }
            return "\(s("unit")) 报送任务 \(s("task")) \(s("period")) 进展" + (percent.map { "（\(formatPercent($0))）" } ?? "")
        case RegistryTypes.taskStatusChanged:
            let to = TaskStatus(rawValue: s("to"))?.label ?? s("to")
            return "任务 \(s("task")) 状态变为「\(to)」"
        case RegistryTypes.taskReviewed:
            return "任务 \(s("task")) " + (s("decision") == "accepted" ? "通过验收" : "被退回")
        case RegistryTypes.escalationRecorded:
            return "记录督办升级：\(s("unit")) \(s("reason"))"
        case CaseTypes.opened:
            return "台账新增问题 \(s("id"))：\(s("title"))"
        case CaseTypes.transitioned:
            let to = CaseState(rawValue: s("to"))?.label ?? s("to")
            return "问题 \(s("id")) 变为「\(to)」（\(s("actor"))）"
        case CaseTypes.overdue:
            return "问题 \(s("id")) 已逾期"
        case NotifyTypes.noticeIssued:
            return "发出提醒：\(s("title"))"
        case NotifyTypes.noticeAcknowledged:
            return "\(body["ack"]?["unit"]?.stringValue ?? "") 签收提醒 \(body["notice"]?["id"]?.stringValue ?? "")"
        default:
            return event.type
        }
    }
}

func formatPercent(_ value: Double) -> String {
    value.rounded() == value ? "\(Int(value))%" : String(format: "%.1f%%", value)
}
