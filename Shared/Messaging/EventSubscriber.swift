import Foundation
import Logging
import Schema
import Synchronization

/// Where a subscriber starts in each stream.
public enum SubscriptionStart: Sendable {
    /// Every event ever stored.
    case beginning
    /// Only events after the streams' heads at start; streams that appear later are read from their start.
    case now
    /// After the given `seq` per stream (a saved cursor); streams not named start at the beginning.
    case after([String: Int])
}

/// A subscriber that misses nothing: the ZeroMQ guide's Clone pattern.
///
/// It subscribes to the events endpoint first, then reads what it missed through the rpc
/// endpoint's `events.since`, and delivers each stream's events in `seq` order exactly once.
/// A jump in `seq` on the live feed (PUB dropped at its high-water mark, a reconnect) is filled
/// the same way before the newer event is delivered. Because PUB may also drop the last events
/// of a burst, where no later event would reveal the gap, it asks `sys.ping` for the streams'
/// heads every `heartbeat` and fills up to them.
public final class EventSubscriber: Sendable {
    private enum Input: Sendable {
        case frame([Data])
        case tick
    }

    public let eventsEndpoint: String
    public let rpcEndpoint: String
    public let topics: [String]
    private let heartbeat: Duration
    private let logger: Logger
    private let loop: ZMQPollLoop
    private let cursors = Mutex<[String: Int]>([:])
    private let worker = Mutex<Task<Void, Never>?>(nil)
    private let rpc: RPCClient
    private let inputs: AsyncStream<Input>
    private let inputContinuation: AsyncStream<Input>.Continuation
    /// Delivered events waiting for the consumer: at most 1,024, then catch-up waits for it.
    private let outputs = BoundedChannel<AnyEvent>(capacity: 1_024)

