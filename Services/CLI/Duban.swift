import ArgumentParser
import DubanConfig
import Foundation
import Messaging
import Schema

@main
struct Duban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban",
        abstract: "督办：城中区巩固提升生态环境保护成效三年行动的命令行工具。",
        subcommands: [
            Status.self, Ping.self, Tasks.self, TaskCommand.self, Progress.self, Dispatch.self, Escalate.self, Escalations.self, Units.self,
            PlanCommand.self, CasesCommand.self, Indicators.self, IndicatorCommand.self, Readings.self, WaterClassCommand.self,
            AirAnnual.self,
            Stations.self, Notices.self, ReportCommand.self, SilenceCommand.self, Channels.self, Events.self, Call.self, Keys.self,
            Audit.self, AcceptTask.self, ReturnTask.self, SupervisionCommand.self, ComplaintsCommand.self, CauseCommand.self,
            BackupCommand.self, RestoreCommand.self, ImplementationPlanCommand.self,
        ])

    /// Accepts the global options before the subcommand too (`duban --config /etc/duban/duban.json status`),
    /// as people type them; ArgumentParser only takes a subcommand's options after its name.
    static func main() async {
        let arguments = GlobalOptions.hoisted(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // A service's refusal quotes what it refuses: shown without its control characters.
            // Help and other clean exits keep ArgumentParser's own output.
            let code = exitCode(for: error)
            guard code != .success, !(error is ValidationError) else { exit(withError: error) }
            FileHandle.standardError.write(displayData(fullMessage(for: error) + "\n"))
            Foundation.exit(code.rawValue)
        }
    }
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "写明各服务地址的 JSON 配置文件（或 DUBAN_CONFIG）。")
    var config: String?

    @Option(
        name: .customLong("as"),
        help: "以哪个单位的名义（如 --as 区城乡建设局）：从密钥目录中选用该单位的证书（或写证书名）；有密钥目录时不写即为专项工作组办公室，无密钥时作为信封的 from。")
    var from: String?

    @Option(name: .long, help: "你的私钥证书文件（.key_secret；或环境变量 DUBAN_CERT）。")
    var cert: String?

    @Option(name: .long, help: "密钥目录（或 DUBAN_KEYS_DIR、配置项 keysDir；本地部署默认 ./var/keys）。")
    var keys: String?

    @Option(name: .long, help: "每次请求等待答复的秒数。")
    var timeout: Double = 5

    @Flag(name: .long, help: "输出 JSON 而不是表格。")
    var json = false

    /// Moves global options found before the first subcommand name to the end of the arguments.
    static func hoisted(_ arguments: [String]) -> [String] {
        let withValue: Set<String> = ["--config", "--as", "--timeout", "--cert", "--keys"]
        let flags: Set<String> = ["--json"]
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if flags.contains(argument) {
                leading.append(argument)
                index += 1
            } else if withValue.contains(name) {
                leading.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    leading.append(arguments[index + 1])
                    index += 1
                }
                index += 1
            } else {
                break
            }
        }
        return Array(arguments[index...]) + leading
    }

    func deployment() async throws -> DeploymentConfiguration {
        do {
            return try await DeploymentConfiguration.load(configFile: config)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// Runs `body` with a client of `service`, closed afterwards whatever happens.
    func withClient<T: Sendable>(for service: ServiceName, _ body: (RPCClient) async throws -> T) async throws -> T {
        let (from, curve) = try await credentials(for: service)
        return try await RPCClient.withClient(to: deployment()[service].rpc, from: from, curve: curve, body)
    }

    /// A client of `service`; the caller closes it.
    func connect(to service: ServiceName) async throws -> RPCClient {
        let (from, curve) = try await credentials(for: service)
        return try await RPCClient.connect(to: deployment()[service].rpc, from: from, curve: curve)
    }

    /// The envelope's `from` and the CURVE keys for `service`. With a certificate, the certificate
    /// says who asks: `from` is left out (`--as` may name a certificate, not a unit), except for a
    /// gateway, which names the unit it acts for.
    func credentials(for service: ServiceName) async throws -> (from: String?, curve: ZMQCurve?) {
        guard let identity = try await identity() else { return (from, nil) }
        let sender = identity.certificate.metadata["role"] == Role.gateway.rawValue ? from : nil
        return (sender, try identity.curve(for: service))
    }

    var replyTimeout: Duration { .milliseconds(Int(timeout * 1000)) }
}

/// A failed call, printed as the protocol's code, message and field.
struct CallFailed: Error, CustomStringConvertible {
    let description: String

    init(description: String) { self.description = description }

    /// A refused or unanswered call of `type`, in words for the person at the terminal.
    init(_ type: String, _ error: any Error) {
        switch error {
        case let error as ErrorBody:
            description = "\(type) 未成功：\(error.message)" + (error.field.map { "（字段 \($0)）" } ?? "") + "［\(error.code.rawValue)］"
        case let error as RPCClientError:
            description = "\(error)：服务是否在运行？启用认证的部署只答复已准入的证书（可用 duban ping、duban keys list 查看）"
        default:
            description = "\(type) 未成功：\(error)"
        }
    }
}

func perform<Body, Reply>(
    _ client: RPCClient, _ rpc: RPC<Body, Reply>, _ body: Body, as: Reply.Type = Reply.self, options: GlobalOptions, key: String? = nil
) async throws -> Reply {
    do {
        return try await client.call(rpc, body, key: key, timeout: options.replyTimeout, retries: 2)
    } catch {
        throw CallFailed(rpc.name, error)
    }
}

/// A list: every page of it, read on with `cursor` while the service says `next`.
func perform<Body, Item>(
    _ client: RPCClient, _ rpc: RPC<Body, ListReply<Item>>, _ body: Body, as: ListReply<Item>.Type = ListReply<Item>.self,
    options: GlobalOptions, key: String? = nil
) async throws -> ListReply<Item> {
    do {
        // A write answers with one list (its key must stay the same on a retry): one call, no paging.
        if rpc.kind == .write { return try await client.call(rpc, body, key: key, timeout: options.replyTimeout, retries: 2) }
        return ListReply(items: try await client.callAll(rpc, body, timeout: options.replyTimeout, retries: 2))
    } catch {
        throw CallFailed(rpc.name, error)
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "检查服务是否应答（默认全部）。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "服务：\(ServiceName.helpList)。") var services: [String] = []

    func run() async throws {
        let named = try ServiceName.resolve(services, option: "服务")
        let down = try await pingTable(named.isEmpty ? ServiceName.allCases : named, options: options)
        if down > 0 { throw ExitCode(1) }
    }
}

/// Pings `services` and prints a table (or JSON); returns how many did not answer.
func pingTable(_ services: [ServiceName], options: GlobalOptions) async throws -> Int {
    let deployment = try await options.deployment()
    var rows: [[String]] = []
    var replies: [String: PingReply] = [:]
    var down = 0
    for service in services {
        let endpoint = deployment[service].rpc
        let client = try await options.connect(to: service)
        do {
            let reply = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: options.replyTimeout, retries: 0)
            replies[service.rawValue] = reply
            let streams = reply.streams.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }.joined(separator: " ")
            rows.append([service.rawValue, endpoint, "up", reply.instance, reply.started, streams])
        } catch {
            down += 1
            rows.append([service.rawValue, endpoint, "DOWN", "", "", "\(error)"])
        }
        await client.close()
    }
    if options.json {
        try printJSON(replies)
    } else {
        print(TextTable.render(header: ["service", "rpc", "state", "instance", "started", "streams (name@head)"], rows: rows))
    }
    return down
}

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "向服务发送任意类型的请求，以 JSON 输出答复。",
        discussion: "示例：duban call notify channel.list '{}'")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "服务：\(ServiceName.helpList)。") var service: String
    @Argument(help: "请求类型，如 sys.ping。") var type: String
    @Argument(help: "请求体（JSON 对象）。") var body: String = "{}"
    @Option(name: .long, help: "幂等键（写操作不填时自动生成）。") var key: String?

    func run() async throws {
        let parsed: JSONValue
        do {
            parsed = try JSONDecoder().decode(JSONValue.self, fromUntrusted: Data(body.utf8))
        } catch {
            throw ValidationError("请求体不是有效的 JSON\(Self.whereInvalid(body))")
        }
        guard case .object = parsed else { throw ValidationError("请求体须为 JSON 对象") }
        let service = try ServiceName.named(self.service, option: "服务")
        try await options.withClient(for: service) { client in
            // Any type, even one this CLI does not know: declared by name, a write when the catalog says so
            // (then it gets an idempotency key).
            let declared = RequestCatalog.byName[type]
            let rpc = RPC<JSONValue, JSONValue>(type, declared?.kind ?? .read, allow: declared?.access ?? .readers)
            let reply = try await perform(client, rpc, parsed, options: options, key: key)
            try printJSON(reply)
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "按 JSON 行输出服务的事件：先补齐错过的，再跟随新事件。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "服务：\(ServiceName.helpList)。") var service: String
    @Option(name: .long, help: "事件主题前缀（可重复），如 registry.progress。") var topic: [String] = []
    @Flag(name: .long, help: "只看新事件，不含已存的历史。") var new = false
    @Option(name: .long, help: "收到这么多事件后停止。") var count: Int?

    func run() async throws {
        let service = try ServiceName.named(self.service, option: "服务")
        let endpoints = try await options.deployment()[service]
        let subscriber = try await EventSubscriber.start(
            events: endpoints.events, rpc: endpoints.rpc, topics: topic.isEmpty ? [""] : topic, from: new ? .now : .beginning,
            name: "duban-cli", curve: try await options.curve(for: service))
        var seen = 0
        for await event in subscriber.events {
            // Unbuffered, so that a pipe sees each event as it comes.
            FileHandle.standardOutput.write(displayData(String(decoding: try WireCoding.canonical(event), as: UTF8.self) + "\n"))
            seen += 1
            if let count, seen >= count { break }
        }
        await subscriber.stop()
    }
}

struct Channels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "通知提醒的推送渠道。", subcommands: [List.self, Set.self, Remove.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出推送渠道。")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                let reply = try await perform(client, NotifyTypes.channelList, Empty(), as: ListReply<Channel>.self, options: options)
                try show(reply.items, options: options)
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "新建或替换推送渠道。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "渠道名称。") var name: String
        @Option(help: "webhook、wecom（企业微信）、dingtalk（钉钉）或 file（文件）。") var kind: String
        @Option(help: "webhook 的地址（主机须在 notify.webhookAllow 中）；file 为 notify.fileChannelDir 下的路径。")
        var target: String
        @Option(help: "推送哪些单位的通知（可重复；不写为全部）。") var unit: [String] = []
        @Option(help: "接收方每分钟可接收的消息数。") var rate: Int?

        func run() async throws {
            let channelKind = try ChannelKind.named(kind, option: "--kind")
            try await options.checkUnits(unit.map { (option: "--unit", name: Optional($0)) })
            let channel = Channel(name: name, kind: channelKind, target: target, units: unit.isEmpty ? nil : unit, ratePerMinute: rate)
            try await options.withClient(for: .notify) { client in
                let reply = try await perform(
                    client, NotifyTypes.channelSet, ChannelSetRequest(channel: channel), as: ListReply<Channel>.self, options: options)
                try show(reply.items, options: options)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "删除推送渠道。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "渠道名称。") var name: String

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                let request = ChannelSetRequest(channel: Channel(name: name, kind: .file, target: "/"), remove: true)
                let reply = try await perform(client, NotifyTypes.channelSet, request, as: ListReply<Channel>.self, options: options)
                try show(reply.items, options: options)
            }
        }
    }

    static func show(_ channels: [Channel], options: GlobalOptions) throws {
        if options.json { return try printJSON(channels) }
        print(
            TextTable.render(
                header: ["名称 name", "kind", "target", "units"],
                rows: channels.map { [$0.name, $0.kind.rawValue, $0.target, ($0.units ?? []).joined(separator: "、")] }))
    }
}

extension Call {
    /// Where `text` stops being JSON, as a person counts: JSONDecoder does not say on Linux, and
    /// JSONSerialization says only "around character 15" (a byte offset) or "Unexpected end of file".
    static func whereInvalid(_ text: String) -> String {
        let bytes = Array(text.utf8)
        do {
            _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            return ""
        } catch {
            let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? ""
            if detail.contains("end of file") { return "（内容不完整，缺少结尾）" }
            guard let match = detail.firstMatch(of: #/character (\d+)/#), let offset = Int(match.1), offset <= bytes.count else {
                return ""
            }
            let before = bytes[..<offset]
            let line = before.filter { $0 == 0x0A }.count + 1
            let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            let column = String(decoding: bytes[lineStart..<offset], as: UTF8.self).count + 1
            return "（第 \(line) 行第 \(column) 列附近）"
        }
    }
}
