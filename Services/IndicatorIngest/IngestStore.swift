import Foundation
import Schema
import ServiceKit

/// A reading as stored.
public struct StoredSample: Sendable, Equatable {
    public var parameter: String
    public var ts: Int64
    /// For `below_detection` the limit; NaN when a status-marked reading has none.
    public var value: Double
    public var mark: ReadingMark? = nil
    public var detectionLimit: Double? = nil

    /// What the reading counts as in means and judgements: the value; half the detection limit below
    /// it (未检出按检出限一半参与计算, 《地表水环境质量评价办法（试行）》); nothing for a status mark.
    public var statistic: Double? {
        switch mark {
        case nil: return value
        case .belowDetection: return (detectionLimit ?? value) / 2
        case .some: return nil
        }
    }
}

extension Array where Element == StoredSample {
    /// The readings statistics are made of: status-marked ones left out, below-detection ones at half their limit.
    var judged: [StoredSample] {
        guard contains(where: { $0.mark != nil }) else { return self }
        return compactMap { sample in
            guard let statistic = sample.statistic else { return nil }
            return StoredSample(parameter: sample.parameter, ts: sample.ts, value: statistic)
        }
    }
}

/// A stored reading's value and mark, as a new reading of the same key is compared with it.
struct StoredState: Sendable {
    var value: Double?
    var mark: String?
    var detectionLimit: Double?

    init(value: Double?, mark: String?, detectionLimit: Double?) {
        self.value = value
        self.mark = mark
        self.detectionLimit = detectionLimit
    }

    init(_ reading: NormalizedReading) {
        self.init(value: reading.storedValue, mark: reading.mark?.rawValue, detectionLimit: reading.detectionLimit)
    }

    /// The same reading again (to rounding): a duplicate, not a change.
    func matches(_ reading: NormalizedReading) -> Bool {
        func same(_ a: Double?, _ b: Double?) -> Bool {
            switch (a, b) {
            case (nil, nil): return true
            case (let a?, let b?): return BatchTally.same(a, b)
            default: return false
            }
        }
        return mark == reading.mark?.rawValue && same(value, reading.storedValue) && same(detectionLimit, reading.detectionLimit)
    }

    /// As the conflict message shows it.
    var text: String {
        let mark = self.mark.flatMap(ReadingMark.init(rawValue:))
        switch mark {
        case .belowDetection: return "<\(detectionLimit ?? value ?? .nan)（未检出）"
        case .some(let status): return value.map { "\($0)（\(status.chineseName)）" } ?? status.chineseName
        case nil: return value.map { "\($0)" } ?? "—"
        }
    }
}

/// Judges a batch's stored readings, series by series, given the active alerts.
public typealias AlertEvaluator = @Sendable (_ batches: [SeriesBatch], _ active: Set<String>) -> Judgement

/// Where ingestion keeps readings, indicator values and alert states: SQLite for one instance,
/// PostgreSQL for several sharing one database. Each mutating operation is one transaction that
/// also logs its events and remembers the request's reply under its idempotency key.
public protocol IngestStore: Sendable {
    var eventStorage: any EventStorage { get }

    /// Stores a batch: new readings, duplicates counted, changed values refused unless they are
    /// revisions; publishes `ingest.readings.accepted` per station, the live alerts the batch raises or
    /// clears, and the historical findings it records for the first time.
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

    /// Recorded historical findings, oldest day first.
    func findings(_ request: FindingListRequest) async throws -> [Finding]

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
    /// Every reading stored (new or revised), in batch order: each is judged.
    private(set) var storedReadings: [NormalizedReading] = []

    private var current: (station: String, parameter: String, count: Int, from: Int64, to: Int64)?
    /// Each station's newest marked reading stored: kept out of the series, but it ends a silence.
    private var newestMarked: [String: Int64] = [:]

    init(refused: [RejectedItem]) { self.refused = refused }

