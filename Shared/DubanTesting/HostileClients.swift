import Foundation

/// Processes that act as other machines would on loopback: a client that floods a service and
/// never reads (Tests/clients/flood.py), and what tests and benchmarks read about a process.
public enum HostileClients {
    /// Starts Tests/clients/flood.py (found at `script`) against `endpoint`; it writes `done` once
    /// every request is handed to ZeroMQ, then stays connected, not reading, for `stay` seconds.
    public static func flood(
        _ endpoint: String, count: Int, kind: String, directory: String, stay: Double = 30, script: String
    ) throws -> (process: Process, done: String) {
        let done = "\(directory)/flood-\(UUID().uuidString).done"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, endpoint, "\(count)", kind, done, "\(stay)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, done)
    }

    /// Peak resident memory of a process (VmHWM), in MiB.
    public static func peakResidentMiB(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes / 1024
    }

    /// Whether something accepts TCP connections on the loopback `port`.
    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
