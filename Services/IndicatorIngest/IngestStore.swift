import Foundation
import Schema
import ServiceKit

/// A reading as stored.
public struct StoredSample: Sendable, Equatable {
    public var parameter: String
    public var ts: Int64
    public var value: Double
}

/// Decides alert transitions from a batch's changed series and the active alerts.
public typealias AlertEvaluator = @Sendable (_ changes: [SeriesChange], _ active: Set<String>) -> [AlertTransition]

/// Where ingestion keeps readings, indicator values and alert states: SQLite for one instance,
/// PostgreSQL for several sharing one database. Each mutating operation is one transaction that
/// also logs its events and remembers the request's reply under its idempotency key.
public protocol IngestStore: Sendable {
    var eventStorage: any EventStorage { get }

    /// Stores a batch: new readings, duplicates counted, changed values refused unless they are
    /// revisions; publishes `ingest.readings.accepted` per station and the alerts the batch raises or clears.
    func submit(
        _ readings: [NormalizedReading], rejected: [RejectedItem], context: RequestContext,
        dayWindow: @escaping @Sendable (Int64) -> (Int64, Int64),
        evaluate: @escaping AlertEvaluator
    ) async throws -> ReadingSubmitReply

    /// Readings of a station between two instants (ms, inclusive), optionally only some parameters.
    func samples(station: String, parameters: [String]?, from: Int64, to: Int64) async throws -> [StoredSample]

    /// The newest reading time of each station.
    func latestTimes() async throws -> [String: Int64]

    func activeAlerts() async throws -> Set<String>

    /// Applies alert transitions decided outside a batch (silence), with their events.
    func apply(_ transitions: [AlertTransition]) async throws

    /// Every stored value of an indicator, oldest period first.
    func indicatorValues(_ indicator: String) async throws -> [IndicatorValue]

    /// Stores a period's value; when the indicator's latest value or attainment changed, publishes
    /// `ingest.indicator.updated` (and the alert transitions given). `context` remembers the reply.
    func record(_ value: IndicatorValue, for definition: IndicatorDefinition, alerts: [AlertTransition], context: RequestContext?)
        async throws
        -> IndicatorValue
}

extension IngestStore {
    /// The latest value of an indicator: the one whose period ends last.
    static func latest(_ values: [IndicatorValue]) -> IndicatorValue? {
        values.max {
            (IndicatorPeriod.end($0.period) ?? "", $0.reportedAt ?? "") < (IndicatorPeriod.end($1.period) ?? "", $1.reportedAt ?? "")
        }
    }
}

/// The alert events of a set of transitions.
func alertEvents(_ transitions: [AlertTransition], into events: inout EventBuffer) throws {
    for transition in transitions {
        try events.emit(transition.raise ? IngestTypes.alertRaised : IngestTypes.alertCleared, transition.body)
    }
}

/// What a batch did, kept the same way by every store: counts, and what each station received.
struct BatchTally {
    var accepted = 0
    var duplicates = 0
    var refused: [RejectedItem]
    private var spans: [String: (count: Int, from: Int64, to: Int64)] = [:]
    /// Parameters stored per station: the series whose alerts must be judged.
    private(set) var series: [String: Set<String>] = [:]

    private var current: (station: String, parameter: String, count: Int, from: Int64, to: Int64)?

    init(refused: [RejectedItem]) { self.refused = refused }

    /// A value equal to the stored one (to rounding) is a duplicate, not a change.
    static func same(_ stored: Double, _ value: Double) -> Bool { abs(stored - value) <= 1e-9 * max(1, abs(stored)) }

    mutating func duplicate() { duplicates += 1 }

    /// Refuses a changed value sent without `flag: "revision"`.
    mutating func refuseChange(_ reading: NormalizedReading, stored: Double) {
        refused.append(
            RejectedItem(
                index: reading.index, code: .conflict,
                message: "站点 \(reading.station) 的 \(reading.parameter) 在该时刻已有读数 \(stored)；"
                    + "如需更正，请带 flag revision 重新报送",
                field: "body.readings[\(reading.index)].value"))
    }

    mutating func stored(_ reading: NormalizedReading) {
        accepted += 1
        // Batches mostly hold one series after another: a run of the same series is counted in
        // place, and only a new station or parameter costs dictionary lookups.
        if let run = current, run.station == reading.station, run.parameter == reading.parameter {
            current = (run.station, run.parameter, run.count + 1, min(run.from, reading.ts), max(run.to, reading.ts))
            return
        }
        spans = mergedSpans
        current = (reading.station, reading.parameter, 1, reading.ts, reading.ts)
        series[reading.station, default: []].insert(reading.parameter)
    }

    /// The stations' spans including the current run.
    private var mergedSpans: [String: (count: Int, from: Int64, to: Int64)] {
        guard let run = current else { return spans }
        var merged = spans
        let span = merged[run.station] ?? (0, run.from, run.to)
        merged[run.station] = (span.count + run.count, min(span.from, run.from), max(span.to, run.to))
        return merged
    }

    /// One `ingest.readings.accepted` per station that stored something.
    func emitAccepted(into events: inout EventBuffer) throws {
        for (station, span) in mergedSpans.sorted(by: { $0.key < $1.key }) {
            try events.emit(
                IngestTypes.readingsAccepted,
                ReadingsAccepted(station: station, count: span.count, from: time(span.from), to: time(span.to)))
        }
    }

    var reply: ReadingSubmitReply {
        ReadingSubmitReply(accepted: accepted, duplicates: duplicates, rejected: refused.sorted { $0.index < $1.index })
    }
}

/// RFC 3339 in district time for a stored instant (ms).
func time(_ ms: Int64) -> String { Timestamp.format(Date(timeIntervalSince1970: Double(ms) / 1000), fractional: false) }

extension SeriesChange {
    /// The hourly means of a series over a window, one row per district hour `(ts/1000 + offset)/3600`,
    /// as AirEvaluation.dailyMeans groups them. Arguments: offset seconds, station, parameter, from, to (ms).
    static let hourlyMeansSQL = """
        SELECT (ts / 1000 + ?) / 3600 AS hour, AVG(value) FROM readings
        WHERE station = ? AND parameter = ? AND ts >= ? AND ts < ? GROUP BY hour
        """

    /// One sample standing for an hour's mean, at the hour's start: the daily mean of these is the
    /// daily mean of the readings themselves.
    static func hourSample(hour: Int64, mean: Double) -> (ts: Int64, value: Double) {
        (ts: (hour * 3600 - Int64(Timestamp.districtOffset)) * 1000, value: mean)
    }

    /// The alert input for a series, from its two newest stored readings and the newest one's day;
    /// nil when this batch did not bring the newest reading (a backfill raises nothing new).
    static func from(
        station: String, parameter: String, newestTwo rows: [(Int64, Double)], daySamples: [(ts: Int64, value: Double)],
        batch: [NormalizedReading]
    ) -> SeriesChange? {
        guard let newest = rows.first.map({ (ts: $0.0, value: $0.1) }),
            batch.contains(where: { $0.station == station && $0.parameter == parameter && $0.ts == newest.ts })
        else { return nil }
        let previous = rows.count > 1 ? (ts: rows[1].0, value: rows[1].1) : nil
        let day = AirEvaluation.dailyMeans(daySamples, minHourly: 0).first.map { (day: $0.key, mean: $0.value.mean, hours: $0.value.hours) }
        return SeriesChange(station: station, parameter: parameter, newest: newest, previous: previous, day: day)
    }
}
