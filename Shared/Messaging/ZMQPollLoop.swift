import CZeroMQ
import Foundation
import Logging
import Synchronization

/// A token for a socket owned by a `ZMQPollLoop`; safe to pass between threads.
public struct SocketID: Hashable, Sendable {
    let value: Int
}

/// A dedicated thread that owns a set of ZeroMQ sockets and runs `zmq_poll` over them.
///
/// ZeroMQ sockets are not thread-safe and Debian's libzmq has no DRAFT API (no thread-safe
/// sockets, no `zmq_poller`), so every socket is created, used and closed on this one thread.
/// Other threads talk to it through a locked command queue and an eventfd that `zmq_poll`
/// watches beside the sockets: writing to the eventfd is async-signal-safe and thread-safe, which
/// a shared inproc socket would not be. Received messages are handed to the socket's callback on
/// the loop thread; callbacks must be quick (yield into an `AsyncStream`, resume a continuation).
/// The thread never runs on Swift's cooperative pool, so blocking in `zmq_poll` starves nobody.
public final class ZMQPollLoop: @unchecked Sendable {
    // @unchecked: mutable state is either guarded by `shared` or touched only on the loop thread.

    public typealias MessageHandler = @Sendable ([Data]) -> Void
    /// A handler that may answer on the same socket at once: what it returns is sent before the
    /// next message is read, with no queue and no wake-up in between.
    public typealias ReplyingHandler = @Sendable ([Data]) -> [Data]?
    /// A replying handler on a CURVE server, also given the message's `User-Id` (what the ZAP
    /// handler answered for the connection's key).
    public typealias AuthenticatedHandler = @Sendable ([Data], _ userID: String?) -> [Data]?

    private struct Shared {
        var commands: [@Sendable (LoopState) -> Void] = []
        var stopping = false
        var nextID = 0
    }

    /// State owned by the loop thread.
    final class LoopState {
        var sockets: [Int: ZMQSocket] = [:]
        var handlers: [Int: AuthenticatedHandler] = [:]
        /// Messages that could not be sent without blocking, retried when the socket is writable.
        var pending: [Int: [[Data]]] = [:]
        /// ROUTER sockets: messages parked per peer (the first frame, its routing id), so that one
        /// peer whose pipe is full holds up only its own replies.
        var parked: [Int: [Data: ParkedReplies]] = [:]
        /// Sockets taken over for one reply, closed once it came (`adopt`).
        var oneReply: Set<Int> = []
        /// When parked messages are next tried: a ROUTER reports POLLOUT when *any* pipe has room,
        /// so polling for it would spin while one peer stays full.
        var nextParkedRetry: ContinuousClock.Instant?
        /// Sockets whose last operation was a receive that found nothing, which also processed
        /// every command libzmq had signalled to them: until something else touches one, its
        /// descriptor alone says when it has more (`ZMQ_FD`), and the loop can wait on the
        /// descriptors without `zmq_poll`'s extra passes (a poll and a `ZMQ_EVENTS` check per
        /// socket before it waits, and another check after: three system calls a round).
        var quiet: Set<Int> = []
        var descriptors: [Int: Int32] = [:]

        /// A socket's descriptor for `poll`, or nil when libzmq will not give it.
        func descriptor(_ id: Int) -> Int32? {
            if let known = descriptors[id] { return known }
            guard let fd = try? sockets[id]?.getInt32Option(ZMQ_FD) else { return nil }
            descriptors[id] = fd
            return fd
        }

        func forget(_ id: Int) {
            quiet.remove(id)
            descriptors.removeValue(forKey: id)
        }
    }

    /// Messages waiting for one peer's pipe to have room, oldest first.
    struct ParkedReplies {
        var messages: [[Data]] = []
        var bytes = 0
        var dropped = 0
        /// When the peer last took a message (or was parked): a peer that did lately is retried
        /// on the short timer.
        var lastProgress = ContinuousClock.now
    }

