import Foundation
import Schema
import WorkCalendar
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
        /// The ledger cases the task is measured by (`ledger:` in the file), if any.
        public var ledger: LedgerLink? = nil
        public var isParent: Bool { !subtasks.isEmpty }
    }

    /// A task's link to the ledger: the case sources that count for it, and how many cases the
    /// plan says there are, where it says (`237 处混错接点位`).
    public struct LedgerLink: Codable, Sendable, Equatable {
        /// `CaseSource` ids.
        public var sources: [String]
        public var expected: Int?
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
        /// Quantities judged separately within this target (same tasks; `at_least`, `at_most` or `equal`).
        public var parts: [TargetEntry]?

        public init(
            indicator: String, text: String, op: String, threshold: JSONValue?, thresholdFrom: String?, unit: String?, scale: [String]?,
            tasks: [String], parts: [TargetEntry]? = nil
        ) {
            self.indicator = indicator
            self.text = text
            self.op = op
            self.threshold = threshold
            self.thresholdFrom = thresholdFrom
            self.unit = unit
            self.scale = scale
            self.tasks = tasks
            self.parts = parts
        }
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var id: String
        public var text: String
        public var withinMonths: Int?
        /// A fixed day the rule sets (`due: 2024-09-30`), which takes precedence over `within_months`.
        public var due: String?
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
    /// When supervision started (go-live, YYYY-MM-DD): no month before it counts as missing and
    /// nothing is proposed for it. Not in the plan file: the registry sets it from the
    /// configuration (`supervisionStart`) or its first start, and every service reads it from `plan.get`.
    public var supervisionStart: String?
    /// Working days (holidays and 调休), for due dates. Not in the plan file: the registry sets it
    /// from the configuration (`holidaysFile`) or the bundled calendar.
    public var calendar: WorkCalendar?

    /// The calendar in force: the configured one, else the bundled one.
    public var workCalendar: WorkCalendar { calendar ?? .bundled }

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
        "方案文件有 \(problems.count) 处问题：\n" + problems.map { "  \($0)" }.joined(separator: "\n")
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
                PlanProblem(file: path, line: nil, path: "", message: "无法读取文件：\(error.localizedDescription)")
            ])
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(PlanLoadError) -> PlanDocument {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PlanLoadError(problems: [PlanProblem(file: file, line: 1, path: "", message: "文件为空")])
            }
            root = node
        } catch let error as PlanLoadError {
            throw error
        } catch let error as YamlError {
            throw PlanLoadError(problems: [
                PlanProblem(file: file, line: yamlErrorLine(error), path: "", message: "不是有效的 YAML，请检查缩进、冒号和引号（制表符不能用于缩进）")
            ])
        } catch {
            throw PlanLoadError(problems: [PlanProblem(file: file, line: nil, path: "", message: "不是有效的 YAML，请检查缩进、冒号和引号（制表符不能用于缩进）")])
        }
        var reader = Reader(file: file)
        let plan = reader.plan(root)
        if !reader.problems.isEmpty || plan == nil {
            throw PlanLoadError(
                problems: reader.problems.isEmpty
                    ? [PlanProblem(file: file, line: 1, path: "", message: "无法读取方案")] : reader.problems)
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
                problem(node, path, "应为键值映射")
                return nil
            }
            return mapping
        }

        mutating func sequence(_ node: Node?, _ path: String) -> [Node]? {
            guard let node else { return nil }
            guard case .sequence(let sequence) = node else {
                problem(node, path, "应为列表")
                return nil
            }
            return Array(sequence)
        }

        mutating func string(_ map: Node.Mapping, _ key: String, _ path: String, required: Bool = true) -> String? {
            guard let node = map[key] else {
                if required { problem(map.mark.map { _ in Node.mapping(map) }, path, "缺少 \(key)") }
                return nil
            }
            guard case .scalar(let scalar) = node, !scalar.string.trimmingCharacters(in: .whitespaces).isEmpty else {
                problem(node, "\(path).\(key)", "应为非空文本")
                return nil
            }
            return scalar.string
        }

        mutating func number(_ map: Node.Mapping, _ key: String, _ path: String, range: ClosedRange<Double>) -> Double? {
            guard let node = map[key] else { return nil }
            guard case .scalar(let scalar) = node, let value = Double(scalar.string), range.contains(value) else {
                problem(node, "\(path).\(key)", "应为 \(range.lowerBound.formatted()) 到 \(range.upperBound.formatted()) 之间的数")
                return nil
            }
            return value
        }

        mutating func date(_ map: Node.Mapping, _ key: String, _ path: String, required: Bool = true) -> String? {
            guard let text = string(map, key, path, required: required) else { return nil }
            guard Timestamp.startOfDistrictDay(text) != nil else {
                problem(map[key], "\(path).\(key)", "\(ErrorBody.quote(text)) 不是日期（应为 YYYY-MM-DD）")
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
                    problem(item, "\(path).\(key)[\(index)]", "应为文本")
                    continue
                }
                out.append((scalar.string, item))
            }
            return out
        }

        /// `ledger: {sources: [sewer_misconnection], expected: 237}`: sources by id or Chinese label.
        mutating func ledgerLink(_ node: Node?, _ path: String) -> PlanDocument.LedgerLink? {
            guard let node, let map = mapping(node, path) else { return nil }
            for key in map.keys.compactMap(\.string) where !["sources", "expected"].contains(key) {
                problem(map[key], "\(path).\(key)", "未知的台账字段 \(ErrorBody.quote(key))，可用：sources、expected")
            }
            var sources: [String] = []
            for (name, sourceNode) in strings(map, "sources", path) {
                guard let source = CaseSource(text: name) else {
                    problem(
                        sourceNode, "\(path).sources",
                        "未知的问题来源 \(ErrorBody.quote(name))，应为以下之一："
                            + CaseSource.allCases.map(\.rawValue).joined(separator: ", "))
                    continue
                }
                if sources.contains(source.rawValue) { problem(sourceNode, "\(path).sources", "问题来源 \(ErrorBody.quote(name)) 重复列出") }
                sources.append(source.rawValue)
            }
            if sources.isEmpty { problem(node, path, "台账须列出问题来源（sources）") }
            var expected: Int?
            if let value = number(map, "expected", path, range: 1...100_000) {
                if value == value.rounded() { expected = Int(value) } else { problem(map["expected"], "\(path).expected", "应为整数") }
            }
            return PlanDocument.LedgerLink(sources: sources, expected: expected)
        }

        mutating func plan(_ root: Node) -> PlanDocument? {
            guard let top = mapping(root, "") else { return nil }
            let title = string(top, "title", "")
            let start = date(top, "start", "")
            let end = date(top, "end", "")
            if let start, let end, start > end { problem(top["end"], "end", "结束日期 \(end) 早于开始日期 \(start)") }
            let office = string(top, "office", "", required: false) ?? officeUnit
            let dispatchDay = number(top, "dispatch_day", "", range: 1...28).map(Int.init) ?? 5
            let lagTolerance = number(top, "lag_tolerance", "", range: 0...100) ?? 15

            var units: [PlanDocument.UnitEntry] = []
            var unitNodes: [String: Node] = [:]
            for (index, node) in (sequence(top["units"], "units") ?? []).enumerated() {
                let path = "units[\(index)]"
                guard let map = mapping(node, path), let name = string(map, "name", path) else { continue }
                if unitNodes[name] != nil { problem(node, path, "单位 \(ErrorBody.quote(name)) 重复列出") }
                unitNodes[name] = node
                let kind = string(map, "kind", path) ?? "government"
                if !PlanLoader.unitKinds.contains(kind) {
                    problem(
                        map["kind"], "\(path).kind",
                        "未知的单位类型 \(ErrorBody.quote(kind))，应为以下之一：\(PlanLoader.unitKinds.sorted().joined(separator: ", "))")
                }
                let members = strings(map, "members", path)
                units.append(
                    .init(name: name, kind: kind, aliasOf: string(map, "alias_of", path, required: false), members: members.map(\.0)))
            }
            if top["units"] == nil { problem(root, "", "缺少 units（单位名单）") }
            for (index, unit) in units.enumerated() {
                if let alias = unit.aliasOf, unitNodes[alias] == nil {
                    problem(unitNodes[unit.name], "units[\(index)].alias_of", "未知单位 \(ErrorBody.quote(alias))")
                }
                for member in unit.members where unitNodes[member] == nil {
                    problem(unitNodes[unit.name], "units[\(index)].members", "未知单位 \(ErrorBody.quote(member))")
                }
            }
            if unitNodes[office] == nil { problem(top["office"] ?? root, "office", "office 指定的 \(ErrorBody.quote(office)) 不在单位名单中") }

            var categories: [PlanDocument.Category] = []
            for (index, node) in (sequence(top["categories"], "categories") ?? []).enumerated() {
                let path = "categories[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path), let title = string(map, "title", path) else {
                    continue
                }
                if categories.contains(where: { $0.id == id }) { problem(node, path, "任务类别 \(ErrorBody.quote(id)) 重复列出") }
                categories.append(.init(id: id, title: title))
            }
            if top["categories"] == nil { problem(root, "", "缺少 categories（任务类别）") }

            var tasks: [PlanDocument.TaskEntry] = []
            var taskNodes: [String: Node] = [:]
            let rawTasks = sequence(top["tasks"], "tasks") ?? []
            if top["tasks"] == nil { problem(root, "", "缺少 tasks（任务清单）") }
            for (index, node) in rawTasks.enumerated() {
                let path = "tasks[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path) else { continue }
                if id.range(of: #"^[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) == nil {
                    problem(map["id"], "\(path).id", "任务编号 \(ErrorBody.quote(id)) 应为数字，如 7 或 7.3")
                }
                if taskNodes[id] != nil { problem(node, path, "任务 \(ErrorBody.quote(id)) 重复列出") }
                taskNodes[id] = node
                let categoryID = string(map, "category", path) ?? ""
                if !categoryID.isEmpty, !categories.contains(where: { $0.id == categoryID }) {
                    problem(map["category"], "\(path).category", "未知的任务类别 \(ErrorBody.quote(categoryID))")
                }
                let lead = strings(map, "lead", path)
                let cooperating = strings(map, "cooperating", path)
                for (name, unitNode) in lead + cooperating where unitNodes[name] == nil {
                    problem(unitNode, "\(path)（任务 \(ErrorBody.quote(id))）", "未知单位 \(ErrorBody.quote(name))：请先列入 units")
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
                        problem(m["date"], "\(mPath).date", "节点日期 \(date) 晚于任务完成时限 \(deadline)")
                    }
                    milestones.append(.init(date: date, percent: percent, text: text))
                }
                tasks.append(
                    .init(
                        id: id, parent: string(map, "parent", path, required: false), category: categoryID,
                        title: string(map, "title", path) ?? "",
                        text: string(map, "text", path, required: false) ?? "", lead: lead.map(\.0), cooperating: cooperating.map(\.0),
                        deadline: deadline, deadlineText: string(map, "deadline_text", path, required: false), milestones: milestones,
                        subtasks: [], ledger: ledgerLink(map["ledger"], "\(path).ledger")))
            }
            // A source counts for one task only: a case naming no task must not count twice.
            var linkedSources: [String: String] = [:]
            for (index, task) in tasks.enumerated() {
                for source in task.ledger?.sources ?? [] {
                    if let other = linkedSources[source] {
                        problem(
                            taskNodes[task.id], "tasks[\(index)].ledger.sources",
                            "问题来源 \(ErrorBody.quote(source)) 已关联任务 \(ErrorBody.quote(other))，一个来源只能关联一项任务")
                    }
                    linkedSources[source] = task.id
                }
            }
            // Parents: a task named as a parent holds its sub-items; it has no work of its own.
            for index in tasks.indices {
                guard let parent = tasks[index].parent else { continue }
                guard let parentIndex = tasks.firstIndex(where: { $0.id == parent }) else {
                    problem(taskNodes[tasks[index].id], "tasks[\(index)].parent", "未知的上级任务 \(ErrorBody.quote(parent))")
                    continue
                }
                if tasks[parentIndex].parent != nil {
                    problem(taskNodes[tasks[index].id], "tasks[\(index)].parent", "子项下不能再设子项")
                }
                tasks[parentIndex].subtasks.append(tasks[index].id)
            }
            for (index, task) in tasks.enumerated() {
                let node = taskNodes[task.id]
                if task.isParent {
                    if !task.lead.isEmpty || task.deadline != nil {
                        problem(
                            node, "tasks[\(index)]（任务 \(ErrorBody.quote(task.id))）",
                            "有子项的任务，其单位和时限取自子项，请删去 lead/deadline")
                    }
                    if task.ledger != nil {
                        problem(node, "tasks[\(index)]（任务 \(ErrorBody.quote(task.id))）", "有子项的任务，台账请关联到子项")
                    }
                } else {
                    if task.text.isEmpty { problem(node, "tasks[\(index)]（任务 \(ErrorBody.quote(task.id))）", "缺少任务内容（text）") }
                    if task.lead.isEmpty { problem(node, "tasks[\(index)]（任务 \(ErrorBody.quote(task.id))）", "缺少责任单位（lead）") }
                    if case .mapping(let map) = node, map["deadline"] == nil {
                        problem(node, "tasks[\(index)]（任务 \(ErrorBody.quote(task.id))）", "缺少完成时限（deadline：日期，或 ongoing 表示持续推进）")
                    }
                }
            }

            var targets: [PlanDocument.TargetEntry] = []
            for (index, node) in (sequence(top["targets"], "targets") ?? []).enumerated() {
                let path = "targets[\(index)]"
                guard let map = mapping(node, path), let indicator = string(map, "indicator", path), let text = string(map, "text", path),
                    let op = string(map, "operator", path)
                else { continue }
                if targets.contains(where: { $0.indicator == indicator }) { problem(node, path, "指标 \(ErrorBody.quote(indicator)) 重复列出") }
                if !PlanLoader.operators.contains(op) {
                    problem(
                        map["operator"], "\(path).operator",
                        "未知的比较方式 \(ErrorBody.quote(op))，应为以下之一：\(PlanLoader.operators.sorted().joined(separator: ", "))")
                }
                let scale = map["scale"] == nil ? nil : strings(map, "scale", path).map(\.0)
                let thresholdFrom = string(map, "threshold_from", path, required: false)
                var threshold: JSONValue?
                if let node = map["threshold"], case .scalar(let scalar) = node {
                    if ["at_least", "equal", "at_most"].contains(op) {
                        if let value = Double(scalar.string) {
                            threshold = .number(value)
                        } else {
                            problem(node, "\(path).threshold", "应为数字")
                        }
                    } else {
                        threshold = .string(scalar.string)
                        if let scale, !scale.contains(scalar.string) {
                            problem(node, "\(path).threshold", "\(ErrorBody.quote(scalar.string)) 不在 scale 分级之中")
                        }
                    }
                } else if thresholdFrom == nil, !["meets_standard", "within_quota"].contains(op) {
                    problem(node, path, "需要 threshold 或 threshold_from")
                }
                if ["class_at_least", "category_at_least"].contains(op), scale == nil {
                    problem(node, path, "\(op) 需要 scale（分级，由优到劣）")
                }
                let targetTasks = strings(map, "tasks", path)
                for (taskID, taskNode) in targetTasks where taskNodes[taskID] == nil {
                    problem(taskNode, "\(path).tasks", "未知任务 \(ErrorBody.quote(taskID))")
                }
                // Parts: quantities of one target judged each on its own (主要污染物减排, 碳排放强度), numeric only.
                var parts: [PlanDocument.TargetEntry]?
                if map["parts"] != nil {
                    parts = []
                    for (partIndex, partNode) in (sequence(map["parts"], "\(path).parts") ?? []).enumerated() {
                        let partPath = "\(path).parts[\(partIndex)]"
                        guard let part = mapping(partNode, partPath), let partID = string(part, "indicator", partPath),
                            let partText = string(part, "text", partPath), let partOp = string(part, "operator", partPath)
                        else { continue }
                        let taken = targets.contains { $0.indicator == partID || $0.parts?.contains { $0.indicator == partID } == true }
                        if taken || partID == indicator || parts?.contains(where: { $0.indicator == partID }) == true {
                            problem(partNode, partPath, "指标 \(ErrorBody.quote(partID)) 重复列出")
                        }
                        if !["at_least", "at_most", "equal"].contains(partOp) {
                            problem(part["operator"], "\(partPath).operator", "分项指标的比较方式应为 at_least、at_most 或 equal")
                        }
                        let partFrom = string(part, "threshold_from", partPath, required: false)
                        var partThreshold: JSONValue?
                        if let node = part["threshold"], case .scalar(let scalar) = node {
                            if let value = Double(scalar.string) {
                                partThreshold = .number(value)
                            } else {
                                problem(node, "\(partPath).threshold", "应为数字")
                            }
                        } else if partFrom == nil {
                            problem(partNode, partPath, "需要 threshold 或 threshold_from")
                        }
                        parts?.append(
                            .init(
                                indicator: partID, text: partText, op: partOp, threshold: partThreshold, thresholdFrom: partFrom,
                                unit: string(part, "unit", partPath, required: false), scale: nil, tasks: targetTasks.map(\.0)))
                    }
                }
                targets.append(
                    .init(
                        indicator: indicator, text: text, op: op, threshold: threshold, thresholdFrom: thresholdFrom,
                        unit: string(map, "unit", path, required: false), scale: scale, tasks: targetTasks.map(\.0), parts: parts))
            }

            var rules: [PlanDocument.Rule] = []
            for (index, node) in (sequence(top["rules"], "rules") ?? []).enumerated() {
                let path = "rules[\(index)]"
                guard let map = mapping(node, path), let id = string(map, "id", path), let text = string(map, "text", path) else {
                    continue
                }
                rules.append(
                    .init(
                        id: id, text: text, withinMonths: number(map, "within_months", path, range: 1...120).map(Int.init),
                        due: date(map, "due", path, required: false)))
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
