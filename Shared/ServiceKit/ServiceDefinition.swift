import ArgumentParser
import DubanConfig
import DubanLogging
import Foundation
import GRDB
import Logging
import Schema
import ServiceLifecycle

/// What a service needs to build itself.
public struct ServiceContext: Sendable {
    public let identity: ServerIdentity
    public let deployment: DeploymentConfiguration
    public let settings: ServiceSettings
    public let storage: any EventStorage
    public let clock: ServiceClock
    public let logger: Logger
    /// The service's metrics (served only with `--metrics`): a service adds its own counters and gauges.
    public let metrics: ServiceMetrics

    /// The SQLite store (every service's default storage).
    public var store: ServiceStore {
        get throws {
            guard let store = storage as? ServiceStore else { throw ErrorBody.internal("this service's storage is not SQLite") }
            return store
        }
    }
}

/// One Duban service: its storage, its handlers, and any background work.
public protocol DubanService: Sendable {
    static var name: ServiceName { get }
    /// Topics it publishes (for `sys.types`).
    static var topics: [String] { get }
    /// The service's own tables.
    static func migrations(_ migrator: inout DatabaseMigrator)
    /// Opens the service's storage: SQLite under the data directory unless the service says otherwise.
    static func openStorage(settings: ServiceSettings, logger: Logger) async throws -> any EventStorage

    init(context: ServiceContext) async throws
    /// Registers the service's request types.
    func register(_ handlers: inout HandlerTable)
    /// Background work run beside the rpc loop (schedulers, subscribers).
    func backgroundServices() -> [any Service]
}

extension DubanService {
    public static func migrations(_ migrator: inout DatabaseMigrator) {}
    public static func openStorage(settings: ServiceSettings, logger: Logger) async throws -> any EventStorage {
        try ServiceStore(path: settings.databasePath, stream: settings.instance, origin: name.rawValue, migrations: migrations)
    }
    public func backgroundServices() -> [any Service] { [] }
}

/// Settings for one service process.
public struct ServiceSettings: Sendable {
    public var deployment: DeploymentConfiguration
    /// This process's endpoints (defaults to the deployment's entry for the service).
    public var endpoints: Endpoints
    public var instance: String
    public var clock: ServiceClock
    /// Bind beyond loopback without keys (`--insecure`): logged as a warning.
    public var insecure: Bool
    /// `HOST:PORT` of the metrics and health port (`--metrics`, configuration `<service>.metrics`); nil: none.
    public var metrics: String?

    public init(
        deployment: DeploymentConfiguration, endpoints: Endpoints, instance: String, clock: ServiceClock = ServiceClock(),
        insecure: Bool = false, metrics: String? = nil
    ) {
        self.metrics = metrics
        self.deployment = deployment
        self.endpoints = endpoints
        self.instance = instance
        self.clock = clock
        self.insecure = insecure
    }

    /// The certificate this process holds: its instance's (`ingest-2`) when the key directory has
    /// one, else its service's (`ingest`).
    public func certificateName(for service: ServiceName) -> String {
        guard let keys = deployment.keysDirectory else { return instance }
        let directory = KeyDirectory(path: keys)
        return FileManager.default.fileExists(atPath: directory.secretCertificatePath(instance)) ? instance : service.rawValue
    }

    /// The database file of `instance` under the data directory.
    public var databasePath: String {
        (deployment.dataDirectory as NSString).appendingPathComponent("\(instance).sqlite")
    }
}

/// A built service: run `group`; `server` tells where it listens.
public struct BuiltService: Sendable {
    public let group: ServiceGroup
    public let server: RPCServer
    /// The metrics and health port, when one was asked for.
    public let metricsServer: MetricsServer?
}