    public let context: ZMQContext
    public let name: String
    private let logger: Logger
    private let shared = Mutex(Shared())
    private let wakeFD: Int32
    private let pollTimeoutMilliseconds: Int
    private let finished = Mutex<[CheckedContinuation<Void, Never>]?>([])
    private let maxPendingPerSocket: Int
    private let maxParkedPerPeer: Int
    private let maxParkedBytesPerPeer: Int
    /// How often messages parked for full peers are tried again, besides whenever a ROUTER's
    /// commands may have given one room.
    private let parkedRetryInterval: Duration
    /// The same, soon after a peer's pipe filled or while its parked messages are going: a pipe
    /// that a pipelining peer fills is usually emptied by the I/O thread within microseconds, and
    /// the word of it can reach the socket unseen (a send may read it), so a peer still taking its
    /// replies is tried again within a millisecond (by default). A peer that has taken nothing for
    /// `drainingFor` waits the full interval.
    private let drainingRetryInterval: Duration
    /// How long after a peer last took a message it still counts as draining.
    private let drainingFor: Duration = .milliseconds(20)
    /// Replies parked in all (a peer's pipe full at the time), for tests.
    let parkedInAll = Atomic<Int>(0)
    /// The loop thread's `pthread_self()`, so that work queued from the loop thread itself needs no wake-up.
    private let loopThread = Atomic<UInt>(0)
    /// The loop's state, for `forward` from a handler; read and written on the loop thread only.
    private var loopState: LoopState?

    /// Starts the loop's thread.
    /// - Parameters:
    ///   - pollTimeoutMilliseconds: the finite `zmq_poll` timeout; wake-ups make it rarely matter.
    ///   - maxPendingPerSocket: messages kept for a socket that cannot send now; beyond it they are dropped and logged.
    ///   - maxParkedPerPeer: on a ROUTER, messages kept for one peer whose pipe is full (and at most
    ///     `maxParkedBytesPerPeer` bytes); beyond either, that peer's newer messages are dropped.
    ///   - parkedRetryInterval: how often parked messages are tried again on a timer.
    ///   - drainingRetryInterval: the same while a peer is still taking its replies (at most
    ///     `parkedRetryInterval`).
    public init(
        context: ZMQContext? = nil, name: String, logger: Logger = Logger(label: "duban.zmq"),
        pollTimeoutMilliseconds: Int = 250, maxPendingPerSocket: Int = 100_000, maxParkedPerPeer: Int = 1_000,
        maxParkedBytesPerPeer: Int = 32 << 20, parkedRetryInterval: Duration = .milliseconds(10),
        drainingRetryInterval: Duration = .milliseconds(1)
    ) {
        self.parkedRetryInterval = parkedRetryInterval
        self.drainingRetryInterval = min(drainingRetryInterval, parkedRetryInterval)
        self.context = context ?? ZMQContext()
        self.name = name
        self.logger = logger
        self.pollTimeoutMilliseconds = pollTimeoutMilliseconds
        self.maxPendingPerSocket = maxPendingPerSocket
        self.maxParkedPerPeer = maxParkedPerPeer
        self.maxParkedBytesPerPeer = maxParkedBytesPerPeer
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        let thread = Thread { [self] in self.run() }
        thread.name = "zmq-\(name)"
        thread.start()
    }

    deinit {
        close(wakeFD)
    }

    // MARK: API for any thread

    /// Creates a socket on the loop thread, applies `options`, runs `setup` (bind/connect) there,
    /// and registers `onMessage` for what it receives. Throws what `setup` threw.
    public func addSocket(
        _ type: ZMQSocketType, options: ZMQSocketOptions = ZMQSocketOptions(),
        setup: @escaping @Sendable (ZMQSocket) throws -> Void,
        onMessage: MessageHandler? = nil
    ) async throws -> SocketID {
        var replying: ReplyingHandler?
        if let onMessage {
            replying = { frames -> [Data]? in
                onMessage(frames)
                return nil
            }
        }
        return try await addSocket(type, options: options, setup: setup, replying: replying)
    }

