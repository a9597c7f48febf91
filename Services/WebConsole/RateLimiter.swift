import Synchronization

/// At most `limit` hits per `window` for each key (a client address), in memory. The map is
/// bounded: when it is full, keys with no hit left in the window go first, then the key whose
/// last hit is oldest, so a flood of addresses costs memory up to `capacity` and no more.
public final class RateLimiter: Sendable {
    public let limit: Int
    public let window: Duration
    public let capacity: Int
    private let hits = Mutex<[String: [ContinuousClock.Instant]]>([:])

    public init(limit: Int, window: Duration, capacity: Int = 10_000) {
        self.limit = max(1, limit)
        self.window = window
        self.capacity = max(1, capacity)
    }

    /// Counts a hit for `key` and says whether it is within the limit; a refused hit is not counted.
    public func allow(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        let cutoff = now - window
        return hits.withLock { map in
            var recent = (map[key] ?? []).filter { $0 > cutoff }
            guard recent.count < limit else {
                map[key] = recent
                return false
            }
            if map[key] == nil, map.count >= capacity {
                map = map.filter { $0.value.contains { $0 > cutoff } }
                if map.count >= capacity, let oldest = map.min(by: { ($0.value.last ?? now) < ($1.value.last ?? now) })?.key {
                    map.removeValue(forKey: oldest)
                }
            }
            recent.append(now)
            map[key] = recent
            return true
        }
    }

    /// How many keys are held (for tests and metrics).
    public var count: Int { hits.withLock { $0.count } }
}
