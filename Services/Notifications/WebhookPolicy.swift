import Foundation
import Schema
import ServiceKit
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 address, as its bytes (4 or 16). IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// and NAT64 ones (`64:ff9b::a.b.c.d`) are taken as the IPv4 address they carry, so that no
/// spelling of a private address passes for a public one.
struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            self.bytes = Array(bytes[12...])
        } else if bytes.count == 16, bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] {
            self.bytes = Array(bytes[12...])
        } else {
            self.bytes = bytes
        }
    }

    /// A numeric address only (dotted quad or RFC 4291 text, brackets allowed); never a host name,
    /// and none of inet_aton's shortcuts (`127.1`, `0x7f000001`): those are names, resolved and checked.
    init?(_ text: String) {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    var isIPv4: Bool { bytes.count == 4 }

    var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        return bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
                ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        }
    }

    /// How the address goes into a URL's host: IPv6 in brackets.
    var urlHost: String { isIPv4 ? description : "[\(description)]" }

    /// Loopback, private, link-local, shared, unspecified, multicast and reserved ranges: what a
    /// webhook may reach only where an allowed CIDR names it.
    static let restricted: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    ].map { CIDR($0)! }

    var isRestricted: Bool { Self.restricted.contains { $0.contains(self) } }
}

/// A network, `10.0.0.0/8` or `fd00::/8`; a bare address is the network of that address alone.
struct CIDR: Sendable, Hashable, CustomStringConvertible {
    let network: IPAddress
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        // A mapped IPv6 network is the IPv4 network it carries.
        let mapped = address.isIPv4 && parts[0].contains(":")
        let width = address.bytes.count * 8
        var prefix = width
        if parts.count == 2 {
            guard let given = Int(parts[1]), given >= 0, given <= (mapped ? 128 : width), parts[1].allSatisfy(\.isASCII) else {
                return nil
            }
            prefix = mapped ? max(given - 96, 0) : given
        }
        self.network = address
        self.prefix = prefix
    }

    func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var bits = prefix
        for (a, b) in zip(address.bytes, network.bytes) where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a & mask != b & mask { return false }
            bits -= 8
        }
        return true
    }

    var description: String { "\(network)/\(prefix)" }
}

/// Where webhook, WeCom and DingTalk channels may send (`notify.webhookAllow`,
/// `DUBAN_NOTIFY_WEBHOOK_ALLOW`): host names, matched by name, and CIDRs, matched by address.
///
/// - A target whose host is an IP address is allowed when an allowed CIDR covers it.
/// - A target whose host is a name is allowed when the name is on the list, and then only to
///   addresses that are public or covered by an allowed CIDR: a listed name that resolves to a
///   loopback, private or link-local address is refused unless a CIDR names that address too.
/// - A name that is not on the list is refused, whatever it resolves to.
///
/// Resolved addresses are checked at `channel.set` (when the name resolves then) and again at every
/// delivery, where every address the name resolves to must pass.
struct WebhookAllowList: Sendable, Equatable {
    let hosts: Set<String>
    let networks: [CIDR]

    /// The robots' hosts: WeCom (企业微信) and DingTalk (钉钉).
    static let defaultEntries = ["qyapi.weixin.qq.com", "oapi.dingtalk.com"]

    /// Parses the entries; an entry that is neither a CIDR nor a host name is a configuration error.
    init(_ entries: [String]) throws {
        var hosts: Set<String> = []
        var networks: [CIDR] = []
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            if let network = CIDR(entry) {
                networks.append(network)
            } else if let host = Self.normalised(entry), !entry.contains("/"), IPAddress(entry) == nil {
                hosts.insert(host)
            } else {
                throw ConfigurationError.invalid("notify.webhookAllow", entry)
            }
        }
        self.hosts = hosts
        self.networks = networks
    }

    /// A host name as compared: lower case, no trailing dot; nil for what cannot be one.
    static func normalised(_ host: String) -> String? {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-._")
        guard !name.isEmpty, name.count <= 253, name.allSatisfy({ allowed.contains($0) }) else { return nil }
        return name
    }

    func covers(_ address: IPAddress) -> Bool { networks.contains { $0.contains(address) } }

    /// Whether a delivery may connect to `address`, reached through an allowed name or as a literal.
    func permits(_ address: IPAddress, throughName: Bool) -> Bool {
        if covers(address) { return true }
        return throughName && !address.isRestricted
    }
}

/// A webhook target as the HTTP client will see it: the same parser (Foundation's `URL`, as
/// AsyncHTTPClient uses), so that what is checked is what is connected to.
struct WebhookTarget: Sendable {
    let url: String
    let scheme: String
    /// The host as the HTTP client takes it (IPv6 without brackets).
    let host: String
    let port: Int
    /// The literal address, when the host is one.
    let address: IPAddress?