    /// Like `addSocket(_:options:setup:onMessage:)`, with a handler that may reply at once on the same socket.
    public func addSocket(
        _ type: ZMQSocketType, options: ZMQSocketOptions = ZMQSocketOptions(),
        setup: @escaping @Sendable (ZMQSocket) throws -> Void,
        replying onMessage: ReplyingHandler?
    ) async throws -> SocketID {
        var authenticated: AuthenticatedHandler?
        if let onMessage { authenticated = { frames, _ in onMessage(frames) } }
        return try await addSocket(type, options: options, setup: setup, authenticated: authenticated)
    }

    /// Like `addSocket(_:options:setup:replying:)`, for a CURVE server whose handler needs each
    /// message's `User-Id`.
    public func addSocket(
        _ type: ZMQSocketType, options: ZMQSocketOptions = ZMQSocketOptions(),
        setup: @escaping @Sendable (ZMQSocket) throws -> Void,
        authenticated onMessage: AuthenticatedHandler?
    ) async throws -> SocketID {
        let id = shared.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let context = self.context
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SocketID, any Error>) in
            let accepted = submit { state in
                do {
                    let socket = try ZMQSocket(context: context, type: type)
                    try socket.apply(options)
                    try setup(socket)
                    state.sockets[id] = socket
                    if type == .router { state.parked[id] = [:] }
                    if let onMessage { state.handlers[id] = onMessage }
                    continuation.resume(returning: SocketID(value: id))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            if !accepted { continuation.resume(throwing: ZMQError(code: ETERM, operation: "add socket to stopped loop \(name)")) }
        }
    }

    /// A socket id for `adopt`, known before the socket is handed over.
    func reserveSocketID() -> SocketID {
        SocketID(
            value: shared.withLock { state -> Int in
                state.nextID += 1
                return state.nextID
            })
    }

    /// Takes over a socket made and used on another thread (`DirectLane` hands one over with one
    /// request outstanding on it): from now on it lives on the loop thread, its one reply goes to
    /// `onMessage`, and then it is closed. libzmq allows the move given a memory barrier, which the
    /// command queue's lock is.
    func adopt(_ socket: DirectLane.UncheckedSocket, as id: SocketID, onMessage: @escaping MessageHandler) {
        let accepted = submit { state in
            state.sockets[id.value] = socket.socket
            state.handlers[id.value] = { frames, _ in
                onMessage(frames)
                return nil
            }
            state.oneReply.insert(id.value)
        }
        if !accepted { socket.socket.close() }
    }

    /// Sends at once when called on the loop thread (a socket's handler forwarding what it received
    /// to another socket of the loop), in order behind what waits for that socket; queues otherwise.
    public func forward(_ socket: SocketID, _ frames: [Data]) {
        if isLoopThread, let state = loopState {
            sendNow(state, socket.value, frames)
        } else {
            send(socket, frames)
        }
    }

    /// Queues a message for sending from the loop thread. Never blocks the caller.
    public func send(_ socket: SocketID, _ frames: [Data]) {
        _ = submit { [self] state in self.sendNow(state, socket.value, frames) }
    }

    /// Queues a message, then runs `sent` on the loop thread once it has been handed to the socket
    /// (or queued behind older ones), in order with everything else queued.
    public func send(_ socket: SocketID, _ frames: [Data], then sent: @escaping @Sendable () -> Void) {
        let accepted = submit { [self] state in
            self.sendNow(state, socket.value, frames)
            sent()
        }
        if !accepted { sent() }
    }

    /// Runs `body` on the loop thread, in order with the sends queued before it.
    public func runOnLoop(_ body: @escaping @Sendable () -> Void) {
        if !submit({ _ in body() }) { body() }
    }

    /// Whether the caller is running on this loop's thread (a socket callback, or a task on this loop as its executor).
    public var isLoopThread: Bool {
        loopThread.load(ordering: .relaxed) == UInt(pthread_self())
    }

