import CZeroMQ
import Foundation
import Synchronization

/// A failed libzmq call: the operation and libzmq's errno.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    /// The errno value libzmq reported.
    public let code: Int32
    /// What was being attempted, e.g. `bind tcp://127.0.0.1:7101`.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    public var description: String {
        "\(operation): \(String(cString: zmq_strerror(code)))"
    }

    /// The call would have blocked (EAGAIN).
    public var wouldBlock: Bool { code == EAGAIN }
}

/// The socket types Duban uses (values from zmq.h).
public enum ZMQSocketType: Int32, Sendable {
    case pair = 0
    case pub = 1
    case sub = 2
    case req = 3
    case rep = 4
    case dealer = 5
    case router = 6
    case pull = 7
    case push = 8
    case xpub = 9
    case xsub = 10
}

/// A ZeroMQ context. Thread-safe; it must outlive every socket made from it, which is why
/// sockets keep a strong reference to it.
public final class ZMQContext: @unchecked Sendable {
    // @unchecked: a zmq context is documented as thread-safe.
    let handle: UnsafeMutableRawPointer
    private let terminated = Atomic<Bool>(false)

    public init(ioThreads: Int32 = 1, maxSockets: Int32? = nil) {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
        if let maxSockets { zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, maxSockets) }
        // Termination never waits for unsent messages (sockets default to LINGER 0); delivery is
        // acknowledged explicitly instead.
        zmq_ctx_set(handle, ZMQ_BLOCKY, 0)
    }

    deinit {
        // Every socket holds this context strongly and closes itself first, so term cannot hang.
        terminate()
    }

    /// Ends the context now (`zmq_ctx_term`): its reaper and I/O threads stop and their epoll and
    /// eventfd descriptors close. Every socket made from it must be closed already, or this blocks
    /// until they are. Later calls do nothing.
    public func terminate() {
        guard !terminated.exchange(true, ordering: .acquiringAndReleasing) else { return }
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// The libzmq version as `major.minor.patch`.
    public static var libraryVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

/// One ZeroMQ socket. Not thread-safe: use it only on the thread that created it
/// (in Duban, a `ZMQPollLoop` thread).
public final class ZMQSocket {
    let handle: UnsafeMutableRawPointer
    public let type: ZMQSocketType
    private let context: ZMQContext
    private(set) var isClosed = false

    public init(context: ZMQContext, type: ZMQSocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("socket \(type)")
        }
        self.handle = handle
        self.type = type
        self.context = context
        // Never block process exit on unsent messages; delivery is acknowledged explicitly instead.
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    /// Closes the socket; further calls are no-ops.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        zmq_close(handle)
    }

    /// Binds `endpoint` as ``ZMQEndpoint/bindable(_:)`` rewrites it: one configuration file names each
    /// service by the host name its clients use, and the service itself listens on that port.
    public func bind(_ endpoint: String) throws {
        let local = ZMQEndpoint.bindable(endpoint)
        if zmq_bind(handle, local) != 0 { throw ZMQError.last("bind \(local)") }
    }

    public func connect(_ endpoint: String) throws {
        if zmq_connect(handle, endpoint) != 0 { throw ZMQError.last("connect \(endpoint)") }
    }

    public func unbind(_ endpoint: String) throws {
        if zmq_unbind(handle, endpoint) != 0 { throw ZMQError.last("unbind \(endpoint)") }
    }

    public func disconnect(_ endpoint: String) throws {
        if zmq_disconnect(handle, endpoint) != 0 { throw ZMQError.last("disconnect \(endpoint)") }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to a concrete port).
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return string(fromNulTerminated: buffer)
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) != 0 {
            throw ZMQError.last("setsockopt \(option)")
        }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws {
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) != 0 {
            throw ZMQError.last("setsockopt \(option)")
        }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError.last("setsockopt \(option)") }
    }

    public func setOption(_ option: Int32, string: String) throws {
        try setOption(option, bytes: Array(string.utf8))
    }

    public func getInt32Option(_ option: Int32) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(handle, option, &value, &size) != 0 { throw ZMQError.last("getsockopt \(option)") }
        return value
    }

    /// Applies a set of typed options.
    public func apply(_ options: ZMQSocketOptions) throws {
        if let v = options.sendHighWaterMark { try setOption(ZMQ_SNDHWM, v) }
        if let v = options.receiveHighWaterMark { try setOption(ZMQ_RCVHWM, v) }
        if let v = options.maxMessageSize { try setOption(ZMQ_MAXMSGSIZE, v) }
        if let v = options.linger { try setOption(ZMQ_LINGER, v) }
        if let v = options.sendTimeout { try setOption(ZMQ_SNDTIMEO, v) }
        if let v = options.receiveTimeout { try setOption(ZMQ_RCVTIMEO, v) }
        if options.routerMandatory { try setOption(ZMQ_ROUTER_MANDATORY, Int32(1)) }
        if options.immediate { try setOption(ZMQ_IMMEDIATE, Int32(1)) }
        if let v = options.identity { try setOption(ZMQ_ROUTING_ID, bytes: v) }
        for prefix in options.subscriptions { try setOption(ZMQ_SUBSCRIBE, string: prefix) }
        if let curve = options.curve {
            switch curve {
            case .server(let secretKey, let domain):
                try setOption(ZMQ_CURVE_SERVER, Int32(1))
                try setOption(ZMQ_CURVE_SECRETKEY, string: secretKey)
                // Without a ZAP domain libzmq 4.3.4 never asks the ZAP handler and admits any key;
                // ZAP_ENFORCE_DOMAIN (93, a draft option this build accepts) makes a missing
                // handler refuse instead of admit.
                try setOption(ZMQ_ZAP_DOMAIN, string: domain)
                try setOption(ZMQCurve.zapEnforceDomainOption, Int32(1))
                wantsUserID = true
            case .client(let serverKey, let publicKey, let secretKey):
                try setOption(ZMQ_CURVE_SERVERKEY, string: serverKey)
                try setOption(ZMQ_CURVE_PUBLICKEY, string: publicKey)
                try setOption(ZMQ_CURVE_SECRETKEY, string: secretKey)
            }
        }
    }

    // MARK: Messages

    /// Sends one multipart message. Throws `ZMQError` with `wouldBlock` when `dontWait` and the
    /// socket cannot take it now; no part is sent in that case unless the first part went out
    /// (libzmq queues multipart messages atomically once the first part is accepted).
    public func send(_ frames: [Data], dontWait: Bool = true) throws {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 { throw ZMQError.last("send") }
        }
    }

    /// Receives one whole multipart message, or nil when none is waiting and `dontWait` is set.
    public func receive(dontWait: Bool = true) throws -> [Data]? {
        var userID: String?
        return try receive(dontWait: dontWait, userID: &userID)
    }

    /// Whether this socket is a CURVE server, whose messages carry the `User-Id` its ZAP handler gave.
    public private(set) var wantsUserID = false

    /// Receives one whole message and, on a CURVE server, the `User-Id` property of its last frame
    /// (the ZAP handler's answer for the connection's key; the routing-id frame carries none).
    public func receive(dontWait: Bool = true, userID: inout String?) throws -> [Data]? {
        var frames: [Data] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let rc = zmq_msg_recv(&message, handle, dontWait ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let error = ZMQError.last("receive")
                if error.wouldBlock && frames.isEmpty { return nil }
                if error.code == EINTR { continue }
                throw error
            }
            let size = zmq_msg_size(&message)
            if size == 0 {
                frames.append(Data())
            } else {
                frames.append(Data(bytes: zmq_msg_data(&message), count: size))
            }
            if zmq_msg_more(&message) == 0 {
                if wantsUserID, let property = zmq_msg_gets(&message, "User-Id") { userID = String(cString: property) }
                return frames
            }
        }
    }

    /// ZMQ_EVENTS: whether a message can be received (`readable`) or sent (`writable`) now.
    public var pendingEvents: (readable: Bool, writable: Bool) {
        let events = (try? getInt32Option(ZMQ_EVENTS)) ?? 0
        return (events & Int32(ZMQ_POLLIN) != 0, events & Int32(ZMQ_POLLOUT) != 0)
    }
}

