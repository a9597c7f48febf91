import Foundation
import GRDB
import Logging
import Messaging
import Schema
import ServiceLifecycle
import Synchronization

/// Who a server is, for `sys.ping` and the logs.
public struct ServerIdentity: Sendable {
    public var service: ServiceName
    /// The instance's name, also its event stream (`registry`, `ingest-2`).
    public var instance: String
    public var version: String
    public var started: String

    public init(service: ServiceName, instance: String, version: String = dubanVersion, started: String = Timestamp.now()) {
        self.service = service
        self.instance = instance
        self.version = version
        self.started = started
    }
}

/// Binds `endpoint`, or connects to it when it starts with `>` (CZMQ's convention): an instance
/// behind a broker connects its rpc ROUTER to the broker's DEALER and its PUB to the broker's XSUB.
func attach(_ socket: ZMQSocket, _ endpoint: String) throws {
    if endpoint.hasPrefix(">") {
        try socket.connect(String(endpoint.dropFirst()))
    } else {
        try socket.bind(endpoint.hasPrefix("@") ? String(endpoint.dropFirst()) : endpoint)
    }
}

/// Duban's version, reported by `sys.ping`.
public let dubanVersion = "0.1.0"

/// The rpc and events sockets of a service, and the loop that answers requests.
///
/// Every request gets exactly one reply; a handler's error becomes the protocol's error reply and
/// the service goes on. Requests are read on the socket thread as they arrive; a synchronous read
/// whose connection has nothing of its own waiting is answered there. Everything else is admitted
/// (bounded per connection and in all, `unavailable` past that) and dispatched: writes to one
/// serial lane, in arrival order (the idempotency check and the change it guards are one step);
/// reads beside it, a bounded number at once, each after its own connection's earlier writes.
/// docs/architecture.md follows one request through.
public final class RPCServer: Service, Sendable {
    public let identity: ServerIdentity
    /// Endpoints as bound (a `tcp://…:*` endpoint resolves to its port).
    public let endpoints: Endpoints
    public let store: any EventStorage
    private let loop: ZMQPollLoop
    private let router: SocketID
    private let runner: RequestRunner
    private let queued: QueuedRequests
    private let topics: [String]
    private let maxPayloadBytes: Int
    private let logger: Logger
    private let clock: ServiceClock
    private let requests: AsyncStream<Prepared>
    /// Set at graceful shutdown: requests that have not started are refused, not run.
    private let stopping = Atomic<Bool>(false)
    static let stoppingError = ErrorBody.unavailable("服务正在停止，请稍后重试")
    private let requestsContinuation: AsyncStream<Prepared>.Continuation
    /// CURVE and the principals admitted; nil without a key directory.
    public let security: ServerSecurity?

