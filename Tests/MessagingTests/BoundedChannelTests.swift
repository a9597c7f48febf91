import Messaging
import Synchronization
import Testing

/// The subscriber's output: a slow consumer slows its producer; nothing is lost or reordered;
/// cancellation and finishing release whoever waits.
@Suite struct BoundedChannelTests {
    @Test func aSlowConsumerHoldsTheProducerAtTheCapacityAndGetsEverythingInOrder() async {
        let channel = BoundedChannel<Int>(capacity: 4)
        let sent = Atomic<Int>(0)
        let producer = Task {
            for value in 0..<100 {
                await channel.send(value)
                sent.add(1, ordering: .relaxed)
            }
            channel.finish()
        }
        try? await Task.sleep(for: .milliseconds(100))
        #expect(sent.load(ordering: .relaxed) <= 5, "the producer waits at the capacity")
        var received: [Int] = []
        for await value in channel.stream {
            received.append(value)
            if received.count % 10 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
        }
        await producer.value
        #expect(received == Array(0..<100))
    }

    @Test func cancellingAWaitingProducerOrConsumerReleasesIt() async {
        let full = BoundedChannel<Int>(capacity: 1)
        await full.send(1)
        let blocked = Task { await full.send(2) }
        try? await Task.sleep(for: .milliseconds(50))
        blocked.cancel()
        #expect(await blocked.value == false)

        let empty = BoundedChannel<Int>(capacity: 1)
        let waiting = Task { await empty.next() }
        try? await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        #expect(await waiting.value == nil)

        let finished = BoundedChannel<Int>(capacity: 1)
        await finished.send(7)
        finished.finish()
        #expect(await finished.send(8) == false)
        #expect(await finished.next() == 7, "what was buffered can still be read")
        #expect(await finished.next() == nil)
    }
}
