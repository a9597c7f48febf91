import Foundation
import Histogram

/// A value shared between threads under a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// One figure measured `runs` times: the table prints min / median / max.
struct Measured: Codable {
    var values: [Double]
    var unit: String
    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }
    var median: Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }

    init(_ values: [Double], unit: String) {
        self.values = values
        self.unit = unit
    }

    var text: String {
        if values.count == 1 { return "\(Self.format(median)) \(unit)" }
        return "\(Self.format(median)) \(unit) [\(Self.format(min))–\(Self.format(max))]"
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "—" }
        if value >= 10_000 { return String(Int(value.rounded())).reversed().chunked(3).joined(separator: ",").reversedString }
        if value >= 100 { return String(Int(value.rounded())) }
        if value >= 10 { return String(format: "%.1f", value) }
        return String(format: "%.2f", value)
    }
}

extension Sequence where Element == Character {
    func chunked(_ size: Int) -> [String] {
        var out: [String] = []
        var current = ""
        for character in self {
            current.append(character)
            if current.count == size {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

extension String {
    var reversedString: String { String(reversed()) }
}

/// One line of the report: a Duban figure, its reference, their ratio, and the target if any.
struct ReportRow: Codable {
    var section: String
    var name: String
    var duban: Measured?
    var reference: Measured?
    var referenceName: String?
    /// duban.median ÷ reference.median
    var ratio: Double?
    var target: String?
    var met: Bool?
}

/// Latency percentiles of one run, microseconds.
struct Latency: Codable {
    var p50: Double
    var p99: Double
    var p999: Double

    init(_ histogram: Histogram<UInt64>) {
        p50 = Double(histogram.valueAtPercentile(50)) / 1000
        p99 = Double(histogram.valueAtPercentile(99)) / 1000
        p999 = Double(histogram.valueAtPercentile(99.9)) / 1000
    }

    init(p50: Double, p99: Double, p999: Double) {
        self.p50 = p50
        self.p99 = p99
        self.p999 = p999
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
