import DubanTesting
import Foundation
import Testing

/// `duban call SERVICE TYPE BODY`: a body that is not JSON is refused before anything is sent, in
/// Chinese, saying where it stops being JSON; one that would kill JSONDecoder is refused the same way.
@Suite struct CLIBodyTests {
    @Test func aBadBodyIsOneChineseSentenceWithItsPlace() throws {
        // Every service at a closed port of this test's own: nothing here may reach a deployment.
        let entries = ["registry", "ingest", "cases", "notify"].map { name in
            let endpoints = TestSupport.freeEndpoints()
            return "\"\(name)\": {\"rpc\": \"\(endpoints.rpc)\", \"events\": \"\(endpoints.events)\"}"
        }
        let config = try TestSupport.temporaryDirectory("duban-cli-body") + "/duban.json"
        try Data("{\(entries.joined(separator: ", ")), \"keysDir\": \"\"}".utf8).write(to: URL(fileURLWithPath: config))
        func refusal(_ body: String) -> String {
            do {
                let output = try TestSupport.run(
                    "\(TestSupport.binDirectory)/duban", ["--config", config, "call", "registry", "sys.ping", body, "--timeout", "0.3"])
                return "exited 0: \(output)"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(#"{"a":x}"#).contains("请求体不是有效的 JSON（第 1 行第 6 列附近）"))
        #expect(refusal("{\n  \"a\": 1,\n  \"站点\": 中\n}").contains("请求体不是有效的 JSON（第 3 行第 9 列附近）"))
        #expect(refusal("[[").contains("请求体不是有效的 JSON（内容不完整，缺少结尾）"))
        let deep = refusal(String(repeating: "[", count: 513))
        #expect(deep.contains("请求体不是有效的 JSON") && !deep.contains("crashed"), "\(deep)")
        #expect(!refusal(#"{"a":x}"#).contains("DecodingError"))
    }
}