/// Socket options, applied before bind/connect.
public struct ZMQSocketOptions: Sendable {
    public var sendHighWaterMark: Int32?
    public var receiveHighWaterMark: Int32?
    /// Hard cap on an inbound message; libzmq drops the connection of a peer that exceeds it.
    public var maxMessageSize: Int64?
    public var linger: Int32?
    public var sendTimeout: Int32?
    public var receiveTimeout: Int32?
    /// ROUTER: report unroutable replies instead of dropping them silently.
    public var routerMandatory = false
    /// Queue messages only to completed connections.
    public var immediate = false
    public var identity: [UInt8]?
    /// SUB: topic prefixes.
    public var subscriptions: [String] = []
    public var curve: ZMQCurve?

    public init(
        sendHighWaterMark: Int32? = nil, receiveHighWaterMark: Int32? = nil, maxMessageSize: Int64? = nil,
        linger: Int32? = nil, routerMandatory: Bool = false, immediate: Bool = false,
        subscriptions: [String] = [], curve: ZMQCurve? = nil
    ) {
        self.sendHighWaterMark = sendHighWaterMark
        self.receiveHighWaterMark = receiveHighWaterMark
        self.maxMessageSize = maxMessageSize
        self.linger = linger
        self.routerMandatory = routerMandatory
        self.immediate = immediate
        self.subscriptions = subscriptions
        self.curve = curve
    }
}

