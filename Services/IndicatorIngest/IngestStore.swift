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
    func submit(_ readings: [NormalizedReading], rejected: [RejectedItem], context: RequestContext, dayWindow: @escaping @Sendable (Int64) -> (Int64, Int64),
        evaluate: @escaping AlertEvaluator) async throws -> ReadingSubmitReply

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
    func record(_ value: IndicatorValue, for definition: IndicatorDefinition, alerts: [AlertTransition], context: RequestContext?) async throws
        -> IndicatorValue
}

extension IngestStore {
    /// The latest value of an indicator: the one whose period ends last.
    static func latest(_ values: [IndicatorValue]) -> IndicatorValue? {
        values.max { (IndicatorPeriod.end($0.period) ?? "", $0.reportedAt ?? "") < (IndicatorPeriod.end($1.period) ?? "", $1.reportedAt ?? "") }
    }
}

/// The alert events of a set of transitions.
func alertEvents(_ transitions: [AlertTransition], into events: inout EventBuffer) throws {
    for transition in transitions {
        try events.emit(transition.raise ? IngestTypes.alertRaised : IngestTypes.alertCleared, transition.body)
    }
}
