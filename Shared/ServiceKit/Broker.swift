import Foundation
import Logging
import Messaging
import Schema
import ServiceLifecycle
import Trust

/// The frame a broker puts before a client's routing envelope: the principal CURVE proved on the
/// client's connection (PROTOCOL.md section 7, "Through the broker"). An instance reads it only at
/// the position right after the broker's own routing id, on a connection it made to the broker's
/// pinned key, so a client cannot forge it by choosing a routing id.
///
/// A client that sent no empty delimiter (a DEALER may omit it) has one added on the way to the
/// instance, whose framing needs it; the frame says so, and the broker takes it out of the reply.
public enum BrokeredPrincipal {
    static let prefix = Data("duban-principal:".utf8)
    static let addedDelimiterPrefix = Data("duban-principal+:".utf8)

    public static func frame(publicKey: String?, addedDelimiter: Bool = false) -> Data {
        (addedDelimiter ? addedDelimiterPrefix : prefix) + Data((publicKey ?? "").utf8)
    }

    /// The key in a marker frame; nil when the frame is not one, "" when the broker had none.
    public static func key(in frame: Data) -> String? {
        for marker in [prefix, addedDelimiterPrefix] where frame.starts(with: marker) {
            return String(decoding: frame.dropFirst(marker.count), as: UTF8.self)
        }
        return nil
    }

    static func addedDelimiter(_ frame: Data) -> Bool { frame.starts(with: addedDelimiterPrefix) }
}

/// The broker in front of several ingest instances (the ZeroMQ guide's broker and forwarder), as
/// a forwarding loop rather than `zmq_proxy`, which forwards no metadata: each request goes to the
/// instances in turn with its principal in front of it, each reply comes back without it; each
/// instance's events go out only into its own stream.
///
/// With keys, the client-facing sockets are CURVE servers with the `ingest` certificate (clients
/// need not know the broker is there) admitting every key in `clients/`; the instance-facing ones
/// use the `broker` certificate and admit only ingest instances' service certificates.
public final class Broker: Service, Sendable {
    public struct Endpoints: Sendable {
        public var frontend: String
        public var backend: String
        public var eventsIn: String
        public var eventsOut: String

        public init(frontend: String, backend: String, eventsIn: String, eventsOut: String) {
            self.frontend = frontend
            self.backend = backend
            self.eventsIn = eventsIn
            self.eventsOut = eventsOut
        }
    }

    /// The ZAP domain of the instance-facing sockets.
    static let instanceDomain = "duban-broker"

    public let endpoints: Endpoints
    private let loop: ZMQPollLoop
    private let watcher: KeyDirectoryWatcher?
    private let logger: Logger