    /// A value equal to the stored one (to rounding) is a duplicate, not a change.
    static func same(_ stored: Double, _ value: Double) -> Bool { abs(stored - value) <= 1e-9 * max(1, abs(stored)) }

    mutating func duplicate() { duplicates += 1 }

    /// Refuses a changed value (or mark) sent without `flag: "revision"`.
    mutating func refuseChange(_ reading: NormalizedReading, stored: StoredState) {
        refused.append(
            RejectedItem(
                index: reading.index, code: .conflict,
                message: "站点 \(reading.station) 的 \(reading.parameter) 在该时刻已有读数 \(stored.text)；"
                    + "如需更正，请带 flag revision 重新报送",
                field: "body.readings[\(reading.index)].value"))
    }

    mutating func stored(_ reading: NormalizedReading) {
        accepted += 1
        storedReadings.append(reading)
        if reading.mark != nil { newestMarked[reading.station] = max(newestMarked[reading.station] ?? .min, reading.ts) }
        // Batches mostly hold one series after another: a run of the same series is counted in
        // place, and only a new station or parameter costs dictionary lookups.
        if let run = current, run.station == reading.station, run.parameter == reading.parameter {
            current = (run.station, run.parameter, run.count + 1, min(run.from, reading.ts), max(run.to, reading.ts))
            return
        }
        spans = mergedSpans
        current = (reading.station, reading.parameter, 1, reading.ts, reading.ts)
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

    /// The stored readings by series (station, then parameter), each oldest first.
    var storedSeries: [(key: SeriesKey, readings: [(ts: Int64, value: Double)])] {
        var index: [SeriesKey: Int] = [:]
        var out: [(key: SeriesKey, readings: [(ts: Int64, value: Double)])] = []
        var run = -1
        // Marked readings never raise a live alert on their own: below-detection ones enter the daily
        // means (through the stores' hourly SQL), status-marked ones nothing.
        for reading in storedReadings where reading.mark == nil {
            if run < 0 || out[run].key.station != reading.station || out[run].key.parameter != reading.parameter {
                let key = SeriesKey(station: reading.station, parameter: reading.parameter)
                if let known = index[key] {
                    run = known
                } else {
                    run = out.count
                    index[key] = run
                    out.append((key, []))
                }
            }
            out[run].readings.append((reading.ts, reading.value))
        }
        // Mostly already in time order: checking is cheaper than sorting.
        for i in out.indices where !zip(out[i].readings, out[i].readings.dropFirst()).allSatisfy({ $0.ts <= $1.ts }) {
            out[i].readings.sort { $0.ts < $1.ts }
        }
        return out.sorted { ($0.key.station, $0.key.parameter) < ($1.key.station, $1.key.parameter) }
    }

    /// A batch per station that stored marked readings, with no reading to judge: only `alive`.
    var livenessBatches: [SeriesBatch] {
        newestMarked.sorted { $0.key < $1.key }.map {
            SeriesBatch(station: $0.key, parameter: "", readings: [], prior: nil, days: [:], alive: $0.value)
        }
    }

    var reply: ReadingSubmitReply {
        ReadingSubmitReply(accepted: accepted, duplicates: duplicates, rejected: refused.sorted { $0.index < $1.index })
    }
}

/// RFC 3339 in district time for a stored instant (ms).
func time(_ ms: Int64) -> String { Timestamp.format(Date(timeIntervalSince1970: Double(ms) / 1000), fractional: false) }

/// One station's parameter.
struct SeriesKey: Hashable, Sendable {
    var station: String
    var parameter: String

