import Schema
import ServiceKit

/// Indicator ingestion: readings, evaluation against the standards and targets, alerts.
/// This stage serves the runtime's requests (`sys.*`, `events.since`); readings and indicators follow.
public struct IngestService: DubanService {
    public static let name = ServiceName.ingest
    public static let topics = [IngestTypes.readingsAccepted, IngestTypes.indicatorUpdated, IngestTypes.alertRaised, IngestTypes.alertCleared]

    public init(context: ServiceContext) async throws {}

    public func register(_ handlers: inout HandlerTable) {}
}
