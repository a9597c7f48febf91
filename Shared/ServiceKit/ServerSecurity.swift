import Foundation
import Logging
import Messaging
import Schema
import Synchronization
import Trust

/// How a service's sockets are secured: with a key directory, CURVE with its own certificate
/// and a ZAP handler admitting the principals in `clients/` (PROTOCOL.md section 7); without one,
/// nothing, and then it binds loopback only.
public struct ServerSecurity: Sendable {
    /// The service's own certificate (with its secret key).
    public let certificate: Certificate
    /// The principals admitted now, kept current by `watcher`.
    public let clients: ClientKeys
    public let watcher: KeyDirectoryWatcher
    public let directory: KeyDirectory
    /// Behind the broker: the broker's public key, which the instance pins when it connects; each
    /// request's principal is then the one the broker puts in front of it.
    public let brokerKey: String?

    /// Reads `NAME.key_secret` and `clients/` from `directory` (and `broker.key` behind the broker).
    public init(directory: KeyDirectory, certificateName: String, behindBroker: Bool = false, logger: Logger) throws {
        self.directory = directory
        certificate = try directory.secretCertificate(certificateName)
        brokerKey = behindBroker ? try directory.publicCertificate("broker").publicKey : nil
        watcher = try KeyDirectoryWatcher(directory: directory, logger: logger)
        clients = watcher.keys
    }

    /// The ZAP decision for one handshake: only a key in `clients/`, in Duban's domain.
    func decide(_ request: ZAPRequest) -> ZAPDecision {
        guard request.domain == ZMQCurve.zapDomain, request.mechanism == "CURVE", let key = request.publicKey else {
            return .deny(reason: "CURVE in domain \(ZMQCurve.zapDomain) required")
        }
        guard clients.principal(forKey: key) != nil else { return .deny(reason: "unknown key") }
        return .allow(userID: key)
    }

    static let notAdmitted = ErrorBody(code: .unauthenticated, message: "证书未获准入或已被撤销，请向专项工作组办公室申请证书")

    /// Who sent a message whose `User-Id` is `userID`, checked against the directory as it is now:
    /// a key taken out since the connection was made is refused on its next request.
    func principal(userID: String?) throws(ErrorBody) -> Principal {
        guard let userID, let principal = clients.principal(forKey: userID) else {
            throw Self.notAdmitted
        }
        return principal
    }
}

extension KeyDirectoryWatcher {
    /// A key taken out loses its event subscription: the publisher `socket`, bound at `endpoint`
    /// (as bound, e.g. `tcp://0.0.0.0:7102`), is bound again, which drops every subscriber; the
    /// others reconnect and catch up by seq, the removed key's handshake is refused.
    func cutSubscriptions(on socket: SocketID, of loop: ZMQPollLoop, boundAt endpoint: String, logger: Logger) {
        onRemoval { removed in
            logger.notice(
                "keys taken out: events endpoint rebound to cut their subscriptions",
                metadata: ["keys.removed": "\(removed.map(\.name).joined(separator: ","))"])
            do {
                try await loop.rebind(socket, endpoint: endpoint)
            } catch {
                logger.error("events endpoint could not be bound again", metadata: ["zmq.events": "\(endpoint)", "error": "\(error)"])
            }
        }
    }
}

/// Without keys a service may bind only loopback (PROTOCOL.md section 7: fail closed).
public enum BindPolicy {
    /// The endpoints among `endpoints` that reach beyond this host: everything but `ipc://`,
    /// `inproc://` and TCP on a loopback address (`tcp://127.x`, `tcp://localhost`, `tcp://[::1]`);
    /// a `>` endpoint connects rather than binds.
    public static func nonLoopback(_ endpoints: [String]) -> [String] {
        endpoints.filter { endpoint in
            if endpoint.hasPrefix(">") { return false }
            let bare = endpoint.hasPrefix("@") ? String(endpoint.dropFirst()) : endpoint
            if bare.hasPrefix("ipc://") || bare.hasPrefix("inproc://") { return false }
            guard bare.hasPrefix("tcp://") else { return true }
            let bound = ZMQEndpoint.bindable(bare).dropFirst("tcp://".count)
            guard let colon = bound.lastIndex(of: ":") else { return true }
            let host = bound[..<colon]
            return !(host.hasPrefix("127.") || host == "[::1]" || host == "localhost")
        }
    }

