import Foundation
import Schema
import Synchronization
import Testing

@testable import ServiceKit

/// The bound between the socket and the handlers: past a connection's share, or the service's,
/// a request is refused with `unavailable` at once instead of queued.
@Suite struct AdmissionTests {
    static func request(_ id: String, bytes: Int = 100) -> RPCServer.Prepared {
        .request(
            routing: [Data(id.utf8), Data()], DecodedRequest(id: "m-\(id)", type: "case.list", body: Empty()), fingerprint: .success(nil),
            bytes: bytes)
    }

    static func code(_ refusal: [Data]?) throws -> ErrorCode? {
        guard let refusal, let payload = refusal.last else { return nil }
        return try JSONDecoder().decode(ReplyEnvelope<JSONValue>.self, from: payload).error?.code
    }

    @Test func aConnectionPastItsShareIsRefusedAndOthersAreNot() throws {
        let queued = QueuedRequests(limits: RequestLimits(perConnection: 3, total: 100, totalBytes: 1 << 20))
        let a = Data("a".utf8)
        let b = Data("b".utf8)
        for _ in 0..<3 { #expect(queued.admit(Self.request("a"), peer: a) == nil) }
        let refusal = queued.admit(Self.request("a"), peer: a)
        #expect(try Self.code(refusal) == .unavailable)
        #expect(refusal?.first == a, "the refusal goes back to the connection that sent it")
        #expect(queued.admit(Self.request("b"), peer: b) == nil, "another connection is still served")
        queued.done(peer: a, bytes: 100)
        #expect(queued.admit(Self.request("a"), peer: a) == nil, "a reply sent frees a place")
        #expect(queued.hasQueued(a))
    }

    /// The broker's own count per client: past its share it refuses, a reply frees a place, and a
    /// request whose reply never came (its instance died) stops counting after a while.
    @Test func theBrokerCountsEachClientsRequestsInFlight() {
        let admission = BrokerAdmission(perClient: 3, forgetAfter: .seconds(60))
        let a = Data("a".utf8)
        let b = Data("b".utf8)
        let start = ContinuousClock.now
        for _ in 0..<3 { #expect(admission.admit(a, now: start)) }
        #expect(!admission.admit(a, now: start), "a fourth request in flight is refused")
        #expect(admission.admit(b, now: start), "another client is still served")
        admission.answered(a)
        #expect(admission.admit(a, now: start), "a reply frees a place")
        #expect(!admission.admit(a, now: start + .seconds(59)))
        #expect(admission.admit(a, now: start + .seconds(61)), "unanswered requests stop counting")
        #expect(admission.count(a) == 1)
        admission.answered(Data("nobody".utf8))
    }

    @Test func theServiceAsAWholeIsBoundedInCountAndBytes() throws {
        let queued = QueuedRequests(limits: RequestLimits(perConnection: 100, total: 4, totalBytes: 1_000))
        for peer in 0..<4 { #expect(queued.admit(Self.request("\(peer)"), peer: Data("\(peer)".utf8)) == nil) }
        #expect(try Self.code(queued.admit(Self.request("x"), peer: Data("x".utf8))) == .unavailable)
        for peer in 0..<4 { queued.done(peer: Data("\(peer)".utf8), bytes: 100) }
        #expect(!queued.hasQueued(Data("0".utf8)))
        #expect(queued.admit(Self.request("big", bytes: 900), peer: Data("big".utf8)) == nil)
        #expect(try Self.code(queued.admit(Self.request("more", bytes: 200), peer: Data("more".utf8))) == .unavailable)
    }

    @Test func refusalsAreAnsweredWithoutQueueing() throws {
        let queued = QueuedRequests(limits: RequestLimits(perConnection: 1, total: 1, totalBytes: 1_000))
        let answered = RPCServer.Prepared.answered(routing: [Data("a".utf8), Data()], reply: Data("{}".utf8))
        #expect(queued.admit(answered, peer: Data("a".utf8)) == nil)
    }
}

/// Whether `operation` finishes within `limit`: a wait that should end fails the test instead of
/// hanging it.
/// (The operation is left running when it does not: these waits take no cancellation.)
func finishes(within limit: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
    let done = Atomic<Bool>(false)
    Task {
        await operation()
        done.store(true, ordering: .releasing)
    }
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if done.load(ordering: .acquiring) { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return done.load(ordering: .acquiring)
}

/// A read waits for its own connection's writes queued before it, and for no others.
@Suite struct WriteOrderTests {
    @Test func aReadWaitsOnlyForItsOwnConnectionsEarlierWrites() async {
        let writes = WritesInFlight()
        let a = Data("a".utf8)
        let b = Data("b".utf8)
        await writes.begin(a)
        let afterFirst = await writes.gate(for: a)
        #expect(afterFirst != nil, "a read behind a write of its connection waits")
        #expect(await writes.gate(for: b) == nil, "another connection's read does not")
        await writes.begin(a)
        let afterSecond = await writes.gate(for: a)
        #expect(await !finishes(within: .milliseconds(100)) { await afterFirst?.wait() }, "not before the write ends")
        await writes.end(a)
        // The first write is done: the read queued after it goes, though a later write is in flight.
        #expect(await finishes(within: .seconds(2)) { await afterFirst?.wait() })
        #expect(await !finishes(within: .milliseconds(100)) { await afterSecond?.wait() })
        await writes.end(a)
        #expect(await finishes(within: .seconds(2)) { await afterSecond?.wait() })
        #expect(await writes.gate(for: a) == nil, "nothing in flight: nothing to wait for")
    }

    @Test func connectionsBehindTheBrokerAreTheirOwn() {
        let direct = RPCServer.Prepared.answered(routing: [Data("c1".utf8), Data()], reply: Data())
        let viaBroker1 = RPCServer.Prepared.answered(routing: [Data("broker".utf8), Data("c1".utf8), Data()], reply: Data())
        let viaBroker2 = RPCServer.Prepared.answered(routing: [Data("broker".utf8), Data("c2".utf8), Data()], reply: Data())
        #expect(viaBroker1.peer != viaBroker2.peer)
        #expect(direct.peer != viaBroker1.peer)
    }
}

/// Slow reads of one connection leave the other read slots to everyone else.
@Suite struct ReadSlotTests {
    @Test func aConnectionHoldsAtMostItsShareOfTheReadSlots() async throws {
        let slots = ReadSlots(count: 8, perConnection: 2)
        let a = Data("a".utf8)
        let b = Data("b".utf8)
        await slots.acquire(for: a)
        await slots.acquire(for: a)
        let third = Task { await slots.acquire(for: a) }
        try await Task.sleep(for: .milliseconds(50))
        // A third read of `a` waits though six slots are free; `b` gets one at once.
        #expect(await finishes(within: .seconds(2)) { await slots.acquire(for: b) }, "another connection is not held up")
        #expect(await !finishes(within: .milliseconds(100)) { await third.value }, "a connection past its share waits")
        await slots.release(for: a)
        #expect(await finishes(within: .seconds(2)) { await third.value })
        await slots.release(for: a)
        await slots.release(for: a)
        await slots.release(for: b)
    }
}
