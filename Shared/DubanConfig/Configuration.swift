import Configuration
import DubanLogging
import Foundation
import Logging

/// The services of a deployment.
public enum ServiceName: String, Sendable, CaseIterable, Codable {
    case registry, ingest, cases, notify

    /// Default endpoints on one machine (PROTOCOL.md section 1).
    public var defaultEndpoints: Endpoints {
        switch self {
        case .registry: return Endpoints(rpc: "tcp://127.0.0.1:7101", events: "tcp://127.0.0.1:7102")
        case .ingest: return Endpoints(rpc: "tcp://127.0.0.1:7201", events: "tcp://127.0.0.1:7202")
        case .cases: return Endpoints(rpc: "tcp://127.0.0.1:7301", events: "tcp://127.0.0.1:7302")
        case .notify: return Endpoints(rpc: "tcp://127.0.0.1:7401", events: "tcp://127.0.0.1:7402")
        }
    }
}

/// A service's two endpoints.
public struct Endpoints: Sendable, Equatable, Codable {
    public var rpc: String
    public var events: String

    public init(rpc: String, events: String) {
        self.rpc = rpc
        self.events = events
    }
}

/// The broker's instance-facing endpoints.
public struct BrokerEndpoints: Sendable, Equatable, Codable {
    public var backend = "tcp://127.0.0.1:7211"
    public var eventsIn = "tcp://127.0.0.1:7212"
    public init() {}
}

/// Where every service of a deployment is, and where data lives: one configuration for services
/// and the CLI alike.
///
/// Precedence, highest first: a service's own `--rpc`/`--events` flags (applied by the caller),
/// the `DUBAN_*` environment variables (`DUBAN_REGISTRY_RPC`, `DUBAN_DATA_DIR`, …), the JSON
/// configuration file (`--config` or `DUBAN_CONFIG`), and the defaults of PROTOCOL.md.
public struct DeploymentConfiguration: Sendable, Equatable {
    public var endpoints: [ServiceName: Endpoints]
    /// Each service's metrics and health port, `HOST:PORT` (`registry.metrics`); absent: none.
    public var metrics: [ServiceName: String] = [:]
    public var dataDirectory: String
    public var logLevel: Logger.Level
    /// `logFormat` (`DUBAN_LOG_FORMAT`): `text` (default) or `json` for log shippers.
    public var logFormat: LogFormat = .text
    /// Largest accepted payload, bytes (PROTOCOL.md: default 16 MiB).
    public var maxPayloadBytes: Int
    /// Where the file came from, if one was read.
    public var configFile: String?
    /// How often clock-driven checks run (statuses, overdue cases, the supervision rhythm), seconds.
    public var tickSeconds: Double = 30
    /// The plan file the registry loads on its first start (default: the bundled 城中区 plan).
    public var planFile: String?
    /// Ingestion's monitoring stations (default: the bundled set, with 六一桥).
    public var stationsFile: String?
    /// Thresholds the plan leaves to configuration, by the key the plan names (`city_control_value`:
    /// the PM2.5 annual mean the city sets, µg/m³; `city_standard`: the rural sewage treatment rate, %).
    public var thresholds: [String: Double] = [:]
    /// PostgreSQL URL (`postgres://user:password@host:port/database`): ingest instances that share it scale out.
    public var databaseURL: String?
    /// Where the broker meets the instances behind it: requests (its DEALER, `broker.backend`) and
    /// events (its XSUB, `broker.eventsIn`). Clients never use these; they use `ingest.rpc`/`ingest.events`,
    /// which the broker binds in front of the instances.
    public var broker = BrokerEndpoints()
    /// The key directory (PROTOCOL.md section 7): with it every socket is a CURVE server or client;
    /// without it a service binds loopback only.
    public var keysDirectory: String?
    /// `keysDir` given but empty (in the file or `DUBAN_KEYS_DIR`): no keys at all, not even a local
    /// deployment's `./var/keys` that a client would otherwise fall back to.
    public var keysDirectoryDisabled = false
    /// Go-live (YYYY-MM-DD, `supervisionStart`): the registry's first start when unset.
    public var supervisionStart: String?
    /// The holiday calendar (`holidaysFile`, JSON as the bundled one): due dates on a day off move
    /// to the next working day. Nil: the bundled 2024–2027 calendar. Registry and notify read it.
    public var holidaysFile: String?
    /// Notify: the one directory `file` channels write into (`notify.fileChannelDir`); nil: `channels`
    /// in the data directory.
    public var notifyFileChannelDir: String?
    /// Notify: the hosts and CIDRs webhook-like channels may reach (`notify.webhookAllow`, comma-separated);
    /// nil: the WeCom and DingTalk robot hosts only.
    public var notifyWebhookAllow: [String]?
    /// Notify: the web console's address as people reach it (`notify.consoleURL`): chat messages link
    /// each notice to its page there (`<consoleURL>/notices/<id>`); nil: no links.
    public var notifyConsoleURL: String?
    /// Cases: days a complainant's contact is kept after the case ends (`cases.complaintRetentionDays`).
    public var complaintRetentionDays = 365
    /// Cases: the district SMS platform's HTTP endpoint that carries the office's reply to a
    /// complainant's phone once the case is over (`cases.complaintReplyURL`); nil: replies are
    /// recorded and shown through `complaint.status` only.
    public var complaintReplyURL: String?

