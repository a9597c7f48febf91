import CaseTracking
import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// One declaration per request type: every service answers exactly the types the catalog
/// declares for it, and says which of them are writes, as the catalog does.
@Suite(.serialized) struct CatalogTests {
    @Test func theCatalogNamesEachTypeOnceAndItsWritesAreTheKeyedOnes() {
        let names = RequestCatalog.all.map(\.name)
        #expect(Set(names).count == names.count, "a type declared twice")
        #expect(MutatingTypes.all == Set(RequestCatalog.all.filter { $0.kind == .write }.map(\.name)))
        #expect(RequestCatalog.system.allSatisfy { $0.kind == .read })
    }

    static func check<S: DubanService>(_ service: S.Type, declared: [any RequestDeclaration]) async throws {
        let running = try await InProcessService.start(S.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: running.endpoints.rpc, from: "test")
        let types = try await client.call(SystemTypes.types, Empty())
        let expected = RequestCatalog.system + declared
        #expect(Set(types.requests) == Set(expected.map(\.name)), "\(S.name): sys.types against the catalog")
        #expect(Set(types.writes ?? []) == Set(expected.filter { $0.kind == .write }.map(\.name)), "\(S.name): writes")
        await client.close()
        try await running.stop()
    }

    @Test func everyServiceServesExactlyWhatTheCatalogDeclaresForIt() async throws {
        try await Self.check(RegistryService.self, declared: RequestCatalog.registry)
        try await Self.check(IngestService.self, declared: RequestCatalog.ingest)
        try await Self.check(CasesService.self, declared: RequestCatalog.cases)
        try await Self.check(NotifyService.self, declared: RequestCatalog.notify)
    }
}
