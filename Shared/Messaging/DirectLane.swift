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
/// never holds a pool thread for long. A reply not there by then is left to the poll loop: the
/// socket is handed to it with the call's waiter, and the type is taken off this lane for a while
/// (on a connection that has never answered, the read is asked again on the loop's socket).
/// Only one call uses it at a time; others, writes, calls made on the socket thread itself, and
/// types that were slow take the loop's socket as before. libzmq lets a socket move between
/// threads with a full memory barrier between uses, which the lock here is.
final class DirectLane: Sendable {
    /// The socket and who may use it. `UncheckedSocket` because a socket is not thread-safe: the
    /// state's lock and `inUse` make sure one thread at a time touches it.
    private struct State {
        var socket: UncheckedSocket?
        var inUse = false
        var closed = false
        /// Calls whose reply was left to the loop and has not come yet; at `maxHandOvers` the
        /// lane is not used until one comes (each holds a connection).
        var handOvers = 0
        /// The loop's ids of the sockets handed over whose reply has not come.
        var handedOver: Set<SocketID> = []
        /// Types handed over on consecutive calls: at `slowAfter`, a type stays off the lane for a while.
        var slowRuns: [String: Int] = [:]
        /// Types that were slow here, and until when they stay off the lane.
        var slowUntil: [String: ContinuousClock.Instant] = [:]
    }

    struct UncheckedSocket: @unchecked Sendable {
        let socket: ZMQSocket
        /// Whether a call has been answered on it: a working connection.
        var answered = false
        /// Requests sent on it and given up on before it ever answered (at most one).
        var unanswered = 0
    }

    /// What a direct attempt came to.
    enum Outcome {
        case reply(Data)
        /// No reply within the limit: the socket, with the request outstanding on it, goes to the loop.
        case handedOver(UncheckedSocket)
        /// The lane was not free (or is closed, or the type is slow here): take the loop's socket.
        case notTaken
    }

    static let waitLimit: Duration = .milliseconds(2)
    private static let maxHandOvers = 8
    /// One late reply is a hiccup (the scheduler, a page fault); a type late twice in a row is slow.
    private static let slowAfter = 2
    /// How long a type that was slow stays off the lane.
    private static let slowPause: Duration = .seconds(30)

    private let state = Mutex(State())
    /// Calls answered on the caller's thread, and calls handed over to the loop (for tests and metrics).
    let answeredHere = Atomic<Int>(0)
    let handedOverInAll = Atomic<Int>(0)
    private let endpoint: String
    private let options: ZMQSocketOptions
    private let context: ZMQContext

    /// One context for every direct lane of the process, never terminated: a lane's socket may be
    /// in a caller's hands when its client's loop ends, and a loop terminates its own context then
    /// (which waits for every socket of that context to close).
    private static let sharedContext = ZMQContext()

    init(endpoint: String, options: ZMQSocketOptions) {
        self.endpoint = endpoint
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

    /// Sends `payload` (request `id` of `type`) and waits here for its reply, up to the limit or `timeout`.
    func attempt(type: String, id: String, payload: Data, timeout: Duration) -> Outcome {
        let now = ContinuousClock.now
        let taken = state.withLock { state -> UncheckedSocket?? in
            guard !state.closed, !state.inUse, state.handOvers < Self.maxHandOvers else { return nil }
            if let until = state.slowUntil[type] {
                guard until <= now else { return nil }
                state.slowUntil[type] = nil
            }
            state.inUse = true
            return .some(state.socket)
        }
        guard let taken else { return .notTaken }
        var lane: UncheckedSocket
        if let taken {
            lane = taken
        } else if let socket = try? Self.makeSocket(context: context, options: options, endpoint: endpoint) {
            lane = UncheckedSocket(socket: socket)
        } else {
            state.withLock { $0.inUse = false }
            return .notTaken
        }
        let socket = lane.socket
        // A request left unanswered on a socket that has never answered (the service not up yet):
        // its reply, if it came, shows the connection works; until then this lane adds no more.
        if lane.unanswered > 0 {
            while (try? socket.receive(dontWait: true)) != nil {
                lane.unanswered = max(0, lane.unanswered - 1)
                lane.answered = true
            }
            if lane.unanswered > 0 {
                giveBack(lane)
                return .notTaken
            }
        }
        do {
            try socket.send([Data(), payload], dontWait: true)
        } catch {
            // Its queue is full: the loop's socket decides what happens.
            giveBack(lane)
            return .notTaken
        }
        if let reply = Self.receive(socket, id: id, until: now + min(Self.waitLimit, timeout)) {
            lane.answered = true
            giveBack(lane, answered: type)
            answeredHere.add(1, ordering: .relaxed)
            return .reply(reply)
        }
        guard lane.answered else {
            // Never answered yet: perhaps still connecting, perhaps the service is down. The read is
            // asked again on the loop's socket (a read may run twice; a write never comes here).
            lane.unanswered += 1
            giveBack(lane)
            return .notTaken
        }
        // A slow request on a working connection: its reply is the loop's to wait for.
        let closed = state.withLock { state -> Bool in
            state.inUse = false
            state.socket = nil
            state.handOvers += 1
            let runs = (state.slowRuns[type] ?? 0) + 1
            if runs >= Self.slowAfter {
                state.slowRuns[type] = nil
                if state.slowUntil.count < 256 { state.slowUntil[type] = .now + Self.slowPause }
            } else if state.slowRuns.count < 256 {
                state.slowRuns[type] = runs
            }
            return state.closed
        }
        if closed {
            socket.close()
            return .notTaken
        }
        handedOverInAll.add(1, ordering: .relaxed)
        return .handedOver(lane)
    }

    /// The reply to `id` if it comes before `deadline`; replies to other ids (an earlier call's,
    /// answered after it gave up) are dropped.
    private static func receive(_ socket: ZMQSocket, id: String, until deadline: ContinuousClock.Instant) -> Data? {
        while true {
            if let frames = try? socket.receive(dontWait: true) {
                guard let payload = frames.last else { continue }
                if FastJSON.topLevelString("re", in: payload) == id { return payload }
                continue
            }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return nil }
            let milliseconds = max(1, Int((left.components.attoseconds / 1_000_000_000_000_000) + left.components.seconds * 1000))
            var item = zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            let rc = zmq_poll(&item, 1, milliseconds)
            if rc == 0 { return nil }
            if rc < 0, zmq_errno() != EINTR { return nil }
        }
    }

    /// The loop has taken a handed-over socket as `id`.
    func handedOver(as id: SocketID) {
        state.withLock { _ = $0.handedOver.insert(id) }
    }

    /// A reply the loop waited for has come: its connection is closed, and counts no more.
    func handedOverReplyCame(on id: SocketID) {
        state.withLock { state in
            state.handedOver.remove(id)
            state.handOvers = max(0, state.handOvers - 1)
        }
    }

    private func giveBack(_ lane: UncheckedSocket, answered type: String? = nil) {
        let closed = state.withLock { state -> Bool in
            state.inUse = false
            if let type, state.slowRuns[type] != nil { state.slowRuns[type] = nil }
            if !state.closed { state.socket = lane }
            return state.closed
        }
        if closed { lane.socket.close() }
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
