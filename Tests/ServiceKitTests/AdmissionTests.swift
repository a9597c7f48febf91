import Foundation
import Schema
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
