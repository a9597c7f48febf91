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
        try await Self.repeatUntilShutdown(every: interval) { [name, logger, body] in
            do {
                try await body()
            } catch let error where !(error is CancellationError) {
                logger.error("periodic task failed", metadata: ["task.name": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// Runs `round` again `interval` after each return (or failure, logged by the caller's round)
    /// until graceful shutdown: the loop of every clock-driven task and of event followers, whose
    /// round is a subscription that ends when its connection does.
    public static func repeatUntilShutdown(every interval: Duration, _ round: @escaping @Sendable () async throws -> Void) async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await round()
                } catch is CancellationError {
                    return
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
