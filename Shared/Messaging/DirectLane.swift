import CZeroMQ
import Foundation
import Schema
import Synchronization

/// A second connection of an `RPCClient`, used from the caller's own thread for one quick read at
/// a time: the request is sent and its reply read right there, as a plain REQ client does, with
/// no hand-over to the socket thread and back (two thread wake-ups, most of a typed call's cost
/// beyond the server's on two cores).
///
/// It waits for the reply at most `waitLimit` (2 ms; a read is answered in about 0.1 ms), so it
/// never holds a pool thread for long, and no more callers wait on lanes at once than the machine
/// has cores less one, so the pool always has a thread for other work. A reply not there by then
/// is left to the poll loop: the socket is handed to it with the call's waiter (a request once
/// sent is never sent again), and a type late twice in a row stays off the lane for a while (a
/// second, doubling while it stays slow, up to a minute). The
/// socket queues only to a finished connection (`ZMQ_IMMEDIATE`): while it is connecting, or its
/// service is down, a call takes the loop's socket and nothing is sent here.
///
/// Only declared reads take it, one call at a time, and none while the client has a write in
/// flight or one that timed out lately: the service orders a read behind its connection's earlier
/// writes, and this is another connection. libzmq lets a socket move between threads with a full
/// memory barrier between uses, which the lock here is.
final class DirectLane: Sendable {
    /// The socket and who may use it. `UncheckedSocket` because a socket is not thread-safe: the
    /// state's lock and `inUse` make sure one thread at a time touches it.
    private struct State {
        var socket: UncheckedSocket?
        var inUse = false
        var closed = false
        /// Sockets handed to the loop whose reply has not come (each holds a connection); at
        /// `maxHandOvers` the lane is not used until one is done.
        var handedOver: Set<SocketID> = []
        var handOversPending = 0
        /// Types handed over on consecutive calls: at `slowAfter`, a type stays off the lane for a while.
        var slowRuns: [String: Int] = [:]
        /// Types that were slow here, and until when they stay off the lane.
        var slowUntil: [String: ContinuousClock.Instant] = [:]
        /// How long a type stays off next time it is slow: doubled each time, from `firstPause`
        /// up to `longestPause`, forgotten once it is answered in time.
        var nextPause: [String: Duration] = [:]
        /// Writes of this client in flight, and until when a write that timed out keeps reads here.
        var writesInFlight = 0
        var writeUnsettledUntil: ContinuousClock.Instant?
    }

    struct UncheckedSocket: @unchecked Sendable {
        let socket: ZMQSocket
    }

    /// What a direct attempt came to.
    enum Outcome {
        case reply(Data)
        /// No reply within the limit: the socket, with the request outstanding on it, goes to the loop.
        case handedOver(UncheckedSocket)
        /// Nothing was sent here: take the loop's socket.
        case notTaken
    }

