import Foundation
import Schema
import Synchronization

/// The service's idea of now: real time, or a fixed or shifted time for tests and what-if runs.
public final class ServiceClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    private let fixed = Mutex<Date?>(nil)

    public init() {}

    /// A clock that reads `start` now and then advances with real time.
    public static func starting(at start: Date) -> ServiceClock {
        let clock = ServiceClock()
        clock.set(start)
        return clock
    }

    public func now() -> Date {
        if let fixed = fixed.withLock({ $0 }) { return fixed }
        return Date().addingTimeInterval(offset.withLock { $0 })
    }

    /// Moves the clock so that it reads `date` now and keeps running from there.
    public func set(_ date: Date) {
        offset.withLock { $0 = date.timeIntervalSinceNow }
    }

    /// Stops the clock at `date` (nil lets it run again).
    public func freeze(at date: Date?) {
        fixed.withLock { $0 = date }
    }

    /// The clock for a process: `DUBAN_NOW` (RFC 3339) starts it at that time, for tests and what-if runs.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceClock {
        guard let text = environment["DUBAN_NOW"], !text.isEmpty else { return ServiceClock() }
        guard let date = Timestamp.parse(text) else { throw ConfigurationError.invalid("DUBAN_NOW", text) }
        return .starting(at: date)
    }
}
