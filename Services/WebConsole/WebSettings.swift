import DubanConfig
import Foundation
import Schema

/// What a person may do in the console. Each maps to a wire identity (`WebRole.wireFrom`): the
/// console never gives anyone more than the office's rights.
public enum WebRole: String, Sendable, CaseIterable, Codable {
    case office, unit, leader, screen, admin

    public var label: String {
        switch self {
        case .office: return "办公室工作人员"
        case .unit: return "责任单位联络员"
        case .leader: return "领导（只读）"
        case .screen: return "大屏（只读）"
        case .admin: return "控制台管理员"
        }
    }

    /// Whether the person acts with the office's rights (the admin manages people and has no wire
    /// rights beyond the office's).
    public var actsAsOffice: Bool { self == .office || self == .admin }
    /// Whether the person may change anything at all through the console.
    public var mayWrite: Bool { self != .leader && self != .screen }
}

/// The console's settings: where it listens, where its own data lives, how sessions behave.
public struct WebSettings: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    /// The console's own directory: `web.sqlite` and `uploads/`.
    public var dataDirectory: String
    /// Behind a TLS-terminating proxy: cookies get `Secure` and pages send HSTS.
    public var behindTLS = false
    /// The URL people reach the console at (links in notices, evidence references); optional.
    public var baseURL: String?
    /// A session unused this long is over.
    public var idleTimeout: Duration = .seconds(30 * 60)
    /// bcrypt's cost: 12 in production, low in tests.
    public var bcryptCost: UInt8 = 12
    /// The largest evidence file accepted.
    public var maxUploadBytes = 10 << 20
    /// How often an open live stream sends a comment so proxies and browsers keep it.
    public var heartbeat: Duration = .seconds(15)
    /// The key directory holding the `gateway` secret certificate and the services' public ones.
    public var keysDirectory: String?
    /// Behind a proxy that appends the client's address to `X-Forwarded-For`: the console takes
    /// that header's last entry as the client (rate limits, the login journal). Off by default,
    /// since anyone can send the header when nothing in front of the console rewrites it.
    public var trustForwardedFor = false
    /// 群众举报 from one address: at most this many submissions per `publicWindow`.
    public var publicSubmissions = 5
    /// Look-ups (reference and code) from one address per `publicWindow`: bounds guessing codes.
    public var publicLookups = 30
    public var publicWindow: Duration = .seconds(10 * 60)

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// Parses `HOST:PORT` (`[::1]:8080` for IPv6); nil when it is not one.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        return (host, port)
    }
}