    init?(_ target: String) {
        guard let url = URL(string: target), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            var host = url.host, !host.isEmpty
        else { return nil }
        // Credentials in the address are refused: the client would not send them, and `user@host`
        // is the classic way to make a checker and a client disagree about the host.
        let authority = target.dropFirst(scheme.count + 3).prefix { !"/?#".contains($0) }
        guard url.user == nil, url.password == nil, !authority.contains("@") else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.url = target
        self.scheme = scheme
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
        self.address = IPAddress(host)
    }

    /// The part of the URL after the authority (path, query, fragment).
    var remainder: Substring {
        let afterScheme = url[url.index(url.startIndex, offsetBy: scheme.count + 3)...]
        let end = afterScheme.firstIndex { "/?#".contains($0) } ?? afterScheme.endIndex
        return afterScheme[end...]
    }

    /// `host[:port]`, as the `Host` header carries it.
    var authority: String {
        let name = address.map(\.urlHost) ?? host
        return port == (scheme == "https" ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// The same request aimed at `address`: for plain HTTP, the connection goes to the address that
    /// was checked, not to whatever a second lookup would give (DNS rebinding).
    func pinned(to address: IPAddress) -> String {
        "\(scheme)://\(address.urlHost):\(port)\(remainder)"
    }
}

/// Why a webhook target may not be used.
enum WebhookRefusal: Error, Equatable {
    case notHTTP
    case hostNotAllowed(String)
    case addressNotAllowed(String, IPAddress)
    case unresolved(String)

    /// For people (the refusal at `channel.set`, the delivery log).
    var message: String {
        switch self {
        case .notHTTP: return "应为 http(s) 地址，且不含用户名或密码"
        case .hostNotAllowed(let host):
            return "主机 \(ErrorBody.quote(host)) 不在允许发送的名单（notify.webhookAllow）中"
        case .addressNotAllowed(let host, let address) where IPAddress(host) != nil:
            return "地址 \(address) 属于内网、回环或保留地址，允许名单中没有覆盖它的网段（CIDR）"
        case .addressNotAllowed(let host, let address):
            return "\(ErrorBody.quote(host)) 指向内网、回环或保留地址 \(address)，允许名单中没有覆盖它的网段（CIDR）"
        case .unresolved(let host): return "无法解析主机 \(ErrorBody.quote(host))"
        }
    }
}

extension WebhookAllowList {
    /// Checks a target's host against the list, without resolving it.
    func check(_ target: WebhookTarget) throws(WebhookRefusal) {
        if let address = target.address {
            guard covers(address) else {
                throw address.isRestricted ? .addressNotAllowed(target.host, address) : .hostNotAllowed(target.host)
            }
            return
        }
        guard let name = Self.normalised(target.host), hosts.contains(name) else { throw .hostNotAllowed(target.host) }
    }

    /// Checks every address a name resolved to.
    func check(_ target: WebhookTarget, addresses: [IPAddress]) throws(WebhookRefusal) {
        for address in addresses where !permits(address, throughName: target.address == nil) {
            throw .addressNotAllowed(target.host, address)
        }
    }
}

/// getaddrinfo off the cooperative pool, bounded in time (the call itself cannot be cancelled; a
/// lookup that outlives its bound finishes on its own thread and is ignored).
enum HostResolver {
    enum Failure: Error { case notFound, timedOut }

    static func resolve(_ host: String, timeout: Duration) async -> Result<[IPAddress], Failure> {
        if let address = IPAddress(host) { return .success([address]) }
        let once = Once()
        return await withCheckedContinuation { continuation in
            once.pending.withLock { $0 = continuation }
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.finish(.failure(.timedOut)) }
            DispatchQueue.global().async {
                let addresses = lookup(host)
                once.finish(addresses.isEmpty ? .failure(.notFound) : .success(addresses))
            }
        }
    }

    /// Resumes its continuation once: with the lookup's answer or the timeout, whichever comes first.
    private final class Once: Sendable {
        let pending = Mutex<CheckedContinuation<Result<[IPAddress], Failure>, Never>?>(nil)

        func finish(_ result: Result<[IPAddress], Failure>) {
            pending.withLock { continuation in
                continuation?.resume(returning: result)
                continuation = nil
            }
        }
    }

    /// Every address of every family getaddrinfo gives for `host`.
    static func lookup(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sockaddr = info.pointee.ai_addr {
                switch Int32(sockaddr.pointee.sa_family) {
                case AF_INET:
                    var address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
                case AF_INET6:
                    var address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
                default: break
                }
            }
            cursor = info.pointee.ai_next
        }
        var seen: Set<IPAddress> = []
        return addresses.filter { seen.insert($0).inserted }
    }
}