/// CURVE keys (Z85-encoded, 40 characters). A server always has a ZAP domain with the domain
/// enforced: its context needs a ZAP handler (`ZMQPollLoop.startZAPHandler`), or nobody gets in.
public enum ZMQCurve: Sendable {
    /// A CURVE server; its ZAP handler sees `domain`, so one handler can admit different principals
    /// on different sockets (the broker's client-facing and instance-facing sides).
    case server(secretKey: String, domain: String = ZMQCurve.zapDomain)
    case client(serverKey: String, publicKey: String, secretKey: String)

    /// The ZAP domain of every Duban CURVE server.
    public static let zapDomain = "duban"
    /// `ZMQ_ZAP_ENFORCE_DOMAIN`, hidden behind ZMQ_BUILD_DRAFT_API in the 4.3.4 header.
    public static let zapEnforceDomainOption: Int32 = 93

    /// The Z85 text of a 32-byte key.
    public static func z85(_ key: Data) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        let ok = key.withUnsafeBytes { bytes in
            zmq_z85_encode(&text, bytes.bindMemory(to: UInt8.self).baseAddress, 32) != nil
        }
        return ok ? string(fromNulTerminated: text) : nil
    }

    /// The public key that goes with a Z85 secret key.
    public static func publicKey(forSecret secretKey: String) throws -> String {
        var publicKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_public(&publicKey, secretKey) != 0 { throw ZMQError.last("curve_public") }
        return string(fromNulTerminated: publicKey)
    }

    /// A new Z85 key pair.
    public static func generateKeyPair() throws -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&publicKey, &secretKey) != 0 { throw ZMQError.last("curve_keypair") }
        return (string(fromNulTerminated: publicKey), string(fromNulTerminated: secretKey))
    }
}

/// A Swift string from a NUL-terminated C buffer.
func string(fromNulTerminated buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Endpoint rules shared by everything that binds.
public enum ZMQEndpoint {
    /// The address to bind for an endpoint that names this host the way clients reach it.
    ///
    /// libzmq binds TCP only to `*`, an IP address or an interface name, never to a DNS name; but
    /// in compose and Kubernetes a service is reached as `tcp://registry:7101`. So a TCP endpoint
    /// whose host is neither an IP literal, `*` nor `localhost` binds the same port on every
    /// interface (`tcp://*:7101`), and `localhost` binds loopback. Everything else is unchanged.
    public static func bindable(_ endpoint: String) -> String {
        guard endpoint.hasPrefix("tcp://") else { return endpoint }
        let rest = endpoint.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else { return endpoint }
        let host = String(rest[..<colon])
        let port = rest[rest.index(after: colon)...]
        if host == "*" || host.hasPrefix("[") || isIPv4(host) { return endpoint }
        if host == "localhost" { return "tcp://127.0.0.1:\(port)" }
        return "tcp://*:\(port)"
    }

    static func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil }
    }
}
