import DubanTesting
import Foundation
import Messaging
import PlanFormat
import Schema
import ServiceKit
import Testing

@testable import TaskRegistry

/// Who the 3-month rule binds and when, from the plan file: go-live plus `within_months`, or a day
/// the plan states itself, each moved to a working day; no rule, nobody bound.
@Suite struct ImplementationPlanRuleTests {
    let text = try! String(contentsOfFile: PlanLoader.bundledPlanPath!, encoding: .utf8)

    @Test func theRuleBindsEveryLeadDepartmentButTheOfficeTheCourtsAndTheDisciplineCommission() throws {
        var plan = try PlanLoader.parse(text, file: "plan.yaml")
        plan.supervisionStart = "2026-07-05"
        let units = ImplementationPlanRules.units(plan)
        #expect(units.contains("区市场监督管理局") && !units.contains("区市场监管局"), "an alias is its unit")
        #expect(units.contains("城中公安分局") && units.contains("区委组织部"))
        #expect(!units.contains("总寨镇政府"), "a unit that only cooperates is not a 责任主体 here")
        #expect(!units.contains("区人民法院") && !units.contains("区人民检察院") && !units.contains(officeUnit) && !units.contains("区纪委监委"))
        #expect(units == plan.units.map(\.name).filter(units.contains), "in the plan's order")
        #expect(ImplementationPlanRules.baseDue(plan) == "2026-10-08")
        // Go-live late enough that three months run past the plan's end: nobody is bound.
        plan.supervisionStart = "2026-11-20"
        #expect(ImplementationPlanRules.baseDue(plan) == nil)
    }

    @Test func aDayThePlanStatesWinsAndWithoutTheRuleNobodyIsBound() async throws {
        let clock = ServiceClock.starting(at: date("2026-09-01T10:00:00+08:00"))
        let registry = try await InProcessService.start(
            RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory(), clock: clock
        ) {
            $0.supervisionStart = "2026-07-05"
        }
        let client = try await RPCClient.connect(to: registry.endpoints.rpc, from: officeUnit)
        func dues() async throws -> Set<String> {
            Set(try await client.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest()).map(\.due))
        }
        #expect(try await dues() == ["2026-10-08"])

        // The plan's own day, a Saturday: the Monday after.
        let dated = text.replacingOccurrences(of: "    within_months: 3\n", with: "    within_months: 3\n    due: 2026-10-31\n")
        #expect(dated != text)
        _ = try await client.call(RegistryTypes.planLoad, PlanLoadRequest(content: dated, name: "plan.yaml"))
        #expect(try await dues() == ["2026-11-02"])
        #expect(try await client.call(RegistryTypes.planGet, Empty()).rules.first { $0.id == "implementation_plan" }?.due == "2026-10-31")

        let without = text.replacingOccurrences(of: "  - id: implementation_plan\n", with: "  - id: carried_out_plans\n")
        #expect(without != text)
        _ = try await client.call(RegistryTypes.planLoad, PlanLoadRequest(content: without, name: "plan.yaml"))
        #expect(try await client.callAll(ImplementationPlanTypes.list, ImplementationPlanListRequest()).isEmpty)
        let refused = await RegistryTestsRefusal.of(
            client, ImplementationPlanTypes.submit,
            ImplementationPlanSubmitRequest(
                unit: "区城乡建设局", title: "方案", evidence: [EvidenceRef(name: "a", uri: "b", sha256: String(repeating: "0", count: 64))]))
        #expect(refused?.code == .notFound && refused?.field == "body.unit")
        await client.close()
        try await registry.stop()
    }
}

enum RegistryTestsRefusal {
    static func of<Body, Reply>(_ client: RPCClient, _ rpc: RPC<Body, Reply>, _ body: Body) async -> ErrorBody? {
        do {
            _ = try await client.call(rpc, body, as: Reply.self)
            return nil
        } catch { return error as? ErrorBody }
    }
}
