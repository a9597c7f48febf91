import CaseTracking
import DubanTesting
import Foundation
import Messaging
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// What the CLI shows of data anyone could type: no terminal control reaches the terminal
/// (`ESC[2J` must not clear an operator's screen), the text around it does.
@Suite(.serialized) struct DisplayTextTests {
    /// Every kind of scalar `DisplayText` drops: C0 (ESC, CR, BEL), DEL, C1 (CSI), bidi overrides and isolates.
    static let hostile = "\u{1B}[2J清屏\u{1B}[8m隐藏\r覆盖\u{07}\u{7F}\u{9B}31m红\u{202E}反转\u{2066}隔离\u{2069}"
    static let unsafe: [Unicode.Scalar] = ["\u{1B}", "\r", "\u{07}", "\u{7F}", "\u{9B}", "\u{202E}", "\u{2066}", "\u{2069}"]

    static func clean(_ text: String) -> Bool { !text.unicodeScalars.contains { unsafe.contains($0) } }

    @Test func theSanitizerKeepsTextNewlinesAndTabsAndDropsControls() {
        #expect(DisplayText.sanitized(Self.hostile) == "[2J清屏[8m隐藏覆盖31m红反转隔离")
        #expect(DisplayText.sanitized("第一行\n\t第二行") == "第一行\n\t第二行")
        for value in UInt32(0)...0x2100 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let dropped = DisplayText.sanitized("a\(Character(scalar))b") == "ab"
            let expected =
                (value < 0x20 && value != 0x09 && value != 0x0A) || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
                || (0x2066...0x2069).contains(value)
            #expect(dropped == expected, "U+\(String(value, radix: 16))")
        }
        #expect(DisplayText.sanitized("a\u{200F}b") == "a\u{200F}b", "a plain direction mark is not an override")
    }

    @Test func theRealCLIPrintsNoControlFromACaseTitleCommentOrRefusal() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir) { $0.endpoints[.registry] = registry.endpoints }
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        let opened = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(
                source: .publicReport, title: "标题\(Self.hostile)", unit: "区城乡建设局", description: "描述\(Self.hostile)",
                location: "位置\u{1B}]0;改标题\u{07}"),
            as: Case.self)
        #expect(opened.title.contains("\u{1B}"), "the ledger keeps what was typed; only display drops it")
        _ = try await office.call(
            CaseTypes.transition, CaseTransitionRequest(id: opened.id, action: .assign, comment: "意见\(Self.hostile)"), as: Case.self)
        let config = "\(dir)/duban.json"
        let endpoints = [("registry", registry.endpoints), ("cases", cases.endpoints)].map { name, endpoints in
            "\"\(name)\": {\"rpc\": \"\(endpoints.rpc)\", \"events\": \"\(endpoints.events)\"}"
        }
        // No keys: not even a local deployment's ./var/keys beside the test (as in .ci/run).
        try Data("{\(endpoints.joined(separator: ", ")), \"keysDir\": \"\"}".utf8).write(to: URL(fileURLWithPath: config))
        let duban = "\(TestSupport.binDirectory)/duban"

        let list = try TestSupport.run(duban, ["--config", config, "cases", "list"])
        #expect(list.contains("标题") && list.contains("清屏") && list.contains("隐藏"), "\(list)")
        #expect(Self.clean(list), "\(list.debugDescription)")
        let show = try TestSupport.run(duban, ["--config", config, "cases", "show", opened.id])
        #expect(show.contains("描述") && show.contains("意见") && show.contains("改标题"), "\(show)")
        #expect(Self.clean(show), "\(show.debugDescription)")
        // A refusal quoting what it refuses: shown without the controls too.
        do {
            let output = try TestSupport.run(duban, ["--config", config, "cases", "show", "HCJ\u{1B}[2J\u{202E}X"])
            Issue.record("an unknown case was shown: \(output)")
        } catch let failure as TestFailure {
            // What the CLI printed follows the command line (which holds the escapes as the test typed them).
            let printed = failure.description.components(separatedBy: "): ").dropFirst().joined(separator: "): ")
            #expect(printed.contains("HCJ[2JX") && Self.clean(printed), "\(printed.debugDescription)")
        }

        await office.close()
        try await cases.stop()
        try await registry.stop()
    }
}