    /// Binds the rpc (ROUTER) and events (PUB) endpoints. Fails at once if either cannot be bound.
    public static func bind(
        identity: ServerIdentity, endpoints: Endpoints, store: any EventStorage, handlers: HandlerTable, topics: [String],
        maxPayloadBytes: Int, clock: ServiceClock, logger: Logger, limits: RequestLimits = RequestLimits(),
        security: ServerSecurity? = nil, metrics: ServiceMetrics? = nil
    ) async throws -> RPCServer {
        let loop = ZMQPollLoop(name: identity.instance, logger: logger)
        let (requests, continuation) = AsyncStream.makeStream(of: Prepared.self)
        var table = handlers
        Self.registerSystemHandlers(&table, identity: identity, topics: topics, store: store, security: security != nil)
        // Requests are read (framing, JSON, fingerprint, preparation) on the socket's own thread as
        // they arrive, ahead of and in parallel with the handler of the request before; handlers
        // then run one at a time in arrival order on the service's task.
        let reader = RequestReader(handlers: table, maxPayloadBytes: maxPayloadBytes, security: security, logger: logger)
        let runner = RequestRunner(handlers: table, store: store, clock: clock, logger: logger, metrics: metrics)
        let queued = QueuedRequests(limits: limits, metrics: metrics)
        do {
            // libzmq drops the connection of a peer whose message exceeds MAXMSGSIZE, with no reply;
            // the cap sits well above the protocol's limit so that oversized payloads up to it get
            // their `too_large` reply, and memory stays bounded beyond it.
            let hardCap = Int64(maxPayloadBytes * 2)
            // CURVE: the ZAP handler is bound before any CURVE socket of the loop's context.
            let strangerCheck = try StrangerCheck()
            var curve: ZMQCurve?
            if let security, let brokerKey = security.brokerKey {
                // Behind the broker the instance connects out, pinning the broker's key.
                curve = .client(
                    serverKey: brokerKey, publicKey: security.certificate.publicKey, secretKey: security.certificate.secretKey ?? "")
            } else if let security {
                _ = try await loop.startZAPHandler { request in
                    let decision = security.decide(request)
                    if case .deny = decision { metrics?.certificateRefused() }
                    return strangerCheck.observe(request, decision)
                }
                curve = .server(secretKey: security.certificate.secretKey ?? "")
            }
            var boundRPC = ""
            let router = try await loop.addSocket(
                .router,
                // Per peer, replies: a pipe of 64 messages (at most 64 × a 4 MiB page); a peer that stops
                // reading fills its own, then its replies park in the loop (32 MiB) and are dropped past that.
                // Requests: a pipe of 64 messages (the mark counts messages, not bytes), so a peer
                // sending faster than it is served is slowed by TCP, and what waits here stays
                // within 64 × the largest message per connection. (16 cost pipelined clients a
                // quarter of their throughput: the pipe re-opened every 8 messages.)
                options: ZMQSocketOptions(
                    sendHighWaterMark: 64, receiveHighWaterMark: 64, maxMessageSize: hardCap, routerMandatory: true, curve: curve),
                setup: { socket in try attach(socket, endpoints.rpc) },
                authenticated: { frames, userID in
                    let prepared = reader.prepare(frames, userID: userID)
                    guard let peer = prepared.peer else { return nil }
                    // A connection's requests are answered in order: only with nothing of its own
                    // queued may one be answered here and now.
                    if !queued.hasQueued(peer), let reply = runner.answerAtOnce(prepared) { return reply }
                    if let refusal = queued.admit(prepared, peer: peer) { return refusal }
                    if case .terminated = continuation.yield(prepared) {
                        // Shutting down: counted out again, and answered rather than dropped.
                        queued.done(peer: peer, bytes: prepared.bytes)
                        return prepared.refusal(RPCServer.stoppingError)
                    }
                    return nil
                })
            boundRPC = try await loop.withSocket(router) { socket in endpoints.rpc.hasPrefix(">") ? endpoints.rpc : socket.lastEndpoint }
            // A subscriber that stops reading holds at most this many events here (the mark counts
            // messages): 1,000 × the largest event, which the text limits keep under ~300 KB (a few
            // hundred KB per stalled subscriber in practice). What it misses it reads back by seq.
            let pub = try await loop.addSocket(
                .pub, options: ZMQSocketOptions(sendHighWaterMark: 1_000, curve: curve),
                setup: { socket in try attach(socket, endpoints.events) })
            let boundEvents = try await loop.withSocket(pub) { socket in
                endpoints.events.hasPrefix(">") ? endpoints.events : socket.lastEndpoint
            }
            if let security {
                // Refuse to start unless a stranger's key is refused on both sockets.
                let serverKey = security.certificate.publicKey
                if !boundRPC.hasPrefix(">") { try await strangerCheck.verify(endpoint: boundRPC, serverKey: serverKey, type: .dealer) }
                if !boundEvents.hasPrefix(">") { try await strangerCheck.verify(endpoint: boundEvents, serverKey: serverKey, type: .sub) }
                // A key taken out loses its event subscription: the PUB is bound again, which drops
                // every subscriber; the others reconnect and catch up by seq, it is refused.
                if !boundEvents.hasPrefix(">") {
                    security.watcher.cutSubscriptions(on: pub, of: loop, boundAt: boundEvents, logger: logger)
                }
            }
            store.setPublisher { topic, envelope in loop.send(pub, [Data(topic.utf8), envelope]) }
            let bound = Endpoints(rpc: boundRPC, events: boundEvents)
            logger.info(
                "listening", metadata: ["zmq.rpc": "\(bound.rpc)", "zmq.events": "\(bound.events)", "db.location": "\(store.location)"])
            return RPCServer(
                identity: identity, endpoints: bound, store: store, loop: loop, router: router, runner: runner, queued: queued,
                topics: topics,
                maxPayloadBytes: maxPayloadBytes, logger: logger, clock: clock, requests: requests, continuation: continuation,
                security: security)
        } catch {
            await loop.shutdown()
            throw error
        }
    }

    private init(
        identity: ServerIdentity, endpoints: Endpoints, store: any EventStorage, loop: ZMQPollLoop, router: SocketID, runner: RequestRunner,
        queued: QueuedRequests, topics: [String], maxPayloadBytes: Int, logger: Logger, clock: ServiceClock,
        requests: AsyncStream<Prepared>,
        continuation: AsyncStream<Prepared>.Continuation, security: ServerSecurity?
    ) {
        self.security = security
        self.identity = identity
        self.endpoints = endpoints
        self.store = store
        self.loop = loop
        self.router = router
        self.topics = topics
        self.maxPayloadBytes = maxPayloadBytes
        self.logger = logger
        self.clock = clock
        self.requests = requests
        self.requestsContinuation = continuation
        self.runner = runner
        self.queued = queued
    }

