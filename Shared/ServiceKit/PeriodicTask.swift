import Logging
import ServiceLifecycle

/// Clock-driven work (statuses moving to overdue, the supervision rhythm) run every `interval`
/// until graceful shutdown. A failing round is logged and retried next round.
public struct PeriodicTask: Service {
    public let name: String
    public let interval: Duration
    public let logger: Logger
    public let body: @Sendable () async throws -> Void

    public init(name: String, interval: Duration, logger: Logger, body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.logger = logger
        self.body = body
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await body()
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("periodic task failed", metadata: ["task.name": "\(name)", "error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
