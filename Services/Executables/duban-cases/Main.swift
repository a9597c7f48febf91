import ArgumentParser
import CaseTracking
import ServiceKit

@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-cases",
        abstract: "Duban's \(CasesService.name.rawValue) service: answers on its rpc endpoint, publishes on its events endpoint.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await runServiceMain(CasesService.self, options: options)
    }
}
