import Foundation
import Logging
import Messaging
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Helpers for tests that run real services on real sockets.
public enum TestSupport {
    /// A fresh temporary directory.
    public static func temporaryDirectory(_ prefix: String = "duban-test") throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A TCP port on 127.0.0.1 that nothing is bound to right now, and that no recent call in this
    /// process returned.
    ///
    /// The ports come from below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999
    /// by default), not from `bind(0)`, which draws from that range: the ports outgoing connections
    /// take as their local end. A service under test reconnects to its closed peers every 100 ms,
    /// so such a port could be held by a connection attempt when the service binds it, or connect
    /// to itself. From 20000 up, clear of the deployment's defaults (7101-7402, the web console's
    /// 8080, the metrics examples' 91xx).
    public static func freePort() -> Int {
        handedOutPorts.withLock { handedOut in
            // A long benchmark may ask for more ports than the range holds: then earlier ones,
            // long since closed, may come again (still only if nothing is bound to them).
            if handedOut.count > testPorts.count * 3 / 4 { handedOut.removeAll() }
            for _ in 0..<testPorts.count {
                let port = Int.random(in: testPorts)
                if handedOut.insert(port).inserted, canBind(port) { return port }
            }
            // Nothing bindable there (no descriptors left?): the kernel's choice, rather than a hang.
            return kernelChosenPort()
        }
    }

    private static let handedOutPorts = Mutex<Set<Int>>([])

    /// 20000 up to the ephemeral range; above it when a machine starts that range low.
    static let testPorts: ClosedRange<Int> = {
        let bounds =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .map { $0.split(whereSeparator: \.isWhitespace).compactMap { Int($0) } } ?? []
        let (low, high) = bounds.count == 2 ? (bounds[0], bounds[1]) : (32768, 60999)
        if low - 1 - 20000 >= 4000 { return 20000...(low - 1) }
        if 65535 - (high + 1) >= 4000 { return (high + 1)...65535 }
        return 20000...32767
    }()

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }

    private static func kernelChosenPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Two fresh loopback endpoints.
    public static func freeEndpoints() -> Endpoints {
        Endpoints(rpc: "tcp://127.0.0.1:\(freePort())", events: "tcp://127.0.0.1:\(freePort())")
    }

    /// Points every service's endpoints and the broker's at closed ports of this test's own, so
    /// that nothing a test starts can reach a live deployment on the default ports (a test gives
    /// the peers it does start afterwards).
    public static func isolate(_ deployment: inout DeploymentConfiguration) {
        for service in ServiceName.allCases { deployment.endpoints[service] = freeEndpoints() }
        deployment.broker.backend = "tcp://127.0.0.1:\(freePort())"
        deployment.broker.eventsIn = "tcp://127.0.0.1:\(freePort())"
    }

    /// The same for a process: every `DUBAN_*` endpoint variable at a closed port.
    public static func isolatedEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        for service in ServiceName.allCases {
            let name = service.rawValue.uppercased()
            environment["DUBAN_\(name)_RPC"] = "tcp://127.0.0.1:\(freePort())"
            environment["DUBAN_\(name)_EVENTS"] = "tcp://127.0.0.1:\(freePort())"
        }
        environment["DUBAN_BROKER_BACKEND"] = "tcp://127.0.0.1:\(freePort())"
        environment["DUBAN_BROKER_EVENTS_IN"] = "tcp://127.0.0.1:\(freePort())"
        return environment
    }

    /// Where the package's executables were built.
    public static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["DUBAN_BIN_DIR"] { return dir }
        // The test bundle lives beside the executables in .build/<triple>/<config>/.
        var url = Bundle.main.bundleURL
        while url.pathComponents.count > 1 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("duban-registry").path) { return url.path }
            url.deleteLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().path
    }

    /// Runs a command and returns what it printed. It uses posix_spawn and waitpid rather than
    /// Foundation's Process, which was seen here never to reap `runuser` once `pg_ctl start` had left
    /// a server running (and `waitUntilExit` to hang on children that had exited); output goes
    /// through a file, since that server keeps inherited descriptors open.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let outputPath = (NSTemporaryDirectory() as NSString).appendingPathComponent("duban-cmd-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw TestFailure("cannot run \(executable): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw TestFailure(
                "\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }

    /// Polls `condition` until it holds or `timeout` passes.
    public static func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }
}