    /// Runs `body` with the socket on the loop thread (to change options, subscribe, and so on).
    public func withSocket<T: Sendable>(_ socket: SocketID, _ body: @escaping @Sendable (ZMQSocket) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = submit { state in
                guard let s = state.sockets[socket.value] else {
                    continuation.resume(throwing: ZMQError(code: ENOTSOCK, operation: "socket \(socket.value) is closed"))
                    return
                }
                continuation.resume(with: Result { try body(s) })
            }
            if !accepted { continuation.resume(throwing: ZMQError(code: ETERM, operation: "loop \(name) stopped")) }
        }
    }

    /// Unbinds `endpoint` (as bound: a socket's `lastEndpoint`) and binds it again, which drops every
    /// peer connected through it; they reconnect (and handshake again). libzmq closes the listener
    /// in its I/O thread, so the bind is retried briefly, from the caller's task, never blocking the loop.
    public func rebind(_ socket: SocketID, endpoint: String) async throws {
        try await withSocket(socket) { try $0.unbind(endpoint) }
        for attempt in 1...200 {
            do {
                return try await withSocket(socket) { try $0.bind(endpoint) }
            } catch  where attempt < 200 {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// Closes one socket on the loop thread.
    public func closeSocket(_ socket: SocketID) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let accepted = submit { state in
                state.forget(socket.value)
                state.sockets.removeValue(forKey: socket.value)?.close()
                state.handlers.removeValue(forKey: socket.value)
                state.oneReply.remove(socket.value)
                state.pending.removeValue(forKey: socket.value)
                state.parked.removeValue(forKey: socket.value)
                continuation.resume()
            }
            if !accepted { continuation.resume() }
        }
    }

    /// Stops the loop: closes every socket on its thread, then returns once the thread is done.
    public func shutdown() async {
        let alreadyStopping = shared.withLock { state -> Bool in
            defer { state.stopping = true }
            return state.stopping
        }
        if !alreadyStopping { wake() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Loop thread

    @discardableResult
    private func submit(_ command: @escaping @Sendable (LoopState) -> Void) -> Bool {
        let accepted = shared.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.commands.append(command)
            return true
        }
        // The loop thread drains the queue before it polls again, so it need not wake itself.
        if accepted && !isLoopThread { wake() }
        return accepted
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, MemoryLayout<UInt64>.size)
    }

    private func drainWakeFD() {
        var value: UInt64 = 0
        _ = read(wakeFD, &value, MemoryLayout<UInt64>.size)
    }

    private func sendNow(_ state: LoopState, _ id: Int, _ frames: [Data]) {
        // A send may process the socket's commands, taking the signal a receive would have waited for.
        state.quiet.remove(id)
        guard let socket = state.sockets[id] else {
            logger.debug("dropping message for closed socket", metadata: ["zmq.loop": "\(name)"])
            return
        }
        if state.parked[id] != nil {
            sendToPeer(state, id, socket, frames)
            return
        }
        // Keep order: while older messages wait, newer ones queue behind them.
        if var queue = state.pending[id], !queue.isEmpty {
            if queue.count >= maxPendingPerSocket {
                logger.warning("send queue full, dropping message", metadata: ["zmq.loop": "\(name)", "zmq.socket": "\(id)"])
                return
            }
            queue.append(frames)
            state.pending[id] = queue
            return
        }
        do {
            try socket.send(frames)
        } catch let error as ZMQError where error.wouldBlock {
            state.pending[id, default: []].append(frames)
        } catch {
            // EHOSTUNREACH from a ROUTER_MANDATORY socket: the peer has gone; nothing can deliver it.
            logger.debug("send failed", metadata: ["zmq.loop": "\(name)", "error": "\(error)"])
        }
    }

    /// A ROUTER's send: to the peer named by the first frame, behind that peer's parked messages.
    /// A full pipe parks the message for that peer alone; the loop never blocks and never waits on it.
    private func sendToPeer(_ state: LoopState, _ id: Int, _ socket: ZMQSocket, _ frames: [Data]) {
        let peer = frames[0]
        if var queue = state.parked[id]?[peer] {
            let bytes = frames.reduce(0) { $0 + $1.count }
            if queue.messages.count >= maxParkedPerPeer || queue.bytes + bytes > maxParkedBytesPerPeer {
                // The peer stopped reading: PROTOCOL.md section 2 lets its replies go.
                if queue.dropped == 0 {
                    logger.warning("peer not reading its replies; dropping them", metadata: ["zmq.loop": "\(name)"])
                }
                queue.dropped += 1
            } else {
                queue.messages.append(frames)
                queue.bytes += bytes
            }
            state.parked[id]?[peer] = queue
            return
        }
        do {
            do {
                try socket.send(frames)
            } catch let error as ZMQError where error.wouldBlock {
                // The pipe may only look full: the I/O thread reports what it has taken from it in
                // commands, which a send reads at most once a millisecond. Reading them now
                // (ZMQ_EVENTS) and trying once more keeps a pipelining peer's replies from waiting
                // for the retry timer whenever its window reaches the high-water mark.
                _ = socket.pendingEvents
                try socket.send(frames)
            }
        } catch let error as ZMQError where error.wouldBlock {
            state.parked[id]?[peer] = ParkedReplies(messages: [frames], bytes: frames.reduce(0) { $0 + $1.count })
            parkedInAll.add(1, ordering: .relaxed)
            let soon = ContinuousClock.now + drainingRetryInterval
            state.nextParkedRetry = min(state.nextParkedRetry ?? soon, soon)
        } catch {
            // EHOSTUNREACH: the peer has gone; nothing can deliver it.
            logger.debug("send failed", metadata: ["zmq.loop": "\(name)", "error": "\(error)"])
        }
    }

    /// Tries parked peers' messages again (every socket's, or `only` one's), oldest first, until
    /// a peer's pipe is full again; returns how many went.
    @discardableResult
    private func retryParked(_ state: LoopState, only: Int? = nil) -> Int {
        var sentInAll = 0
        for (id, peers) in state.parked where !peers.isEmpty && (only == nil || only == id) {
            guard let socket = state.sockets[id] else { continue }
            state.quiet.remove(id)
            for (peer, var queue) in peers {
                var sent = 0
                while sent < queue.messages.count {
                    do {
                        try socket.send(queue.messages[sent])
                        sent += 1
                    } catch let error as ZMQError where error.wouldBlock {
                        break
                    } catch {
                        // The peer has gone: everything parked for it goes too.
                        sent = queue.messages.count
                    }
                }
                sentInAll += sent
                if sent > 0 { queue.lastProgress = .now }
                if sent == queue.messages.count {
                    if queue.dropped > 0 {
                        logger.notice(
                            "peer reading again", metadata: ["zmq.loop": "\(name)", "zmq.dropped": "\(queue.dropped)"])
                    }
                    state.parked[id]?[peer] = nil
                } else {
                    queue.bytes -= queue.messages[..<sent].reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
                    queue.messages.removeFirst(sent)
                    state.parked[id]?[peer] = queue
                }
            }
        }
        let anyLeft = state.parked.values.contains { !$0.isEmpty }
        // A peer that took messages lately is tried again soon even when nothing went this time:
        // its word of room may have been read unseen (by a send, or by the receive after the last
        // look at the descriptor), and then nothing else would wake the loop for it.
        let drainingSince = ContinuousClock.now - drainingFor
        let anyDraining = state.parked.values.contains { $0.values.contains { $0.lastProgress > drainingSince } }
        if !anyLeft {
            state.nextParkedRetry = nil
        } else if sentInAll > 0 || anyDraining {
            let soon = ContinuousClock.now + drainingRetryInterval
            state.nextParkedRetry = only == nil ? soon : min(state.nextParkedRetry ?? soon, soon)
        } else if only == nil || state.nextParkedRetry == nil {
            state.nextParkedRetry = .now + parkedRetryInterval
        }
        return sentInAll
    }

    /// Whether libzmq has signalled commands to a socket that it has not read yet: its descriptor
    /// is readable exactly then (a socket's mailbox, once drained, signals the next command).
    private func hasUnreadCommands(_ state: LoopState, _ id: Int) -> Bool {
        guard let fd = state.descriptor(id) else { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    private func flushPending(_ state: LoopState, _ id: Int) {
        guard var queue = state.pending[id], let socket = state.sockets[id] else { return }
        state.quiet.remove(id)
        var sent = 0
        while sent < queue.count {
            do {
                try socket.send(queue[sent])
                sent += 1
            } catch let error as ZMQError where error.wouldBlock {
                break
            } catch {
                logger.debug("send failed", metadata: ["zmq.loop": "\(name)", "error": "\(error)"])
                sent += 1
            }
        }
        queue.removeFirst(sent)
        state.pending[id] = queue.isEmpty ? nil : queue
    }

    private func run() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        let state = LoopState()
        loopState = state
        var items: [zmq_pollitem_t] = []
        var ids: [Int] = []
        var commands: [@Sendable (LoopState) -> Void] = []
        var roundsWithoutPoll = 0
        var pollDescriptors: [pollfd] = []
        while true {
            let stopping = shared.withLock { shared -> Bool in
                swap(&commands, &shared.commands)
                return shared.stopping
            }
            // A command may do anything with any socket (send, receive, close): none is quiet after.
            if !commands.isEmpty { state.quiet.removeAll(keepingCapacity: true) }
            for command in commands { command(state) }
            commands.removeAll(keepingCapacity: true)
            if stopping { break }
            // A send since the last receive may have read a ROUTER's commands, and with them the
            // word that a parked peer has room, which no descriptor will repeat: read and retry now
            // (before the look at the queue below, since a handler may queue work).
            for (id, peers) in state.parked where !peers.isEmpty && !state.quiet.contains(id) { receiveAll(state, id) }
            // Commands queued by the ones just run (a task on this loop sending its next request)
            // run at once, before any poll: a poll that finds nothing costs a round trip several
            // syscalls. A few rounds at most, then a poll that does not wait, so sockets are not starved.
            let morePending = shared.withLock { !$0.commands.isEmpty || $0.stopping }
            if morePending && roundsWithoutPoll < 4 {
                roundsWithoutPoll += 1
                continue
            }
            roundsWithoutPoll = 0

            items.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            items.append(zmq_pollitem_t(socket: nil, fd: wakeFD, events: Int16(ZMQ_POLLIN), revents: 0))
            ids.append(0)
            for (id, socket) in state.sockets {
                var events: Int16 = 0
                if state.handlers[id] != nil { events |= Int16(ZMQ_POLLIN) }
                if state.pending[id] != nil { events |= Int16(ZMQ_POLLOUT) }
                guard events != 0 else { continue }
                items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: events, revents: 0))
                ids.append(id)
            }
            var timeout = morePending ? 0 : pollTimeoutMilliseconds
            if let retry = state.nextParkedRetry {
                // Rounded up: a wait of 0.4 ms rounded down would be a poll that does not wait,
                // again and again until the time came (a spin).
                let wait = ContinuousClock.now.duration(to: retry)
                let milliseconds = wait <= .zero ? 0 : Int((wait / .milliseconds(1)).rounded(.up))
                timeout = min(timeout, milliseconds)
            }
            if timeout > 0, waitOnDescriptors(state, items: items, ids: ids, timeout: timeout, into: &pollDescriptors) { continue }
            // A ROUTER with parked replies is also watched on its descriptor, which fires on its
            // commands: `zmq_poll` alone would go on waiting when the only news is a pipe's room.
            for (id, peers) in state.parked where !peers.isEmpty && state.handlers[id] != nil {
                guard let fd = state.descriptor(id) else { continue }
                items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0))
                ids.append(-id)
            }
            let rc = zmq_poll(&items, Int32(items.count), timeout)
            if rc < 0 {
                if zmq_errno() == EINTR { continue }
                logger.error("zmq_poll failed", metadata: ["zmq.loop": "\(name)", "error": "\(ZMQError.last("poll"))"])
                continue
            }
            if items[0].revents != 0 { drainWakeFD() }
            for index in 1..<items.count where items[index].revents != 0 {
                let id = ids[index]
                // A parked ROUTER's commands: the receive reads them, then tries its parked replies.
                if id < 0 {
                    receiveAll(state, -id)
                    continue
                }
                if items[index].revents & Int16(ZMQ_POLLOUT) != 0 { flushPending(state, id) }
                if items[index].revents & Int16(ZMQ_POLLIN) != 0 { receiveAll(state, id) }
            }
            if let retry = state.nextParkedRetry, retry <= .now { retryParked(state) }
        }
        // Newest first: the ZAP handler, made before any CURVE socket, is closed after the last.
        for id in state.sockets.keys.sorted(by: >) { state.sockets[id]?.close() }
        state.sockets.removeAll()
        loopState = nil
        state.handlers.removeAll()
        let waiters = finished.withLock { waiters -> [CheckedContinuation<Void, Never>] in
            defer { waiters = nil }
            return waiters ?? []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits as `zmq_poll` would when the sockets to wait on are all ROUTERs, quiet and waited on
    /// only for reading: on their descriptors and the wake-up descriptor (`pollDescriptors`, kept
    /// between rounds for its storage), then reads the sockets whose descriptor fired. False when
    /// it did not wait: the round is `zmq_poll`'s.
    private func waitOnDescriptors(
        _ state: LoopState, items: [zmq_pollitem_t], ids: [Int], timeout: Int, into pollDescriptors: inout [pollfd]
    ) -> Bool {
        pollDescriptors.removeAll(keepingCapacity: true)
        pollDescriptors.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
        for index in 1..<items.count {
            // ROUTERs only (a service's requests, where a round's system calls are most of the
            // server's share): a client's or a subscriber's loop is woken by commands anyway.
            guard items[index].events == Int16(ZMQ_POLLIN), state.parked[ids[index]] != nil, state.quiet.contains(ids[index]),
                let fd = state.descriptor(ids[index])
            else { return false }
            pollDescriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }
        let rc = poll(&pollDescriptors, nfds_t(pollDescriptors.count), Int32(clamping: timeout))
        if rc < 0 { return true }  // EINTR: the next round polls again
        // Nothing for a whole timeout: the next round asks libzmq itself (`zmq_poll` checks each
        // socket's events), so a signal missed here could cost one timeout, never a socket.
        if rc == 0 { state.quiet.removeAll(keepingCapacity: true) }
        if pollDescriptors[0].revents != 0 { drainWakeFD() }
        // A descriptor that fired means commands for the socket, not always a message: the
        // receive processes them and, finding nothing, leaves the socket quiet again.
        for index in 1..<pollDescriptors.count where pollDescriptors[index].revents != 0 { receiveAll(state, ids[index]) }
        if let retry = state.nextParkedRetry, retry <= .now { retryParked(state) }
        return true
    }

    /// Reads what is waiting on a socket, a bounded number of messages per round for fairness.
    private func receiveAll(_ state: LoopState, _ id: Int) {
        guard let socket = state.sockets[id], let handler = state.handlers[id] else { return }
        state.quiet.remove(id)
        var commandsReadSinceRetry = true
        var parkedPasses = 0
        for _ in 0..<1024 {
            do {
                var userID: String?
                guard let frames = try socket.receive(userID: &userID) else {
                    // Finding nothing, the receive read the socket's commands, among them perhaps
                    // the I/O thread's word that a full pipe has room again: parked replies can go
                    // now, not at the next timer. The sends may read commands in turn (a message's
                    // arrival, which the next receive finds); whether any are left for it to read,
                    // and so whether to try again after it, the descriptor says. (A command that
                    // comes between that look and the receive is caught by the draining timer.) A
                    // peer that stays full costs a refused send or two a wake-up, never a spin.
                    if commandsReadSinceRetry, parkedPasses < 16, state.parked[id]?.isEmpty == false {
                        parkedPasses += 1
                        let sent = retryParked(state, only: id)
                        commandsReadSinceRetry = sent > 0 || hasUnreadCommands(state, id)
                        continue
                    }
                    state.quiet.insert(id)
                    return
                }
                // The receives after this one read commands again before finding nothing.
                commandsReadSinceRetry = true
                if let reply = handler(frames, userID) { sendNow(state, id, reply) }
                if state.oneReply.remove(id) != nil {
                    state.forget(id)
                    state.sockets.removeValue(forKey: id)?.close()
                    state.handlers.removeValue(forKey: id)
                    return
                }
            } catch {
                logger.warning("receive failed", metadata: ["zmq.loop": "\(name)", "error": "\(error)"])
                return
            }
        }
    }
}

