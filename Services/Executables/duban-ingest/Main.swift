import ArgumentParser
import IndicatorIngest
import ServiceKit

@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-ingest",
        abstract: "Duban's \(IngestService.name.rawValue) service: answers on its rpc endpoint, publishes on its events endpoint.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await runServiceMain(IngestService.self, options: options)
    }
}
