import Foundation
import GRDB
import Logging
import Schema
import Synchronization

/// What a handler knows about the request it serves.
public struct RequestContext: Sendable {
    public let requestID: String
    public let type: String
    /// Who asks: the authenticated principal and the role and unit it acts with (PROTOCOL.md
    /// section 7); on a service without keys, whoever `from` names, unchecked.
    public let caller: Caller
    /// The envelope's `from`, checked against the principal (its sender when the envelope named none).
    public var from: String? { caller.from }
    public let key: String?
    /// The body's `cursor`, for list replies sent a page at a time.
    public let cursor: String?
    /// The service's logger with the request's id and type as metadata. Made when asked for, not
    /// per request: setting metadata on a logger showed in every request's cost.
    public var logger: Logger {
        var logger = serviceLogger
        logger[metadataKey: "msg.id"] = "\(requestID)"
        logger[metadataKey: "msg.type"] = "\(type)"
        return logger
    }
    let serviceLogger: Logger
    public let storage: any EventStorage
    public let clock: ServiceClock
    let fingerprint: String?
    let keyRemembered: KeyFlag
    /// The request's first bytes, for the audit trail.
    let auditSummary: String

    final class KeyFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// The request's idempotency key and body fingerprint, for storage that remembers the reply in its own transaction.
    public var idempotency: (key: String, fingerprint: String)? {
        guard let key, let fingerprint else { return nil }
        return (key, fingerprint)
    }

    /// Tells the rpc loop that the reply was remembered with the change.
    public func markReplyRemembered() { keyRemembered.value.store(true, ordering: .releasing) }

    /// The SQLite store, for services that keep their data there (all but ingest in shared mode).
    public var store: ServiceStore {
        get throws {
            guard let store = storage as? ServiceStore else { throw ErrorBody.internal("this service's storage is not SQLite") }
            return store
        }
    }

    /// Makes the request's change in one SQLite transaction. For a request with an idempotency key, the
    /// reply is remembered in that same transaction, so a retry after a crash can never apply it twice.
    /// A mutating handler makes its change through one call to this and returns its result.
    public func write<Reply: Encodable & Sendable>(_ updates: @escaping @Sendable (Database, inout EventBuffer) throws -> Reply)
        async throws -> Reply
    {
        let key = self.key
        let fingerprint = self.fingerprint
        let type = self.type
        let store = try self.store
        let flag = keyRemembered
        return try await store.write { [self] db, events in
            let reply = try updates(db, &events)
            // Who changed what, in the change's own transaction (PROTOCOL.md section 7).
            try AuditTrail.append(db, context: self, stream: store.stream)
            if let key, let fingerprint {
                let payload = try WireCoding.encode(reply)
                try store.remember(db, key: key, reply: .init(type: type, fingerprint: fingerprint, ok: true, payload: payload))
                flag.value.store(true, ordering: .releasing)
            }
            return reply
        }
    }
}

/// The request types a service answers and their handlers.
public struct HandlerTable: Sendable {
    typealias Handler = @Sendable (_ body: any Sendable, _ context: RequestContext) async throws -> Data
    typealias SynchronousHandler = @Sendable (_ body: any Sendable, _ context: RequestContext) throws -> Data

    public private(set) var types = RequestTypeTable()
    var handlers: [String: Handler] = [:]
    /// Types whose requests change state, for which `key` is honoured.
    public private(set) var mutating: Set<String> = []
    /// The declaration of each registered type.
    public private(set) var declarations: [String: any RequestDeclaration] = [:]
    /// Fingerprints a body (type plus canonical JSON) for idempotency.
    var fingerprinters: [String: @Sendable (any Sendable) throws -> String] = [:]
    /// Work on a decoded body that needs no storage (validation, normalisation), done by the server's
    /// reading stage ahead of the handler's turn; the handler receives what it returns.
    var preparers: [String: @Sendable (any Sendable) -> any Sendable] = [:]
    /// Reads that need no waiting: answered on the socket thread as they arrive when no request is
    /// queued ahead of them, and in their turn otherwise.
    var synchronousReads: [String: SynchronousHandler] = [:]

    public init() {}

    /// Registers the handler of a declared request type: its body decoded as the declaration's
    /// `Body`, its reply encoded from the declaration's `Reply`; a write is idempotent by `key`.
    public mutating func on<Body, Reply>(
        _ rpc: RPC<Body, Reply>, _ handler: @escaping @Sendable (Body, RequestContext) async throws -> Reply
    ) {
        register(rpc)
        let type = rpc.name
        let ranged = Body.self is any RangeChecked.Type
        handlers[type] = { body, context in
            guard let body = body as? Body else { throw ErrorBody.internal("\(type) 的请求体解码类型不符") }
            if ranged { try Self.checkRanges(body, context) }
            return try Self.encode(try await handler(body, context), context)
        }
    }

