import ArgumentParser
import ServiceKit
import TaskRegistry

@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-registry",
        abstract: "Duban's \(RegistryService.name.rawValue) service: answers on its rpc endpoint, publishes on its events endpoint.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await runServiceMain(RegistryService.self, options: options)
    }
}