    /// The series of a batch, in order of first appearance.
    static func of(_ readings: [NormalizedReading]) -> [SeriesKey] {
        var seen: Set<SeriesKey> = []
        var out: [SeriesKey] = []
        var last: NormalizedReading?
        for reading in readings {
            if let last, last.station == reading.station, last.parameter == reading.parameter { continue }
            last = reading
            let key = SeriesKey(station: reading.station, parameter: reading.parameter)
            if seen.insert(key).inserted { out.append(key) }
        }
        return out
    }
}

extension SeriesBatch {
    /// The hourly means of a series over a window, one row per district hour `(ts/1000 + offset)/3600`,
    /// as AirEvaluation.dailyMeans groups them. Arguments: offset seconds, station, parameter, from, to (ms).
    static let hourlyMeansSQL = """
        SELECT (ts / 1000 + ?) / 3600 AS hour, AVG(\(statisticSQL)) FROM readings
        WHERE station = ? AND parameter = ? AND ts >= ? AND ts < ? AND \(judgedSQL) GROUP BY hour
        """

    /// A stored reading as it enters a mean (`StoredSample.statistic`), in SQL both stores speak.
    static let statisticSQL = "CASE WHEN mark IS NULL THEN value ELSE detection_limit / 2 END"
    /// The stored readings that enter means: unmarked and below detection.
    static let judgedSQL = "(mark IS NULL OR mark = 'below_detection')"

    /// One sample standing for an hour's mean, at the hour's start: the daily mean of these is the
    /// daily mean of the readings themselves.
    static func hourSample(hour: Int64, mean: Double) -> (ts: Int64, value: Double) {
        (ts: (hour * 3600 - Int64(Timestamp.districtOffset)) * 1000, value: mean)
    }

    /// The window of whole district days (ms) around a series' readings: what the hourly means are read over.
    static func dayRange(_ readings: [(ts: Int64, value: Double)], dayWindow: (Int64) -> (Int64, Int64)) -> (Int64, Int64)? {
        guard let first = readings.first, let last = readings.last else { return nil }
        return (dayWindow(first.ts).0, dayWindow(last.ts).1)
    }

    /// The means and hour counts of the days the readings touched, from the hourly means of their days.
    static func days(touchedBy readings: [(ts: Int64, value: Double)], hourly: [(ts: Int64, value: Double)]) -> [String: (
        mean: Double, hours: Int
    )] {
        let offset = Int64(Timestamp.districtOffset) * 1000
        var touched: Set<Int64> = []
        var last: Int64 = .min
        for reading in readings {
            let day = (reading.ts + offset) / 86_400_000
            if day != last { touched.insert(day) }
            last = day
        }
        let days = Set(touched.map { AirEvaluation.day($0 * 86_400_000 - offset) })
        var out: [String: (mean: Double, hours: Int)] = [:]
        for (day, stats) in AirEvaluation.dailyMeans(hourly, minHourly: 0) where days.contains(day) { out[day] = (stats.mean, stats.hours) }
        return out
    }
}

extension FindingDraft {
    /// A stored finding as listed.
    static func listed(
        kind: String, station: String, parameter: String, day: String, severity: String, message: String, value: Double, limit: Double?,
        readingTs: Int64, firstTs: Int64, lastTs: Int64, readings: Int, recordedAt: String
    ) -> Finding {
        Finding(
            alert: "\(kind):\(station):\(parameter):\(day)", kind: kind, station: station, parameter: parameter, day: day,
            severity: severity, message: message, value: value, limit: limit, readingTs: time(readingTs), firstTs: time(firstTs),
            lastTs: time(lastTs), readings: readings, recordedAt: recordedAt)
    }
}

extension FindingListRequest {
    /// The request's filters, checked: days and a limit.
    func checked() throws -> (from: String, to: String, limit: Int) {
        let limit = self.limit ?? 1000
        guard (1...10_000).contains(limit) else { throw ErrorBody.invalidArgument("limit 应在 1 到 10000 之间", field: "body.limit") }
        for (value, field) in [(from, "body.from"), (to, "body.to")] {
            guard let value else { continue }
            guard value.count == 10, Timestamp.startOfDistrictDay(value) != nil else {
                throw ErrorBody.invalidArgument("应为 YYYY-MM-DD 日期", field: field)
            }
        }
        return (from ?? "", to ?? "9999-12-31", limit)
    }
}
