import Foundation
import Logging
import Schema
import Synchronization

/// Why a call did not get an answer.
public enum RPCClientError: Error, CustomStringConvertible, Sendable {
    /// No reply after every attempt; the request may or may not have been applied (a retry with
    /// the same key is safe).
    case timeout(type: String, endpoint: String, attempts: Int)
    case closed
    case badReply(String)

    public var description: String {
        switch self {
        case .timeout(let type, let endpoint, let attempts): return "\(endpoint) 在 \(attempts) 次尝试后仍未答复 \(type)"
        case .closed: return "客户端已关闭"
        case .badReply(let why): return "答复无法读取：\(why)"
        }
    }
}

/// A request/reply client for one service's rpc endpoint.
///
/// It speaks REQ-compatible framing over a DEALER socket (`[empty][payload]`), so many calls can
/// be in flight at once and replies are matched by `re`. A call that times out is sent again with
/// the same idempotency key (the guide's Lazy Pirate pattern): a lost reply never applies a
/// change twice. Mutating types get a fresh key per call unless the caller names one.
public final class RPCClient: Sendable {
    public let endpoint: String
    /// Sent as the envelope's `from`.
    public let from: String?
    let loop: ZMQPollLoop
    /// The socket thread as an actor, for `withSocketThread`.
    private let socketThread: SocketThread
    private let ownsLoop: Bool
    private let socket: SocketID
    /// The caller-thread connection for quick reads (`DirectLane`), unless the client was made without one.
    let direct: DirectLane?
    /// Reads answered on the direct lane so far, and reads it handed over to the loop (nil without a lane).
    public var directLaneCounts: (answeredHere: Int, handedOver: Int)? {
        direct.map { ($0.answeredHere.load(ordering: .relaxed), $0.handedOverInAll.load(ordering: .relaxed)) }
    }
    /// Hands replies received on the loop to this client; also for sockets the direct lane hands over.
    private let router: ReplyRouter
    private let pending = Mutex<[String: Waiter]>([:])
    private let closed = Atomic<Bool>(false)
    /// Expires waiters whose time is up. One task per client, not a timer task per call: on two
    /// cores, creating and cancelling a sleeping task for every request was a visible cost.
    private let sweeper = Mutex<Task<Void, Never>?>(nil)
    /// The CURVE keys it connects with, if any (a subscriber beside it uses the same).
    public let curve: ZMQCurve?
    /// Wakes the sweeper when a call starts waiting with none waiting before: an idle client's
    /// sweeper sleeps until then instead of waking every 20 ms.
    private let sweeperSignals = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    private struct Waiter {
        var continuation: UnsafeContinuation<Data, any Error>
        var deadline: ContinuousClock.Instant
    }

    /// How often the sweeper looks for expired waiters: the precision of call timeouts.
    private static let sweepInterval: Duration = .milliseconds(20)

    /// Connects to `endpoint`. The socket lives on `loop`, or on a loop of its own.
    /// `directLane: false` keeps every call on the loop's socket: a service's own clients of its
    /// peers, whose calls are not a person waiting, and whose pool threads serve requests.
    public static func connect(
        to endpoint: String, from: String? = nil, loop: ZMQPollLoop? = nil, curve: ZMQCurve? = nil, directLane: Bool = true
    ) async throws -> RPCClient {
        let ownLoop = loop == nil
        let loop = loop ?? ZMQPollLoop(name: "client")
        let box = ReplyRouter()
        do {
            let socket = try await loop.addSocket(
                .dealer, options: ZMQSocketOptions(sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000, curve: curve),
                setup: { try $0.connect(endpoint) },
                onMessage: { frames in box.deliver(frames) })
            let client = RPCClient(
                endpoint: endpoint, from: from, loop: loop, ownsLoop: ownLoop, socket: socket, curve: curve, router: box,
                directLane: directLane && DirectLane.enabled)
            box.client.withLock { $0 = client }
            client.startSweeper()
            return client
        } catch {
            if ownLoop { await loop.shutdown() }
            throw error
        }
    }

