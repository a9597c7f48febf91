import Synchronization

/// The dashboard's service answers, shared between everyone who would get the same answer: every
/// open dashboard fetches its body again on each live event, so 500 screens would otherwise ask the
/// ledger for every case 500 times per event. An answer holds while the streams it depends on have
/// not moved (`version`: the live hub's positions) and for at most `maxAge`; concurrent requests for
/// a missing answer wait for one fetch (single flight). A failed fetch is not kept.
final class SharedFetch: Sendable {
    private struct Entry {
        var task: Task<any Sendable, any Error>
        var version: Int
        var at: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 512) { self.capacity = capacity }

    func value<T: Sendable>(
        _ key: String, version: Int, maxAge: Duration, _ fetch: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let now = ContinuousClock.now
        let task = entries.withLock { map -> Task<any Sendable, any Error> in
            if let entry = map[key], entry.version == version, now - entry.at < maxAge { return entry.task }
            // A short fetch of one answer, awaited right here by its first caller and any that join it.
            let task = Task<any Sendable, any Error> { try await fetch() }
            if map.count >= capacity { map = map.filter { now - $0.value.at < maxAge } }
            if map.count >= capacity, let oldest = map.min(by: { $0.value.at < $1.value.at })?.key { map.removeValue(forKey: oldest) }
            map[key] = Entry(task: task, version: version, at: now)
            return task
        }
        do {
            guard let value = try await task.value as? T else { throw WebError(status: 500, "内部错误：缓存类型不符") }
            return value
        } catch {
            entries.withLock { map in if map[key]?.task == task { map.removeValue(forKey: key) } }
            throw error
        }
    }
}