/// A ZAP request (RFC 27): a peer's CURVE handshake, asking whether its key may come in.
public struct ZAPRequest: Sendable {
    public var domain: String
    /// The peer's address (IP) as libzmq saw it.
    public var address: String
    public var mechanism: String
    /// The client's public key in Z85, for CURVE.
    public var publicKey: String?
}

/// A ZAP handler's answer.
public enum ZAPDecision: Sendable {
    /// Admitted; `userID` becomes every message's `User-Id` property.
    case allow(userID: String)
    /// Refused: the handshake fails and the peer gets nothing.
    case deny(reason: String)
}

extension ZMQPollLoop {
    /// The ZAP endpoint libzmq asks, per context (RFC 27).
    public static let zapEndpoint = "inproc://zeromq.zap.01"

    /// Binds the ZAP handler of this loop's context: every CURVE handshake on any socket of the
    /// context asks `decide`, on the loop's thread. Bind it before any CURVE socket; the loop closes
    /// it after the last. A request that is not well-formed ZAP is refused.
    public func startZAPHandler(_ decide: @escaping @Sendable (ZAPRequest) -> ZAPDecision) async throws -> SocketID {
        try await addSocket(
            .rep, setup: { socket in try socket.bind(Self.zapEndpoint) },
            replying: { frames -> [Data]? in
                // version, request id, domain, address, routing id, mechanism, credentials…
                let requestID = frames.count > 1 ? frames[1] : Data()
                func reply(_ status: String, _ text: String, _ userID: String) -> [Data] {
                    [Data("1.0".utf8), requestID, Data(status.utf8), Data(text.utf8), Data(userID.utf8), Data()]
                }
                guard frames.count >= 6, frames[0] == Data("1.0".utf8) else { return reply("400", "malformed ZAP request", "") }
                let mechanism = String(decoding: frames[5], as: UTF8.self)
                let request = ZAPRequest(
                    domain: String(decoding: frames[2], as: UTF8.self), address: String(decoding: frames[3], as: UTF8.self),
                    mechanism: mechanism, publicKey: mechanism == "CURVE" && frames.count >= 7 ? ZMQCurve.z85(frames[6]) : nil)
                switch decide(request) {
                case .allow(let userID): return reply("200", "OK", userID)
                case .deny(let reason): return reply("400", reason, "")
                }
            })
    }
}

/// The loop's thread as an executor. As a task executor, a task that prefers it
/// (`withTaskExecutorPreference(loop)`) runs between polls on the thread that owns the sockets; as
/// a serial executor it backs an actor (`SocketThread`), and a continuation created on that actor
/// resumes there directly, so sending a request and resuming on its reply cost no thread
/// hand-over. Jobs must be short, as socket callbacks must; a job queued after the loop stopped
/// runs on the global executor instead, so no task is ever stranded.
extension ZMQPollLoop: TaskExecutor, SerialExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let accepted = submit { [self] _ in
            unowned.runSynchronously(isolatedTo: self.asUnownedSerialExecutor(), taskExecutor: self.asUnownedTaskExecutor())
        }
        if !accepted { globalConcurrentExecutor.enqueue(ExecutorJob(unowned)) }
    }

    public func checkIsolated() {
        precondition(isLoopThread, "expected to run on the poll loop \(name)'s thread")
    }
}
