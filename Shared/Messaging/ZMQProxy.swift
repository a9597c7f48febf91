import CZeroMQ
import Foundation
import Logging
import Synchronization

/// libzmq's built-in proxy (`zmq_proxy_steerable`) on a thread of its own, which creates, binds,
/// uses and closes both sockets: the broker in front of several instances (ROUTER↔DEALER for
/// requests, XSUB↔XPUB for events). It is stopped through its control socket, so it never hangs.
public final class ZMQProxy: @unchecked Sendable {
    // @unchecked: `thread` is set once in start(); the sockets live only on that thread.
    public let name: String
    private let context: ZMQContext
    private let frontend: (ZMQSocketType, String)
    private let backend: (ZMQSocketType, String)
    private let controlEndpoint: String
    private let logger: Logger
    private let done = DispatchSemaphore(value: 0)

    public init(context: ZMQContext, name: String, frontend: (ZMQSocketType, String), backend: (ZMQSocketType, String), logger: Logger) {
        self.context = context
        self.name = name
        self.frontend = frontend
        self.backend = backend
        self.controlEndpoint = "inproc://duban-proxy-\(UUID().uuidString)"
        self.logger = logger
    }

    /// Binds both sides and starts forwarding; throws if either side cannot be bound.
    public func start() throws {
        let ready = DispatchSemaphore(value: 0)
        let failure = Mutex<(any Error)?>(nil)
        let thread = Thread { [self] in
            do {
                let front = try ZMQSocket(context: context, type: frontend.0)
                let back = try ZMQSocket(context: context, type: backend.0)
                let control = try ZMQSocket(context: context, type: .pair)
                for socket in [front, back] {
                    try socket.setOption(ZMQ_SNDHWM, Int32(100_000))
                    try socket.setOption(ZMQ_RCVHWM, Int32(100_000))
                }
                try front.bind(frontend.1)
                try back.bind(backend.1)
                try control.bind(controlEndpoint)
                ready.signal()
                let rc = zmq_proxy_steerable(front.handle, back.handle, nil, control.handle)
                if rc != 0 { logger.debug("proxy ended", metadata: ["zmq.proxy": "\(name)", "error": "\(ZMQError.last("proxy"))"]) }
                front.close()
                back.close()
                control.close()
            } catch {
                failure.withLock { $0 = error }
                ready.signal()
            }
            done.signal()
        }
        thread.name = "proxy-\(name)"
        thread.start()
        ready.wait()
        if let error = failure.withLock({ $0 }) {
            done.wait()
            throw error
        }
        logger.info("forwarding", metadata: ["zmq.proxy": "\(name)", "zmq.frontend": "\(frontend.1)", "zmq.backend": "\(backend.1)"])
    }

    /// Tells the proxy to terminate and waits for its thread to close its sockets.
    public func stop() {
        if let control = try? ZMQSocket(context: context, type: .pair) {
            try? control.connect(controlEndpoint)
            try? control.send([Data("TERMINATE".utf8)], dontWait: false)
            control.close()
        }
        done.wait()
    }
}
