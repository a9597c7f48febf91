import DubanTesting
import Foundation
import Testing

/// Every class of malformed message a hostile peer on the network can send, sent by an
/// independent pyzmq client (Tests/clients/hostile.py) to each service running as its own process:
/// each is answered exactly once with the right code, the service keeps answering, and its state
/// (every stream's head) is unchanged.
@Suite(.serialized) struct HostileInputTests {
    /// Per service: a write type and a body of the wrong shape for it.
    static let services: [(executable: String, service: String, write: String, wrongBody: String)] = [
        ("duban-registry", "registry", "progress.report", #"{"task":"1","period":"2026-10","unit":7,"percent":"abc","summary":[]}"#),
        ("duban-ingest", "ingest", "reading.submit", #"{"readings":"none"}"#),
        ("duban-cases", "cases", "case.open", #"{"source":"public_report","title":5,"unit":["a"]}"#),
        ("duban-notify", "notify", "channel.set", #"{"channel":[]}"#),
    ]

    @Test(arguments: services.map(\.service))
    func everyMalformedMessageIsAnsweredOnceAndChangesNothing(_ service: String) async throws {
        let target = try #require(Self.services.first { $0.service == service })
        let process = try await ServiceProcess.start(
            target.executable, arguments: ["--data-dir", try TestSupport.temporaryDirectory()], endpoints: TestSupport.freeEndpoints())
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "clients/hostile.py")
        let output: String
        do {
            output = try TestSupport.run(
                "/usr/bin/env", ["python3", script.path, process.endpoints.rpc, target.service, target.write, target.wrongBody])
        } catch let failure as TestFailure {
            output = failure.description
        }
        #expect(output.contains("ALL OK") && !output.contains("FAILED"), "\(target.executable):\n\(output)\nservice log:\n\(process.log)")
        #expect(await process.terminate() == 0, "\(target.executable) exits cleanly after the hostile client; log:\n\(process.log)")
    }
}
