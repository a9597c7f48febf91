import Synchronization

/// A queue of at most `capacity` elements between one producer and one consumer: the producer
/// waits while it is full, so a slow consumer slows its producer instead of growing memory.
/// Either side stops waiting when its task is cancelled or the channel is finished.
public final class BoundedChannel<Element: Sendable>: Sendable {
    private struct State {
        var buffer: [Element] = []
        var head = 0
        var finished = false
        var consumer: CheckedContinuation<Element?, Never>?
        var producer: CheckedContinuation<Bool, Never>?
        var count: Int { buffer.count - head }
    }

    private enum Put {
        case done(Bool, CheckedContinuation<Element?, Never>?)
        case wait
    }

    private enum Take {
        case element(Element, CheckedContinuation<Bool, Never>?)
        case end
        case wait
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// The elements as an `AsyncStream`, for `for await`.
    public var stream: AsyncStream<Element> { AsyncStream(unfolding: { await self.next() }) }

    /// Adds `element`, waiting for room; false when the channel was finished or the caller cancelled.
    @discardableResult
    public func send(_ element: Element) async -> Bool {
        while true {
            let step = state.withLock { state -> Put in
                if state.finished { return .done(false, nil) }
                if let consumer = state.consumer {
                    state.consumer = nil
                    return .done(true, consumer)
                }
                if state.count < capacity {
                    state.buffer.append(element)
                    return .done(true, nil)
                }
                return .wait
            }
            switch step {
            case .done(let sent, let consumer):
                consumer?.resume(returning: element)
                return sent
            case .wait:
                if Task.isCancelled { return false }
                let room = await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                        let resumeNow = state.withLock { state -> Bool in
                            if state.finished || state.count < capacity || Task.isCancelled { return true }
                            state.producer = continuation
                            return false
                        }
                        if resumeNow { continuation.resume(returning: !Task.isCancelled) }
                    }
                } onCancel: {
                    state.withLock { state -> CheckedContinuation<Bool, Never>? in
                        defer { state.producer = nil }
                        return state.producer
                    }?.resume(returning: false)
                }
                if !room { return false }
            }
        }
    }

    /// The next element, or nil once the channel is finished and empty (or the caller is cancelled).
    public func next() async -> Element? {
        let step = state.withLock { state -> Take in
            if state.count > 0 {
                let element = state.buffer[state.head]
                state.head += 1
                if state.head > 1024, state.head * 2 > state.buffer.count {
                    state.buffer.removeFirst(state.head)
                    state.head = 0
                }
                defer { state.producer = nil }
                return .element(element, state.producer)
            }
            return state.finished ? .end : .wait
        }
        switch step {
        case .element(let element, let producer):
            producer?.resume(returning: true)
            return element
        case .end:
            return nil
        case .wait:
            if Task.isCancelled { return nil }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                    let now = state.withLock { state -> Take in
                        if state.count > 0 {
                            let element = state.buffer[state.head]
                            state.head += 1
                            defer { state.producer = nil }
                            return .element(element, state.producer)
                        }
                        if state.finished || Task.isCancelled { return .end }
                        state.consumer = continuation
                        return .wait
                    }
                    switch now {
                    case .element(let element, let producer):
                        producer?.resume(returning: true)
                        continuation.resume(returning: element)
                    case .end: continuation.resume(returning: nil)
                    case .wait: break
                    }
                }
            } onCancel: {
                state.withLock { state -> CheckedContinuation<Element?, Never>? in
                    defer { state.consumer = nil }
                    return state.consumer
                }?.resume(returning: nil)
            }
        }
    }

    /// Ends the channel: waiting sides resume; what is buffered can still be read.
    public func finish() {
        let (consumer, producer) = state.withLock { state in
            state.finished = true
            defer {
                state.consumer = nil
                state.producer = nil
            }
            return (state.consumer, state.producer)
        }
        consumer?.resume(returning: nil)
        producer?.resume(returning: false)
    }
}
