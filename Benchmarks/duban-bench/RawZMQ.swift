import CZeroMQ
import DubanTesting
import Foundation
import Histogram

/// The physical limit: libzmq's C API on plain threads, no Swift concurrency, no JSON, the same
/// message sizes as Duban's requests and replies.
enum RawZMQ {
    /// A context and sockets used from one thread each, as libzmq requires.
    final class Socket: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
        init(_ context: UnsafeMutableRawPointer, _ type: Int32) {
            handle = zmq_socket(context, type)
            var zero: Int32 = 0
            zmq_setsockopt(handle, ZMQ_LINGER, &zero, MemoryLayout<Int32>.size)
        }
        func set(_ option: Int32, _ value: Int32) {
            var value = value
            zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size)
        }
        func set(_ option: Int32, _ value: String) {
            _ = value.withCString { zmq_setsockopt(handle, option, $0, strlen($0)) }
        }
        func bind(_ endpoint: String) {
            precondition(zmq_bind(handle, endpoint) == 0, "bind \(endpoint): \(String(cString: zmq_strerror(duban_errno())))")
        }
        func connect(_ endpoint: String) { precondition(zmq_connect(handle, endpoint) == 0) }
        func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false) {
            _ = zmq_send(handle, bytes.baseAddress, bytes.count, more ? ZMQ_SNDMORE : 0)
        }
        func send(_ data: [UInt8], more: Bool = false) { data.withUnsafeBytes { send($0, more: more) } }
        /// Receives one frame into `buffer`; returns its size (-1 on timeout/error).
        @discardableResult
        func receive(_ buffer: inout [UInt8]) -> Int {
            buffer.withUnsafeMutableBytes { Int(zmq_recv(handle, $0.baseAddress, $0.count, 0)) }
        }
        var more: Bool {
            var value: Int32 = 0
            var size = MemoryLayout<Int32>.size
            zmq_getsockopt(handle, ZMQ_RCVMORE, &value, &size)
            return value != 0
        }
        func close() { zmq_close(handle) }
    }

    static func thread(_ body: @escaping @Sendable () -> Void) -> Thread {
        let thread = Thread(block: body)
        thread.start()
        return thread
    }

    static func endpoint() -> String { "tcp://127.0.0.1:\(TestSupport.freePort())" }

    /// REQ→REP: one request at a time; the latency of each round trip.
    static func requestReply(requestSize: Int, replySize: Int, calls: Int, curve: Bool = false) -> Histogram<UInt64> {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let endpoint = endpoint()
        let keys = curve ? (server: curveKeyPair(), client: curveKeyPair()) : nil
        let zap = curve ? startZAPHandler(context) : nil
        let ready = DispatchSemaphore(value: 0)
        // The server closes only once the client has its last reply: closing right after sending
        // can drop it even with LINGER (libzmq #4660), and the client would wait forever.
        let clientDone = DispatchSemaphore(value: 0)
        let server = thread {
            let socket = Socket(context, ZMQ_REP)
            if let keys {
                socket.set(ZMQ_CURVE_SERVER, 1)
                socket.set(ZMQ_CURVE_SECRETKEY, keys.server.secret)
            }
            socket.bind(endpoint)
            ready.signal()
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let reply = [UInt8](repeating: 120, count: replySize)
            for _ in 0..<calls {
                socket.receive(&buffer)
                socket.send(reply)
            }
            clientDone.wait()
            socket.close()
        }
        _ = server
        ready.wait()
        let socket = Socket(context, ZMQ_REQ)
        if let keys {
            socket.set(ZMQ_CURVE_SERVERKEY, keys.server.public)
            socket.set(ZMQ_CURVE_PUBLICKEY, keys.client.public)
            socket.set(ZMQ_CURVE_SECRETKEY, keys.client.secret)
        }
        socket.connect(endpoint)
        let histogram = roundTrips(socket, payload: [UInt8](repeating: 120, count: requestSize), calls: calls, warmup: 0)
        clientDone.signal()
        socket.close()
        zap?.stop()
        return histogram
    }

    /// A raw REQ client against a real service: the server's share of a round trip.
    static func requestReplyClient(endpoint: String, payload: [UInt8], calls: Int) -> Histogram<UInt64> {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let socket = Socket(context, ZMQ_REQ)
        socket.connect(endpoint)
        let histogram = roundTrips(socket, payload: payload, calls: calls, warmup: min(1000, calls))
        socket.close()
        return histogram
    }

    /// A REQ client kept open between chunks of calls, for measurements interleaved with Duban's.
    final class REQClient: @unchecked Sendable {
        // @unchecked: used by one caller at a time (the benchmark's sequential loop).
        let context = zmq_ctx_new()!
        let socket: Socket
        var buffer = [UInt8](repeating: 0, count: 1 << 20)

        init(endpoint: String) {
            socket = Socket(context, ZMQ_REQ)
            socket.connect(endpoint)
        }

        /// Round trips for a second (and at least 1,000), not timed.
        func warmUp(_ payload: [UInt8]) {
            let until = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
            var calls = 0
            while calls < 1_000 || DispatchTime.now().uptimeNanoseconds < until {
                socket.send(payload)
                socket.receive(&buffer)
                calls += 1
            }
        }

        /// `calls` timed round trips, in nanoseconds.
        func roundTrips(_ payload: [UInt8], calls: Int) -> [UInt64] {
            (0..<calls).map { _ in
                let start = DispatchTime.now().uptimeNanoseconds
                socket.send(payload)
                socket.receive(&buffer)
                return DispatchTime.now().uptimeNanoseconds - start
            }
        }

        func close() {
            socket.close()
            zmq_ctx_term(context)
        }
    }

    /// Round trips the way Duban's client makes them, in plain C calls: a DEALER sending
    /// `[empty][payload]`, then `zmq_poll` over the socket and an eventfd (the loop's wake-up)
    /// until the reply is there, then reading it. The floor of a poll-loop client, without Swift
    /// concurrency or JSON.
    static func pollingClient(endpoint: String, payload: [UInt8], calls: Int) -> Histogram<UInt64> {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let socket = Socket(context, ZMQ_DEALER)
        socket.connect(endpoint)
        let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        defer { close(wake) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        let warmUntil = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
        var warmed = 0
        var recorded = 0
        while recorded < calls {
            let start = DispatchTime.now().uptimeNanoseconds
            let warming = warmed < 1_000 || start < warmUntil
            socket.send([], more: true)
            socket.send(payload)
            var received = false
            while !received {
                var items = [
                    zmq_pollitem_t(socket: nil, fd: wake, events: Int16(ZMQ_POLLIN), revents: 0),
                    zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
                ]
                _ = zmq_poll(&items, 2, 250)
                guard items[1].revents != 0 else { continue }
                // Non-blocking reads until the socket is empty, as the loop does.
                while buffer.withUnsafeMutableBytes({ zmq_recv(socket.handle, $0.baseAddress, $0.count, ZMQ_DONTWAIT) }) >= 0 {
                    if !socket.more { received = true }
                }
            }
            if warming {
                warmed += 1
            } else {
                histogram.record(DispatchTime.now().uptimeNanoseconds - start)
                recorded += 1
            }
        }
        socket.close()
        return histogram
    }

    /// Times `calls` request/reply round trips on a REQ socket, after `warmup` untimed ones.
    static func roundTrips(_ socket: Socket, payload: [UInt8], calls: Int, warmup: Int) -> Histogram<UInt64> {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        // The same warm-up as Duban's measurements: a second, and at least `warmup` calls (none when
        // `warmup` is 0: an in-process server answers exactly `calls` requests).
        let warmUntil = warmup > 0 ? DispatchTime.now().uptimeNanoseconds + 1_000_000_000 : 0
        var warmed = 0
        while warmed < warmup || DispatchTime.now().uptimeNanoseconds < warmUntil {
            socket.send(payload)
            socket.receive(&buffer)
            warmed += 1
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<calls {
            let start = DispatchTime.now().uptimeNanoseconds
            socket.send(payload)
            socket.receive(&buffer)
            histogram.record(DispatchTime.now().uptimeNanoseconds - start)
        }
        return histogram
    }

    /// DEALER→ROUTER with `window` requests in flight: requests answered per second.
    static func pipelined(requestSize: Int, replySize: Int, calls: Int, window: Int) -> Double {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let endpoint = endpoint()
        let ready = DispatchSemaphore(value: 0)
        let clientDone = DispatchSemaphore(value: 0)
        _ = thread {
            let socket = Socket(context, ZMQ_ROUTER)
            socket.set(ZMQ_SNDHWM, 0)
            socket.set(ZMQ_RCVHWM, 0)
            socket.bind(endpoint)
            ready.signal()
            var identity = [UInt8](repeating: 0, count: 256)
            var empty = [UInt8](repeating: 0, count: 16)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let reply = [UInt8](repeating: 120, count: replySize)
            for _ in 0..<calls {
                let idSize = socket.receive(&identity)
                socket.receive(&empty)
                socket.receive(&buffer)
                socket.send(Array(identity[0..<idSize]), more: true)
                socket.send([], more: true)
                socket.send(reply)
            }
            clientDone.wait()
            socket.close()
        }
        ready.wait()
        let perSecond = pipelinedClient(context: context, endpoint: endpoint, requestSize: requestSize, calls: calls, window: window)
        clientDone.signal()
        return perSecond
    }

    /// The DEALER side of a pipelined measurement against a ROUTER at `endpoint`.
    static func pipelinedClient(context: UnsafeMutableRawPointer? = nil, endpoint: String, requestSize: Int, calls: Int, window: Int)
        -> Double
    {
        pipelinedClient(
            context: context, endpoint: endpoint, request: [UInt8](repeating: 120, count: requestSize), calls: calls, window: window)
    }

    /// `calls` copies of `request` from a raw DEALER, `window` in flight; replies per second.
    static func pipelinedClient(context: UnsafeMutableRawPointer? = nil, endpoint: String, request: [UInt8], calls: Int, window: Int)
        -> Double
    {
        nonisolated(unsafe) let ownContext = context == nil ? zmq_ctx_new()! : nil
        defer { if let ownContext { zmq_ctx_term(ownContext) } }
        let socket = Socket((context ?? ownContext)!, ZMQ_DEALER)
        socket.set(ZMQ_SNDHWM, 0)
        socket.set(ZMQ_RCVHWM, 0)
        socket.connect(endpoint)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let start = DispatchTime.now().uptimeNanoseconds
        var sent = 0
        var received = 0
        while sent < min(window, calls) {
            socket.send([], more: true)
            socket.send(request)
            sent += 1
        }
        socket.set(ZMQ_RCVTIMEO, 5000)
        while received < calls {
            // A reference must not hang the run: a reply missing for 5 s ends the measurement.
            guard socket.receive(&buffer) >= 0 else {
                log("raw DEALER/ROUTER: no reply for 5 s after \(received) of \(calls); measuring what arrived")
                break
            }
            socket.receive(&buffer)
            received += 1
            if sent < calls {
                socket.send([], more: true)
                socket.send(request)
                sent += 1
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        socket.close()
        return Double(received) / seconds
    }

    /// A raw ROUTER server in a process of its own (`duban-bench --raw-server`), answering every
    /// request, REQ's or DEALER's, with `replySize` bytes: the reference with Duban's topology,
    /// client and server in two processes, each with its own libzmq I/O thread.
    static func serveForever(endpoint: String, replySize: Int) -> Never {
        let context = zmq_ctx_new()!
        let socket = Socket(context, ZMQ_ROUTER)
        socket.set(ZMQ_SNDHWM, 0)
        socket.set(ZMQ_RCVHWM, 0)
        socket.bind(endpoint)
        print("ready", to: &standardError)
        let reply = [UInt8](repeating: 120, count: replySize)
        // Both clients frame requests as [identity][empty][payload] by the time ROUTER reads them.
        var identity = [UInt8](repeating: 0, count: 256)
        var empty = [UInt8](repeating: 0, count: 16)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let idSize = socket.receive(&identity)
            socket.receive(&empty)
            socket.receive(&buffer)
            socket.send(Array(identity[0..<max(idSize, 0)]), more: true)
            socket.send([], more: true)
            socket.send(reply)
        }
    }

    /// Starts `serveForever` in a child process and returns it with its endpoint.
    static func startServerProcess(replySize: Int) throws -> (process: Process, endpoint: String) {
        let endpoint = endpoint()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["--raw-server", endpoint, "--raw-reply-size", "\(replySize)"]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        _ = pipe.fileHandleForReading.availableData  // "ready"
        return (process, endpoint)
    }

    /// PUSH→PULL: messages per second of `size` bytes, sent as fast as the socket takes them.
    static func pushPull(size: Int, count: Int) -> Double {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let endpoint = endpoint()
        let done = DispatchSemaphore(value: 0)
        let ready = DispatchSemaphore(value: 0)
        let elapsed = Locked<Double>(0)
        _ = thread {
            let socket = Socket(context, ZMQ_PULL)
            socket.bind(endpoint)
            ready.signal()
            var buffer = [UInt8](repeating: 0, count: max(size, 1) + 1024)
            socket.receive(&buffer)
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 1..<count { socket.receive(&buffer) }
            elapsed.withLock { $0 = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
            socket.close()
            done.signal()
        }
        ready.wait()
        let socket = Socket(context, ZMQ_PUSH)
        socket.connect(endpoint)
        let message = [UInt8](repeating: 120, count: size)
        for _ in 0..<count { socket.send(message) }
        done.wait()
        socket.close()
        return Double(count - 1) / elapsed.withLock { $0 }
    }

    /// PUB→SUB: one publisher, `subscribers` SUB sockets on their own threads; the publisher sends
    /// `count` messages unpaced. Returns messages/s at the slowest subscriber and the share lost.
    static func fanOut(subscribers: Int, size: Int, count: Int) -> (perSecond: Double, lost: Double) {
        nonisolated(unsafe) let context = zmq_ctx_new()!
        defer { zmq_ctx_term(context) }
        let endpoint = endpoint()
        let publisher = Socket(context, ZMQ_PUB)
        publisher.bind(endpoint)
        let connected = DispatchSemaphore(value: 0)
        let received = Locked<[(count: Int, last: UInt64)]>([])
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<subscribers {
            _ = thread {
                let socket = Socket(context, ZMQ_SUB)
                socket.set(ZMQ_SUBSCRIBE, "")
                socket.set(ZMQ_RCVTIMEO, 1000)
                socket.connect(endpoint)
                connected.signal()
                var buffer = [UInt8](repeating: 0, count: size + 1024)
                var got = 0
                var last: UInt64 = 0
                // Count until the end marker (a 1-byte message) or a second of silence; the rate is
                // taken up to the last message received, not the silence after it.
                while true {
                    let n = socket.receive(&buffer)
                    if n < 0 || n == 1 { break }
                    got += 1
                    last = DispatchTime.now().uptimeNanoseconds
                }
                received.withLock { $0.append((got, last)) }
                socket.close()
                finished.signal()
            }
        }
        for _ in 0..<subscribers { connected.wait() }
        // Slow joiners: let every subscription reach the publisher before measuring.
        Thread.sleep(forTimeInterval: 0.3)
        let message = [UInt8](repeating: 120, count: size)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<count { publisher.send(message) }
        for _ in 0..<10 { publisher.send([1]) }
        for _ in 0..<subscribers { finished.wait() }
        publisher.close()
        let results = received.withLock { $0 }
        let total = Double(subscribers * count)
        let rates = results.map { $0.last > start ? Double($0.count) / (Double($0.last - start) / 1e9) : 0 }
        return (rates.min() ?? 0, (total - Double(results.map(\.count).reduce(0, +))) / total)
    }

    static func curveKeyPair() -> (public: String, secret: String) {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        precondition(zmq_curve_keypair(&publicKey, &secretKey) == 0, "libzmq without CURVE")
        return (String(cString: publicKey), String(cString: secretKey))
    }

    /// A ZAP handler that accepts every CURVE client: what an allow-list check costs is a lookup;
    /// without a handler a CURVE server accepts anyone without asking (fails open).
    final class ZAPHandler: @unchecked Sendable {
        let stopped = Locked(false)
        func stop() { stopped.withLock { $0 = true } }
    }

    static func startZAPHandler(_ zmqContext: UnsafeMutableRawPointer) -> ZAPHandler {
        nonisolated(unsafe) let context = zmqContext
        let handler = ZAPHandler()
        let ready = DispatchSemaphore(value: 0)
        _ = thread {
            let socket = Socket(context, ZMQ_REP)
            socket.set(ZMQ_RCVTIMEO, 100)
            socket.bind("inproc://zeromq.zap.01")
            ready.signal()
            var frames: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 512)
            while !handler.stopped.withLock({ $0 }) {
                let n = socket.receive(&buffer)
                if n < 0 { continue }
                frames = [Array(buffer[0..<n])]
                while socket.more {
                    let m = socket.receive(&buffer)
                    frames.append(Array(buffer[0..<max(m, 0)]))
                }
                // version, request id, status 200, text, user id, metadata
                socket.send(frames[0], more: true)
                socket.send(frames[1], more: true)
                socket.send(Array("200".utf8), more: true)
                socket.send(Array("OK".utf8), more: true)
                socket.send(Array("bench".utf8), more: true)
                socket.send([])
            }
            socket.close()
        }
        ready.wait()
        return handler
    }
}

nonisolated(unsafe) var standardError = StandardError()

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}
