import Foundation
import Logging
import Schema
import ServiceLifecycle
import Synchronization

/// Keeps a service's admitted principals current with its key directory's `clients/`: a cheap
/// stat poll (four times a second) notices a certificate added, removed or replaced, so a key
/// added is admitted and a key removed is refused within a second, without a restart (a
/// Kubernetes Secret's files change behind symlinks, which inotify on the directory would miss).
///
/// A key that stays out for a second is added to the `revoked` list, so a copy restored from a
/// backup is not admitted again (`duban keys revoke` writes the list at once).
public final class KeyDirectoryWatcher: Service, Sendable {
    public let directory: KeyDirectory
    public let keys: ClientKeys
    private let logger: Logger
    private let interval: Duration
    private struct State {
        var signature: [String: [Int]] = [:]
        var problems: [String] = []
        /// Keys gone from `clients/`, and since when, until they are written to the revoked list.
        var absent: [String: (principal: Principal, since: ContinuousClock.Instant)] = [:]
        var revokedInMemory: Set<String> = []
        var removalHandlers: [@Sendable ([Principal]) async -> Void] = []
    }
    private let state = Mutex(State())

    /// Reads `clients/` now; throws when the directory is not there (a typo must not start a
    /// service that admits nobody, or worse).
    public init(directory: KeyDirectory, logger: Logger, interval: Duration = .milliseconds(250)) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.clientsPath, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CertificateError.unreadable(directory.clientsPath)
        }
        self.directory = directory
        self.logger = logger
        self.interval = interval
        self.keys = ClientKeys()
        reload(force: true)
    }

    /// Runs `handler` with the principals that were taken out, on the watcher's task.
    public func onRemoval(_ handler: @escaping @Sendable ([Principal]) async -> Void) {
        state.withLock { $0.removalHandlers.append(handler) }
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                let removed = self.reload(force: false)
                guard !removed.isEmpty else { continue }
                for handler in self.state.withLock({ $0.removalHandlers }) { await handler(removed) }
            }
        }
    }

    /// Reloads when `clients/` or the revoked list changed; records keys that stayed out. Returns
    /// the principals taken out. A directory that cannot be listed just now (a mount being swapped)
    /// changes nothing: the keys admitted stay admitted until it can be read again.
    @discardableResult
    public func reload(force: Bool) -> [Principal] {
        guard (try? FileManager.default.contentsOfDirectory(atPath: directory.clientsPath)) != nil else {
            logger.warning("clients/ cannot be listed; keeping the keys admitted", metadata: ["keys.clients": "\(directory.clientsPath)"])
            return []
        }
        let signature = directory.clientsSignature()
        let changed = state.withLock { state -> Bool in
            guard force || signature != state.signature else { return false }
            state.signature = signature
            return true
        }
        if changed {
            var (principals, problems) = directory.loadClients()
            let inMemory = state.withLock { $0.revokedInMemory }
            principals = principals.filter { !inMemory.contains($0.key) }
            let removed = keys.replace(with: principals)
            state.withLock { state in
                let now = ContinuousClock.now
                for principal in removed { state.absent[principal.publicKey] = (principal, now) }
                for key in principals.keys { state.absent[key] = nil }
                let newProblems = problems.filter { !state.problems.contains($0) }
                state.problems = problems
                problems = newProblems
            }
            for problem in problems { logger.warning("certificate not admitted", metadata: ["problem": "\(problem)"]) }
            logger.info(
                "clients reloaded",
                metadata: ["keys.admitted": "\(principals.count)", "keys.removed": "\(removed.map(\.name).joined(separator: ","))"])
            recordLongAbsent()
            return removed
        }
        recordLongAbsent()
        return []
    }

    private func recordLongAbsent() {
        let due = state.withLock { state -> [Principal] in
            let now = ContinuousClock.now
            let due = state.absent.values.filter { now - $0.since >= .seconds(1) }.map(\.principal)
            for principal in due { state.absent[principal.publicKey] = nil }
            return due
        }
        // Only a key whose file is gone is revoked: one that is there but cannot be used just now
        // (half written, mistyped) stays out until it can, and is not kept out for good.
        .filter { !FileManager.default.fileExists(atPath: directory.clientCertificatePath($0.name)) }
        state.withLock { state in for principal in due { state.revokedInMemory.insert(principal.publicKey) } }
        for principal in due {
            do {
                try directory.appendRevoked(key: principal.publicKey, name: principal.name)
                logger.notice("key revoked", metadata: ["key.name": "\(principal.name)"])
            } catch {
                logger.warning(
                    "key kept out in memory only: the revoked list cannot be written",
                    metadata: ["key.name": "\(principal.name)", "error": "\(error)"])
            }
        }
    }
}