    static let waitLimit: Duration = .milliseconds(2)
    private static let maxHandOvers = 8
    /// One late reply is a hiccup (the scheduler, a page fault); a type late twice in a row is slow.
    private static let slowAfter = 2
    /// How long a type that was slow stays off the lane: briefly the first time (a busy moment
    /// passes), longer each time it is slow again (a report is slow every time).
    private static let firstPause: Duration = .seconds(1)
    private static let longestPause: Duration = .seconds(60)
    /// How long after a write timed out reads stay on the loop's socket (the write may still be
    /// running there; a server's deadline is 15 s).
    private static let unsettledWrite: Duration = .seconds(20)
    /// Callers waiting on lanes at once, process-wide, and the most allowed.
    private static let waiting = Atomic<Int>(0)
    private static let maxWaiting = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)

    /// One context for every direct lane of the process, never terminated: a lane's socket may be
    /// in a caller's hands when its client's loop ends, and a loop terminates its own context then
    /// (which waits for every socket of that context to close).
    private static let sharedContext = ZMQContext(maxSockets: 65_536)

    private let state = Mutex(State())
    private let endpoint: String
    private let options: ZMQSocketOptions
    private let context: ZMQContext
    /// Calls answered on the caller's thread, and calls handed over to the loop (for tests and metrics).
    let answeredHere = Atomic<Int>(0)
    let handedOverInAll = Atomic<Int>(0)

    init(endpoint: String, options: ZMQSocketOptions) {
        self.endpoint = endpoint
        var options = options
        options.immediate = true
        // A blocking receive that gives up at the limit: one wait, as a plain REQ client's, where
        // zmq_poll and a receive after it cost two more trips into libzmq (and a system call).
        let limit = Self.waitLimit.components
        options.receiveTimeout = Int32(limit.seconds * 1000 + limit.attoseconds / 1_000_000_000_000_000)
        self.options = options
        self.context = Self.sharedContext
        // Connected now, so its handshake is done by the time the first call wants it.
        if let socket = try? Self.makeSocket(context: context, options: options, endpoint: endpoint) {
            state.withLock { $0.socket = UncheckedSocket(socket: socket) }
        }
    }

    private static func makeSocket(context: ZMQContext, options: ZMQSocketOptions, endpoint: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.apply(options)
        try socket.connect(endpoint)
        return socket
    }

    /// Whether `type` may take the lane at all: a read this build declares.
    static func takes(_ type: String) -> Bool { RequestCatalog.byName[type]?.kind == .read }

    /// `DUBAN_DIRECT_LANE=off` turns every lane off in a process: all calls through the poll loop.
    static let enabled = ProcessInfo.processInfo.environment["DUBAN_DIRECT_LANE"] != "off"

    /// A write of this client is going out, and has come back (`timedOut`: its outcome unknown).
    func writeBegan() { state.withLock { $0.writesInFlight += 1 } }
    func writeEnded(timedOut: Bool) {
        state.withLock { state in
            state.writesInFlight -= 1
            if timedOut { state.writeUnsettledUntil = .now + Self.unsettledWrite }
        }
    }

    /// Sends `payload` (request `id` of `type`) and waits here for its reply, up to the limit or `timeout`.
    func attempt(type: String, id: String, payload: Data, timeout: Duration) -> Outcome {
        let now = ContinuousClock.now
        let taken = state.withLock { state -> UncheckedSocket?? in
            guard !state.closed, !state.inUse, state.handOversPending < Self.maxHandOvers, state.writesInFlight == 0 else { return nil }
            if let until = state.writeUnsettledUntil {
                guard until <= now else { return nil }
                state.writeUnsettledUntil = nil
            }
            if let until = state.slowUntil[type] {
                guard until <= now else { return nil }
                state.slowUntil[type] = nil
            }
            state.inUse = true
            return .some(state.socket)
        }
        guard let taken else { return .notTaken }
        guard Self.waiting.add(1, ordering: .acquiringAndReleasing).newValue <= Self.maxWaiting else {
            Self.waiting.subtract(1, ordering: .acquiringAndReleasing)
            state.withLock { $0.inUse = false }
            return .notTaken
        }
        defer { Self.waiting.subtract(1, ordering: .acquiringAndReleasing) }
        let lane: UncheckedSocket
        if let taken {
            lane = taken
        } else if let socket = try? Self.makeSocket(context: context, options: options, endpoint: endpoint) {
            lane = UncheckedSocket(socket: socket)
        } else {
            state.withLock { $0.inUse = false }
            return .notTaken
        }
        let socket = lane.socket
        do {
            // EAGAIN while no connection is up (`ZMQ_IMMEDIATE`): nothing was sent.
            try socket.send([Data(), payload], dontWait: true)
        } catch {
            giveBack(lane, answered: nil)
            return .notTaken
        }
        if let reply = Self.receive(socket, id: id, until: now + min(Self.waitLimit, timeout)) {
            giveBack(lane, answered: type)
            answeredHere.add(1, ordering: .relaxed)
            return .reply(reply)
        }
        // Late: its reply is the loop's to wait for, on this socket; the lane makes a new one.
        let closed = state.withLock { state -> Bool in
            state.inUse = false
            state.socket = nil
            state.handOversPending += 1
            let runs = (state.slowRuns[type] ?? 0) + 1
            if runs >= Self.slowAfter {
                state.slowRuns[type] = nil
                if state.slowUntil.count < 256 {
                    let pause = state.nextPause[type] ?? Self.firstPause
                    state.slowUntil[type] = .now + pause
                    state.nextPause[type] = min(pause * 2, Self.longestPause)
                }
            } else if state.slowRuns.count < 256 {
                state.slowRuns[type] = runs
            }
            return state.closed
        }
        handedOverInAll.add(1, ordering: .relaxed)
        if closed {
            socket.close()
            _ = finishHandOver(nil)
            return .notTaken
        }
        return .handedOver(lane)
    }

    /// The reply to `id` if it comes before `deadline`; replies to other ids are dropped. Each
    /// receive waits at most the socket's timeout (the lane's limit).
    private static func receive(_ socket: ZMQSocket, id: String, until deadline: ContinuousClock.Instant) -> Data? {
        repeat {
            guard let frames = try? socket.receive(dontWait: false), let payload = frames.last else { return nil }
            if FastJSON.topLevelString("re", in: payload) == id { return payload }
        } while ContinuousClock.now < deadline
        return nil
    }

    private func giveBack(_ lane: UncheckedSocket, answered type: String?) {
        let closed = state.withLock { state -> Bool in
            state.inUse = false
            if let type {
                if state.slowRuns[type] != nil { state.slowRuns[type] = nil }
                if state.nextPause[type] != nil { state.nextPause[type] = nil }
            }
            if !state.closed { state.socket = lane }
            return state.closed
        }
        if closed { lane.socket.close() }
    }

    /// The loop is taking a handed-over socket as `id`.
    func handedOver(as id: SocketID) {
        state.withLock { _ = $0.handedOver.insert(id) }
    }

    /// A handed-over socket is done with: its reply came, or its call stopped waiting. True for
    /// the first of the two to say so (then a call that stopped waiting closes it on the loop).
    func finishHandOver(_ id: SocketID?) -> Bool {
        state.withLock { state in
            if let id {
                guard state.handedOver.remove(id) != nil else { return false }
            }
            state.handOversPending = max(0, state.handOversPending - 1)
            return true
        }
    }

    /// Closes the socket now, or has the call using it close it when it is done; returns the ids
    /// of handed-over sockets the loop still holds, for the client to close there.
    func close() -> Set<SocketID> {
        let (idle, handedOver) = state.withLock { state -> (UncheckedSocket?, Set<SocketID>) in
            state.closed = true
            defer {
                state.socket = nil
                state.handedOver = []
            }
            return (state.inUse ? nil : state.socket, state.handedOver)
        }
        idle?.socket.close()
        return handedOver
    }
}