    /// Binds all four sockets; throws when one cannot be bound or CURVE is not in effect.
    public static func start(endpoints: Endpoints, keys: KeyDirectory?, insecure: Bool, logger: Logger) async throws -> Broker {
        try BindPolicy.check(
            [endpoints.frontend, endpoints.backend, endpoints.eventsIn, endpoints.eventsOut], hasKeys: keys != nil, insecure: insecure,
            logger: logger)
        let loop = ZMQPollLoop(name: "broker", logger: logger)
        do {
            var watcher: KeyDirectoryWatcher?
            var clientCurve: ZMQCurve?
            var instanceCurve: ZMQCurve?
            var serverKeys: (face: String, own: String)?
            let strangerCheck = try StrangerCheck()
            if let keys {
                let own = try keys.secretCertificate("broker")
                let face = try keys.secretCertificate("ingest")
                serverKeys = (face.publicKey, own.publicKey)
                let admitted = try KeyDirectoryWatcher(directory: keys, logger: logger)
                watcher = admitted
                _ = try await loop.startZAPHandler { request in
                    strangerCheck.observe(request, Self.decide(request, clients: admitted.keys))
                }
                clientCurve = .server(secretKey: face.secretKey ?? "")
                instanceCurve = .server(secretKey: own.secretKey ?? "", domain: instanceDomain)
            }
            let clients = watcher?.keys
            let frontendBox = SocketBox()
            let admission = BrokerAdmission(perClient: RequestLimits().perConnection)
            let backend = try await loop.addSocket(
                .dealer,
                options: ZMQSocketOptions(sendHighWaterMark: 1_000, receiveHighWaterMark: 1_000, curve: instanceCurve),
                setup: { try $0.bind(endpoints.backend) },
                onMessage: { frames in
                    // [principal][client routing…][reply]: back to the client without the principal
                    // (and without the delimiter the broker added).
                    guard frames.count >= 2, let marker = frames.first, BrokeredPrincipal.key(in: marker) != nil,
                        let frontend = frontendBox.id
                    else { return }
                    var reply = Array(frames.dropFirst())
                    if BrokeredPrincipal.addedDelimiter(marker), reply.count >= 3, reply[reply.count - 2].isEmpty {
                        reply.remove(at: reply.count - 2)
                    }
                    admission.answered(reply[0])
                    loop.forward(frontend, reply)
                })
            // Bound only once the backend's handler can find it (below, on the loop's thread).
            let frontend = try await loop.addSocket(
                .router,
                options: ZMQSocketOptions(
                    sendHighWaterMark: 1_000, receiveHighWaterMark: 1_000, maxMessageSize: 64 << 20, routerMandatory: true,
                    curve: clientCurve),
                setup: { _ in },
                authenticated: { frames, userID in
                    guard frames.count >= 2 else { return nil }
                    if let clients, userID.flatMap(clients.principal(forKey:)) == nil {
                        let (routing, body) = RequestReader.split(frames)
                        let id = body.last.flatMap { FastJSON.topLevelString("id", in: $0) }
                        return routing + [EnvelopeWriter.errorReply(type: "", re: id, error: ServerSecurity.notAdmitted)]
                    }
                    // Behind the broker, every client is one peer of the instances: past its share
                    // of requests in flight, the broker itself refuses, so one client's flood queues
                    // nothing in front of the others' requests.
                    if !admission.admit(frames[0]) {
                        let (routing, body) = RequestReader.split(frames)
                        let payload = body.last ?? Data()
                        let id = FastJSON.topLevelString("id", in: payload)
                        let type = FastJSON.topLevelString("type", in: payload).map { String($0.prefix(64)) } ?? ""
                        let refusal = ErrorBody.unavailable("本连接待处理的请求已达\(admission.perClient)个，请等待答复后再发送")
                        return routing + [EnvelopeWriter.errorReply(type: type, re: id.map { String($0.prefix(256)) }, error: refusal)]
                    }
                    let delimited = frames.dropFirst().contains { $0.isEmpty }
                    let request = delimited ? frames : [frames[0], Data()] + frames.dropFirst()
                    loop.forward(backend, [BrokeredPrincipal.frame(publicKey: userID, addedDelimiter: !delimited)] + request)
                    return nil
                })
            try await loop.withSocket(frontend) { socket in
                frontendBox.id = frontend
                try socket.bind(endpoints.frontend)
            }
            let eventsOut = try await loop.addSocket(
                .xpub, options: ZMQSocketOptions(sendHighWaterMark: 1_000, curve: clientCurve),
                setup: { try $0.bind(endpoints.eventsOut) },
                // Subscriptions are read and dropped: every event comes up from the instances anyway.
                onMessage: { _ in })
            let boundEventsOut = try await loop.withSocket(eventsOut) { $0.lastEndpoint }
            let eventsIn = try await loop.addSocket(
                .xsub, options: ZMQSocketOptions(receiveHighWaterMark: 10_000, curve: instanceCurve),
                setup: { socket in
                    try socket.bind(endpoints.eventsIn)
                    try socket.send([Data([1])])  // subscribe to everything
                },
                authenticated: { frames, userID in
                    // [topic][envelope]: an instance publishes into its own stream only.
                    guard frames.count == 2 else { return nil }
                    if let clients {
                        let stream = FastJSON.topLevelString("stream", in: frames[1])
                        guard let userID, let principal = clients.principal(forKey: userID),
                            stream == (principal.instance ?? principal.name)
                        else {
                            logger.warning(
                                "event refused: not the publisher's own stream", metadata: ["events.stream": "\(stream ?? "-")"])
                            return nil
                        }
                    }
                    loop.forward(eventsOut, frames)
                    return nil
                })
            _ = eventsIn
            if let serverKeys, let watcher {
                try await strangerCheck.verify(endpoint: endpoints.frontend, serverKey: serverKeys.face, type: .dealer)
                try await strangerCheck.verify(endpoint: endpoints.eventsOut, serverKey: serverKeys.face, type: .sub)
                try await strangerCheck.verify(endpoint: endpoints.backend, serverKey: serverKeys.own, type: .router)
                watcher.cutSubscriptions(on: eventsOut, of: loop, boundAt: boundEventsOut, logger: logger)
            }
            logger.info(
                "broker listening",
                metadata: [
                    "zmq.frontend": "\(endpoints.frontend)", "zmq.backend": "\(endpoints.backend)", "zmq.eventsIn": "\(endpoints.eventsIn)",
                    "zmq.eventsOut": "\(endpoints.eventsOut)", "security": "\(keys == nil ? "none" : "curve")",
                ])
            return Broker(endpoints: endpoints, loop: loop, watcher: watcher, logger: logger)
        } catch {
            await loop.shutdown()
            throw error
        }
    }

