import ArgumentParser
import DubanConfig
import Foundation
import Messaging
import Schema
import Trust

/// Who the CLI is on the wire: a certificate (with its secret key) and the key directory holding
/// the services' public certificates. Found in this order (PROTOCOL.md section 7, docs/security.md):
/// `--cert FILE`, `DUBAN_CERT`, then a key directory (`--keys`, `DUBAN_KEYS_DIR`, the
/// configuration's `keysDir`, then `./var/keys` of a local deployment), in which `--as UNIT` picks
/// that unit's certificate and no `--as` the office's. With none, no CURVE and no `from` unless `--as`.
struct ClientIdentity {
    var certificate: Certificate
    var name: String
    var directory: KeyDirectory?

    /// The CURVE keys for calling `service`.
    func curve(for service: ServiceName) throws -> ZMQCurve {
        guard let directory else {
            throw ValidationError("--cert：还需要密钥目录（--keys 或 DUBAN_KEYS_DIR）以取得服务 \(service.rawValue) 的公钥证书 \(service.rawValue).key")
        }
        let server: Certificate
        do {
            server = try directory.publicCertificate(service.rawValue)
        } catch {
            throw ValidationError("密钥目录 \(directory.path) 中没有服务 \(service.rawValue) 的公钥证书：\(error)")
        }
        return .client(serverKey: server.publicKey, publicKey: certificate.publicKey, secretKey: certificate.secretKey ?? "")
    }

    static let localKeysDirectory = "./var/keys"

    /// Resolves the identity from the options, the environment and the configuration.
    static func resolve(
        cert: String?, keys: String?, as unit: String?, deployment: DeploymentConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ClientIdentity? {
        // DUBAN_KEYS_DIR or the configuration's keysDir set but empty: no keys, not even a local deployment's.
        let fromEnvironment = environment["DUBAN_KEYS_DIR"]
        let directoryPath =
            (fromEnvironment == "" || deployment.keysDirectoryDisabled) && keys == nil
            ? nil
            : keys ?? fromEnvironment ?? deployment.keysDirectory
                ?? (FileManager.default.fileExists(atPath: localKeysDirectory) ? localKeysDirectory : nil)
        let directory = directoryPath.map(KeyDirectory.init(path:))
        if let file = cert ?? environment["DUBAN_CERT"] {
            let certificate: Certificate
            do {
                certificate = try Certificate.load(path: file)
            } catch {
                throw ValidationError("--cert：\(error)")
            }
            guard certificate.secretKey != nil else { throw ValidationError("--cert：\(file) 不含 secret-key，应为 .key_secret 私钥证书") }
            let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            return ClientIdentity(certificate: certificate, name: name, directory: directory)
        }
        guard let directory else { return nil }
        let name = try certificateName(in: directory, for: unit)
        do {
            return ClientIdentity(certificate: try directory.secretCertificate(name), name: name, directory: directory)
        } catch {
            throw ValidationError("密钥目录 \(directory.path) 中没有 \(name) 的私钥证书（\(name).key_secret）：\(error)")
        }
    }

    /// The certificate in `directory` that speaks for `unit` (the office when nil): a unit
    /// certificate naming it, the office's, or one whose file stem is `unit`.
    static func certificateName(in directory: KeyDirectory, for unit: String?) throws -> String {
        guard let unit, unit != officeUnit else { return "office" }
        if Certificate.isValidName(unit), FileManager.default.fileExists(atPath: directory.secretCertificatePath(unit)) { return unit }
        let (principals, _) = directory.loadClients()
        if let match = principals.values.filter({ $0.unit == unit }).map(\.name).sorted().first { return match }
        throw ValidationError("--as：密钥目录 \(directory.path) 中没有单位 \(unit) 的证书（可用 duban keys list 查看，duban keys add 添加）")
    }
}

extension GlobalOptions {
    /// This invocation's identity, if any.
    func identity() async throws -> ClientIdentity? {
        try ClientIdentity.resolve(cert: cert, keys: keys, as: from, deployment: try await deployment())
    }

    /// The CURVE keys for `service`, or nil without an identity.
    func curve(for service: ServiceName) async throws -> ZMQCurve? {
        try await identity()?.curve(for: service)
    }
}
