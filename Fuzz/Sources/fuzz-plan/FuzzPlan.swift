import Foundation
import FuzzSupport
import PlanFormat

/// The plan loader, as `plan.load` and `duban plan check` run it on a YAML document. Property:
/// any text gives a plan or a `PlanLoadError` with at least one problem, each with a message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlan(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let text = String(validating: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self) else { return 0 }
    do throws(PlanLoadError) {
        _ = try PlanLoader.parse(text, file: "fuzz.yaml")
    } catch {
        if error.problems.isEmpty || error.problems.contains(where: { $0.message.isEmpty }) {
            Fuzz.fail("a refused plan without a problem named")
        }
    }
    return 0
}