    /// The body's dates, times and periods judged before its handler runs (Schema's `RangeChecked`),
    /// after the role check, with the service's clock.
    static func checkRanges(_ body: Any, _ context: RequestContext) throws {
        guard let body = body as? any RangeChecked else { return }
        try body.checkRanges(now: context.clock.now(), field: "body")
    }

    /// A reply as it goes on the wire: a long list a page at a time.
    static func encode<Reply: Encodable>(_ reply: Reply, _ context: RequestContext) throws -> Data {
        if let paged = reply as? any PagedReply {
            return try paged.encodePage(cursor: context.cursor, maxItems: ReplyLimits.items, maxBytes: ReplyLimits.bytes)
        }
        return try WireCoding.encode(reply)
    }

    /// Registers a handler whose body is first turned into `Prepared` by `prepare`, which runs ahead,
    /// in parallel with the handler of the request before (it must not touch storage). The
    /// idempotency fingerprint is still taken from the body as received.
    public mutating func on<Body, Prepared: Sendable, Reply>(
        _ rpc: RPC<Body, Reply>, prepare: @escaping @Sendable (Body) -> Prepared,
        handler: @escaping @Sendable (Prepared, RequestContext) async throws -> Reply
    ) {
        precondition(!(Body.self is any RangeChecked.Type), "\(rpc.name): a prepared body's ranges are its preparer's to check")
        register(rpc)
        let type = rpc.name
        preparers[type] = { body in
            guard let body = body as? Body else { return body }
            return prepare(body)
        }
        handlers[type] = { prepared, context in
            guard let prepared = prepared as? Prepared else { throw ErrorBody.internal("\(type) 的请求未经预处理") }
            return try Self.encode(try await handler(prepared, context), context)
        }
    }

    /// The body's type for decoding and, for writes, how its idempotency fingerprint is taken.
    private mutating func register<Body, Reply>(_ rpc: RPC<Body, Reply>) {
        let type = rpc.name
        types.register(type, body: Body.self)
        synchronousReads[type] = nil
        declarations[type] = rpc
        guard rpc.kind == .write else { return }
        mutating.insert(type)
        fingerprinters[type] = { body in
            guard let body = body as? Body else { return "" }
            var bytes = Array(type.utf8)
            bytes.append(0)
            if let compact = body as? any Fingerprintable {
                bytes.append(1)
                compact.fingerprint(into: &bytes)
            } else {
                bytes.append(contentsOf: try WireCoding.canonical(body))
            }
            return Fingerprint.hex(Data(bytes))
        }
    }

    /// The body as its handler takes it: prepared, for types registered with `prepare`.
    func prepared(_ request: DecodedRequest) -> DecodedRequest {
        guard let prepare = preparers[request.type] else { return request }
        var prepared = request
        prepared.body = prepare(request.body)
        return prepared
    }

    /// Registers a handler that returns the declared reply already encoded (for bodies spliced from storage).
    public mutating func onEncoded<Body, Reply>(
        _ rpc: RPC<Body, Reply>, _ handler: @escaping @Sendable (Body, RequestContext) async throws -> Data
    ) {
        register(rpc)
        let type = rpc.name
        let ranged = Body.self is any RangeChecked.Type
        handlers[type] = { body, context in
            guard let body = body as? Body else { throw ErrorBody.internal("\(type) 的请求体解码类型不符") }
            if ranged { try Self.checkRanges(body, context) }
            return try await handler(body, context)
        }
    }

    /// Registers a read that answers synchronously and quickly (in-memory state, a short SQLite read).
    /// When nothing of its connection is queued ahead of it, it is answered on the socket thread as
    /// it arrives, with no hand-over to the service's task and back. It must not change state and
    /// must not block.
    public mutating func onRead<Body, Reply>(_ rpc: RPC<Body, Reply>, _ handler: @escaping @Sendable (Body, RequestContext) throws -> Reply)
    {
        onReadEncoded(rpc) { body, context in try Self.encode(try handler(body, context), context) }
    }

    /// The same, for a handler that returns its reply body already encoded.
    public mutating func onReadEncoded<Body, Reply>(
        _ rpc: RPC<Body, Reply>, _ handler: @escaping @Sendable (Body, RequestContext) throws -> Data
    ) {
        precondition(rpc.kind == .read, "\(rpc.name) is a write; it cannot be answered on the socket thread")
        register(rpc)
        let type = rpc.name
        let ranged = Body.self is any RangeChecked.Type
        let read: SynchronousHandler = { body, context in
            guard let body = body as? Body else { throw ErrorBody.internal("\(type) 的请求体解码类型不符") }
            if ranged { try Self.checkRanges(body, context) }
            return try handler(body, context)
        }
        synchronousReads[type] = read
        handlers[type] = { body, context in try read(body, context) }
    }

    /// The request types registered, sorted.
    public var requestTypes: [String] { handlers.keys.sorted() }
}