/// Builds a service from its settings: storage, then sockets (bound before this returns, so a
/// port in use fails here), then handlers, in a `ServiceGroup` that shuts down gracefully on
/// SIGTERM and SIGINT.
public func buildService<S: DubanService>(_ type: S.Type, settings: ServiceSettings, logger: Logger, signals: Bool = true) async throws
    -> BuiltService
{
    var logger = logger
    logger[metadataKey: "service.instance"] = "\(settings.instance)"
    // Fail closed: without keys, loopback only (PROTOCOL.md section 7); checked before anything opens.
    try BindPolicy.check(
        [settings.endpoints.rpc, settings.endpoints.events] + (settings.metrics.map { ["tcp://\($0)"] } ?? []),
        hasKeys: settings.deployment.keysDirectory != nil,
        insecure: settings.insecure, logger: logger)
    let security = try settings.deployment.keysDirectory.map { keys in
        try ServerSecurity(
            directory: KeyDirectory(path: keys), certificateName: settings.certificateName(for: S.name),
            behindBroker: settings.endpoints.rpc.hasPrefix(">"), logger: logger)
    }
    let identity = ServerIdentity(service: S.name, instance: settings.instance)
    let store = try await S.openStorage(settings: settings, logger: logger)
    let metrics = ServiceMetrics()
    let context = ServiceContext(
        identity: identity, deployment: settings.deployment, settings: settings, storage: store, clock: settings.clock, logger: logger,
        metrics: metrics)
    let service = try await S(context: context)
    var handlers = HandlerTable()
    service.register(&handlers)
    let server: RPCServer
    do {
        server = try await RPCServer.bind(
            identity: identity, endpoints: settings.endpoints, store: store, handlers: handlers, topics: S.topics,
            maxPayloadBytes: settings.deployment.maxPayloadBytes, clock: settings.clock, logger: logger, security: security,
            metrics: metrics)
    } catch {
        // The service's peer clients (a loop and its thread each) close in their `run`, which will not be called now.
        for case let peers as PeerClients in service.backgroundServices() { await peers.close() }
        throw error
    }
    // Each stream's head (the seq of its last event: events published) at every scrape.
    metrics.onScrape { metrics in
        if let keys = try? await store.keysHeld() {
            metrics.gauge("duban_idempotency_keys", help: "Idempotency keys held (kept 48 hours).").set(Int64(keys))
        }
        guard let heads = try? await store.heads() else { return }
        for (stream, head) in heads {
            metrics.gauge("duban_stream_head", help: "Seq of each stream's last event (events published).", labels: [("stream", stream)])
                .set(Int64(head))
        }
    }
    // Ready when its own store answers; a peer that is down does not make a service unready
    // (each keeps working without its peers), so it is not asked here.
    var metricsServer: MetricsServer?
    if let address = settings.metrics {
        metricsServer = try await MetricsServer.bind(
            address, metrics: metrics,
            ready: {
                do {
                    _ = try await store.heads()
                    return nil
                } catch {
                    return "存储无应答：\(error)"
                }
            }, logger: logger)
    }
    // A group stops its services in reverse order: the server first (no request runs after the
    // storage pools and peer clients it uses have closed), then the background work.
    // systemd (`Type=notify`): READY=1 once the sockets above are bound, then the watchdog.
    let notifier: [any Service] = signals ? (SystemdNotifier.fromEnvironment(logger: logger).map { [$0] } ?? []) : []
    let services: [any Service] = notifier + service.backgroundServices() + (metricsServer.map { [$0] } ?? []) + [server]
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
            logger: logger))
    return BuiltService(group: group, server: server, metricsServer: metricsServer)
}

