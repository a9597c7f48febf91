import Foundation
import Messaging
import Schema
import ServiceKit

/// A key directory made the way a user makes one (`duban keys init`), for tests with CURVE on.
public struct TestKeys: Sendable {
    public let directory: KeyDirectory

    /// Runs `duban keys init` into a fresh temporary directory.
    public static func make() throws -> TestKeys {
        let path = (try TestSupport.temporaryDirectory("duban-keys") as NSString).appendingPathComponent("keys")
        try TestSupport.run((TestSupport.binDirectory as NSString).appendingPathComponent("duban"), ["keys", "init", path])
        return TestKeys(directory: KeyDirectory(path: path))
    }

    public var path: String { directory.path }

    /// The CURVE keys with which certificate `name` reaches `service`.
    public func curve(_ name: String, toward service: ServiceName) throws -> ZMQCurve {
        let own = try directory.secretCertificate(name)
        let server = try directory.publicCertificate(service.rawValue)
        return .client(serverKey: server.publicKey, publicKey: own.publicKey, secretKey: own.secretKey ?? "")
    }

    /// A client of `endpoint` (a `service`'s rpc) holding certificate `name`.
    public func client(_ name: String, _ service: ServiceName, at endpoint: String, from: String? = nil) async throws -> RPCClient {
        try await RPCClient.connect(to: endpoint, from: from, curve: try curve(name, toward: service))
    }

    /// A key directory as one host holds it: `clients/`, every public certificate, and only the
    /// secret certificates named (a host holds only its own secrets).
    public func hostDirectory(holding secrets: [String]) throws -> String {
        let host = (try TestSupport.temporaryDirectory("duban-host-keys") as NSString).appendingPathComponent("keys")
        let manager = FileManager.default
        try manager.createDirectory(atPath: host, withIntermediateDirectories: true)
        try manager.copyItem(atPath: directory.clientsPath, toPath: (host as NSString).appendingPathComponent("clients"))
        for file in try manager.contentsOfDirectory(atPath: directory.path) where file.hasSuffix(".key") {
            try manager.copyItem(
                atPath: (directory.path as NSString).appendingPathComponent(file), toPath: (host as NSString).appendingPathComponent(file))
        }
        for name in secrets {
            try manager.copyItem(
                atPath: directory.secretCertificatePath(name), toPath: (host as NSString).appendingPathComponent("\(name).key_secret"))
        }
        return host
    }

    /// The name of the certificate of `unit` (a unit certificate naming it).
    public func certificate(ofUnit unit: String) throws -> String {
        let (principals, _) = directory.loadClients()
        guard let name = principals.values.first(where: { $0.unit == unit })?.name else { throw TestFailure("no certificate for \(unit)") }
        return name
    }
}
