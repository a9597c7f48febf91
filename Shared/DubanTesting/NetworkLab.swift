import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Several "hosts" on one machine: a network namespace each, joined by veth pairs to a bridge in
/// the test's own namespace, which is a host too (the `.1` address). Traffic between hosts crosses
/// real interfaces and a real bridge, so a service that only works on loopback fails here.
/// Needs root (CI runs as root); `NetworkLab.unavailableReason` says why it cannot be made.
public final class NetworkLab: @unchecked Sendable {
    // @unchecked: immutable after create.
    public let bridge: String
    /// The first three octets, e.g. `10.203.17`.
    public let subnet: String
    /// Host name → (namespace, address).
    public let hosts: [String: (namespace: String, address: String)]
    /// The test process's own address on the bridge.
    public var driverAddress: String { "\(subnet).1" }

    public func namespace(_ host: String) -> String { hosts[host]!.namespace }
    public func address(_ host: String) -> String { hosts[host]!.address }

    /// Nil when namespaces can be made here; otherwise why not.
    public static var unavailableReason: String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return "iproute2's ip is not installed" }
        guard getuid() == 0 else { return "network namespaces need root (CI runs as root)" }
        let probe = "dubanprobe\(getpid())"
        do {
            try TestSupport.run("/usr/sbin/ip", ["netns", "add", probe])
            try TestSupport.run("/usr/sbin/ip", ["netns", "del", probe])
            let bridge = "dbp\(getpid() % 100_000)"
            try TestSupport.run("/usr/sbin/ip", ["link", "add", bridge, "type", "bridge"])
            try TestSupport.run("/usr/sbin/ip", ["link", "del", bridge])
            return nil
        } catch {
            return "cannot make network namespaces here: \(error)"
        }
    }

    /// Makes one namespace per host name, addressed `subnet.2`, `subnet.3`, … in order.
    public static func create(hosts names: [String]) throws -> NetworkLab {
        let tag = String(format: "%05d", Int(getpid()) % 100_000)
        let subnet = "10.\(200 + Int(getpid()) % 50).\(Int.random(in: 1...250))"
        let bridge = "dbr\(tag)"
        var hosts: [String: (String, String)] = [:]
        try ip(["link", "add", bridge, "type", "bridge"])
        try ip(["addr", "add", "\(subnet).1/24", "dev", bridge])
        try ip(["link", "set", bridge, "up"])
        do {
            for (index, name) in names.enumerated() {
                let namespace = "duban-\(tag)-\(name)"
                let veth = "dv\(tag)\(index)"
                let address = "\(subnet).\(index + 2)"
                try ip(["netns", "add", namespace])
                hosts[name] = (namespace, address)
                try ip(["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace])
                try ip(["link", "set", veth, "master", bridge, "up"])
                try ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "eth0"])
                try ip(["-n", namespace, "link", "set", "eth0", "up"])
                try ip(["-n", namespace, "link", "set", "lo", "up"])
            }
        } catch {
            // Remove what was made before the failure.
            NetworkLab(bridge: bridge, subnet: subnet, hosts: hosts).destroy()
            throw error
        }
        return NetworkLab(bridge: bridge, subnet: subnet, hosts: hosts)
    }

    private init(bridge: String, subnet: String, hosts: [String: (String, String)]) {
        self.bridge = bridge
        self.subnet = subnet
        self.hosts = hosts.mapValues { (namespace: $0.0, address: $0.1) }
    }

    /// Runs a command on a host and returns what it printed (stdout and stderr); throws if it fails.
    @discardableResult
    public func run(on host: String, _ executable: String, _ arguments: [String]) throws -> String {
        try TestSupport.run("/usr/sbin/ip", ["netns", "exec", namespace(host), executable] + arguments)
    }

    /// Removes every namespace (their veth ends go with them) and the bridge.
    public func destroy() {
        for (_, host) in hosts {
            // Processes left in a namespace keep it alive only as a mount; kill them first.
            if let pids = try? TestSupport.run("/usr/sbin/ip", ["netns", "pids", host.namespace]) {
                for pid in pids.split(whereSeparator: \.isNewline).compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            _ = try? Self.ip(["netns", "del", host.namespace])
        }
        _ = try? Self.ip(["link", "del", bridge])
    }

    private static func ip(_ arguments: [String]) throws {
        try TestSupport.run("/usr/sbin/ip", arguments)
    }
}
