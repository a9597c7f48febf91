import DubanTesting
import Foundation
import Testing

/// People read Chinese: the abstract of every `duban` subcommand and the help of every argument,
/// option and subcommand we write is Chinese (the argument parser's own frame — USAGE, OPTIONS,
/// `Show help information.`, `(default: …)` — may stay as it is). Walks the real binary's tree.
@Suite struct CLIHelpTests {
    static func hasChinese(_ text: String) -> Bool { text.unicodeScalars.contains { (0x4E00...0x9FFF).contains($0.value) } }

    /// The help entries of one `--help` text: (name, description), and its subcommands.
    static func entries(_ help: String) -> (overview: String, entries: [(String, String)], subcommands: [String]) {
        var overview = ""
        var entries: [(String, String)] = []
        var subcommands: [String] = []
        var section = ""
        let lines = help.components(separatedBy: "\n")
        for (index, line) in lines.enumerated() {
            if line.hasPrefix("OVERVIEW:") {
                // A long overview starts on the line after.
                overview = lines[index...].prefix { !$0.isEmpty }.joined(separator: " ")
            }
            if let colon = line.firstIndex(of: ":"), !line.hasPrefix(" "), line[..<colon].allSatisfy({ $0.isUppercase || $0 == " " }) {
                section = String(line[..<colon])
                continue
            }
            guard ["ARGUMENTS", "OPTIONS", "SUBCOMMANDS"].contains(section), line.hasPrefix("  "), !line.hasPrefix("   "),
                !line.hasPrefix("  See '")
            else { continue }
            let body = line.dropFirst(2)
            let parts = body.components(separatedBy: "  ").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            let name = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
            var description = parts.dropFirst().joined(separator: " ").trimmingCharacters(in: .whitespaces)
            if description.isEmpty, index + 1 < lines.count { description = lines[index + 1].trimmingCharacters(in: .whitespaces) }
            entries.append((name, description))
            if section == "SUBCOMMANDS", let command = name.split(separator: " ").first,
                command.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" })
            {
                subcommands.append(String(command))
            }
        }
        return (overview, entries, subcommands)
    }

    @Test func everyAbstractAndHelpTextWeWriteIsChinese() throws {
        let binary = "\(TestSupport.binDirectory)/duban"
        var queue: [[String]] = [[]]
        var visited = 0
        var problems: [String] = []
        while let path = queue.first {
            queue.removeFirst()
            visited += 1
            let help = try TestSupport.run(binary, path + ["--help"])
            let parsed = Self.entries(help)
            if !Self.hasChinese(parsed.overview) { problems.append("duban \(path.joined(separator: " ")): OVERVIEW \(parsed.overview)") }
            for (name, description) in parsed.entries {
                if name.contains("--help") || name.contains("--version") || description.hasPrefix("Show help information") { continue }
                // A name that fills its column leaves a single space before its description.
                if !Self.hasChinese(description), !Self.hasChinese(name) {
                    problems.append("duban \(path.joined(separator: " ")) \(name): \(description)")
                }
            }
            if path.count < 4 { queue += parsed.subcommands.map { path + [$0] } }
        }
        #expect(visited > 40, "walked \(visited) commands")
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}
