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
/// Requests are answered one at a time, in arrival order: handlers are short database
/// transactions, and serial handling makes the idempotency check and the change it guards one
/// step. Every request gets exactly one reply; a handler's error becomes the protocol's error
/// reply and the loop goes on.
///
/// Two paths keep that order. A request with nothing queued ahead of it that can be answered at
/// once (a synchronous read such as `sys.ping` or `task.get`, or one refused while reading) is
/// answered on the socket thread as it arrives. Everything else is queued for the service's task,
/// and until its reply has been sent every later request queues behind it too.
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
    private let requestsContinuation: AsyncStream<Prepared>.Continuation

    /// Binds the rpc (ROUTER) and events (PUB) endpoints. Fails at once if either cannot be bound.
    public static func bind(
        identity: ServerIdentity, endpoints: Endpoints, store: any EventStorage, handlers: HandlerTable, topics: [String],
        maxPayloadBytes: Int, clock: ServiceClock, logger: Logger
    ) async throws -> RPCServer {
        let loop = ZMQPollLoop(name: identity.instance, logger: logger)
        let (requests, continuation) = AsyncStream.makeStream(of: Prepared.self)
        var table = handlers
        Self.registerSystemHandlers(&table, identity: identity, topics: topics, store: store)
        // Requests are read (framing, JSON, fingerprint, preparation) on the socket's own thread as
        // they arrive, ahead of and in parallel with the handler of the request before; handlers
        // then run one at a time in arrival order on the service's task.
        let reader = RequestReader(handlers: table, maxPayloadBytes: maxPayloadBytes, logger: logger)
        let runner = RequestRunner(handlers: table, store: store, clock: clock, logger: logger)
        let queued = QueuedRequests()
        do {
            // libzmq drops the connection of a peer whose message exceeds MAXMSGSIZE, with no reply;
            // the cap sits well above the protocol's limit so that oversized payloads up to it get
            // their `too_large` reply, and memory stays bounded beyond it.
            let hardCap = Int64(max(maxPayloadBytes * 4, 64 * 1024 * 1024))
            var boundRPC = ""
            let router = try await loop.addSocket(
                .router,
                options: ZMQSocketOptions(
                    sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000, maxMessageSize: hardCap, routerMandatory: true),
                setup: { socket in try attach(socket, endpoints.rpc) },
                replying: { frames in
                    let prepared = reader.prepare(frames)
                    if case .drop = prepared { return nil }
                    if queued.count.load(ordering: .relaxed) == 0, let reply = runner.answerAtOnce(prepared) { return reply }
                    // Counted on this thread, uncounted on this thread once its reply is sent.
                    queued.count.add(1, ordering: .relaxed)
                    continuation.yield(prepared)
                    return nil
                })
            boundRPC = try await loop.withSocket(router) { socket in endpoints.rpc.hasPrefix(">") ? endpoints.rpc : socket.lastEndpoint }
            let pub = try await loop.addSocket(
                .pub, options: ZMQSocketOptions(sendHighWaterMark: 100_000),
                setup: { socket in try attach(socket, endpoints.events) })
            let boundEvents = try await loop.withSocket(pub) { socket in
                endpoints.events.hasPrefix(">") ? endpoints.events : socket.lastEndpoint
            }
            store.setPublisher { topic, envelope in loop.send(pub, [Data(topic.utf8), envelope]) }
            let bound = Endpoints(rpc: boundRPC, events: boundEvents)
            logger.info(
                "listening", metadata: ["zmq.rpc": "\(bound.rpc)", "zmq.events": "\(bound.events)", "db.location": "\(store.location)"])
            return RPCServer(
                identity: identity, endpoints: bound, store: store, loop: loop, router: router, runner: runner, queued: queued,
                topics: topics,
                maxPayloadBytes: maxPayloadBytes, logger: logger, clock: clock, requests: requests, continuation: continuation)
        } catch {
            await loop.shutdown()
            throw error
        }
    }

    private init(
        identity: ServerIdentity, endpoints: Endpoints, store: any EventStorage, loop: ZMQPollLoop, router: SocketID, runner: RequestRunner,
        queued: QueuedRequests, topics: [String], maxPayloadBytes: Int, logger: Logger, clock: ServiceClock,
        requests: AsyncStream<Prepared>,
        continuation: AsyncStream<Prepared>.Continuation
    ) {
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
        let purge = Task { [store, logger] in
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
        await withGracefulShutdownHandler {
            for await request in requests {
                let reply = await execute(request)
                if let reply {
                    loop.send(router, reply) { [queued] in queued.count.subtract(1, ordering: .relaxed) }
                } else {
                    queued.count.subtract(1, ordering: .relaxed)
                }
            }
        } onGracefulShutdown: { [requestsContinuation] in
            requestsContinuation.finish()
        }
        purge.cancel()
        logger.info("stopping", metadata: ["service.instance": "\(identity.instance)"])
        await loop.shutdown()
    }

    /// Runs a prepared request's handler (one at a time, in arrival order) and frames the reply.
    func execute(_ prepared: Prepared) async -> [Data]? {
        switch prepared {
        case .drop: return nil
        case .answered(let routing, let reply): return routing + [reply]
        case .request(let routing, let request, let fingerprint): return routing + [await runner.handle(request, fingerprint: fingerprint)]
        }
    }

    /// A request read and checked, waiting for its turn.
    enum Prepared: Sendable {
        /// Nobody to answer.
        case drop
        /// Answered without running a handler (malformed, too large, unknown type).
        case answered(routing: [Data], reply: Data)
        case request(routing: [Data], DecodedRequest, fingerprint: Result<String?, any Error>)
    }

    private static func registerSystemHandlers(
        _ table: inout HandlerTable, identity: ServerIdentity, topics: [String], store: any EventStorage
    ) {
        @Sendable func ping(_ heads: [String: Int]) -> PingReply {
            PingReply(
                service: identity.service.rawValue, instance: identity.instance, version: identity.version, started: identity.started,
                streams: heads)
        }
        @Sendable func limit(_ request: EventsSinceRequest) throws -> Int {
            guard request.after >= 0 else { throw ErrorBody.invalidArgument("after must be 0 or more", field: "body.after") }
            let limit = request.limit ?? 1000
            guard (1...10_000).contains(limit) else {
                throw ErrorBody.invalidArgument("limit must be between 1 and 10000", field: "body.limit")
            }
            return limit
        }
        @Sendable func page(_ request: EventsSinceRequest, _ page: (envelopes: [Data], head: Int)?) throws -> Data {
            guard let page else { throw ErrorBody.notFound("no event stream \(request.stream)", field: "body.stream") }
            var out = Data(#"{"events":["#.utf8)
            for (index, envelope) in page.envelopes.enumerated() {
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
            table.onReadEncoded(SystemTypes.ping, Empty.self) { _, _ in
                let heads = try store.headsNow()
                if let last = lastPing.withLock({ $0 }), last.heads == heads { return last.body }
                let body = try WireCoding.encode(ping(heads))
                lastPing.withLock { $0 = (heads, body) }
                return body
            }
            table.onReadEncoded(SystemTypes.eventsSince, EventsSinceRequest.self) { request, _ in
                try page(request, try store.eventsNow(stream: request.stream, after: request.after, limit: try limit(request)))
            }
        } else {
            table.on(SystemTypes.ping, Empty.self) { _, context in ping(try await context.storage.heads()) }
            table.onEncoded(SystemTypes.eventsSince, EventsSinceRequest.self) { request, context in
                try page(request, try await context.storage.events(stream: request.stream, after: request.after, limit: try limit(request)))
            }
        }
        let requestTypes = (table.requestTypes + [SystemTypes.types]).sorted()
        table.onRead(SystemTypes.types, Empty.self) { _, _ in TypesReply(requests: requestTypes, topics: topics) }
    }
}

/// Counts requests queued for the service's task whose replies have not been sent yet. Changed only
/// on the socket thread; while it is above zero, no request is answered ahead of the queue.
final class QueuedRequests: Sendable {
    let count = Atomic<Int>(0)
}

/// Runs handlers and turns what they return or throw into replies: for the service's task and,
/// for synchronous reads, for the socket thread.
struct RequestRunner: Sendable {
    let handlers: HandlerTable
    let store: any EventStorage
    let clock: ServiceClock
    let logger: Logger

    /// The reply to send at once, on the socket thread, when nothing is queued ahead: for a request
    /// refused while reading, or a synchronous read. Nil when the request must wait its turn.
    func answerAtOnce(_ prepared: RPCServer.Prepared) -> [Data]? {
        switch prepared {
        case .drop: return nil
        case .answered(let routing, let reply): return routing + [reply]
        case .request(let routing, let request, _):
            guard let read = handlers.synchronousReads[request.type] else { return nil }
            let context = self.context(for: request, key: nil, fingerprint: nil)
            do {
                return routing + [
                    EnvelopeWriter.reply(type: request.type, re: request.id, ok: true, payload: try read(request.body, context))
                ]
            } catch {
                return routing + [Self.errorReply(error, for: request, logger: context.logger)]
            }
        }
    }

    func context(for request: DecodedRequest, key: String?, fingerprint: String?) -> RequestContext {
        RequestContext(
            requestID: request.id, type: request.type, from: request.from, key: key, serviceLogger: logger, storage: store, clock: clock,
            fingerprint: fingerprint, keyRemembered: .init())
    }

    /// Runs the handler of a request in its turn, with the idempotency check for keyed mutating requests.
    func handle(_ request: DecodedRequest, fingerprint precomputed: Result<String?, any Error>) async -> Data {
        guard let handler = handlers.handlers[request.type] else {
            return EnvelopeWriter.errorReply(
                type: request.type, re: request.id,
                error: ErrorBody(code: .unknownType, message: "no request type \(request.type)", field: "type"))
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
                            error: .conflict("idempotency key \(key) was used with another request", field: "key"))
                    }
                    logger.debug("replaying reply for a repeated key", metadata: ["msg.id": "\(request.id)", "msg.key": "\(key)"])
                    return EnvelopeWriter.reply(type: request.type, re: request.id, ok: stored.ok, payload: stored.payload)
                }
            } catch {
                logger.error("idempotency lookup failed", metadata: ["msg.id": "\(request.id)", "error": "\(error)"])
                return EnvelopeWriter.errorReply(
                    type: request.type, re: request.id, error: .unavailable("storage is not answering: \(error)"))
            }
        }

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

    /// A handler's error as the protocol's error reply.
    static func errorReply(_ error: any Error, for request: DecodedRequest, logger: Logger) -> Data {
        switch error {
        case let error as ErrorBody:
            logger.debug("request refused", metadata: ["error": "\(error)"])
            return EnvelopeWriter.errorReply(type: request.type, re: request.id, error: error)
        case let error as DecodingError:
            return EnvelopeWriter.errorReply(type: request.type, re: request.id, error: WireCoding.describe(error))
        case let error as DatabaseError
        where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR:
            logger.error("storage unavailable", metadata: ["error": "\(error)"])
            return EnvelopeWriter.errorReply(
                type: request.type, re: request.id, error: .unavailable("storage is unavailable: \(error.message ?? "\(error)")"))
        default:
            logger.error("handler failed", metadata: ["error": "\(error)"])
            return EnvelopeWriter.errorReply(type: request.type, re: request.id, error: .internal("\(request.type) failed: \(error)"))
        }
    }
}