    /// Serves requests until graceful shutdown, then closes the sockets.
    public func run() async throws {
        await withDiscardingTaskGroup { housekeeping in
            housekeeping.addTask { await self.purgeExpiredKeysHourly() }
            if let watcher = security?.watcher { housekeeping.addTask { try? await watcher.run() } }
            await withGracefulShutdownHandler {
                await serveRequests()
            } onGracefulShutdown: { [self] in
                stopping.store(true, ordering: .relaxed)
                requestsContinuation.finish()
            }
            housekeeping.cancelAll()
        }
        logger.info("stopping", metadata: ["service.instance": "\(identity.instance)"])
        await loop.shutdown()
    }

    /// Dispatches the queued requests without ever waiting on one: writes to the write lane, which
    /// runs them one at a time in arrival order; reads beside it, a bounded number at once, each
    /// after its own connection's writes queued before it (so a pipelined read sees the write
    /// before it). A slow read (a report) holds a read slot, never the writes or the dispatch.
    private func serveRequests() async {
        let readSlots = ReadSlots(count: queued.limits.concurrentReads, perConnection: 2)
        let writesInFlight = WritesInFlight()
        let (writes, writeLane) = AsyncStream.makeStream(of: Prepared.self)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await request in writes {
                    // The idempotency claim and the change it guards are one step. Once the service
                    // is stopping, what has not started is answered `unavailable` (retry elsewhere
                    // or later, with the same key) instead of holding the shutdown.
                    self.reply(
                        self.stopping.load(ordering: .relaxed) ? request.refusal(Self.stoppingError) : await self.execute(request),
                        to: request)
                    if let peer = request.peer { await writesInFlight.end(peer) }
                }
            }
            for await request in requests {
                guard let peer = request.peer else { continue }
                if runner.runsInTheWriteLane(request) {
                    await writesInFlight.begin(peer)
                    writeLane.yield(request)
                    continue
                }
                let gate = await writesInFlight.gate(for: peer)
                group.addTask {
                    await gate?.wait()
                    await readSlots.acquire(for: peer)
                    self.reply(
                        self.stopping.load(ordering: .relaxed) ? request.refusal(Self.stoppingError) : await self.execute(request),
                        to: request)
                    await readSlots.release(for: peer)
                }
            }
            writeLane.finish()
        }
    }

    private func purgeExpiredKeysHourly() async {
        while !Task.isCancelled {
            do {
                let removed = try await store.purgeExpiredKeys(now: Date())
                if removed > 0 { logger.debug("expired idempotency keys removed", metadata: ["count": "\(removed)"]) }
            } catch {
                logger.warning("idempotency purge failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    /// Sends a reply, then (on the socket thread) counts its request as done.
    private func reply(_ frames: [Data]?, to request: Prepared) {
        guard let peer = request.peer else { return }
        let bytes = request.bytes
        guard let frames else {
            loop.runOnLoop { [queued] in queued.done(peer: peer, bytes: bytes) }
            return
        }
        loop.send(router, frames) { [queued] in queued.done(peer: peer, bytes: bytes) }
    }

    /// Runs a prepared request's handler and frames the reply.
    func execute(_ prepared: Prepared) async -> [Data]? {
        switch prepared {
        case .drop: return nil
        case .answered(let routing, let reply):
            runner.metrics?.observe(reply: reply, type: "-", duration: nil)
            return routing + [reply]
        case .request(let routing, let request, let fingerprint, _):
            return routing + [await runner.handle(request, fingerprint: fingerprint, deadline: queued.limits.deadline)]
        }
    }

    /// A request read and checked, waiting for its turn.
    enum Prepared: Sendable {
        /// Nobody to answer.
        case drop
        /// Answered without running a handler (malformed, too large, unknown type).
        case answered(routing: [Data], reply: Data)
        case request(routing: [Data], DecodedRequest, fingerprint: Result<String?, any Error>, bytes: Int)

        /// The connection it came from (a ROUTER's first frame); nil when there is nobody to answer.
        /// Who sent it, for order and fair shares: the whole identity envelope (the routing frames
        /// before the delimiter), so that behind the broker (`[broker][client][]`) each client is a
        /// connection of its own. Nil when there is nobody to answer.
        var peer: Data? {
            switch self {
            case .drop: return nil
            case .answered(let routing, _), .request(let routing, _, _, _):
                guard routing.count > 1 || routing.first?.isEmpty == false else { return routing.first }
                var key = Data()
                for frame in routing where !frame.isEmpty {
                    key.append(UInt8(truncatingIfNeeded: frame.count))
                    key.append(frame)
                }
                return key
            }
        }

        /// The reply that refuses it with `error` (or its own reply, when it was refused while read).
        func refusal(_ error: ErrorBody) -> [Data]? {
            switch self {
            case .drop: return nil
            case .answered(let routing, let reply): return routing + [reply]
            case .request(let routing, let request, _, _):
                return routing + [EnvelopeWriter.errorReply(type: request.type, re: request.id, error: error)]
            }
        }

        /// The payload's size, for the bound on bytes held.
        var bytes: Int {
            if case .request(_, _, _, let bytes) = self { return bytes }
            return 0
        }
    }

    private static func registerSystemHandlers(
        _ table: inout HandlerTable, identity: ServerIdentity, topics: [String], store: any EventStorage, security: Bool
    ) {
        @Sendable func ping(_ heads: [String: Int]) -> PingReply {
            PingReply(
                service: identity.service.rawValue, instance: identity.instance, version: identity.version, started: identity.started,
                streams: heads, security: security ? "curve" : "none")
        }
        @Sendable func limit(_ request: EventsSinceRequest) throws -> Int {
            guard request.after >= 0 else { throw ErrorBody.invalidArgument("after 应为 0 或正整数", field: "body.after") }
            let limit = request.limit ?? 1000
            guard (1...10_000).contains(limit) else {
                throw ErrorBody.invalidArgument("limit 应在 1 到 10000 之间", field: "body.limit")
            }
            return limit
        }
        @Sendable func page(_ request: EventsSinceRequest, _ page: (envelopes: [Data], head: Int)?) throws -> Data {
            guard let page else { throw ErrorBody.notFound("没有事件流 \(ErrorBody.quote(request.stream))", field: "body.stream") }
            // Capped in bytes as well as count (PROTOCOL.md section 4): the reader reads on from the
            // last seq it got until the head.
            var out = Data(#"{"events":["#.utf8)
            for (index, envelope) in page.envelopes.enumerated() {
                if index > 0 && out.count + envelope.count > ReplyLimits.bytes { break }
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(envelope)
            }
            out.append(contentsOf: #"],"head":\#(page.head)}"#.utf8)
            return out
        }
        if let store = store as? any SynchronousEventStorage {
            // SQLite answers in microseconds: both are answered on the socket thread when nothing waits.
            // The reply changes only when a head moves: encoded once per change, not per ping.
            let lastPing = Mutex<(heads: [String: Int], body: Data)?>(nil)
            table.onReadEncoded(SystemTypes.ping) { _, _ in
                let heads = try store.headsNow()
                if let last = lastPing.withLock({ $0 }), last.heads == heads { return last.body }
                let body = try WireCoding.encode(ping(heads))
                lastPing.withLock { $0 = (heads, body) }
                return body
            }
            table.onReadEncoded(SystemTypes.eventsSince) { request, _ in
                try page(request, try store.eventsNow(stream: request.stream, after: request.after, limit: try limit(request)))
            }
        } else {
            table.on(SystemTypes.ping) { _, context in ping(try await context.storage.heads()) }
            table.onEncoded(SystemTypes.eventsSince) { request, context in
                try page(request, try await context.storage.events(stream: request.stream, after: request.after, limit: try limit(request)))
            }
        }
        if let store = store as? ServiceStore {
            table.on(SystemTypes.auditList) { request, _ in
                ListReply(items: try await store.pool.read { db in try AuditTrail.list(db, request) })
            }
            table.on(SystemTypes.auditVerify) { _, _ in try await store.pool.read { db in try AuditTrail.verify(db, stream: store.stream) }
            }
        } else if let audited = store as? any AuditedStorage {
            table.on(SystemTypes.auditList) { request, _ in ListReply(items: try await audited.auditEntries(request)) }
            table.on(SystemTypes.auditVerify) { _, _ in try await audited.verifyAudit() }
        }
        let requestTypes = (table.requestTypes + [SystemTypes.types.name]).sorted()
        let writes = table.mutating.sorted()
        var access = Dictionary(uniqueKeysWithValues: table.declarations.map { ($0.key, $0.value.access.roles.sorted()) })
        access[SystemTypes.types.name] = SystemTypes.types.access.roles.sorted()
        table.onRead(SystemTypes.types) { [access] _, _ in
            TypesReply(requests: requestTypes, topics: topics, writes: writes, access: access)
        }
    }
}

/// How many requests a service holds at once, per connection and in all.
public struct RequestLimits: Sendable {
    /// Requests of one connection queued or running; past it, `unavailable`.
    public var perConnection: Int
    /// Requests queued or running in all; past it, `unavailable`.
    public var total: Int
    /// Payload bytes of the requests queued or running in all; past it, `unavailable`.
    public var totalBytes: Int
    /// Reads run at once beside the write lane.
    public var concurrentReads: Int
    /// How long a request may take once it runs; past it the caller gets `unavailable` (storage
    /// or a peer not answering: PostgreSQL's pool waits for a connection rather than failing).
    public var deadline: Duration

    public init(
        perConnection: Int = 256, total: Int = 4_096, totalBytes: Int = 256 << 20, concurrentReads: Int = 8,
        deadline: Duration = .seconds(15)
    ) {
        self.perConnection = perConnection
        self.total = total
        self.totalBytes = totalBytes
        self.concurrentReads = concurrentReads
        self.deadline = deadline
    }
}

/// The requests handed to the service's task whose replies have not been sent yet, per connection.
/// Touched only on the socket thread (admission when a request arrives, `done` once its reply has
/// been handed to the socket), so it needs no lock. It is what bounds the queue between the socket
/// and the handlers: past a limit, a request is refused with `unavailable` at once instead of
/// waiting, so a flood costs its sender, not memory. (Stopping reading on the shared ROUTER would
/// stall every peer instead.)
final class QueuedRequests: @unchecked Sendable {
    let limits: RequestLimits
    private var perPeer: [Data: Int] = [:]
    private var total = 0
    private var totalBytes = 0
    /// Where the queue's depth is reported (`duban_requests_queued`).
    private let metrics: ServiceMetrics?

    init(limits: RequestLimits, metrics: ServiceMetrics? = nil) {
        self.limits = limits
        self.metrics = metrics
    }

    func hasQueued(_ peer: Data) -> Bool { perPeer[peer] != nil }

    /// Counts a request in, or returns the refusal to send instead.
    /// A request past a limit gets its refusal at once; one refused while reading (already an error
    /// reply) past a limit is sent at once too, ahead of its connection's queue, rather than queued.
    func admit(_ prepared: RPCServer.Prepared, peer: Data) -> [Data]? {
        let bytes = prepared.bytes
        let mine = perPeer[peer] ?? 0
        let refusal: String? =
            if mine >= limits.perConnection {
                "本连接待处理的请求已达\(limits.perConnection)个，请等待答复后再发送"
            } else if total >= limits.total || totalBytes + bytes > limits.totalBytes {
                "服务繁忙，请稍后重试"
            } else {
                nil
            }
        if let refusal { return prepared.refusal(.unavailable(refusal)) }
        perPeer[peer, default: 0] += 1
        total += 1
        totalBytes += bytes
        metrics?.queued(total, bytes: totalBytes)
        return nil
    }

    /// A request's reply has been handed to the socket (or it had none).
    func done(peer: Data, bytes: Int) {
        guard let mine = perPeer[peer] else { return }
        perPeer[peer] = mine > 1 ? mine - 1 : nil
        total -= 1
        totalBytes -= bytes
        metrics?.queued(total, bytes: totalBytes)
    }
}

/// Writes begun and ended per connection, so that a read waits for its own connection's writes
/// queued *before* it (a pipelined read sees the write before it), and for nobody else's, nor for
/// its connection's later writes.
actor WritesInFlight {
    private var begun: [Data: Int] = [:]
    private var ended: [Data: Int] = [:]
    private var gates: [Data: [(mark: Int, gate: Gate)]] = [:]

    func begin(_ peer: Data) { begun[peer, default: 0] += 1 }

    /// Taken by the dispatcher in arrival order: nil when the read need not wait, else a gate that
    /// opens once every write of its connection begun so far has ended.
    func gate(for peer: Data) -> Gate? {
        let mark = begun[peer] ?? 0
        guard (ended[peer] ?? 0) < mark else { return nil }
        let gate = Gate()
        gates[peer, default: []].append((mark, gate))
        return gate
    }

    func end(_ peer: Data) {
        let done = (ended[peer] ?? 0) + 1
        ended[peer] = done
        var waiting = gates[peer] ?? []
        for entry in waiting where entry.mark <= done { entry.gate.open() }
        waiting.removeAll { $0.mark <= done }
        gates[peer] = waiting.isEmpty ? nil : waiting
        // Nothing in flight and nobody waiting: forget the connection.
        if waiting.isEmpty, done == begun[peer] {
            begun[peer] = nil
            ended[peer] = nil
        }
    }
}

/// Opens once; `wait` returns when it is open, for every waiter.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let openAlready = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if openAlready { continuation.resume() }
        }
    }
}

/// A counting semaphore for the reads run beside the write lane.
actor ReadSlots {
    private var free: Int
    /// Slots one connection may hold at once: a connection with many slow reads queued (reports,
    /// exports) leaves the others to everyone else.
    private let perConnection: Int
    private var held: [Data: Int] = [:]
    private var waiting: [(peer: Data, continuation: CheckedContinuation<Void, Never>)] = []

    init(count: Int, perConnection: Int) {
        free = count
        self.perConnection = max(1, min(perConnection, count))
    }

    func acquire(for peer: Data) async {
        if free > 0, held[peer, default: 0] < perConnection {
            free -= 1
            held[peer, default: 0] += 1
            return
        }
        await withCheckedContinuation { waiting.append((peer, $0)) }
    }

    func release(for peer: Data) {
        let mine = (held[peer] ?? 1) - 1
        held[peer] = mine > 0 ? mine : nil
        free += 1
        // The longest-waiting read whose connection is under its share, if any.
        guard let index = waiting.firstIndex(where: { held[$0.peer, default: 0] < perConnection }) else { return }
        let next = waiting.remove(at: index)
        free -= 1
        held[next.peer, default: 0] += 1
        next.continuation.resume()
    }
}

/// Runs handlers and turns what they return or throw into replies: for the service's task and,
/// for synchronous reads, for the socket thread.
struct RequestRunner: Sendable {
    let handlers: HandlerTable
    let store: any EventStorage
    let clock: ServiceClock
    let logger: Logger
    /// Replies counted by type and result, handler latency (`--metrics`).
    let metrics: ServiceMetrics?

    /// The reply to send at once, on the socket thread, when nothing is queued ahead: for a request
    /// refused while reading, or a synchronous read. Nil when the request must wait its turn.
    func answerAtOnce(_ prepared: RPCServer.Prepared) -> [Data]? {
        switch prepared {
        case .drop: return nil
        case .answered(let routing, let reply):
            metrics?.observe(reply: reply, type: "-", duration: nil)
            return routing + [reply]
        case .request(let routing, let request, _, _):
            guard let read = handlers.synchronousReads[request.type] else { return nil }
            let context = self.context(for: request, key: nil, fingerprint: nil)
            let started = ContinuousClock.now
            let reply: Data
            do {
                reply = EnvelopeWriter.reply(type: request.type, re: request.id, ok: true, payload: try read(request.body, context))
            } catch {
                reply = Self.errorReply(error, for: request, logger: context.logger)
            }
            metrics?.observe(reply: reply, type: request.type, duration: ContinuousClock.now - started)
            return routing + [reply]
        }
    }

    /// Whether a request runs in the service's one serial lane (every write); reads run beside it.
    func runsInTheWriteLane(_ prepared: RPCServer.Prepared) -> Bool {
        guard case .request(_, let request, _, _) = prepared else { return false }
        return handlers.mutating.contains(request.type)
    }

    func context(for request: DecodedRequest, key: String?, fingerprint: String?) -> RequestContext {
        RequestContext(
            requestID: request.id, type: request.type, caller: request.caller ?? .unauthenticated(from: request.from), key: key,
            cursor: request.cursor, serviceLogger: logger,
            storage: store, clock: clock, fingerprint: fingerprint, keyRemembered: .init(), auditSummary: request.auditSummary ?? "")
    }

    /// Runs the handler of a request, or answers `unavailable` when it has not finished by the
    /// deadline (the handler is cancelled; a write that committed meanwhile kept its key, so a
    /// retry with the same key gets its reply).
    func handle(_ request: DecodedRequest, fingerprint: Result<String?, any Error>, deadline: Duration) async -> Data {
        guard let metrics else { return await handleWithin(request, fingerprint: fingerprint, deadline: deadline) }
        let started = ContinuousClock.now
        metrics.began()
        let reply = await handleWithin(request, fingerprint: fingerprint, deadline: deadline)
        metrics.ended()
        metrics.observe(
            reply: reply, type: handlers.handlers[request.type] != nil ? request.type : "-", duration: ContinuousClock.now - started)
        return reply
    }

    private func handleWithin(_ request: DecodedRequest, fingerprint: Result<String?, any Error>, deadline: Duration) async -> Data {
        await withTaskGroup(of: Data?.self) { group in
            group.addTask { await self.handle(request, fingerprint: fingerprint) }
            group.addTask {
                try? await Task.sleep(for: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first { return first }
            logger.warning("request past its deadline", metadata: ["msg.id": "\(request.id)", "msg.type": "\(request.type)"])
            return EnvelopeWriter.errorReply(
                type: request.type, re: request.id,
                error: .unavailable("请求在 \(deadline.components.seconds) 秒内未能完成（存储或所依赖的服务无应答），请稍后用同一 key 重试"))
        }
    }

    /// Runs the handler of a request in its turn, with the idempotency check for keyed mutating requests.
    func handle(_ request: DecodedRequest, fingerprint precomputed: Result<String?, any Error>) async -> Data {
        guard let handler = handlers.handlers[request.type] else {
            return EnvelopeWriter.errorReply(
                type: request.type, re: request.id,
                error: ErrorBody(code: .unknownType, message: "没有请求类型 \(ErrorBody.quote(request.type))", field: "type"))
        }
        // Idempotency: a key seen before answers with the first reply, or `conflict` for another body.
        var fingerprint: String?
        let key = handlers.mutating.contains(request.type) ? request.key : nil
        if let key {
            do {
                fingerprint = try precomputed.get()
                if let stored = try await store.storedReply(forKey: key) {
                    guard stored.fingerprint == fingerprint else {
                        return EnvelopeWriter.errorReply(
                            type: request.type, re: request.id,
                            error: .conflict("幂等键 \(ErrorBody.quote(key)) 已用于另一个请求", field: "key"))
                    }
                    logger.debug("replaying reply for a repeated key", metadata: ["msg.id": "\(request.id)", "msg.key": "\(key)"])
                    return EnvelopeWriter.reply(type: request.type, re: request.id, ok: stored.ok, payload: stored.payload)
                }
            } catch {
                logger.error("idempotency lookup failed", metadata: ["msg.id": "\(request.id)", "error": "\(error)"])
                return EnvelopeWriter.errorReply(
                    type: request.type, re: request.id, error: .unavailable("存储暂时不可用，请稍后用同一 key 重试"))
            }
        }

        // Unkeyed writes carry their digest too, for the audit trail.
        if fingerprint == nil, handlers.mutating.contains(request.type) { fingerprint = (try? precomputed.get()) ?? nil }
        let context = self.context(for: request, key: key, fingerprint: fingerprint)
        do {
            let body = try await handler(request.body, context)
            if let key, let fingerprint, !context.keyRemembered.value.load(ordering: .acquiring) {
                // A mutating handler that changed nothing (or wrote without `context.write`): remember its reply now.
                try await store.remember(
                    key: key, reply: StoredReply(type: request.type, fingerprint: fingerprint, ok: true, payload: body))
            }
            return EnvelopeWriter.reply(type: request.type, re: request.id, ok: true, payload: body)
        } catch {
            return Self.errorReply(error, for: request, logger: context.logger)
        }
    }

    /// A handler's error as the protocol's error reply: the error says its own code and message
    /// (`WireError`); the log keeps the details, the client never gets a Swift dump.
    static func errorReply(_ error: any Error, for request: DecodedRequest, logger: Logger) -> Data {
        let body = ErrorBody.from(error, type: request.type)
        switch body.code {
        case .internal: logger.error("handler failed", metadata: ["error": "\(error)"])
        case .unavailable: logger.warning("request refused: unavailable", metadata: ["error": "\(error)"])
        default: logger.debug("request refused", metadata: ["error": "\(body)"])
        }
        return EnvelopeWriter.errorReply(type: request.type, re: request.id, error: body)
    }
}

/// Reads requests off the wire: framing, size, JSON, type, fingerprint and the handler's
/// preparation. Pure work on the bytes (no storage), so it runs on the socket thread as messages arrive.
struct RequestReader: Sendable {
    let handlers: HandlerTable
    let maxPayloadBytes: Int
    let security: ServerSecurity?
    let logger: Logger

    /// Whether the first byte that is not JSON whitespace opens an object.
    static func startsLikeAnObject(_ payload: Data) -> Bool {
        for byte in payload {
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "{"): return true
            default: return false
            }
        }
        return false
    }

    /// Who asks and whether its role may call `type` (the declaration's roles; PROTOCOL.md section 7).
    func authorize(_ principal: Principal, type: String, from: String?) -> Result<Caller, ErrorBody> {
        let caller: Caller
        do {
            caller = try Caller.resolve(principal: principal, from: from)
        } catch {
            return .failure(error)
        }
        guard let declaration = handlers.declarations[type], declaration.access.allows(caller.role) else {
            let role =
                caller.role == principal.role ? caller.role.chineseName : "\(principal.role.chineseName)（代\(caller.role.chineseName)）"
            return .failure(.permissionDenied("\(role)（证书 \(principal.name)）无权调用 \(type)", field: "type"))
        }
        return .success(caller)
    }

    /// A ROUTER message's routing envelope and the frames after it. REQ framing is
    /// [identity…][empty][payload]; a DEALER that skips the delimiter sends [identity][payload] and
    /// gets its reply framed the same way (the envelope is then the identity alone).
    static func split(_ frames: [Data]) -> (routing: [Data], body: ArraySlice<Data>) {
        if let delimiter = frames.firstIndex(where: { $0.isEmpty }), delimiter >= 1 {
            return (Array(frames[...delimiter]), frames[(delimiter + 1)...])
        }
        return ([frames[0]], frames[1...])
    }

    /// Reads a ROUTER message: framing, size, JSON, type, and the body's fingerprint. Pure work on
    /// the bytes, so it may run ahead of the handler of the request before.
    func prepare(_ frames: [Data], userID: String? = nil) -> RPCServer.Prepared {
        guard frames.count >= 2 else { return .drop }
        let (routing, body) = Self.split(frames)
        guard body.count == 1, let payload = body.first else {
            let error = ErrorBody(
                code: .badFrame, message: "路由信封之后应恰有一个消息帧，实际 \(body.count) 个")
            return .answered(routing: routing, reply: EnvelopeWriter.errorReply(type: "", re: nil, error: error))
        }
        // Who is asking, from the key CURVE proved, checked against `clients/` as it is now.
        var principal: Principal?
        if let security {
            do {
                // Behind the broker: the principal the broker put right after its own routing id.
                let key = security.brokerKey == nil ? userID : (routing.count >= 2 ? BrokeredPrincipal.key(in: routing[1]) : nil)
                principal = try security.principal(userID: key)
            } catch {
                let id = payload.count <= maxPayloadBytes ? FastJSON.topLevelString("id", in: payload) : nil
                return .answered(routing: routing, reply: EnvelopeWriter.errorReply(type: "", re: id, error: error))
            }
        }
        guard payload.count <= maxPayloadBytes else {
            logger.notice("payload too large", metadata: ["msg.bytes": "\(payload.count)"])
            return .answered(
                routing: routing,
                reply: EnvelopeWriter.errorReply(
                    type: "", re: nil,
                    error: ErrorBody(code: .tooLarge, message: "消息 \(payload.count) 字节，超过上限 \(maxPayloadBytes) 字节"))
            )
        }
        // Not an object at all: refused from its first byte, before any scan or parse of the rest
        // (a flood of garbage costs a copy, not a parse).
        guard Self.startsLikeAnObject(payload) else {
            return .answered(routing: routing, reply: EnvelopeWriter.errorReply(type: "", re: nil, error: .notAJSONObject))
        }
        // The type, read once here for the checks before decoding (only where one needs it).
        let type = principal != nil || payload.count > TextLimits.defaultCharacters ? FastJSON.topLevelString("type", in: payload) : nil
        let declared = type.flatMap { handlers.declarations[$0] }
        // A caller without the right is refused before anything of its body is read or judged (no
        // validation detail leaks to it); the decoded request is checked again below, which is
        // what counts (a payload with a duplicated key could read one way here and another there).
        if let principal, let declared,
            case .failure(let refusal) = authorize(principal, type: declared.name, from: FastJSON.topLevelString("from", in: payload))
        {
            return .answered(
                routing: routing,
                reply: EnvelopeWriter.errorReply(type: declared.name, re: FastJSON.topLevelString("id", in: payload), error: refusal))
        }
        // Text past the limit is refused before anything is decoded from it (one pass over the
        // bytes; the type's declaration may allow more, or check its fields itself).
        // No declaration allows less than the default, so a payload within it needs no look.
        if payload.count > TextLimits.defaultCharacters, let limit = declared.map({ $0.textLimit }) ?? TextLimits.defaultCharacters,
            let overlong = TextLimits.firstOverlong(in: payload, limit: limit)
        {
            let id = FastJSON.topLevelString("id", in: payload)
            let error = ErrorBody.invalidArgument(
                "字段 \(ErrorBody.quote(overlong.field)) 有 \(overlong.characters) 个字符，超过上限 \(limit) 个", field: overlong.field)
            return .answered(
                routing: routing, reply: EnvelopeWriter.errorReply(type: declared?.name ?? "", re: id, error: error))
        }
        var request: DecodedRequest
        do {
            request = try handlers.types.decode(payload)
        } catch {
            logger.debug("rejected request", metadata: ["msg.id": "\(error.re ?? "-")", "error": "\(error.error)"])
            return .answered(routing: routing, reply: EnvelopeWriter.errorReply(type: error.type ?? "", re: error.re, error: error.error))
        }
        guard handlers.handlers[request.type] != nil else {
            return .answered(
                routing: routing,
                reply: EnvelopeWriter.errorReply(
                    type: request.type, re: request.id,
                    error: ErrorBody(code: .unknownType, message: "没有请求类型 \(ErrorBody.quote(request.type))", field: "type")))
        }
        // Authorized in one place: the declaration's roles, after `from` is checked against the principal.
        if let principal {
            switch authorize(principal, type: request.type, from: request.from) {
            case .success(let caller): request.caller = caller
            case .failure(let error):
                return .answered(
                    routing: routing, reply: EnvelopeWriter.errorReply(type: request.type, re: request.id, error: error))
            }
        }
        // Every write is fingerprinted: the key's check when it has one, the audit trail's digest always.
        let fingerprint: Result<String?, any Error>
        if handlers.mutating.contains(request.type) {
            fingerprint = Result { try handlers.fingerprinters[request.type]?(request.body) }
            request.auditSummary = AuditTrail.summary(payload, carriesSecrets: handlers.declarations[request.type]?.carriesSecrets ?? true)
        } else {
            fingerprint = .success(nil)
        }
        return .request(routing: routing, handlers.prepared(request), fingerprint: fingerprint, bytes: payload.count)
    }

}