    private init(endpoints: Endpoints, loop: ZMQPollLoop, watcher: KeyDirectoryWatcher?, logger: Logger) {
        self.endpoints = endpoints
        self.loop = loop
        self.watcher = watcher
        self.logger = logger
    }

    /// Forwards until graceful shutdown, then closes the sockets.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            if let watcher { group.addTask { try? await watcher.run() } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await loop.shutdown()
    }

    /// Clients: any key in `clients/`. Instances: an ingest service certificate.
    static func decide(_ request: ZAPRequest, clients: ClientKeys) -> ZAPDecision {
        guard request.mechanism == "CURVE", let key = request.publicKey, let principal = clients.principal(forKey: key) else {
            return .deny(reason: "unknown key")
        }
        switch request.domain {
        case ZMQCurve.zapDomain: return .allow(userID: key)
        case instanceDomain where principal.role == .service && principal.service == ServiceName.ingest.rawValue:
            return .allow(userID: key)
        default: return .deny(reason: "not an ingest instance")
        }
    }
}

/// Requests each client connection has in flight through the broker (sent on, reply not back),
/// touched only on the broker's loop thread. A request whose reply never comes (its instance
/// died) stops counting after `forgetAfter`, longer than any client waits.
final class BrokerAdmission: @unchecked Sendable {
    // @unchecked: read and written on the broker's loop thread only.
    let perClient: Int
    private let forgetAfter: Duration
    /// Per client routing id, when each request in flight stops counting, oldest first.
    private var inFlight: [Data: [ContinuousClock.Instant]] = [:]

    init(perClient: Int, forgetAfter: Duration = .seconds(60)) {
        self.perClient = perClient
        self.forgetAfter = forgetAfter
    }

    private var admitted = 0

    /// Counts a request of `client` in; false when it already has its share in flight.
    func admit(_ client: Data, now: ContinuousClock.Instant = .now) -> Bool {
        // Now and then, forget connections gone with requests unanswered (bounded by connections meanwhile).
        admitted &+= 1
        if admitted % 4_096 == 0 { inFlight = inFlight.filter { ($0.value.last ?? now) > now } }
        var times = inFlight[client] ?? []
        if let firstLive = times.firstIndex(where: { $0 > now }) {
            times.removeFirst(firstLive)
        } else {
            times.removeAll()
        }
        guard times.count < perClient else {
            inFlight[client] = times
            return false
        }
        times.append(now + forgetAfter)
        inFlight[client] = times
        return true
    }

    /// A reply to `client` came back from an instance.
    func answered(_ client: Data) {
        guard var times = inFlight[client], !times.isEmpty else { return }
        times.removeFirst()
        inFlight[client] = times.isEmpty ? nil : times
    }

    /// Requests in flight, for tests.
    func count(_ client: Data) -> Int { inFlight[client]?.count ?? 0 }
}

/// A socket id set once after the socket is made, read by another socket's handler on the loop thread.
private final class SocketBox: @unchecked Sendable {
    // @unchecked: written and read on the loop thread only, written before the socket is bound.
    var id: SocketID?
}
