import ArgumentParser
import Foundation
import Schema

/// Duban under faults, at scale and over time: `chaos` (readings through the broker into several
/// ingest instances on PostgreSQL while instances, PostgreSQL, the broker and subscribers are
/// killed and restarted), `soak` (every service at about half its peak for a given time), and the
/// `subscriber` process that `chaos` kills. Each run checks its own invariants and exits non-zero
/// when one is broken; `scripts/chaos.sh` and `scripts/soak.sh` build and run it.
@main
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-chaos", abstract: "Duban under faults (chaos) and over time (soak); see docs/operations.md.",
        subcommands: [ChaosCommand.self, SoakCommand.self, SubscriberCommand.self])

}

/// A line of figures on standard output, written at once (print's buffer would hold a soak's minute
/// lines until the end when the output is a file or a pipe).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// A line of progress on standard error (the figures go to standard output).
func note(_ text: String) {
    FileHandle.standardError.write(Data("[\(Timestamp.clock())] \(text)\n".utf8))
}

extension Timestamp {
    /// The wall clock as HH:MM:SS, for progress lines.
    static func clock() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }
}

/// Seconds in a duration, as a Double.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
