import ArgumentParser
import Notifications
import ServiceKit

@main
struct Main: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duban-notify",
        abstract: "Duban's \(NotifyService.name.rawValue) service: answers on its rpc endpoint, publishes on its events endpoint.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await runServiceMain(NotifyService.self, options: options)
    }
}
