import DubanConfig
import Foundation
import Logging
import Messaging
import Schema
import Synchronization
import Trust

/// The console's way to the services: ZeroMQ, like any other client. With a key directory it
/// holds the `gateway` certificate and names the person's unit in `from` (docs/security.md,
/// section 4); without keys it sends that unit as `from` and the services (loopback only) believe it.
/// One client per (service, from), all on one poll loop: one thread for the whole console.
public final class Gateway: Sendable {
    let deployment: DeploymentConfiguration
    let identity: (certificate: Certificate, directory: KeyDirectory)?
    let loop: ZMQPollLoop
    private let clients = Mutex<[String: RPCClient]>([:])
    private let logger: Logger

    public init(deployment: DeploymentConfiguration, keysDirectory: String?, logger: Logger) throws {
        self.deployment = deployment
        self.logger = logger
        if let keysDirectory {
            let directory = KeyDirectory(path: keysDirectory)
            do {
                identity = (try directory.secretCertificate("gateway"), directory)
            } catch {
                throw WebError.invalid("密钥目录 \(keysDirectory) 中没有网关私钥证书 gateway.key_secret：\(error)")
            }
        } else {
            identity = nil
        }
        loop = ZMQPollLoop(name: "web-gateway", logger: logger)
    }

    /// The CURVE keys for calling `service`, nil without keys.
    public func curve(for service: ServiceName) throws -> ZMQCurve? {
        guard let identity else { return nil }
        let server = try identity.directory.publicCertificate(service.rawValue)
        return .client(
            serverKey: server.publicKey, publicKey: identity.certificate.publicKey, secretKey: identity.certificate.secretKey ?? "")
    }

    /// The client calling `service` for `from` (nil: as a reader).
    public func client(_ service: ServiceName, from: String?) async throws -> RPCClient {
        let key = "\(service.rawValue)\u{0}\(from ?? "")"
        if let existing = clients.withLock({ $0[key] }) { return existing }
        let made = try await RPCClient.connect(to: deployment[service].rpc, from: from, loop: loop, curve: try curve(for: service))
        let (kept, extra) = clients.withLock { clients -> (RPCClient, RPCClient?) in
            if let raced = clients[key] { return (raced, made) }
            clients[key] = made
            return (made, nil)
        }
        if let extra { await extra.close() }
        return kept
    }

    /// Calls `rpc` on `service` for a person: `from` is their unit (the office for office staff),
    /// nil for the read-only roles.
    public func call<Body, Reply>(
        _ service: ServiceName, _ rpc: RPC<Body, Reply>, _ body: Body, from: String?, timeout: Duration = .seconds(5)
    ) async throws -> Reply {
        try await client(service, from: from).call(rpc, body, timeout: timeout, retries: 1)
    }

    public func callAll<Body, Item>(
        _ service: ServiceName, _ rpc: RPC<Body, ListReply<Item>>, _ body: Body, from: String?
    ) async throws -> [Item] {
        try await client(service, from: from).callAll(rpc, body, timeout: .seconds(5), retries: 1)
    }

    public func close() async {
        let all = clients.withLock { clients in
            defer { clients.removeAll() }
            return Array(clients.values)
        }
        for client in all { await client.close() }
        await loop.shutdown()
    }
}
