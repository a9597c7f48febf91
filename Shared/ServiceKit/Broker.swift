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
public enum BrokeredPrincipal {
    static let prefix = Data("duban-principal:".utf8)

    public static func frame(publicKey: String?) -> Data { prefix + Data((publicKey ?? "").utf8) }

    /// The key in a marker frame; nil when the frame is not one, "" when the broker had none.
    public static func key(in frame: Data) -> String? {
        guard frame.starts(with: prefix) else { return nil }
        return String(decoding: frame.dropFirst(prefix.count), as: UTF8.self)
    }
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
            let strangerCheck = try StrangerCheck()
            if let keys {
                let own = try keys.secretCertificate("broker")
                let face = try keys.secretCertificate("ingest")
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
            let backend = try await loop.addSocket(
                .dealer,
                options: ZMQSocketOptions(sendHighWaterMark: 1_000, receiveHighWaterMark: 1_000, curve: instanceCurve),
                setup: { try $0.bind(endpoints.backend) },
                onMessage: { frames in
                    // [principal][client routing…][reply]: back to the client without the principal.
                    guard frames.count >= 2, BrokeredPrincipal.key(in: frames[0]) != nil, let frontend = frontendBox.id else { return }
                    loop.forward(frontend, Array(frames.dropFirst()))
                })
            let frontend = try await loop.addSocket(
                .router,
                options: ZMQSocketOptions(
                    sendHighWaterMark: 1_000, receiveHighWaterMark: 1_000, maxMessageSize: 64 << 20, routerMandatory: true,
                    curve: clientCurve),
                setup: { try $0.bind(endpoints.frontend) },
                authenticated: { frames, userID in
                    if let clients {
                        guard let userID, clients.principal(forKey: userID) != nil else {
                            return Self.refusal(frames, .init(code: .unauthenticated, message: "证书未获准入或已被撤销，请向专项工作组办公室申请证书"))
                        }
                    }
                    loop.forward(backend, [BrokeredPrincipal.frame(publicKey: userID)] + frames)
                    return nil
                })
            frontendBox.id = frontend
            let eventsOut = try await loop.addSocket(
                .xpub, options: ZMQSocketOptions(sendHighWaterMark: 1_000, curve: clientCurve),
                setup: { try $0.bind(endpoints.eventsOut) },
                // Subscriptions are read and dropped: every event comes up from the instances anyway.
                onMessage: { _ in })
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
            if let keys, let watcher {
                let serverKey = try keys.secretCertificate("ingest").publicKey
                let brokerKey = try keys.secretCertificate("broker").publicKey
                try await strangerCheck.verify(endpoint: endpoints.frontend, serverKey: serverKey, type: .dealer)
                try await strangerCheck.verify(endpoint: endpoints.eventsOut, serverKey: serverKey, type: .sub)
                try await strangerCheck.verify(endpoint: endpoints.backend, serverKey: brokerKey, type: .router)
                watcher.onRemoval { removed in
                    logger.notice(
                        "keys taken out: events endpoint rebound to cut their subscriptions",
                        metadata: ["keys.removed": "\(removed.map(\.name).joined(separator: ","))"])
                    loop.withSocketOnLoop(eventsOut) { socket in RPCServer.rebind(socket, endpoint: endpoints.eventsOut, logger: logger) }
                }
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

    /// An error reply to a client's request, framed back to it.
    static func refusal(_ frames: [Data], _ error: ErrorBody) -> [Data]? {
        guard frames.count >= 2 else { return nil }
        let routing: [Data]
        if let delimiter = frames.firstIndex(where: { $0.isEmpty }), delimiter >= 1 {
            routing = Array(frames[...delimiter])
        } else {
            routing = [frames[0]]
        }
        let payload = frames.last ?? Data()
        return routing + [EnvelopeWriter.errorReply(type: "", re: FastJSON.topLevelString("id", in: payload), error: error)]
    }
}

/// A socket id set once after the socket is made, read by another socket's handler on the loop thread.
private final class SocketBox: @unchecked Sendable {
    // @unchecked: written before the first message can reach a reader, read on the loop thread only.
    var id: SocketID?
}
