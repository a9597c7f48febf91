import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's notify protocol, without a library: `READY=1` once the service listens, then
/// `WATCHDOG=1` at half the watchdog interval while it runs, `STOPPING=1` at shutdown, each a
/// datagram to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Started only when
/// systemd set `NOTIFY_SOCKET` (units with `Type=notify`); a no-op otherwise. The watchdog is fed
/// from the service's own task: a service whose task no longer runs stops feeding it and is restarted.
public struct SystemdNotifier: Service {
    let socketPath: String
    let watchdogInterval: Duration?
    let logger: Logger

    /// The notifier for this process's environment, or nil outside systemd.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger)
        -> SystemdNotifier?
    {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        // WATCHDOG_PID, when set, names the process the watchdog is meant for.
        let forUs = environment["WATCHDOG_PID"].map { $0 == "\(getpid())" } ?? true
        let interval = environment["WATCHDOG_USEC"].flatMap(Int64.init).flatMap { forUs && $0 > 0 ? Duration.microseconds($0) : nil }
        return SystemdNotifier(socketPath: path, watchdogInterval: interval, logger: logger)
    }

    public func run() async throws {
        send("READY=1\nSTATUS=serving")
        if let watchdogInterval {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    send("WATCHDOG=1")
                    try await Task.sleep(for: watchdogInterval / 2)
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        send("STOPPING=1")
    }

    /// One datagram; failures are logged, never fatal (systemd may be gone already at shutdown).
    func send(_ message: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else {
            logger.warning("NOTIFY_SOCKET too long", metadata: ["systemd.socket": "\(socketPath)"])
            return
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let sent = message.utf8CString.withUnsafeBufferPointer { text in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, text.baseAddress, text.count - 1, 0, $0, length) }
            }
        }
        if sent < 0 { logger.debug("systemd notify failed", metadata: ["systemd.message": "\(message)", "errno": "\(errno)"]) }
    }
}