/// A service running in this process on free ports, stopped with `stop()`.
public final class InProcessService: Sendable {
    public let endpoints: Endpoints
    public let dataDirectory: String
    public let clock: ServiceClock
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    /// Builds and starts service `S` with its data in `dataDirectory`.
    public static func start<S: DubanService>(
        _ type: S.Type, dataDirectory: String, endpoints: Endpoints? = nil, clock: ServiceClock = ServiceClock(),
        maxPayloadBytes: Int? = nil,
        tickSeconds: Double? = nil, planFile: String? = nil, configure: (inout DeploymentConfiguration) -> Void = { _ in }
    ) async throws -> InProcessService {
        var deployment = DeploymentConfiguration(dataDirectory: dataDirectory, logLevel: .warning)
        if let maxPayloadBytes { deployment.maxPayloadBytes = maxPayloadBytes }
        if let tickSeconds { deployment.tickSeconds = tickSeconds }
        if let planFile { deployment.planFile = planFile }
        TestSupport.isolate(&deployment)
        configure(&deployment)
        let endpoints = endpoints ?? Endpoints(rpc: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*")
        let settings = ServiceSettings(deployment: deployment, endpoints: endpoints, instance: S.name.rawValue, clock: clock)
        var logger = Logger(label: "test.\(S.name.rawValue)")
        logger.logLevel = .warning
        let built = try await buildService(S.self, settings: settings, logger: logger, signals: false)
        let group = built.group
        let runner = Task { try await group.run() }
        return InProcessService(endpoints: built.server.endpoints, dataDirectory: dataDirectory, clock: clock, group: group, runner: runner)
    }

    private init(endpoints: Endpoints, dataDirectory: String, clock: ServiceClock, group: ServiceGroup, runner: Task<Void, any Error>) {
        self.endpoints = endpoints
        self.dataDirectory = dataDirectory
        self.clock = clock
        self.group = group
        self.runner = runner
    }

    /// Shuts the service down gracefully and waits for it.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await runner.value
    }
}

/// A service executable running as a child process.
public final class ServiceProcess: @unchecked Sendable {
    // @unchecked: used from the test's task only.
    public let process: Process
    public let endpoints: Endpoints
    public let logPath: String

