import ArgumentParser
import DubanConfig
import DubanLogging
import Foundation
import Hummingbird
import Logging
import Schema
import WebConsole

/// Options every subcommand shares: where the configuration and the data are.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "JSON 配置文件（或 DUBAN_CONFIG），与各服务相同。")
    var config: String?

    @Option(name: .long, help: "数据目录（或 DUBAN_DATA_DIR）；控制台的文件在其下的 web/ 中。")
    var dataDir: String?

    func deployment() async throws -> DeploymentConfiguration {
        do {
            var deployment = try await DeploymentConfiguration.load(configFile: config)
            if let dataDir { deployment.dataDirectory = dataDir }
            return deployment
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    func webDirectory() async throws -> String {
        let base = try await deployment().dataDirectory
        return (base as NSString).appendingPathComponent("web")
    }
}

/// `duban-web [--http HOST:PORT] …` serves the console; `duban-web users …` manages its accounts.
@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-web",
        abstract: "督办系统网页控制台：为人员提供中文网页，经 ZeroMQ 与四个服务通信。",
        subcommands: [Users.self, Kiosk.self])

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "监听地址 HOST:PORT（或 DUBAN_WEB_HTTP；默认 127.0.0.1:8080）。")
    var http: String?

    @Option(name: .long, help: "密钥目录（或 DUBAN_KEYS_DIR、配置 keysDir）：以其中的 gateway 证书调用各服务。")
    var keys: String?

    @Flag(name: .long, help: "控制台位于 TLS 反向代理之后（或 DUBAN_WEB_BEHIND_TLS=true）：Cookie 加 Secure，并发送 HSTS。")
    var behindTLS = false

    @Option(name: .long, help: "人员访问控制台的地址（或 DUBAN_WEB_BASE_URL），用于佐证材料链接。")
    var baseURL: String?

    @Flag(name: .long, help: "信任反向代理追加的 X-Forwarded-For 末项为客户端地址（或 DUBAN_WEB_TRUST_FORWARDED_FOR=true）。")
    var trustForwardedFor = false

    @Option(name: .long, help: "会话空闲多少分钟后失效（默认 30）。")
    var idleMinutes: Int = 30

    @Option(name: .long, help: "bcrypt 成本（默认 12；测试可用 4）。")
    var bcryptCost: UInt8 = 12

    @Option(name: .long, help: "实时推送心跳间隔（秒，默认 15）。")
    var heartbeatSeconds: Double = 15

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var deployment = try await common.deployment()
        if let keys { deployment.keysDirectory = keys.isEmpty ? nil : keys }
        let address = http ?? environment["DUBAN_WEB_HTTP"] ?? "127.0.0.1:8080"
        guard let (host, port) = WebSettings.parseAddress(address) else {
            throw ValidationError("--http：应为 HOST:PORT，例如 127.0.0.1:8080，收到 \(address)")
        }
        guard (4...31).contains(bcryptCost) else { throw ValidationError("--bcrypt-cost：应在 4 到 31 之间") }
        guard idleMinutes > 0, heartbeatSeconds > 0 else { throw ValidationError("--idle-minutes、--heartbeat-seconds 应大于 0") }
        var settings = WebSettings(dataDirectory: (deployment.dataDirectory as NSString).appendingPathComponent("web"))
        settings.host = host
        settings.port = port
        settings.behindTLS = behindTLS || environment["DUBAN_WEB_BEHIND_TLS"] == "true"
        settings.baseURL = baseURL ?? environment["DUBAN_WEB_BASE_URL"]
        settings.trustForwardedFor = trustForwardedFor || environment["DUBAN_WEB_TRUST_FORWARDED_FOR"] == "true"
        settings.idleTimeout = .seconds(idleMinutes * 60)
        settings.bcryptCost = bcryptCost
        settings.heartbeat = .milliseconds(Int(heartbeatSeconds * 1000))
        settings.keysDirectory = deployment.keysDirectory
        bootstrapLogging(level: deployment.logLevel, format: deployment.logFormat)
        let logger = Logger(label: "duban.web")
        let console: WebConsole
        do {
            console = try WebConsole(deployment: deployment, settings: settings, logger: logger)
        } catch let error as WebError {
            throw ValidationError(error.message)
        }
        logger.info(
            "web: listening",
            metadata: [
                "http": "\(host):\(port)", "data": "\(settings.dataDirectory)",
                "gateway": "\(settings.keysDirectory == nil ? "no keys" : "CURVE")",
            ])
        try await console.application().runService()
    }
}