/// The options every service executable takes.
public struct ServiceOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "JSON configuration file naming every service's endpoints (or DUBAN_CONFIG).")
    public var config: String?

    @Option(name: .long, help: "Where the service keeps its files (or DUBAN_DATA_DIR).")
    public var dataDir: String?

    @Option(name: .long, help: "This service's rpc endpoint, overriding the configuration.")
    public var rpc: String?

    @Option(name: .long, help: "This service's events endpoint, overriding the configuration.")
    public var events: String?

    @Flag(
        name: .long,
        help: """
            Run as one of several instances behind duban-broker: \
            connect to the configuration's broker.backend and broker.eventsIn instead of binding.
            """
    )
    public var behindBroker = false

    @Option(name: .long, help: "Instance name, also the event stream's name (default: the service's name).")
    public var instance: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (or LOG_LEVEL).")
    public var logLevel: String?

    @Option(name: .long, help: "Registry: the plan file loaded on first start (or DUBAN_PLAN_FILE; default: the bundled 城中区 plan).")
    public var plan: String?

    @Option(name: .long, help: "Ingest: PostgreSQL URL shared by several instances (or DUBAN_DATABASE_URL); SQLite when absent.")
    public var databaseURL: String?

    @Option(
        name: .long,
        help: "Key directory (or DUBAN_KEYS_DIR, configuration keysDir): CURVE on every socket, only keys in its clients/ admitted.")
    public var keys: String?

    @Flag(name: .long, help: "Without keys, bind non-loopback addresses anyway (no authentication: anyone may act as any unit).")
    public var insecure = false

    @Option(
        name: .long,
        help: "Instead of serving: copy this service's data, consistently while it runs, into DIR and exit.")
    public var backupTo: String?

    @Option(
        name: .long,
        help: "Instead of serving: restore this service's data from a --backup-to DIR into a fresh data directory and exit.")
    public var restoreFrom: String?

    @Option(name: .long, help: "Log lines as text (default) or json (one object per line; or DUBAN_LOG_FORMAT, configuration logFormat).")
    public var logFormat: String?

    @Option(
        name: .long,
        help: "HOST:PORT for /metrics, /healthz and /readyz over HTTP (configuration <service>.metrics); off when absent.")
    public var metrics: String?

    public init() {}

    /// Resolves flags over environment over file over defaults.
    public func settings(for service: ServiceName, environment: [String: String] = ProcessInfo.processInfo.environment) async throws
        -> ServiceSettings
    {
        var deployment = try await DeploymentConfiguration.load(configFile: config, environment: environment)
        if let dataDir { deployment.dataDirectory = dataDir }
        if let plan { deployment.planFile = plan }
        if let databaseURL { deployment.databaseURL = databaseURL }
        if let keys { deployment.keysDirectory = keys }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                throw ValidationError("--log-level: unknown level \(logLevel)")
            }
            deployment.logLevel = level
        }
        if let logFormat {
            guard let format = LogFormat(rawValue: logFormat.lowercased()) else {
                throw ValidationError("--log-format: text or json, not \(logFormat)")
            }
            deployment.logFormat = format
        }
        var endpoints = deployment[service]
        if behindBroker || environment["DUBAN_BEHIND_BROKER"] == "true" {
            endpoints = Endpoints(rpc: ">" + deployment.broker.backend, events: ">" + deployment.broker.eventsIn)
        }
        if let rpc { endpoints.rpc = rpc }
        if let events { endpoints.events = events }
        if let instance, instance.isEmpty || instance.contains("/") {
            throw ValidationError("--instance: must be a non-empty name without '/'")
        }
        return ServiceSettings(
            deployment: deployment, endpoints: endpoints, instance: instance ?? service.rawValue,
            clock: try ServiceClock.fromEnvironment(environment), insecure: insecure,
            metrics: metrics ?? deployment.metrics[service])
    }
}

/// Runs a service executable: logging, settings, build, serve until SIGTERM/SIGINT.
public func runServiceMain<S: DubanService>(_ type: S.Type, options: ServiceOptions) async throws {
    let settings: ServiceSettings
    do {
        settings = try await options.settings(for: S.name)
    } catch let error as ConfigurationError {
        throw ValidationError(error.description)
    }
    bootstrapLogging(level: settings.deployment.logLevel, format: settings.deployment.logFormat)
    if options.backupTo != nil || options.restoreFrom != nil {
        try copyData(S.self, settings: settings, backupTo: options.backupTo, restoreFrom: options.restoreFrom)
        return
    }
    let logger = Logger(label: "duban.\(S.name.rawValue)")
    let built = try await buildService(S.self, settings: settings, logger: logger)
    try await built.group.run()
}

/// `--backup-to` and `--restore-from`: the data of this service (its instance's SQLite file, or
/// ingest's PostgreSQL database), printed as the manifest's JSON for scripts.
func copyData<S: DubanService>(_ type: S.Type, settings: ServiceSettings, backupTo: String?, restoreFrom: String?) throws {
    let name = settings.instance
    let postgres = S.name == .ingest ? settings.deployment.databaseURL.flatMap { $0.isEmpty ? nil : $0 } : nil
    let manifest: DataBackup.Manifest
    do {
        switch (backupTo, restoreFrom, postgres) {
        case (let directory?, nil, let url?): manifest = try DataBackup.dumpPostgres(url: url, service: name, into: directory)
        case (let directory?, nil, nil): manifest = try DataBackup.backup(database: settings.databasePath, service: name, into: directory)
        case (nil, let directory?, let url?): manifest = try DataBackup.restorePostgres(url: url, service: name, from: directory)
        case (nil, let directory?, nil):
            manifest = try DataBackup.restore(service: name, from: directory, to: settings.databasePath)
        default: throw ValidationError("--backup-to 与 --restore-from 只能选一个")
        }
    } catch let failure as DataBackup.Failure {
        throw ValidationError(failure.description)
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(manifest) + Data("\n".utf8))
}

extension ServiceName: ExpressibleByArgument {}
