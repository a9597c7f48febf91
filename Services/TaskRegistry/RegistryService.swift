import Schema
import ServiceKit

/// The task registry: the plan as data, progress reports, the dispatch and escalations.
/// This stage serves the runtime's requests (`sys.*`, `events.since`); the plan's request types follow.
public struct RegistryService: DubanService {
    public static let name = ServiceName.registry
    public static let topics = [RegistryTypes.progressReported, RegistryTypes.taskStatusChanged, RegistryTypes.escalationRecorded]

    public init(context: ServiceContext) async throws {}

    public func register(_ handlers: inout HandlerTable) {}
}
