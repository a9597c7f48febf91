import Testing
import WebConsole

/// Text from data reaches a page escaped and without the controls that could hide or reorder what a
/// person reads (issue #19: the console strips what the CLI strips).
@Suite struct EscapingTests {
    @Test func pagesCarryNoControlsNoBidiOverridesAndNoMarkup() {
        #expect(esc("南川河\u{1B}[2J<b>\u{202E}x\u{85}\u{7F}\u{2066}\n\t'\"&") == "南川河[2J&lt;b&gt;x\n\t&#39;&quot;&amp;")
        #expect(esc("2026年第三季度督办单") == "2026年第三季度督办单")
    }
}
