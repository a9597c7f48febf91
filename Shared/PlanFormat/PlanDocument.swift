import Foundation
import Schema
import Yams

/// A plan as its file states it, validated.
public struct PlanDocument: Codable, Sendable, Equatable {
    public struct UnitEntry: Codable, Sendable, Equatable {
        public var name: String
        public var kind: String
        public var aliasOf: String?
        public var members: [String]
    }

    public struct Category: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        /// As the plan heads it: `（三）持续深入打好污染防治攻坚战`.
        public var heading: String { "（\(id)）\(title)" }
    }

    public struct MilestoneEntry: Codable, Sendable, Equatable {
        public var date: String
        /// Progress expected by then.
        public var percent: Double
        public var text: String
    }

    public struct TaskEntry: Codable, Sendable, Equatable {
        public var id: String
        public var parent: String?
        public var category: String
        public var title: String
        public var text: String
        public var lead: [String]
        public var cooperating: [String]
        /// nil when ongoing (持续推进).
        public var deadline: String?
        public var deadlineText: String?
        public var milestones: [MilestoneEntry]
        /// Sub-item ids, for a task whose work is all in sub-items.
        public var subtasks: [String]
        public var isParent: Bool { !subtasks.isEmpty }
    }

    public struct TargetEntry: Codable, Sendable, Equatable {
        public var indicator: String
        public var text: String
        public var op: String
        public var threshold: JSONValue?
        /// The configuration key that supplies a threshold the plan does not give as a number.
        public var thresholdFrom: String?
        public var unit: String?
        /// Ordered values, best first, for class and category thresholds.
        public var scale: [String]?
        public var tasks: [String]
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var id: String
        public var text: String
        public var withinMonths: Int?
    }

    public var title: String
    public var district: String?
    public var status: String?
    public var start: String
    public var end: String
    public var office: String
    public var dispatchDay: Int
    public var lagTolerance: Double
    public var goals: String?
    public var rules: [Rule]
    public var units: [UnitEntry]
    public var categories: [Category]
    public var tasks: [TaskEntry]
    public var targets: [TargetEntry]

    public func task(_ id: String) -> TaskEntry? { tasks.first { $0.id == id } }
    public func unit(_ name: String) -> UnitEntry? { units.first { $0.name == name } }
}

/// One thing wrong with a plan file: where, and what.
public struct PlanProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    /// Where in the document, e.g. `tasks[7].lead[1]`.
    public var path: String
    public var message: String

    public init(file: String, line: Int?, path: String, message: String) {
        self.file = file
        self.line = line
        self.path = path
        self.message = message
    }

    public var description: String {
        "\(file):\(line.map(String.init) ?? "?"): \(path.isEmpty ? "" : "\(path): ")\(message)"
    }
}

/// A plan file that cannot be loaded, with every problem found in it.
public struct PlanLoadError: Error, Sendable, CustomStringConvertible {
    public var problems: [PlanProblem]

