import ArgumentParser
import Crypto
import DubanConfig
import Foundation
import Messaging
import PlanFormat
import Schema
import Trust

/// `duban keys`: the key directory as its owner manages it (PROTOCOL.md section 7, docs/security.md).
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "管理密钥目录：生成、添加、撤销、列出 CURVE 证书。",
        subcommands: [Initialize.self, Add.self, Revoke.self, List.self], defaultSubcommand: List.self)

    /// The services' and ingest instances' certificate names.
    static let services = ["registry", "ingest", "cases", "notify", "broker"]
    /// Stations of the bundled configuration (Services/IndicatorIngest/Resources/stations.yaml).
    static let defaultStations = ["liuyiqiao", "chengzhong_air"]

    struct Initialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "生成一套证书：每个服务与入库实例、代理、管理员、办公室、方案中的每个责任单位、每个监测站点、只读用户、网页控制台网关。",
            discussion: """
                私钥证书 NAME.key_secret（权限 0600）与公钥证书 NAME.key 写在 DIR 中，每个准入的公钥证书写在 DIR/clients/ 中。\
                各主机只应持有自己的私钥证书；clients/ 与服务的公钥证书可公开分发。
                """)
        @Argument(help: "密钥目录。") var directory: String
        @Option(help: "入库服务实例数（ingest-1 … ingest-N，代理之后运行）。") var instances = 2
        @Option(help: "方案文件（默认：内置的城中区方案），按其中的单位生成单位证书。") var plan: String?
        @Option(help: "监测站点编号（可重复；默认内置的站点）。") var station: [String] = []

        func run() async throws {
            let directory = KeyDirectory(path: directory)
            if FileManager.default.fileExists(atPath: directory.clientsPath),
                let existing = try? FileManager.default.contentsOfDirectory(atPath: directory.clientsPath), !existing.isEmpty
            {
                throw ValidationError("\(directory.clientsPath) 已有证书；请用 duban keys add 添加，或换一个空目录")
            }
            guard let planPath = plan ?? PlanLoader.bundledPlanPath else { throw ValidationError("--plan：找不到内置方案") }
            let document: PlanDocument
            do {
                document = try PlanLoader.load(path: planPath)
            } catch {
                throw ValidationError("\(error)")
            }
            var made: [(String, [String: String])] = []
            for service in Keys.services { made.append((service, ["role": "service", "service": service])) }
            for index in 0..<max(0, instances) {
                made.append(("ingest-\(index + 1)", ["role": "service", "service": "ingest", "instance": "ingest-\(index + 1)"]))
            }
            made.append(("admin", ["role": "admin"]))
            made.append(("office", ["role": "office"]))
            var unitNumber = 0
            for unit in document.units where !["office", "collective", "group"].contains(unit.kind) && unit.aliasOf == nil {
                unitNumber += 1
                made.append((String(format: "unit-%02d", unitNumber), ["role": "unit", "unit": unit.name]))
            }
            for id in station.isEmpty ? Keys.defaultStations : station {
                made.append(("station-\(id)", ["role": "station", "stations": id]))
            }
            made.append(("reader", ["role": "reader"]))
            made.append(("gateway", ["role": "gateway"]))
            for (name, metadata) in made {
                try Keys.issue(name: name, metadata: metadata, in: directory, servicePublic: metadata["role"] == "service")
            }
            print("已在 \(directory.path) 生成 \(made.count) 份证书（私钥证书权限 0600）。")
            print(try Keys.table(directory))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "生成并准入一份新证书。")
        @Argument(help: "证书名（ASCII 字母、数字、-、_，如 unit-city）。") var name: String
        @Option(help: "角色：admin、office、unit、station、reader、service、gateway。") var role: String
        @Option(help: "单位名称（role 为 unit 时必填，与方案一致）。") var unit: String?
        @Option(help: "站点编号或名称，逗号分隔（role 为 station 时必填）。") var stations: String?
        @Option(help: "服务名（role 为 service 时必填）。") var service: String?
        @Option(help: "入库实例名（如 ingest-3）。") var instance: String?
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            guard Certificate.isValidName(name) else { throw ValidationError("证书名 \(name) 不合规：只用 ASCII 字母、数字、-、_、.") }
            var metadata = ["role": role]
            // A certificate for a name the plan does not know would never be let in: checked first,
            // and stations named as people name them (六一桥) written as their ids.
            try await options.checkUnits([("--unit", unit)])
            if let unit { metadata["unit"] = unit }
            if let stations {
                var ids: [String] = []
                for station in stations.split(separator: ",") {
                    ids.append(try await options.stationID(String(station), option: "--stations"))
                }
                metadata["stations"] = ids.joined(separator: ",")
            }
            if let service { metadata["service"] = service }
            if let instance { metadata["instance"] = instance }
            do {
                _ = try Certificate(publicKey: String(repeating: "0", count: 40), metadata: metadata).principal(name: name)
            } catch {
                throw ValidationError("\(error)")
            }
            let directory = try await Keys.directory(options)
            guard !FileManager.default.fileExists(atPath: directory.clientCertificatePath(name)) else {
                throw ValidationError("证书 \(name) 已存在于 \(directory.clientsPath)")
            }
            try Keys.issue(name: name, metadata: metadata, in: directory, servicePublic: role == "service")
            print("已生成证书 \(name)：私钥证书 \(directory.secretCertificatePath(name))（0600，交给持有人），公钥证书已放入 clients/，一秒内生效。")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "撤销一份证书：从 clients/ 移除并记入 revoked，一秒内拒绝其请求。")
        @Argument(help: "证书名。") var name: String
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let directory = try await Keys.directory(options)
            let path = directory.clientCertificatePath(name)
            let certificate: Certificate
            do {
                certificate = try Certificate.load(path: path)
            } catch {
                throw ValidationError("clients/ 中没有证书 \(name)")
            }
            try directory.appendRevoked(key: certificate.publicKey, name: name)
            try FileManager.default.removeItem(atPath: path)
            print("已撤销证书 \(name)（公钥指纹 \(Keys.fingerprint(certificate.publicKey))）。其私钥证书如仍在本机，请一并删除。")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出准入的证书：名称、角色、单位、指纹、生成时间。")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let directory = try await Keys.directory(options)
            if options.json {
                let (principals, _) = directory.loadClients()
                return try printJSON(principals.values.sorted { $0.name < $1.name })
            }
            print(try Keys.table(directory))
        }
    }

    /// The key directory the options name (`--keys`, DUBAN_KEYS_DIR, the configuration, ./var/keys).
    static func directory(_ options: GlobalOptions) async throws -> KeyDirectory {
        let deployment = try await options.deployment()
        let path =
            options.keys ?? ProcessInfo.processInfo.environment["DUBAN_KEYS_DIR"] ?? deployment.keysDirectory
            ?? ClientIdentity.localKeysDirectory
        guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("clients")) else {
            throw ValidationError("密钥目录 \(path) 不存在或没有 clients/；请先运行 duban keys init \(path)")
        }
        return KeyDirectory(path: path)
    }

    /// Writes a new key pair: the secret certificate (0600) in the directory, the public one in
    /// `clients/` and, for a service, beside its secret as the key clients pin.
    static func issue(name: String, metadata: [String: String], in directory: KeyDirectory, servicePublic: Bool) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory.clientsPath, withIntermediateDirectories: true)
        let pair = try ZMQCurve.generateKeyPair()
        var metadata = metadata
        metadata["created"] = Timestamp.now()
        let certificate = Certificate(publicKey: pair.publicKey, secretKey: pair.secretKey, metadata: metadata)
        let secretPath = directory.secretCertificatePath(name)
        guard manager.createFile(atPath: secretPath, contents: Data(certificate.secretText.utf8), attributes: [.posixPermissions: 0o600])
        else { throw ValidationError("无法写入 \(secretPath)") }
        try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretPath)
        try Data(certificate.publicText.utf8).write(to: URL(fileURLWithPath: directory.clientCertificatePath(name)))
        if servicePublic {
            try Data(certificate.publicText.utf8).write(to: URL(fileURLWithPath: directory.publicCertificatePath(name)))
        }
    }

    /// SHA-256 of the public key's 32 bytes, the first 8 as hex pairs: what people compare by eye.
    static func fingerprint(_ publicKey: String) -> String {
        let digest = SHA256.hash(data: Data(publicKey.utf8))
        return digest.prefix(8).map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    static func table(_ directory: KeyDirectory) throws -> String {
        var rows: [[String]] = []
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory.clientsPath) else { return "" }
        let revoked = directory.revokedKeys()
        for file in files.sorted() where file.hasSuffix(".key") {
            let name = String(file.dropLast(4))
            guard let certificate = try? Certificate.load(path: directory.clientCertificatePath(name)) else {
                rows.append([name, "无法读取", "", "", ""])
                continue
            }
            let role =
                certificate.metadata["role"].flatMap(Role.init(rawValue:))?.chineseName
                ?? "（无效：\(certificate.metadata["role"] ?? "缺少 role")）"
            let who =
                certificate.metadata["unit"] ?? certificate.metadata["stations"] ?? certificate.metadata["instance"]
                ?? certificate.metadata["service"] ?? ""
            rows.append([
                name, role + (revoked.contains(certificate.publicKey) ? "（已撤销）" : ""), who, fingerprint(certificate.publicKey),
                certificate.metadata["created"] ?? "",
            ])
        }
        return TextTable.render(header: ["名称", "角色", "单位/站点/服务", "指纹", "生成时间"], rows: rows)
    }
}
