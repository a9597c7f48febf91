import ArgumentParser
import DubanConfig
import DubanLogging
import Foundation
import Logging
import Messaging
import ServiceKit
import ServiceLifecycle

/// The broker in front of several ingest instances: clients keep one rpc and one events endpoint
/// however many instances run behind it (the ZeroMQ guide's broker and forwarder).
@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-broker",
        abstract: "Puts several service instances behind one rpc and one events endpoint.",
        discussion: """
            Clients connect to --frontend (requests) and --events-out (events), as they would to one instance. \
            Instances connect their rpc to --backend and their events to --events-in, with endpoints prefixed by '>':
              duban-ingest --instance ingest-1 --behind-broker --database-url postgres://…   \
            (or --rpc '>tcp://broker:7211' --events '>tcp://broker:7212')
            Requests go to instances in turn; a client's retry with the same key may reach another instance, \
            which finds the key in the shared database.
            """)

    @Option(help: "Which service's client endpoints to take from the configuration.") var service: ServiceName = .ingest
    @Option(help: "Requests from clients (ROUTER); default: the service's rpc endpoint.") var frontend: String?
    @Option(help: "Requests to instances (DEALER); default: the configuration's broker.backend.") var backend: String?
    @Option(help: "Events from instances (XSUB); default: the configuration's broker.eventsIn.") var eventsIn: String?
    @Option(help: "Events to subscribers (XPUB); default: the service's events endpoint.") var eventsOut: String?
    @Option(help: "JSON configuration file (or DUBAN_CONFIG).") var config: String?
    @Option(help: "Key directory (or DUBAN_KEYS_DIR, configuration keysDir): CURVE on all four sockets.") var keys: String?
    @Flag(help: "Without keys, bind non-loopback addresses anyway (no authentication).") var insecure = false
    @Option(help: "Log level.") var logLevel: String = "info"
    @Option(help: "Log lines as text or json (default: the configuration's logFormat, or text).") var logFormat: String?

    func run() async throws {
        let deployment = try await DeploymentConfiguration.load(configFile: config)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        guard let format = logFormat.map({ LogFormat(rawValue: $0.lowercased()) }) ?? deployment.logFormat else {
            throw ValidationError("--log-format: text or json")
        }
        bootstrapLogging(level: level, format: format)
        let logger = Logger(label: "duban.broker")
        let broker = try await Broker.start(
            endpoints: Broker.Endpoints(
                frontend: frontend ?? deployment[service].rpc, backend: backend ?? deployment.broker.backend,
                eventsIn: eventsIn ?? deployment.broker.eventsIn, eventsOut: eventsOut ?? deployment[service].events),
            keys: (keys ?? deployment.keysDirectory).map(KeyDirectory.init(path:)), insecure: insecure, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: broker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}