    public init(problems: [PlanProblem]) { self.problems = problems }
    public var description: String {
        "the plan file has \(problems.count) problem(s):\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// Reads and validates plan files (YAML; the shape is described in docs/plan-format.md).
public enum PlanLoader {
    public static let unitKinds: Set<String> = [
        "party", "government", "town", "subdistrict", "collective", "judicial", "public_security", "group", "office", "discipline",
    ]
    public static let operators: Set<String> = [
        "at_least", "equal", "at_most", "class_at_least", "category_at_least", "meets_standard", "within_quota",
    ]

    /// The plan that ships with Duban: 城中区's 2024–2026 action plan.
    public static var bundledPlanPath: String? {
        Bundle.module.path(forResource: "chengzhong-2024-2026", ofType: "yaml")
    }

    public static func load(path: String) throws(PlanLoadError) -> PlanDocument {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PlanLoadError(problems: [
                PlanProblem(file: path, line: nil, path: "", message: "cannot read the file: \(error.localizedDescription)")
            ])
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(PlanLoadError) -> PlanDocument {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PlanLoadError(problems: [PlanProblem(file: file, line: 1, path: "", message: "the file is empty")])
            }
            root = node
        } catch let error as PlanLoadError {
            throw error
        } catch let error as YamlError {
            throw PlanLoadError(problems: [
                PlanProblem(file: file, line: yamlErrorLine(error), path: "", message: "not valid YAML: \(error)")
            ])
        } catch {
            throw PlanLoadError(problems: [PlanProblem(file: file, line: nil, path: "", message: "not valid YAML: \(error)")])
        }
        var reader = Reader(file: file)
        let plan = reader.plan(root)
        if !reader.problems.isEmpty || plan == nil {
            throw PlanLoadError(
                problems: reader.problems.isEmpty
                    ? [PlanProblem(file: file, line: 1, path: "", message: "unreadable plan")] : reader.problems)
        }
        return plan!
    }

    private static func yamlErrorLine(_ error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    /// Walks the YAML tree, collecting every problem instead of stopping at the first.
    struct Reader {
        let file: String
        var problems: [PlanProblem] = []

        mutating func problem(_ node: Node?, _ path: String, _ message: String) {
            problems.append(PlanProblem(file: file, line: node?.mark?.line, path: path, message: message))
        }

        mutating func mapping(_ node: Node?, _ path: String) -> Node.Mapping? {
            guard let node else { return nil }
            guard case .mapping(let mapping) = node else {
                problem(node, path, "must be a mapping of keys to values")
                return nil
            }
            return mapping
        }

        mutating func sequence(_ node: Node?, _ path: String) -> [Node]? {
            guard let node else { return nil }
            guard case .sequence(let sequence) = node else {
                problem(node, path, "must be a list")
                return nil
            }
            return Array(sequence)
        }

        mutating func string(_ map: Node.Mapping, _ key: String, _ path: String, required: Bool = true) -> String? {
            guard let node = map[key] else {
                if required { problem(map.mark.map { _ in Node.mapping(map) }, path, "missing \(key)") }
                return nil
            }
            guard case .scalar(let scalar) = node, !scalar.string.trimmingCharacters(in: .whitespaces).isEmpty else {
                problem(node, "\(path).\(key)", "must be non-empty text")
                return nil
            }
            return scalar.string
        }

        mutating func number(_ map: Node.Mapping, _ key: String, _ path: String, range: ClosedRange<Double>) -> Double? {
            guard let node = map[key] else { return nil }
            guard case .scalar(let scalar) = node, let value = Double(scalar.string), range.contains(value) else {
                problem(node, "\(path).\(key)", "must be a number from \(range.lowerBound.formatted()) to \(range.upperBound.formatted())")
                return nil
            }
            return value
        }

        mutating func date(_ map: Node.Mapping, _ key: String, _ path: String, required: Bool = true) -> String? {
            guard let text = string(map, key, path, required: required) else { return nil }
            guard Timestamp.startOfDistrictDay(text) != nil else {
                problem(map[key], "\(path).\(key)", "\(text) is not a date (YYYY-MM-DD)")
                return nil
            }
            return text
        }

        mutating func strings(_ map: Node.Mapping, _ key: String, _ path: String) -> [(String, Node)] {
            guard let node = map[key] else { return [] }
            guard let items = sequence(node, "\(path).\(key)") else { return [] }
            var out: [(String, Node)] = []
            for (index, item) in items.enumerated() {
                guard case .scalar(let scalar) = item, !scalar.string.isEmpty else {
                    problem(item, "\(path).\(key)[\(index)]", "must be text")
                    continue
                }
                out.append((scalar.string, item))
            }
            return out
        }

        mutating func plan(_ root: Node) -> PlanDocument? {
            guard let top = mapping(root, "") else { return nil }
            let title = string(top, "title", "")
            let start = date(top, "start", "")
            let end = date(top, "end", "")
            if let start, let end, start > end { problem(top["end"], "end", "end \(end) is before start \(start)") }
            let office = string(top, "office", "", required: false) ?? officeUnit
            let dispatchDay = number(top, "dispatch_day", "", range: 1...28).map(Int.init) ?? 5
            let lagTolerance = number(top, "lag_tolerance", "", range: 0...100) ?? 15

            var units: [PlanDocument.UnitEntry] = []
            var unitNodes: [String: Node] = [:]
            for (index, node) in (sequence(top["units"], "units") ?? []).enumerated() {
                let path = "units[\(index)]"
                guard let map = mapping(node, path), let name = string(map, "name", path) else { continue }
                if unitNodes[name] != nil { problem(node, path, "unit \(name) is listed twice") }
                unitNodes[name] = node
                let kind = string(map, "kind", path) ?? "government"
                if !PlanLoader.unitKinds.contains(kind) {
                    problem(
                        map["kind"], "\(path).kind", "unknown kind \(kind); one of \(PlanLoader.unitKinds.sorted().joined(separator: ", "))"
                    )
                }
                let members = strings(map, "members", path)
                units.append(
                    .init(name: name, kind: kind, aliasOf: string(map, "alias_of", path, required: false), members: members.map(\.0)))
            }
            if top["units"] == nil { problem(root, "", "missing units") }
            for (index, unit) in units.enumerated() {
                if let alias = unit.aliasOf, unitNodes[alias] == nil {
                    problem(unitNodes[unit.name], "units[\(index)].alias_of", "unknown unit \(alias)")
                }
                for member in unit.members where unitNodes[member] == nil {
                    problem(unitNodes[unit.name], "units[\(index)].members", "unknown unit \(member)")
                }
            }
            if unitNodes[office] == nil { problem(top["office"] ?? root, "office", "the office \(office) is not among the units") }

            var categories: [PlanDocument.Category] = []
            for (index, node) in (sequence(top["categories"], "categories") ?? []).enumerated() {
                let path = "categories[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path), let title = string(map, "title", path) else {
                    continue
                }
                if categories.contains(where: { $0.id == id }) { problem(node, path, "category \(id) is listed twice") }
                categories.append(.init(id: id, title: title))
            }
            if top["categories"] == nil { problem(root, "", "missing categories") }

            var tasks: [PlanDocument.TaskEntry] = []
            var taskNodes: [String: Node] = [:]
            let rawTasks = sequence(top["tasks"], "tasks") ?? []
            if top["tasks"] == nil { problem(root, "", "missing tasks") }
            for (index, node) in rawTasks.enumerated() {
                let path = "tasks[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path) else { continue }
                if id.range(of: #"^[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) == nil {
                    problem(map["id"], "\(path).id", "task id \(id) must be a number such as 7 or 7.3")
                }
                if taskNodes[id] != nil { problem(node, path, "task \(id) is listed twice") }
                taskNodes[id] = node
                let categoryID = string(map, "category", path) ?? ""
                if !categoryID.isEmpty, !categories.contains(where: { $0.id == categoryID }) {
                    problem(map["category"], "\(path).category", "unknown category \(categoryID)")
                }
                let lead = strings(map, "lead", path)
                let cooperating = strings(map, "cooperating", path)
                for (name, unitNode) in lead + cooperating where unitNodes[name] == nil {
                    problem(unitNode, "\(path) (task \(id))", "unknown unit \(name): add it to units")
                }
                var deadline: String?
                if let text = string(map, "deadline", path, required: false), text != "ongoing" {
                    deadline = date(map, "deadline", path)
                }
                var milestones: [PlanDocument.MilestoneEntry] = []
                for (mIndex, mNode) in (sequence(map["milestones"], "\(path).milestones") ?? []).enumerated() {
                    let mPath = "\(path).milestones[\(mIndex)]"
                    guard let m = mapping(mNode, mPath), let date = date(m, "date", mPath), let text = string(m, "text", mPath) else {
                        continue
                    }
                    let percent = number(m, "percent", mPath, range: 0...100) ?? 100
                    if let deadline, date > deadline {
                        problem(m["date"], "\(mPath).date", "milestone \(date) is after the task's deadline \(deadline)")
                    }
                    milestones.append(.init(date: date, percent: percent, text: text))
                }
                tasks.append(
                    .init(
                        id: id, parent: string(map, "parent", path, required: false), category: categoryID,
                        title: string(map, "title", path) ?? "",
                        text: string(map, "text", path, required: false) ?? "", lead: lead.map(\.0), cooperating: cooperating.map(\.0),
                        deadline: deadline, deadlineText: string(map, "deadline_text", path, required: false), milestones: milestones,
                        subtasks: []))
            }
            // Parents: a task named as a parent holds its sub-items; it has no work of its own.
            for index in tasks.indices {
                guard let parent = tasks[index].parent else { continue }
                guard let parentIndex = tasks.firstIndex(where: { $0.id == parent }) else {
                    problem(taskNodes[tasks[index].id], "tasks[\(index)].parent", "unknown parent task \(parent)")
                    continue
                }
                if tasks[parentIndex].parent != nil {
                    problem(taskNodes[tasks[index].id], "tasks[\(index)].parent", "sub-items cannot have sub-items")
                }
                tasks[parentIndex].subtasks.append(tasks[index].id)
            }
            for (index, task) in tasks.enumerated() {
                let node = taskNodes[task.id]
                if task.isParent {
                    if !task.lead.isEmpty || task.deadline != nil {
                        problem(
                            node, "tasks[\(index)] (task \(task.id))",
                            "a task with sub-items takes its units and deadline from them; remove lead/deadline")
                    }
                } else {
                    if task.text.isEmpty { problem(node, "tasks[\(index)] (task \(task.id))", "missing text") }
                    if task.lead.isEmpty { problem(node, "tasks[\(index)] (task \(task.id))", "missing lead units (责任单位)") }
                    if case .mapping(let map) = node, map["deadline"] == nil {
                        problem(node, "tasks[\(index)] (task \(task.id))", "missing deadline (a date, or ongoing)")
                    }
                }
            }

            var targets: [PlanDocument.TargetEntry] = []
            for (index, node) in (sequence(top["targets"], "targets") ?? []).enumerated() {
                let path = "targets[\(index)]"
                guard let map = mapping(node, path), let indicator = string(map, "indicator", path), let text = string(map, "text", path),
                    let op = string(map, "operator", path)
                else { continue }
                if targets.contains(where: { $0.indicator == indicator }) { problem(node, path, "target \(indicator) is listed twice") }
                if !PlanLoader.operators.contains(op) {
                    problem(
                        map["operator"], "\(path).operator",
                        "unknown operator \(op); one of \(PlanLoader.operators.sorted().joined(separator: ", "))")
                }
                let scale = map["scale"] == nil ? nil : strings(map, "scale", path).map(\.0)
                let thresholdFrom = string(map, "threshold_from", path, required: false)
                var threshold: JSONValue?
                if let node = map["threshold"], case .scalar(let scalar) = node {
                    if ["at_least", "equal", "at_most"].contains(op) {
                        if let value = Double(scalar.string) {
                            threshold = .number(value)
                        } else {
                            problem(node, "\(path).threshold", "must be a number")
                        }
                    } else {
                        threshold = .string(scalar.string)
                        if let scale, !scale.contains(scalar.string) {
                            problem(node, "\(path).threshold", "\(scalar.string) is not in its scale")
                        }
                    }
                } else if thresholdFrom == nil, !["meets_standard", "within_quota"].contains(op) {
                    problem(node, path, "needs a threshold or threshold_from")
                }
                if ["class_at_least", "category_at_least"].contains(op), scale == nil {
                    problem(node, path, "\(op) needs a scale, best first")
                }
                let targetTasks = strings(map, "tasks", path)
                for (taskID, taskNode) in targetTasks where taskNodes[taskID] == nil {
                    problem(taskNode, "\(path).tasks", "unknown task \(taskID)")
                }
                targets.append(
                    .init(
                        indicator: indicator, text: text, op: op, threshold: threshold, thresholdFrom: thresholdFrom,
                        unit: string(map, "unit", path, required: false), scale: scale, tasks: targetTasks.map(\.0)))
            }

            var rules: [PlanDocument.Rule] = []
            for (index, node) in (sequence(top["rules"], "rules") ?? []).enumerated() {
                let path = "rules[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path), let text = string(map, "text", path) else {
                    continue
                }
                rules.append(.init(id: id, text: text, withinMonths: number(map, "within_months", path, range: 1...120).map(Int.init)))
            }

            guard let title, let start, let end else { return nil }
            return PlanDocument(
                title: title, district: string(top, "district", "", required: false), status: string(top, "status", "", required: false),
                start: start, end: end, office: office, dispatchDay: dispatchDay, lagTolerance: lagTolerance,
                goals: string(top, "goals", "", required: false), rules: rules, units: units, categories: categories, tasks: tasks,
                targets: targets)
        }
    }
}
