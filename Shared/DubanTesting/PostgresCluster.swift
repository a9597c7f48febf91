import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL cluster for one test: initdb in a temporary directory, a free port on
/// 127.0.0.1, trust authentication, a `duban` database; `stop()` removes it all.
public final class PostgresCluster: @unchecked Sendable {
    // @unchecked: immutable after start.
    public let port: Int
    public let directory: String
    public let binaries: String
    /// The address it listens on (127.0.0.1, or a network namespace's address).
    public let host: String
    /// The network namespace it runs in, if any.
    public let namespace: String?
    /// `postgres://duban@HOST:PORT/duban`
    public var url: String { "postgres://duban@\(host):\(port)/duban" }

    /// Debian's server binaries (`apt-get install postgresql`), newest version first.
    public static var binaryDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        return versions.map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    /// - Parameters:
    ///   - host: the address to listen on; other addresses than loopback are trusted too (a test network).
    ///   - namespace: a network namespace (`ip netns`) to run the server in.
    public static func start(host: String = "127.0.0.1", namespace: String? = nil) throws -> PostgresCluster {
        guard let binaries = binaryDirectory else {
            throw TestFailure("PostgreSQL is not installed (apt-get install -y postgresql); scripts/setup.sh installs it")
        }
        let directory = try TestSupport.temporaryDirectory("duban-pg")
        let port = TestSupport.freePort()
        // initdb refuses to run as root: the cluster belongs to the postgres user then.
        let asRoot = getuid() == 0
        if asRoot { try TestSupport.run("/bin/chown", ["-R", "postgres:postgres", directory]) }
        func pg(_ tool: String, _ arguments: [String]) throws {
            let command =
                asRoot
                ? ["/usr/sbin/runuser", "-u", "postgres", "--", "\(binaries)/\(tool)"] + arguments : ["\(binaries)/\(tool)"] + arguments
            let wrapped = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + command } ?? command
            try TestSupport.run(wrapped[0], Array(wrapped.dropFirst()))
        }
        try pg("initdb", ["-D", "\(directory)/data", "-U", "duban", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        if host != "127.0.0.1" {
            let hba = "\(directory)/data/pg_hba.conf"
            let rules = (try String(contentsOfFile: hba, encoding: .utf8)) + "\nhost all all 0.0.0.0/0 trust\n"
            try rules.write(toFile: hba, atomically: true, encoding: .utf8)
        }
        try pg(
            "pg_ctl",
            [
                "-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60",
                "-o", "-p \(port) -k \(directory) -c listen_addresses=\(host) -c max_connections=100", "start",
            ])
        let cluster = PostgresCluster(port: port, directory: directory, binaries: binaries, host: host, namespace: namespace)
        try cluster.psql("CREATE DATABASE duban", database: "postgres")
        return cluster
    }

    private init(port: Int, directory: String, binaries: String, host: String, namespace: String?) {
        self.host = host
        self.namespace = namespace
        self.port = port
        self.directory = directory
        self.binaries = binaries
    }

    /// Runs SQL and returns psql's unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, database: String = "duban") throws -> String {
        let command = [
            "\(binaries)/psql", "-h", host, "-p", "\(port)", "-U", "duban", "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        ]
        let wrapped = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + command } ?? command
        return try TestSupport.run(wrapped[0], Array(wrapped.dropFirst())).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server (fast shutdown: open connections are cut) and keeps its data, to `resume()` later.
    public func pause() throws {
        try pgControl(["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
    }

    /// Starts a paused server again on the same port.
    public func resume() throws {
        try pgControl([
            "-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60",
            "-o", "-p \(port) -k \(directory) -c listen_addresses=\(host) -c max_connections=100", "start",
        ])
    }

    private func pgControl(_ arguments: [String]) throws {
        let command =
            getuid() == 0
            ? ["/usr/sbin/runuser", "-u", "postgres", "--", "\(binaries)/pg_ctl"] + arguments : ["\(binaries)/pg_ctl"] + arguments
        let wrapped = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + command } ?? command
        try TestSupport.run(wrapped[0], Array(wrapped.dropFirst()))
    }

    public func stop() {
        let asRoot = getuid() == 0
        let arguments = ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"]
        // pg_ctl stops the server by its pid file and a signal: no need to enter the namespace.
        if asRoot {
            _ = try? TestSupport.run("/usr/sbin/runuser", ["-u", "postgres", "--", "\(binaries)/pg_ctl"] + arguments)
        } else {
            _ = try? TestSupport.run("\(binaries)/pg_ctl", arguments)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