    public init(
        endpoints: [ServiceName: Endpoints] = Dictionary(uniqueKeysWithValues: ServiceName.allCases.map { ($0, $0.defaultEndpoints) }),
        dataDirectory: String = "./data", logLevel: Logger.Level = .info, maxPayloadBytes: Int = 16 * 1024 * 1024, configFile: String? = nil
    ) {
        self.endpoints = endpoints
        self.dataDirectory = dataDirectory
        self.logLevel = logLevel
        self.maxPayloadBytes = maxPayloadBytes
        self.configFile = configFile
    }

    public subscript(service: ServiceName) -> Endpoints { endpoints[service] ?? service.defaultEndpoints }

    /// Thresholds the plan leaves to others (`threshold_from` in the plan file): 市控标准, 市定标准, and
    /// the national quotas of 主要污染物减排 and 碳排放强度 (`national_quota` for the target as one yes/no).
    public static let thresholdKeys = [
        "city_control_value", "city_standard", "national_quota", "national_quota_pollutant_reduction", "national_quota_carbon_intensity",
    ]

    /// Every key the configuration file may hold, dotted (`registry.rpc`). deploy/'s files are
    /// checked against this list, so a misspelt key in a unit or manifest fails a test, not a deployment.
    public static let knownKeys: [String] =
        ServiceName.allCases.flatMap { ["\($0.rawValue).rpc", "\($0.rawValue).events", "\($0.rawValue).metrics"] }
        + [
            "broker.backend", "broker.eventsIn", "dataDir", "maxPayloadBytes", "tickSeconds", "planFile", "stationsFile", "databaseURL",
            "logLevel", "logFormat", "keysDir", "supervisionStart", "holidaysFile",
        ]
        + thresholdKeys.map { "thresholds.\($0)" }
        + ["notify.fileChannelDir", "notify.webhookAllow", "notify.consoleURL", "cases.complaintRetentionDays"]
        + ["cases.complaintReplyURL"]

    /// Variables read besides the keys: where the file is, the instance mode, the notification rules,
    /// the log level, and the clock override for rehearsals and tests.
    public static let otherEnvironmentVariables: [String] = [
        "DUBAN_CONFIG", "DUBAN_BEHIND_BROKER", "DUBAN_NOTIFY_RULES_FILE", "DUBAN_NOW", "LOG_LEVEL",
    ]

    /// The environment variable that overrides a key: `DUBAN_` and the key's words in capitals joined
    /// by `_` (`broker.eventsIn` → `DUBAN_BROKER_EVENTS_IN`), as swift-configuration reads them.
    public static func environmentVariable(for key: String) -> String {
        var words: [String] = ["DUBAN"]
        for component in key.split(separator: ".") {
            var word = ""
            for character in component {
                if character.isUppercase, !word.isEmpty, !(word.last?.isUppercase ?? false) {
                    words.append(word.uppercased())
                    word = ""
                }
                word.append(character)
            }
            words.append(word.uppercased())
        }
        return words.joined(separator: "_")
    }

