import Foundation
import HummingbirdBcrypt
import NIOPosix

/// bcrypt, run on NIO's thread pool: hashing is deliberately slow and synchronous, and on the
/// cooperative pool (two threads on these machines) one login would stall every page.
public struct Passwords: Sendable {
    public let cost: UInt8
    let pool: NIOThreadPool

    public init(cost: UInt8, pool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.pool = pool
    }

    public func hash(_ password: String) async throws -> String {
        let cost = cost
        return try await pool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await pool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash no password matches, checked against when the name is unknown so that a wrong name
    /// takes as long as a wrong password.
    public func decoyHash() async throws -> String { try await hash(AccountStore.randomToken()) }

    /// The rules a new password must meet, in Chinese; nil when it does.
    public static func problem(with password: String) -> String? {
        if password.count < 10 { return "密码至少 10 个字符" }
        if password.utf8.count > 72 { return "密码不能超过 72 字节（bcrypt 的上限）" }
        return nil
    }
}
