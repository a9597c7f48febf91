import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The operator's HTTP port of a service (`--metrics HOST:PORT`, off by default): `/metrics` (the
/// Prometheus text exposition), `/healthz` (the process answers) and `/readyz` (its own store
/// answers). A few lines of NIO rather than a framework: three GET routes, nothing to configure.
public final class MetricsServer: Service, Sendable {
    /// What `/readyz` asks: nil when ready, else why not (its own store did not answer).
    public typealias Readiness = @Sendable () async -> String?

    public let address: String
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger

    /// Binds `hostPort` (`127.0.0.1:9101`; port 0 picks a free one, see `address`). Fails at once when it cannot.
    public static func bind(_ hostPort: String, metrics: ServiceMetrics, ready: @escaping Readiness, logger: Logger) async throws
        -> MetricsServer
    {
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]), (0...65535).contains(port)
        else { throw MetricsAddressError(address: hostPort) }
        let host = String(hostPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                        channel.pipeline.addHandler(MetricsHTTPHandler(metrics: metrics, ready: ready))
                    }
                }
                .childChannelOption(.maxMessagesPerRead, value: 1)
                .bind(host: host.isEmpty ? "127.0.0.1" : host, port: port).get()
            let bound = channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? hostPort
            logger.info("metrics listening", metadata: ["http.address": "\(bound)"])
            return MetricsServer(address: bound, channel: channel, group: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private init(address: String, channel: any Channel, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.address = address
        self.channel = channel
        self.group = group
        self.logger = logger
    }

    /// Serves until graceful shutdown, then closes the port.
    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: { [channel] in
            channel.close(promise: nil)
        }
        try? await group.shutdownGracefully()
    }
}

/// A `--metrics` value that is not `HOST:PORT`.
public struct MetricsAddressError: Error, CustomStringConvertible {
    public let address: String
    public var description: String { "--metrics 应为 主机:端口（如 127.0.0.1:9101），收到 \(address)" }
}

/// One request at a time per connection: GET /metrics, /healthz, /readyz; anything else 404.
private final class MetricsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: ServiceMetrics
    let ready: MetricsServer.Readiness
    private var head: HTTPRequestHead?

    init(metrics: ServiceMetrics, ready: @escaping MetricsServer.Readiness) {
        self.metrics = metrics
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let keepAlive = head.isKeepAlive
            let metrics = self.metrics
            let ready = self.ready
            let loop = context.eventLoop
            let promise = loop.makePromise(of: (HTTPResponseStatus, String, String).self)
            promise.completeWithTask {
                guard head.method == .GET || head.method == .HEAD else { return (.methodNotAllowed, "text/plain", "GET only\n") }
                switch path {
                case "/metrics": return (.ok, "text/plain; version=0.0.4; charset=utf-8", await metrics.exposition())
                case "/healthz": return (.ok, "text/plain; charset=utf-8", "ok\n")
                case "/readyz":
                    if let problem = await ready() { return (.serviceUnavailable, "text/plain; charset=utf-8", problem + "\n") }
                    let notes = await metrics.readiness()
                    let degraded = notes.contains { $0.contains("degraded") }
                    return (
                        .ok, "text/plain; charset=utf-8", ([degraded ? "ready, degraded" : "ready"] + notes).joined(separator: "\n") + "\n"
                    )
                default: return (.notFound, "text/plain", "not found\n")
                }
            }
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            promise.futureResult.whenSuccess { status, type, body in
                let (handler, context) = bound.value
                handler.respond(context, status: status, type: type, body: head.method == .HEAD ? "" : body, keepAlive: keepAlive)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, type: String, body: String, keepAlive: Bool) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}
