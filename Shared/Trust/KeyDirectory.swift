import Foundation
import Logging
import Schema
import Synchronization

/// A key directory (PROTOCOL.md section 7): `NAME.key_secret` holds a host's own certificates,
/// `NAME.key` each service's public certificate, `clients/*.key` every principal allowed in, and
/// `revoked` the public keys taken out, one per line, so that a key restored by mistake from a
/// backup stays out.
public struct KeyDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var clientsPath: String { (path as NSString).appendingPathComponent("clients") }
    public var revokedPath: String { (path as NSString).appendingPathComponent("revoked") }

    public func secretCertificatePath(_ name: String) -> String { (path as NSString).appendingPathComponent("\(name).key_secret") }
    public func publicCertificatePath(_ name: String) -> String { (path as NSString).appendingPathComponent("\(name).key") }
    public func clientCertificatePath(_ name: String) -> String { (clientsPath as NSString).appendingPathComponent("\(name).key") }

    /// A host's own certificate, with its secret key.
    public func secretCertificate(_ name: String) throws -> Certificate {
        let certificate = try Certificate.load(path: secretCertificatePath(name))
        guard certificate.secretKey != nil else {
            throw CertificateError.invalid(secretCertificatePath(name), line: 0, "缺少 secret-key")
        }
        return certificate
    }

    /// A service's public certificate (clients use its key as `CURVE_SERVERKEY`): `NAME.key`, or
    /// `clients/NAME.key` when only that is there.
    public func publicCertificate(_ name: String) throws -> Certificate {
        let top = publicCertificatePath(name)
        if FileManager.default.fileExists(atPath: top) { return try Certificate.load(path: top) }
        return try Certificate.load(path: clientCertificatePath(name))
    }

    /// The public keys taken out.
    public func revokedKeys() -> Set<String> {
        guard let text = try? String(contentsOfFile: revokedPath, encoding: .utf8) else { return [] }
        return Set(
            text.split(separator: "\n").compactMap { line -> String? in
                let key = line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                return key.utf8.count == 40 && !key.hasPrefix("#") ? key : nil
            })
    }

    /// Adds a key to the revoked list (`KEY NAME TIME`); a directory that cannot be written (a
    /// read-only mount) throws, and the caller keeps the key out in memory.
    public func appendRevoked(key: String, name: String) throws {
        guard !revokedKeys().contains(key) else { return }
        let line = "\(key) \(name) \(Timestamp.now())\n"
        let fd = open(revokedPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CertificateError.unreadable(revokedPath) }
        defer { close(fd) }
        let written = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard written == line.utf8.count else { throw CertificateError.unreadable(revokedPath) }
    }

    /// What `clients/` holds now, cheaply: each `.key` file's name, size, inode and change time.
    /// Compared between polls to notice a key added, removed or replaced.
    public func clientsSignature() -> [String: [Int]] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: clientsPath) else { return [:] }
        var signature: [String: [Int]] = [:]
        for name in names where name.hasSuffix(".key") {
            var info = stat()
            // stat follows symlinks: a Kubernetes Secret swaps its files behind `..data`.
            guard stat((clientsPath as NSString).appendingPathComponent(name), &info) == 0 else { continue }
            signature[name] = [
                Int(info.st_size), Int(info.st_ino), Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec), Int(info.st_mtim.tv_nsec),
            ]
        }
        var revoked = stat()
        if stat(revokedPath, &revoked) == 0 { signature["/revoked"] = [Int(revoked.st_size), Int(revoked.st_mtim.tv_nsec)] }
        return signature
    }

    /// Every principal in `clients/` not revoked, by public key; certificates that cannot be used
    /// are skipped and reported.
    public func loadClients() -> (principals: [String: Principal], problems: [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: clientsPath) else {
            return ([:], ["密钥目录 \(clientsPath) 不存在或无法读取"])
        }
        let revoked = revokedKeys()
        var principals: [String: Principal] = [:]
        var problems: [String] = []
        for file in names.sorted() where file.hasSuffix(".key") {
            let name = String(file.dropLast(".key".count))
            guard Certificate.isValidName(name) else {
                problems.append("证书文件名 \(file) 不合规（只用 ASCII 字母、数字、-、_、.）")
                continue
            }
            do {
                let certificate = try Certificate.load(path: (clientsPath as NSString).appendingPathComponent(file))
                let principal = try certificate.principal(name: name)
                if revoked.contains(principal.publicKey) {
                    problems.append("证书 \(name) 的公钥已被撤销（见 \(revokedPath)），不予接纳")
                    continue
                }
                if let other = principals[principal.publicKey] {
                    problems.append("证书 \(name) 与 \(other.name) 的公钥相同，只接纳 \(other.name)")
                    continue
                }
                principals[principal.publicKey] = principal
            } catch {
                problems.append("\(error)")
            }
        }
        return (principals, problems)
    }
}

/// The principals admitted now, by Z85 public key: read by the ZAP handler at each handshake and
/// by the request reader at each request, replaced whole when `clients/` changes.
public final class ClientKeys: Sendable {
    private let current: Mutex<[String: Principal]>

    public init(_ principals: [String: Principal] = [:]) {
        current = Mutex(principals)
    }

    public func principal(forKey key: String) -> Principal? {
        current.withLock { $0[key] }
    }

    public var all: [Principal] { current.withLock { Array($0.values) } }

    /// Replaces the set; returns the principals that left it.
    @discardableResult
    public func replace(with principals: [String: Principal]) -> [Principal] {
        current.withLock { state in
            let removed = state.filter { principals[$0.key] == nil }.map(\.value)
            state = principals
            return removed
        }
    }
}