    /// Reads the configuration from the environment and the configuration file.
    /// - Parameters:
    ///   - configFile: a JSON file (`{"dataDir": …, "registry": {"rpc": …, "events": …}, …}`); when nil,
    ///     `DUBAN_CONFIG` names it, if set.
    ///   - environment: the environment to read (the process's by default; tests pass their own).
    public static func load(configFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) async throws
        -> DeploymentConfiguration
    {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["duban"])
        ]
        let path = configFile ?? environment["DUBAN_CONFIG"]
        if let path {
            guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError.missingFile(path) }
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: .init(path)))
            } catch {
                throw ConfigurationError.unreadableFile(path, "\(error)")
            }
        }
        let reader = ConfigReader(providers: providers)
        var result = DeploymentConfiguration(configFile: path)
        for service in ServiceName.allCases {
            let defaults = service.defaultEndpoints
            result.endpoints[service] = Endpoints(
                rpc: reader.string(forKey: ConfigKey([service.rawValue, "rpc"]), default: defaults.rpc),
                events: reader.string(forKey: ConfigKey([service.rawValue, "events"]), default: defaults.events))
            result.metrics[service] = reader.string(forKey: ConfigKey([service.rawValue, "metrics"]))
        }
        result.dataDirectory = reader.string(forKey: "dataDir", default: result.dataDirectory)
        result.maxPayloadBytes = reader.int(forKey: "maxPayloadBytes", default: result.maxPayloadBytes)
        result.tickSeconds = reader.double(forKey: "tickSeconds", default: result.tickSeconds)
        guard result.tickSeconds > 0 else { throw ConfigurationError.invalid("tickSeconds", "\(result.tickSeconds)") }
        result.planFile = reader.string(forKey: "planFile")
        result.stationsFile = reader.string(forKey: "stationsFile")
        result.databaseURL = reader.string(forKey: "databaseURL")
        // Empty means none, so that an environment can switch a file's key directory off.
        let keysDir = reader.string(forKey: "keysDir")
        result.keysDirectory = keysDir.flatMap { $0.isEmpty ? nil : $0 }
        result.keysDirectoryDisabled = keysDir?.isEmpty == true
        result.supervisionStart = reader.string(forKey: "supervisionStart").flatMap { $0.isEmpty ? nil : $0 }
        if let start = result.supervisionStart, !Self.isDate(start) {
            throw ConfigurationError.invalid("supervisionStart", start)
        }
        result.holidaysFile = reader.string(forKey: "holidaysFile").flatMap { $0.isEmpty ? nil : $0 }
        result.broker.backend = reader.string(forKey: ConfigKey(["broker", "backend"]), default: result.broker.backend)
        result.broker.eventsIn = reader.string(forKey: ConfigKey(["broker", "eventsIn"]), default: result.broker.eventsIn)
        for key in Self.thresholdKeys {
            if let value = reader.double(forKey: ConfigKey(["thresholds", key])) { result.thresholds[key] = value }
        }
        result.notifyFileChannelDir = reader.string(forKey: ConfigKey(["notify", "fileChannelDir"]))
        result.notifyConsoleURL = reader.string(forKey: ConfigKey(["notify", "consoleURL"])).flatMap { $0.isEmpty ? nil : $0 }
        if let url = result.notifyConsoleURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ConfigurationError.invalid("notify.consoleURL", url)
        }
        result.complaintRetentionDays = reader.int(
            forKey: ConfigKey(["cases", "complaintRetentionDays"]), default: result.complaintRetentionDays)
        guard (1...3650).contains(result.complaintRetentionDays) else {
            throw ConfigurationError.invalid("cases.complaintRetentionDays", "\(result.complaintRetentionDays)")
        }
        result.complaintReplyURL = reader.string(forKey: ConfigKey(["cases", "complaintReplyURL"])).flatMap { $0.isEmpty ? nil : $0 }
        if let url = result.complaintReplyURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ConfigurationError.invalid("cases.complaintReplyURL", url)
        }
        // A list in the file, or one comma-separated string (the variable's form) in either.
        let allowKey = ConfigKey(["notify", "webhookAllow"])
        if let allow = reader.stringArray(forKey: allowKey) ?? reader.string(forKey: allowKey).map({ [$0] }) {
            result.notifyWebhookAllow = allow.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        let level = environment["LOG_LEVEL"] ?? reader.string(forKey: "logLevel", default: "info")
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else { throw ConfigurationError.invalid("logLevel", level) }
        result.logLevel = parsed
        let format = reader.string(forKey: "logFormat", default: "text")
        guard let parsedFormat = LogFormat(rawValue: format.lowercased()) else { throw ConfigurationError.invalid("logFormat", format) }
        result.logFormat = parsedFormat
        return result
    }
}

extension DeploymentConfiguration {
    /// Whether `text` is a calendar date, YYYY-MM-DD.
    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let month = Int(parts[1]), let day = Int(parts[2]), Int(parts[0]) != nil
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day)
    }
}

/// A configuration that cannot be used; the message names the file or key.
public enum ConfigurationError: Error, CustomStringConvertible {
    case missingFile(String)
    case unreadableFile(String, String)
    case invalid(String, String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "configuration file \(path) does not exist"
        case .unreadableFile(let path, let why): return "configuration file \(path) cannot be read: \(why)"
        case .invalid(let key, let value): return "configuration key \(key) has an invalid value \(value)"
        }
    }
}