    /// Starts `executable` (e.g. `duban-notify`) with `arguments`, and waits until it answers `sys.ping`.
    /// - Parameter pingAt: where to ask `sys.ping` (a broker's frontend), when not at `endpoints.rpc`.
    public static func start(
        _ executable: String, arguments: [String], endpoints: Endpoints, environment: [String: String] = [:], waitForPing: Bool = true,
        pingAt: String? = nil, passEndpoints: Bool = true, namespace: String? = nil, curve: ZMQCurve? = nil
    ) async throws -> ServiceProcess {
        let process = Process()
        let path = executable.hasPrefix("/") ? executable : (TestSupport.binDirectory as NSString).appendingPathComponent(executable)
        let serviceArguments = arguments + (passEndpoints ? ["--rpc", endpoints.rpc, "--events", endpoints.events] : [])
        if let namespace {
            // `ip netns exec` enters the namespace and execs the program: same pid, so signals reach it.
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, path] + serviceArguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = serviceArguments
        }
        // Nothing inherited from the environment the suite runs in (a deployment's configuration file
        // or endpoints): the test says everything the process needs.
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DUBAN_") || $0.key == "DUBAN_BIN_DIR" }
        // A test that writes a configuration file names every endpoint in it (the environment would
        // override the file); otherwise every peer is at a closed port of the test's own.
        if !arguments.contains("--config") {
            for (key, value) in TestSupport.isolatedEnvironment() { env[key] = value }
        }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let logPath = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "\((executable as NSString).lastPathComponent)-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let started = ServiceProcess(
            process: process, endpoints: pingAt.map { Endpoints(rpc: $0, events: endpoints.events) } ?? endpoints, logPath: logPath,
            curve: curve)
        if waitForPing {
            guard try await started.waitUntilAnswering() else {
                started.kill()
                throw TestFailure("\(executable) did not answer sys.ping; log:\n\(started.log)")
            }
        }
        return started
    }

    /// The keys `waitUntilAnswering` pings with, for a service started with a key directory.
    public let curve: ZMQCurve?

    private init(process: Process, endpoints: Endpoints, logPath: String, curve: ZMQCurve?) {
        self.curve = curve
        self.process = process
        self.endpoints = endpoints
        self.logPath = logPath
    }

    /// Waits until the process answers `sys.ping` (or exits).
    public func waitUntilAnswering(timeout: Duration = .seconds(20)) async throws -> Bool {
        let process = self.process
        return try await RPCClient.withClient(to: endpoints.rpc, from: curve == nil ? "test" : nil, curve: curve) { client in
            await TestSupport.eventually(timeout: timeout) {
                guard process.isRunning else { return true }
                return (try? await client.call(SystemTypes.ping, Empty(), timeout: .milliseconds(300), retries: 0)) != nil
            } && process.isRunning
        }
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: no chance to clean up. Waits at most a few seconds for the process to be gone.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        Self.reap(process, timeout: 5)
    }

    /// Waits (bounded) until `process` has exited. Foundation's `waitUntilExit` was seen here never
    /// to return for a child that had exited (left a zombie); a blocked cooperative thread then stalls
    /// every test on a 2-core machine, so this polls and reaps with `waitpid` itself.
    @discardableResult
    public static func reap(_ process: Process, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            var status: Int32 = 0
            let result = waitpid(process.processIdentifier, &status, WNOHANG)
            if result == process.processIdentifier || (result == -1 && errno == ECHILD) || !process.isRunning { return true }
            if Date() >= deadline { return false }
            usleep(10_000)
        } while true
    }

    /// Waits until the process exits by itself (bounded); true if it did.
    public func waitForExit(timeout: Duration = .seconds(20)) async -> Bool {
        await TestSupport.eventually(timeout: timeout) {
            var status: Int32 = 0
            let result = waitpid(process.processIdentifier, &status, WNOHANG)
            if result == process.processIdentifier {
                exitStatus = (status >> 8) & 0xff
                return true
            }
            return !process.isRunning
        }
    }

    /// The exit status, once `waitForExit` has seen the process end.
    public var exitStatus: Int32?

    public var terminationStatus: Int32 { exitStatus ?? (process.isRunning ? -1 : process.terminationStatus) }

    /// SIGTERM, then waits for exit; returns the exit status, or nil if it had to be killed.
    public func terminate(timeout: Duration = .seconds(10)) async -> Int32? {
        guard process.isRunning else { return terminationStatus }
        Glibc.kill(process.processIdentifier, SIGTERM)
        if !(await waitForExit(timeout: timeout)) {
            kill()
            return nil
        }
        return terminationStatus
    }

    deinit { kill() }
}

/// A failure a helper reports with its reason.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The error a request is refused with; a `TestFailure` if it was accepted.
public func refusal<Body: Encodable & Sendable>(_ client: RPCClient, _ type: String, _ body: Body) async throws -> ErrorBody {
    do {
        _ = try await client.call(type, body, as: JSONValue.self)
    } catch let error as ErrorBody {
        return error
    }
    throw TestFailure("\(type) was accepted")
}

/// The same, for a declared request type.
public func refusal<Body, Reply>(_ client: RPCClient, _ rpc: RPC<Body, Reply>, _ body: Body) async throws -> ErrorBody {
    try await refusal(client, rpc.name, body)
}