    /// Runs `body` with a client connected to `endpoint`, and closes it afterwards, on success and
    /// on error alike.
    public static func withClient<T: Sendable>(
        to endpoint: String, from: String? = nil, loop: ZMQPollLoop? = nil, curve: ZMQCurve? = nil,
        _ body: (RPCClient) async throws -> T
    ) async throws -> T {
        let client = try await connect(to: endpoint, from: from, loop: loop, curve: curve)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    private init(
        endpoint: String, from: String?, loop: ZMQPollLoop, ownsLoop: Bool, socket: SocketID, curve: ZMQCurve?, router: ReplyRouter,
        directLane: Bool
    ) {
        self.curve = curve
        self.router = router
        self.direct =
            directLane
            ? DirectLane(endpoint: endpoint, options: ZMQSocketOptions(sendHighWaterMark: 1_000, receiveHighWaterMark: 1_000, curve: curve))
            : nil
        self.endpoint = endpoint
        self.from = from
        self.loop = loop
        self.ownsLoop = ownsLoop
        self.socket = socket
        self.socketThread = SocketThread(loop: loop)
    }

    /// Calls a declared request type and decodes its reply; an error reply is thrown as `ErrorBody`.
    /// A write gets an idempotency key (the same on every retry) unless the caller gives one.
    public func call<Body, Reply>(
        _ rpc: RPC<Body, Reply>, _ body: Body, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> Reply {
        try await call(rpc.name, body, as: Reply.self, key: key, timeout: timeout, retries: retries)
    }

    /// The same, decoding the reply as another view of it (`JSONValue`, a subset of its fields).
    public func call<Body, Reply, View: Decodable & Sendable>(
        _ rpc: RPC<Body, Reply>, _ body: Body, as view: View.Type, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> View {
        try await call(rpc.name, body, as: View.self, key: key, timeout: timeout, retries: retries)
    }

    /// Calls a declared list type and reads on with `cursor` while the reply says `next`: the whole
    /// list, however many pages the service sends it in.
    public func callAll<Body, Item>(
        _ rpc: RPC<Body, ListReply<Item>>, _ body: Body, timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> [Item] {
        let encoded = try FastJSONEncoding.encodeOrFallBack(body)
        var items: [Item] = []
        var cursor: String?
        repeat {
            let page = try await callRaw(
                rpc.name, encodedBody: Self.adding(cursor: cursor, to: encoded), timeout: timeout, retries: retries)
            let reply = try FastJSONDecoding.decodeOrFallBack(ReplyEnvelope<ListReply<Item>>.self, from: page).result()
            items += reply.items
            if let next = reply.next, next == cursor { throw RPCClientError.badReply("\(rpc.name) answered the same page twice") }
            cursor = reply.next
        } while cursor != nil
        return items
    }

    /// An encoded JSON object with `"cursor"` added.
    static func adding(cursor: String?, to object: Data) -> Data {
        guard let cursor, let close = object.lastIndex(of: UInt8(ascii: "}")) else { return object }
        let isEmpty = object[..<close].allSatisfy { [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: "{")].contains($0) }
        var out = Data(object[..<close])
        out.append(contentsOf: (isEmpty ? "" : ",").utf8)
        out.append(contentsOf: #""cursor":"#.utf8)
        out.append((try? WireCoding.encode(cursor)) ?? Data("\"\"".utf8))
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Calls a declared request type and returns the raw reply frame.
    public func callRaw<Body, Reply>(
        _ rpc: RPC<Body, Reply>, _ body: Body, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> Data {
        try await callRaw(rpc.name, body, key: key, timeout: timeout, retries: retries)
    }

    /// Calls a declared request type with its body already encoded, and returns the raw reply frame.
    public func callRaw<Body, Reply>(
        _ rpc: RPC<Body, Reply>, encodedBody: Data, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> Data {
        try await callRaw(rpc.name, encodedBody: encodedBody, key: key, timeout: timeout, retries: retries)
    }

    /// Calls `type` by its wire name (the CLI's `duban request`, tests of unknown types) and decodes
    /// the reply body as `Reply`; an error reply is thrown as `ErrorBody`.
    public func call<Body: Encodable & Sendable, Reply: Decodable & Sendable>(
        _ type: String, _ body: Body, as reply: Reply.Type = Reply.self, key: String? = nil,
        timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> Reply {
        let frame = try await callRaw(type, body, key: key, timeout: timeout, retries: retries)
        // The common case, a successful reply read straight from the tree; anything else below.
        if let reply = FastJSONDecoding.replyBody(Reply.self, from: frame) { return reply }
        let envelope: ReplyEnvelope<Reply>
        do {
            // The tree decoder first (a fraction of JSONDecoder's time); whatever it is unsure of, JSONDecoder.
            envelope = try FastJSONDecoding.decodeOrFallBack(ReplyEnvelope<Reply>.self, from: frame)
        } catch {
            // An error reply has no body to decode as `Reply`: read it as an error.
            if let failed = try? WireCoding.decoder().decode(ReplyEnvelope<JSONValue>.self, fromUntrusted: frame), !failed.ok,
                let error = failed.error
            {
                throw error
            }
            throw RPCClientError.badReply("\(error)")
        }
        return try envelope.result()
    }

    /// Calls `type` and returns the raw reply frame.
    public func callRaw<Body: Encodable & Sendable>(
        _ type: String, _ body: Body, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2
    ) async throws -> Data {
        // An empty body is the most common one (sys.ping, plan.get, …): no encoder for it.
        let encoded = Body.self == Empty.self ? Data("{}".utf8) : try FastJSONEncoding.encodeOrFallBack(body)
        return try await callRaw(type, encodedBody: encoded, key: key, timeout: timeout, retries: retries)
    }

    /// Calls `type` with a body already encoded as a JSON object, and returns the raw reply frame.
    /// Called from the socket thread's actor (`withSocketThread`), it resumes there too.
    public func callRaw(
        _ type: String, encodedBody: Data, key: String? = nil, timeout: Duration = .seconds(5), retries: Int = 2,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> Data {
        let key = key ?? (MutatingTypes.all.contains(type) ? MessageID.next() : nil)
        let attempts = max(1, retries + 1)
        // Anything but a declared read counts as a write: while one is out, reads keep to its connection.
        let read = DirectLane.takes(type)
        if !read { direct?.writeBegan() }
        var unsettled = false
        defer { if !read { direct?.writeEnded(timedOut: unsettled) } }
        for attempt in 0..<attempts {
            let id = MessageID.next()
            let payload = EnvelopeWriter.request(id: id, type: type, from: from, key: key, body: encodedBody)
            // A read's first attempt, from any thread but the socket thread: on the caller's thread.
            if attempt == 0, read, let direct, !loop.isLoopThread, !closed.load(ordering: .acquiring) {
                try Task.checkCancellation()
                switch direct.attempt(type: type, id: id, payload: payload, timeout: timeout) {
                case .reply(let reply): return reply
                case .handedOver(let socket):
                    if let reply = try await waitHandedOver(
                        socket, through: direct, id: id, timeout: max(.milliseconds(1), timeout - DirectLane.waitLimit))
                    {
                        return reply
                    }
                    continue
                case .notTaken: break
                }
            }
            if let reply = try await exchange(.frames([Data(), payload]), waitingFor: id, timeout: timeout) { return reply }
        }
        unsettled = true
        throw RPCClientError.timeout(type: type, endpoint: endpoint, attempts: attempts)
    }

    /// Runs `operation` on the client's socket thread: isolated to an actor whose executor is the
    /// socket's poll loop, which is also the task executor of the tasks it starts. A call's request
    /// is sent and its reply resumes the caller on that one thread between polls, with no
    /// hand-over to another thread: the latency of a synchronous ZeroMQ client, with async code.
    /// For latency-sensitive callers making many short calls; the work between calls should be
    /// short too, since it holds up the socket thread while it runs.
    public func withSocketThread<T: Sendable>(_ operation: @Sendable (isolated SocketThread) async throws -> T) async rethrows -> T {
        try await withTaskExecutorPreference(loop) { try await operation(socketThread) }
    }

    /// Sends a payload as it is (for tests of malformed input) and waits for the reply with `re == id`;
    /// nil on timeout.
    public func send(payload: Data, id: String, timeout: Duration) async throws -> Data? {
        try await exchange(.frames([Data(), payload]), waitingFor: id, timeout: timeout)
    }

    /// Sends raw frames and waits for the next reply whatever its `re` (for tests of garbage input).
    public func sendUnmatched(frames: [Data], timeout: Duration) async throws -> Data? {
        try await exchange(.frames(frames), waitingFor: Self.anyReply, timeout: timeout)
    }

    /// The waiter key for a reply that cannot be matched by `re`.
    private static let anyReply = "*"

    /// What a call sends: frames for the loop's socket, or a direct-lane socket whose request is
    /// already out, for the loop to take as `id`.
    private enum Outbound {
        case frames([Data])
        case handedOver(DirectLane.UncheckedSocket, SocketID)
    }

    /// Waits for the reply to a request the direct lane sent and handed over; the socket is closed
    /// once its reply came, or here when the call stops waiting first (timeout, cancellation, close).
    private func waitHandedOver(
        _ socket: DirectLane.UncheckedSocket, through direct: DirectLane, id: String, timeout: Duration,
        isolation: isolated (any Actor)? = #isolation
    ) async throws -> Data? {
        let socketID = loop.reserveSocketID()
        direct.handedOver(as: socketID)
        do {
            let reply = try await exchange(.handedOver(socket, socketID), waitingFor: id, timeout: timeout)
            if direct.finishHandOver(socketID) { await loop.closeSocket(socketID) }
            return reply
        } catch {
            if direct.finishHandOver(socketID) { await loop.closeSocket(socketID) }
            throw error
        }
    }

    /// Registers a waiter under `key`, sends `frames`, and returns the reply, or nil when `timeout` passes first.
    /// Whoever removes the waiter from `pending` (the reply, the timer, or cancellation) resumes it, so
    /// it resumes once; a cancelled caller stops waiting at once (graceful shutdown must not sit out timeouts).
    private func exchange(
        _ outbound: Outbound, waitingFor key: String, timeout: Duration, isolation: isolated (any Actor)? = #isolation
    ) async throws -> Data? {
        guard !closed.load(ordering: .acquiring) else { throw RPCClientError.closed }
        try Task.checkCancellation()
        do {
            // The continuation resumes on the caller's isolation: on the socket thread's actor, the
            // reply resumes the caller right there instead of through the global pool.
            let reply: Data = try await withTaskCancellationHandler {
                // Resumed exactly once, by whoever removes the waiter from `pending`.
                try await withUnsafeThrowingContinuation(isolation: isolation) {
                    (continuation: UnsafeContinuation<Data, any Error>) -> Void in
                    // The deadline is set once the waiter is registered, so the sweeper cannot miss it.
                    // Registered under the same lock that `close()` drains with, after checking that it
                    // has not: a waiter is never left behind by a close, and never replaces another.
                    let (refusal, first) = pending.withLock { pending -> (RPCClientError?, Bool) in
                        if closed.load(ordering: .acquiring) { return (.closed, false) }
                        if pending[key] != nil { return (.badReply("a call with message id \(key) is already waiting"), false) }
                        pending[key] = Waiter(continuation: continuation, deadline: .now + timeout)
                        return (nil, pending.count == 1)
                    }
                    if first { sweeperSignals.continuation.yield() }
                    if let refusal {
                        continuation.resume(throwing: refusal)
                        return
                    }
                    // Cancelled before the waiter existed: the cancellation handler found nothing to resume.
                    if Task.isCancelled, let waiter = pending.withLock({ $0.removeValue(forKey: key) }) {
                        waiter.continuation.resume(throwing: CancellationError())
                        return
                    }
                    switch outbound {
                    case .frames(let frames): loop.send(socket, frames)
                    case .handedOver(let lane, let id):
                        let (router, direct) = (self.router, self.direct)
                        loop.adopt(lane, as: id) { frames in
                            // The loop closes it after this, its one reply.
                            _ = direct?.finishHandOver(id)
                            router.deliver(frames)
                        }
                    }
                }
            } onCancel: { [self] in
                let waiter = pending.withLock { $0.removeValue(forKey: key) }
                waiter?.continuation.resume(throwing: CancellationError())
            }
            return reply
        } catch is TimedOut {
            return nil
        }
    }

    private func startSweeper() {
        let signals = sweeperSignals.stream
        let task = Task { [weak self] in
            var wakeUps = signals.makeAsyncIterator()
            while !Task.isCancelled {
                // Nothing waiting: sleep until a call starts waiting (or the client closes).
                guard let idle = self?.pending.withLock({ $0.isEmpty }) else { return }
                if idle {
                    if await wakeUps.next() == nil { return }
                    continue
                }
                try? await Task.sleep(for: Self.sweepInterval)
                guard let self else { return }
                let now = ContinuousClock.now
                let expired = self.pending.withLock { pending -> [Waiter] in
                    let keys = pending.filter { $0.value.deadline <= now }.map(\.key)
                    return keys.compactMap { pending.removeValue(forKey: $0) }
                }
                for waiter in expired { waiter.continuation.resume(throwing: TimedOut()) }
            }
        }
        sweeper.withLock { $0 = task }
    }

    private struct TimedOut: Error {}

    fileprivate func deliver(_ frames: [Data]) {
        // REQ-compatible framing: [empty][payload].
        guard let payload = frames.last, frames.count >= 1 else { return }
        // Only `re` is needed here, on the loop thread: FastJSON reads it without JSONDecoder's cost.
        let re = FastJSON.topLevelString("re", in: payload)
        let waiter = pending.withLock { pending -> Waiter? in
            if let re, let waiter = pending.removeValue(forKey: re) { return waiter }
            return pending.removeValue(forKey: Self.anyReply)
        }
        // No waiter: the reply to an attempt that already timed out, or to a call answered by a retry.
        waiter?.continuation.resume(returning: payload)
    }

    /// Closes the socket (and the loop, if it is the client's own). Calls in flight fail with `closed`.
    public func close() async {
        // Set under the waiters' lock, so no call registers a waiter after the drain below.
        let first = pending.withLock { _ in !closed.exchange(true, ordering: .acquiringAndReleasing) }
        guard first else { return }
        sweeper.withLock { $0?.cancel() }
        sweeperSignals.continuation.finish()
        let waiters = pending.withLock { pending -> [Waiter] in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: RPCClientError.closed) }
        // The router holds this client for the loop's handlers, and this client holds the router
        // (for sockets handed over from the lane): break the cycle, or neither is ever freed.
        router.client.withLock { $0 = nil }
        // Sockets the loop took over from the direct lane and still waits on close with the client.
        for id in direct?.close() ?? [] { await loop.closeSocket(id) }
        await loop.closeSocket(socket)
        if ownsLoop { await loop.shutdown() }
    }
}

/// Hands replies from the loop thread to the client, which exists only once the socket does.
private final class ReplyRouter: Sendable {
    let client = Mutex<RPCClient?>(nil)

    func deliver(_ frames: [Data]) {
        client.withLock { $0 }?.deliver(frames)
    }
}

/// An actor whose executor is a poll loop's thread: code isolated to it runs between polls on the
/// thread that owns the sockets (`RPCClient.withSocketThread`).
public actor SocketThread {
    let loop: ZMQPollLoop
    init(loop: ZMQPollLoop) { self.loop = loop }
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
}