    /// Subscribes to `topics` (prefixes; `[""]` for everything) and starts catching up.
    public static func start(
        events eventsEndpoint: String, rpc rpcEndpoint: String, topics: [String] = [""], from start: SubscriptionStart = .beginning,
        heartbeat: Duration = .seconds(2), name: String = "subscriber", logger: Logger = Logger(label: "duban.subscriber"),
        curve: ZMQCurve? = nil
    ) async throws -> EventSubscriber {
        let loop = ZMQPollLoop(name: name, logger: logger)
        do {
            // With CURVE the key says who asks (an absent `from` is the principal); without, the name does.
            // Catch-up reads are not a person waiting: no direct lane.
            let rpc = try await RPCClient.connect(
                to: rpcEndpoint, from: curve == nil ? name : nil, loop: loop, curve: curve, directLane: false)
            let subscriber = EventSubscriber(
                events: eventsEndpoint, rpc: rpc, rpcEndpoint: rpcEndpoint, topics: topics, heartbeat: heartbeat, logger: logger, loop: loop
            )
            let continuation = subscriber.inputContinuation
            // Subscribe before reading history, so nothing falls between the two.
            _ = try await loop.addSocket(
                .sub, options: ZMQSocketOptions(receiveHighWaterMark: 10_000, subscriptions: topics, curve: curve),
                setup: { try $0.connect(eventsEndpoint) },
                onMessage: { frames in continuation.yield(.frame(frames)) })
            var position = start
            if case .now = start {
                // "Now" is when start() returns: read the heads here. Read later, they could already count
                // an event published meanwhile, which would then be skipped as seen.
                let ping = try await rpc.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(5), retries: 2)
                position = .after(ping.streams)
            }
            subscriber.run(start: position)
            return subscriber
        } catch {
            await loop.shutdown()
            throw error
        }
    }

    private init(
        events: String, rpc: RPCClient, rpcEndpoint: String, topics: [String], heartbeat: Duration, logger: Logger, loop: ZMQPollLoop
    ) {
        self.eventsEndpoint = events
        self.rpcEndpoint = rpcEndpoint
        self.rpc = rpc
        self.topics = topics.isEmpty ? [""] : topics
        self.heartbeat = heartbeat
        self.logger = logger
        self.loop = loop
        // Bounded: frames dropped when the consumer falls behind are read back by seq (a gap is
        // filled before the next event is delivered), so a burst costs catch-up, not memory.
        (inputs, inputContinuation) = AsyncStream.makeStream(of: Input.self, bufferingPolicy: .bufferingNewest(10_000))

    }

    /// The events, each stream in `seq` order, none twice. One consumer.
    public var events: AsyncStream<AnyEvent> { outputs.stream }

    /// The last delivered (or skipped as another topic) `seq` per stream: save it to resume later.
    public var positions: [String: Int] { cursors.withLock { $0 } }

    /// Stops the subscriber and ends `events`.
    public func stop() async {
        let task = worker.withLock { $0 }
        task?.cancel()
        inputContinuation.finish()
        await task?.value
        outputs.finish()
        await rpc.close()
        await loop.shutdown()
    }

    private func run(start: SubscriptionStart) {
        let ticker = Task { [inputContinuation, heartbeat] in
            while !Task.isCancelled {
                try? await Task.sleep(for: heartbeat)
                inputContinuation.yield(.tick)
            }
        }
        let task = Task { [self] in
            defer { ticker.cancel() }
            var core = Core(start: start)
            await self.sync(&core)
            for await input in inputs {
                if Task.isCancelled { break }
                switch input {
                case .tick: await sync(&core)
                case .frame(let frames): await handleLive(frames, &core)
                }
            }
        }
        worker.withLock { $0 = task }
    }

    private struct Core {
        var start: SubscriptionStart
        /// Streams whose starting point is settled.
        var known: Set<String> = []
        var initialSyncDone = false

        init(start: SubscriptionStart) { self.start = start }
    }

    /// Learns the streams and their heads, and fills every stream up to its head.
    private func sync(_ core: inout Core) async {
        let ping: PingReply
        do {
            ping = try await rpc.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: .seconds(2), retries: 0)
        } catch {
            logger.debug("heads unavailable, will retry", metadata: ["rpc.endpoint": "\(rpcEndpoint)", "error": "\(error)"])
            return
        }
        for (stream, head) in ping.streams.sorted(by: { $0.key < $1.key }) {
            settle(stream, head: head, core: &core, initial: !core.initialSyncDone)
            _ = await fill(stream, upTo: head)
        }
        core.initialSyncDone = true
    }

    private func settle(_ stream: String, head: Int?, core: inout Core, initial: Bool) {
        guard !core.known.contains(stream) else { return }
        core.known.insert(stream)
        let startAt: Int
        switch core.start {
        case .beginning: startAt = 0
        case .now: startAt = initial ? (head ?? 0) : 0
        case .after(let saved): startAt = saved[stream] ?? 0
        }
        cursors.withLock { if $0[stream] == nil { $0[stream] = startAt } }
    }

    private func handleLive(_ frames: [Data], _ core: inout Core) async {
        guard frames.count == 2, let event = try? WireCoding.decoder().decode(AnyEvent.self, fromUntrusted: frames[1]) else {
            logger.warning("unreadable event frame", metadata: ["events.endpoint": "\(eventsEndpoint)"])
            return
        }
        if !core.known.contains(event.stream) {
            // A stream that appeared after we started: it is new, so read it from its start.
            settle(event.stream, head: nil, core: &core, initial: !core.initialSyncDone)
        }
        let cursor = cursors.withLock { $0[event.stream] ?? 0 }
        if event.seq <= cursor { return }  // already delivered (through catch-up)
        if event.seq > cursor + 1 {
            // A gap: fill it first. If that fails the live event is dropped too; it is stored on the
            // service and the next heartbeat fetches it in order.
            guard await fill(event.stream, upTo: event.seq - 1) else { return }
        }
        // The fill may have read past this event (it reads up to the stream's head).
        await deliver(event)
    }

    /// Reads `stream` through `events.since` until the cursor reaches `target`. False if the service did not answer.
    private func fill(_ stream: String, upTo target: Int) async -> Bool {
        while true {
            let cursor = cursors.withLock { $0[stream] ?? 0 }
            if cursor >= target { return true }
            let page: EventsSinceReply<AnyEvent>
            do {
                page = try await rpc.call(
                    SystemTypes.eventsSince, EventsSinceRequest(stream: stream, after: cursor, limit: 1000),
                    as: EventsSinceReply<AnyEvent>.self, timeout: .seconds(5), retries: 1)
            } catch {
                logger.warning("catch-up failed", metadata: ["event.stream": "\(stream)", "error": "\(error)"])
                return false
            }
            if page.events.isEmpty { return true }
            var advanced = false
            for event in page.events { advanced = await deliver(event) || advanced }
            if !advanced { return true }
        }
    }

    /// Delivers `event` if it is the next of its stream; anything else was delivered already or
    /// must wait for a fill. Returns whether it was delivered. This one check is what makes
    /// delivery exactly once and in order, however live events and catch-up pages interleave.
    @discardableResult
    private func deliver(_ event: AnyEvent) async -> Bool {
        let isNext = cursors.withLock { cursors -> Bool in
            guard event.seq == (cursors[event.stream] ?? 0) + 1 else { return false }
            cursors[event.stream] = event.seq
            return true
        }
        if isNext, topics.contains(where: { event.type.hasPrefix($0) }) {
            // Waits while the consumer is 1,024 events behind: a slow consumer slows catch-up, not memory.
            await outputs.send(event)
        }
        return isNext
    }
}
