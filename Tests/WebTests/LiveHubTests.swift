import DubanConfig
import DubanTesting
import Foundation
import Logging
import Synchronization
import Testing

@testable import WebConsole

/// The live hub under pages that come and go while events flow (500 screens reconnecting in
/// `duban-bench --only web` deadlocked it: a yield under the hub's lock resumed a page's task while
/// that page, being cancelled, held its task's lock and waited for the hub's in its stream's end).
@Suite struct LiveHubTests {
    /// Set by the test, read by its watchdog thread.
    final class Progress: Sendable {
        let finished = Atomic<Bool>(false)
        let pagesDone = Atomic<Bool>(false)
        let delivered = Atomic<Int>(0)
    }

    @Test func pagesCancelledWhileEventsFlowNeverStopTheHub() async throws {
        var deployment = DeploymentConfiguration(dataDirectory: try TestSupport.temporaryDirectory("live-hub"), logLevel: .warning)
        TestSupport.isolate(&deployment)
        var logger = Logger(label: "test.live-hub")
        logger.logLevel = .warning
        let hub = LiveHub(
            gateway: try Gateway(deployment: deployment, keysDirectory: nil, logger: logger), services: [], logger: logger)
        let progress = Progress()
        // A deadlock takes the cooperative pool's threads with it, and no awaiting code here would
        // run again: a thread of its own ends the run visibly instead of leaving it hanging.
        let watchdog = Thread {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                if progress.finished.load(ordering: .acquiring) { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
            fatalError("LiveHub deadlocked: pages cancelled while events flowed stopped the thread pool")
        }
        watchdog.start()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var seq = 0
                while !progress.pagesDone.load(ordering: .acquiring) {
                    seq += 1
                    hub.publish(
                        LiveEvent(
                            stream: "registry", seq: seq, type: "progress.reported", ts: "2026-11-30T12:00:00+08:00",
                            text: "第 \(seq) 次报送"))
                    if seq % 32 == 0 { await Task.yield() }
                }
            }
            group.addTask {
                for _ in 0..<150 {
                    await withTaskGroup(of: Void.self) { pages in
                        for _ in 0..<20 {
                            pages.addTask {
                                let page = await hub.subscribe(after: nil)
                                for await _ in page.stream { progress.delivered.add(1, ordering: .relaxed) }
                            }
                        }
                        try? await Task.sleep(for: .milliseconds(1))
                        pages.cancelAll()
                    }
                }
                progress.pagesDone.store(true, ordering: .releasing)
            }
        }
        progress.finished.store(true, ordering: .releasing)
        #expect(progress.delivered.load(ordering: .relaxed) > 0)
        // The hub still takes pages and feeds them.
        let page = await hub.subscribe(after: nil)
        hub.publish(
            LiveEvent(
                stream: "registry", seq: 1_000_000_000, type: "progress.reported",
                ts: "2026-11-30T12:00:01+08:00", text: "最后"))
        var iterator = page.stream.makeAsyncIterator()
        if case .event(let event)? = await iterator.next() {
            #expect(event.seq == 1_000_000_000)
        } else {
            Issue.record("the last event did not reach a new page")
        }
        hub.unsubscribe(page.id)
    }
}
