import Foundation
import Schema

/// Everything the CLI prints goes through here: it shadows Swift's `print` in this module, so no
/// command can forget it. What is shown came largely from data anyone could type (case titles,
/// reasons, comments, error messages quoting a request), and a terminal would obey the control
/// sequences in it; `DisplayText` drops them.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(DisplayText.sanitized(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

/// Bytes for standard output or error, made safe the same way.
func displayData(_ text: String) -> Data { Data(DisplayText.sanitized(text).utf8) }
