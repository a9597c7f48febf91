import DubanTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `Type=notify` units: the service tells systemd it is ready once it listens and feeds the
/// watchdog itself, with datagrams to `$NOTIFY_SOCKET` (no library), as systemd would see them.
@Suite(.serialized) struct SystemdNotifyTests {
    @Test func aServiceSaysReadyAndFeedsTheWatchdog() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let path = "\(dir)/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // A 400 ms watchdog: fed every 200 ms.
        let process = try await ServiceProcess.start(
            "duban-cases", arguments: ["--data-dir", dir], endpoints: TestSupport.freeEndpoints(),
            environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"])
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, messages.filter({ $0 == "WATCHDOG=1" }).count < 4 {
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
        }
        #expect(messages.first?.hasPrefix("READY=1") == true, "\(messages)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 4, "\(messages)")
        #expect(await process.terminate() == 0, "\(process.log)")
        var buffer = [UInt8](repeating: 0, count: 512)
        var last = ""
        for _ in 0..<10 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { last = String(decoding: buffer[0..<count], as: UTF8.self) }
            if last == "STOPPING=1" { break }
        }
        #expect(last == "STOPPING=1")
    }
}