/// Reads requests off the wire: framing, size, JSON, type, fingerprint and the handler's
/// preparation. Pure work on the bytes (no storage), so it runs on the socket thread as messages arrive.
struct RequestReader: Sendable {
    let handlers: HandlerTable
    let maxPayloadBytes: Int
    let logger: Logger

    /// Reads a ROUTER message: framing, size, JSON, type, and the body's fingerprint. Pure work on
    /// the bytes, so it may run ahead of the handler of the request before.
    func prepare(_ frames: [Data]) -> RPCServer.Prepared {
        // REQ framing is [identity…][empty][payload]; a DEALER that skips the delimiter sends
        // [identity][payload] and gets its reply framed the same way.
        guard frames.count >= 2 else { return .drop }
        let routing: [Data]
        let body: ArraySlice<Data>
        if let delimiter = frames.firstIndex(where: { $0.isEmpty }), delimiter >= 1 {
            routing = Array(frames[...delimiter])
            body = frames[(delimiter + 1)...]
        } else {
            routing = [frames[0]]
            body = frames[1...]
        }
        guard body.count == 1, let payload = body.first else {
            let error = ErrorBody(
                code: .badFrame, message: "expected exactly one payload frame after the routing envelope, got \(body.count)")
            return .answered(routing: routing, reply: EnvelopeWriter.errorReply(type: "", re: nil, error: error))
        }
        guard payload.count <= maxPayloadBytes else {
            logger.notice("payload too large", metadata: ["msg.bytes": "\(payload.count)"])
            return .answered(
                routing: routing,
                reply: EnvelopeWriter.errorReply(
                    type: "", re: nil,
                    error: ErrorBody(code: .tooLarge, message: "payload of \(payload.count) bytes is over the limit of \(maxPayloadBytes)"))
            )
        }
        let request: DecodedRequest
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
                    error: ErrorBody(code: .unknownType, message: "no request type \(request.type)", field: "type")))
        }
        let fingerprint: Result<String?, any Error>
        if handlers.mutating.contains(request.type), request.key != nil {
            fingerprint = Result { try handlers.fingerprinters[request.type]?(request.body) }
        } else {
            fingerprint = .success(nil)
        }
        return .request(routing: routing, handlers.prepared(request), fingerprint: fingerprint)
    }

}
