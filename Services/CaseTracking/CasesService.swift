import Schema
import ServiceKit

/// Case tracking: the rectification ledger (整改台账).
/// This stage serves the runtime's requests (`sys.*`, `events.since`); the ledger follows.
public struct CasesService: DubanService {
    public static let name = ServiceName.cases
    public static let topics = [CaseTypes.opened, CaseTypes.transitioned, CaseTypes.overdue]

    public init(context: ServiceContext) async throws {}

    public func register(_ handlers: inout HandlerTable) {}
}