    /// Refuses to go on when `endpoints` bind beyond loopback without keys, unless `insecure`.
    public static func check(_ endpoints: [String], hasKeys: Bool, insecure: Bool, logger: Logger) throws {
        let open = nonLoopback(endpoints)
        guard !hasKeys, !open.isEmpty else { return }
        if insecure {
            logger.warning(
                "running WITHOUT authentication on a non-loopback address (--insecure): anyone who can reach it may act as any unit",
                metadata: ["endpoints": "\(open.joined(separator: " "))"])
            return
        }
        throw InsecureBindError(endpoints: open)
    }
}

/// A bind beyond loopback without keys: the message names the address and the fix.
public struct InsecureBindError: Error, CustomStringConvertible {
    public let endpoints: [String]
    public var description: String {
        """
        拒绝启动：没有密钥目录时只能监听本机回环地址，而配置要求监听 \(endpoints.joined(separator: "、"))。\
        请用 --keys DIR（或环境变量 DUBAN_KEYS_DIR、配置项 keysDir）指定密钥目录以启用 CURVE 认证（duban keys init DIR 可生成），\
        或改为监听 127.0.0.1；确需无认证运行时加 --insecure（不安全）。
        """
    }
}

/// Checks at start that the ZAP handler is consulted and refuses a stranger's key: libzmq admits
/// any key when a CURVE socket has no ZAP domain or its context no handler, and that mistake must
/// stop the service rather than open it.
final class StrangerCheck: Sendable {
    private let strangerKey: String
    private let secretKey: String
    private let refused = Atomic<Bool>(false)

    init() throws {
        let pair = try ZMQCurve.generateKeyPair()
        strangerKey = pair.publicKey
        secretKey = pair.secretKey
    }

    /// Wraps a ZAP decision to notice the stranger's handshake.
    func observe(_ request: ZAPRequest, _ decision: ZAPDecision) -> ZAPDecision {
        if request.publicKey == strangerKey, case .deny = decision { refused.store(true, ordering: .releasing) }
        if request.publicKey == strangerKey, case .allow = decision {
            return .deny(reason: "stranger admitted")  // never let the probe in; `refused` stays false
        }
        return decision
    }

    /// Connects a stranger to `endpoint` (a bound CURVE server with public key `serverKey`) and
    /// waits until the ZAP handler has refused it.
    func verify(endpoint: String, serverKey: String, type: ZMQSocketType) async throws {
        let loop = ZMQPollLoop(name: "stranger-check")
        do {
            let target = Self.connectable(endpoint)
            _ = try await loop.addSocket(
                type,
                options: ZMQSocketOptions(
                    linger: 0, subscriptions: type == .sub ? [""] : [],
                    curve: .client(serverKey: serverKey, publicKey: strangerKey, secretKey: secretKey)),
                setup: { socket in try socket.connect(target) }, onMessage: { _ in })
            let deadline = ContinuousClock.now + .seconds(3)
            while !refused.load(ordering: .acquiring) {
                guard ContinuousClock.now < deadline else {
                    throw ErrorBody.internal("CURVE 自检失败：\(endpoint) 上陌生密钥的握手未经 ZAP 处理器拒绝，服务拒绝启动")
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            refused.store(false, ordering: .releasing)
        } catch {
            await loop.shutdown()
            throw error
        }
        await loop.shutdown()
    }

    /// A bound endpoint as a client reaches it from this host (`tcp://*:7101` → `tcp://127.0.0.1:7101`).
    static func connectable(_ endpoint: String) -> String {
        guard endpoint.hasPrefix("tcp://") else { return endpoint }
        var rest = endpoint.dropFirst("tcp://".count)
        if rest.hasPrefix("*:") || rest.hasPrefix("0.0.0.0:") {
            rest = rest[rest.index(after: rest.firstIndex(of: ":")!)...]
            return "tcp://127.0.0.1:\(rest)"
        }
        return endpoint
    }
}

extension DeploymentConfiguration {
    /// The CURVE keys with which `name` (a certificate in the key directory: `notify`, `ingest-2`)
    /// reaches `peer` (whose public certificate is `peer.key`); nil without a key directory.
    public func clientCurve(as name: String, toward peer: ServiceName) throws -> ZMQCurve? {
        guard let keysDirectory else { return nil }
        let directory = KeyDirectory(path: keysDirectory)
        let own = try directory.secretCertificate(name)
        let server = try directory.publicCertificate(peer.rawValue)
        return .client(serverKey: server.publicKey, publicKey: own.publicKey, secretKey: own.secretKey ?? "")
    }
}
