import AsyncHTTPClient
import Foundation
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization

/// What a channel may reach: files inside one directory, webhooks on the allow-list. Checked at
/// `channel.set` and again at every delivery (configuration, DNS and the file system change).
struct ChannelPolicy: Sendable {
    let files: FileChannelDirectory
    let webhooks: WebhookAllowList
    /// The web console's address, for links from chat messages to each notice.
    var consoleURL: String?

    /// How long `channel.set` waits for a host name to resolve (it runs in the write lane).
    static let setResolveTimeout: Duration = .seconds(2)

    init(files: FileChannelDirectory, webhooks: WebhookAllowList) {
        self.files = files
        self.webhooks = webhooks
    }

    /// From the deployment: `notify.fileChannelDir` (default `channels` in the data directory) and
    /// `notify.webhookAllow` (default the WeCom and DingTalk robot hosts).
    init(deployment: DeploymentConfiguration) throws {
        let directory =
            deployment.notifyFileChannelDir.flatMap { $0.isEmpty ? nil : $0 }
            ?? (deployment.dataDirectory as NSString).appendingPathComponent("channels")
        files = FileChannelDirectory(path: (directory as NSString).standardizingPath)
        webhooks = try WebhookAllowList(deployment.notifyWebhookAllow ?? WebhookAllowList.defaultEntries)
        consoleURL = deployment.notifyConsoleURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// Refuses a channel that could never deliver, or could deliver where it must not.
    func validate(_ channel: Channel) async throws {
        guard !channel.name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ErrorBody.invalidArgument("渠道须有名称（name）", field: "body.channel.name")
        }
        if let rate = channel.ratePerMinute, rate < 1 {
            throw ErrorBody.invalidArgument("rate_per_minute 至少为 1", field: "body.channel.rate_per_minute")
        }
        let field = "body.channel.target"
        switch channel.kind {
        case .webhook, .wecom, .dingtalk:
            guard let target = WebhookTarget(channel.target) else {
                throw ErrorBody.invalidArgument("\(channel.kind.rawValue) 渠道的 target \(WebhookRefusal.notHTTP.message)", field: field)
            }
            do throws(WebhookRefusal) {
                try webhooks.check(target)
                // A name that resolves now must resolve to addresses it may reach; one that does not
                // resolve yet is taken, and checked at every delivery.
                if target.address == nil,
                    case .success(let addresses) = await HostResolver.resolve(target.host, timeout: Self.setResolveTimeout)
                {
                    try webhooks.check(target, addresses: addresses)
                }
            } catch {
                throw ErrorBody.invalidArgument("\(channel.kind.rawValue) 渠道的 target 不可用：\(error.message)", field: field)
            }
        case .file:
            do throws(FileChannelDirectory.Refusal) {
                try files.validate(channel.target)
            } catch {
                switch error {
                case .directoryUnavailable: throw ErrorBody.unavailable("文件渠道目录（notify.fileChannelDir）不可用，请管理员检查")
                case .notRegularFile:
                    throw ErrorBody.invalidArgument("file 渠道的 target 应指向普通文件（不能是目录或设备）", field: field)
                default: throw ErrorBody.invalidArgument(FileChannelDirectory.rule, field: field)
                }
            }
        }
    }
}

/// The HTTP client webhook deliveries go through: Duban's own, never `HTTPClient.shared`, and one that
/// follows no redirect (a receiver's 3xx is a failed delivery, so an allowed host cannot bounce a
/// delivery, and the key in its URL, to a host that is not). Made when the service group runs it,
/// shut down when the group stops it: a service that fails to start never has one to leak.
final class WebhookClient: Service, Sendable {
    private let client = Mutex<HTTPClient?>(nil)

    static var configuration: HTTPClient.Configuration {
        HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
    }

    init() {}

    /// The client, while the service runs.
    var current: HTTPClient? { client.withLock { $0 } }

    /// Makes the client (tests call this and `stop()` themselves).
    func start() {
        client.withLock { if $0 == nil { $0 = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.configuration) } }
    }

    /// Shuts the client down; requests in flight fail.
    func stop() async throws {
        guard
            let running = client.withLock({ current in
                defer { current = nil }
                return current
            })
        else { return }
        try await running.shutdown()
    }

    func run() async throws {
        start()
        try? await gracefulShutdown()
        try await stop()
    }
}