struct Kiosk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "管理会议室大屏链接（免登录、只读、可撤销）。", subcommands: [Add.self, List.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "生成大屏链接，打印其路径（令牌只显示这一次）。")
        @OptionGroup var common: CommonOptions
        @Argument(help: "名称，如 一号会议室。") var label: String

        func run() async throws {
            let trimmed = label.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed.count <= 64 else { throw ValidationError("名称不能为空，且不超过 64 个字符") }
            // The screen's person has a password nobody knows: it comes in only by its link.
            let hash = try await Passwords(cost: 4).hash(AccountStore.randomToken())
            do {
                let token = try await Users.store(common).addKiosk(label: trimmed, passwordHash: hash)
                print("大屏链接 \(trimmed)：/kiosk/\(token)（加在控制台地址之后；duban-web kiosk revoke \(trimmed) 可撤销）")
            } catch let error as WebError {
                throw ValidationError(error.message)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出大屏链接。")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            for kiosk in try await Users.store(common).kiosks() {
                print("\(kiosk.label)\t\(kiosk.createdAt)\t\(kiosk.revoked ? "已撤销" : "有效")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "撤销大屏链接，并结束其会话。")
        @OptionGroup var common: CommonOptions
        @Argument var label: String

        func run() async throws {
            do {
                try await Users.store(common).revokeKiosk(label: label)
            } catch let error as WebError {
                throw ValidationError(error.message)
            }
            print("已撤销大屏链接 \(label)")
        }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "管理控制台账号（控制台自己的 SQLite 文件）。", subcommands: [Add.self, List.self, Disable.self, Passwd.self, Logins.self])

    static func store(_ common: CommonOptions) async throws -> AccountStore {
        try AccountStore(directory: try await common.webDirectory())
    }

    static func readPassword(_ file: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file), var text = String(data: data, encoding: .utf8) else {
            throw ValidationError("--password-file：无法读取 \(file)")
        }
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        if let problem = Passwords.problem(with: text) { throw ValidationError("--password-file：\(problem)") }
        return text
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "添加账号。")
        @OptionGroup var common: CommonOptions
        @Argument(help: "用户名（登录时输入）。") var name: String
        @Option(help: "所属单位，按规划的写法（办公室人员为 专项工作组办公室）。") var unit: String?
        @Option(help: "角色：office、unit、leader、screen、admin。") var role: String
        @Option(name: .long, help: "存放密码的文件（首行）。") var passwordFile: String
        @Option(name: .long, help: "bcrypt 成本（默认 12）。") var bcryptCost: UInt8 = 12

        func run() async throws {
            guard let role = WebRole(rawValue: role) else { throw ValidationError("--role：应为 office、unit、leader、screen 或 admin") }
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed.count <= 64, !trimmed.contains(where: \.isNewline) else {
                throw ValidationError("用户名不能为空，且不超过 64 个字符")
            }
            let unit = unit ?? (role.actsAsOffice || role == .leader || role == .screen ? "专项工作组办公室" : nil)
            guard let unit, !unit.isEmpty else { throw ValidationError("--unit：责任单位联络员须指定所属单位") }
            guard (4...31).contains(bcryptCost) else { throw ValidationError("--bcrypt-cost：应在 4 到 31 之间") }
            let hash = try await Passwords(cost: bcryptCost).hash(try Users.readPassword(passwordFile))
            do {
                _ = try await Users.store(common).addUser(name: trimmed, unit: unit, role: role, passwordHash: hash)
            } catch let error as WebError {
                throw ValidationError(error.message)
            }
            print("已添加账号 \(trimmed)（\(unit)，\(role.label)）")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出账号。")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let users = try await Users.store(common).users()
            if users.isEmpty { print("暂无账号") }
            for user in users {
                print(
                    "\(user.name)\t\(user.unit)\t\(user.role.rawValue)（\(user.role.label)）\t"
                        + "\(user.disabled ? "已停用" : "启用")\t\(user.createdAt)"
                )
            }
        }
    }

    struct Logins: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出最近的登录记录（成功、失败、锁定、停用）。")
        @OptionGroup var common: CommonOptions
        @Option(help: "最多列出多少条（默认 50）。") var limit: Int = 50

        func run() async throws {
            let outcomes = ["ok": "成功", "failed": "失败", "locked": "已锁定", "disabled": "已停用"]
            for record in try await Users.store(common).logins(limit: max(1, min(limit, 10_000))) {
                print(
                    "\(Timestamp.format(record.at))\t\(record.name)\t\(outcomes[record.outcome] ?? record.outcome)\t\(record.address ?? "")"
                )
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "停用账号，并结束其会话。")
        @OptionGroup var common: CommonOptions
        @Argument var name: String

        func run() async throws {
            do {
                try await Users.store(common).disable(name: name)
            } catch let error as WebError {
                throw ValidationError(error.message)
            }
            print("已停用账号 \(name)")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "设置新密码，并结束其会话。")
        @OptionGroup var common: CommonOptions
        @Argument var name: String
        @Option(name: .long, help: "存放新密码的文件（首行）。") var passwordFile: String
        @Option(name: .long, help: "bcrypt 成本（默认 12）。") var bcryptCost: UInt8 = 12

        func run() async throws {
            let hash = try await Passwords(cost: bcryptCost).hash(try Users.readPassword(passwordFile))
            do {
                try await Users.store(common).setPassword(name: name, hash: hash)
            } catch let error as WebError {
                throw ValidationError(error.message)
            }
            print("已为 \(name) 设置新密码")
        }
    }
}
