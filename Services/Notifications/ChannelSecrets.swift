import Foundation
import Schema

/// Robot keys and tokens in a channel's target: stored and used, never shown. Reads
/// (`channel.list`, `channel.set`'s reply) and the `notify.channel.updated` event carry the target
/// with each secret query value replaced by `***` (`…/send?key=***`).
enum ChannelSecrets {
    /// Query parameters whose values are secrets (compared without case).
    static let parameters: Set<String> = ["key", "access_token", "token", "secret", "sign", "signature", "password", "api_key", "apikey"]
    static let mask = "***"

    /// The channel as reads and events show it.
    static func redacted(_ channel: Channel) -> Channel {
        guard channel.kind != .file else { return channel }
        var shown = channel
        shown.target = redact(channel.target)
        return shown
    }

    /// A URL with every secret query value masked.
    static func redact(_ target: String) -> String {
        let (base, query, fragment) = split(target)
        guard let query else { return target }
        let masked = query.split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
            guard let equals = item.firstIndex(of: "="), isSecret(item[..<equals]) else { return String(item) }
            return "\(item[..<equals])=\(mask)"
        }
        return base + "?" + masked.joined(separator: "&") + (fragment.map { "#" + $0 } ?? "")
    }

    /// A channel sent back as a read showed it: each masked value is the stored channel's value again,
    /// when the stored channel has the same name and the same address before its query. A masked value
    /// with nothing to restore it from is refused, never stored.
    static func restoring(_ channel: Channel, from stored: Channel?) throws -> Channel {
        guard channel.kind != .file else { return channel }
        let (base, query, fragment) = split(channel.target)
        guard let query, query.contains("=\(mask)") else { return channel }
        let refusal = ErrorBody.invalidArgument(
            "target 中的 \(mask) 是隐去的密钥，只能原样用于同一渠道的同一地址；请填写真实的值", field: "body.channel.target")
        guard let stored, stored.kind != .file, split(stored.target).base == base, let storedQuery = split(stored.target).query else {
            throw refusal
        }
        var storedValues: [String: [Substring]] = [:]
        for item in storedQuery.split(separator: "&") {
            guard let equals = item.firstIndex(of: "=") else { continue }
            storedValues[name(item[..<equals]), default: []].append(item[item.index(after: equals)...])
        }
        var used: [String: Int] = [:]
        var restored: [String] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            guard let equals = item.firstIndex(of: "="), item[item.index(after: equals)...] == mask, isSecret(item[..<equals]) else {
                restored.append(String(item))
                continue
            }
            let key = name(item[..<equals])
            let index = used[key, default: 0]
            guard let values = storedValues[key], index < values.count else { throw refusal }
            used[key] = index + 1
            restored.append("\(item[..<equals])=\(values[index])")
        }
        var result = channel
        result.target = base + "?" + restored.joined(separator: "&") + (fragment.map { "#" + $0 } ?? "")
        return result
    }

    private static func name(_ raw: Substring) -> String { (String(raw).removingPercentEncoding ?? String(raw)).lowercased() }

    private static func isSecret(_ raw: Substring) -> Bool { parameters.contains(name(raw)) }

    /// The URL before `?`, the query, and the fragment.
    private static func split(_ target: String) -> (base: String, query: Substring?, fragment: Substring?) {
        var rest = Substring(target)
        var fragment: Substring?
        if let hash = rest.firstIndex(of: "#") {
            fragment = rest[rest.index(after: hash)...]
            rest = rest[..<hash]
        }
        guard let question = rest.firstIndex(of: "?") else { return (String(rest), nil, fragment) }
        return (String(rest[..<question]), rest[rest.index(after: question)...], fragment)
    }
}
