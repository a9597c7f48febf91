/// The ledger's figures for a task linked to ledger cases (issue #15): the plan's tasks 10
/// (混错接点位), 7.3 (入河排污口), 5 (废水排放场) and 17–19 (督察、排查发现的问题). The registry
/// keeps them from the cases service's events; `task.get` and `task.list` carry them.
public struct TaskLedger: Codable, Sendable, Equatable {
    /// The case sources linked to the task (a case naming no task counts for the task linked to its source).
    public var sources: [CaseSource]
    /// How many the plan says there are (237 points for task 10); nil where the plan states no number.
    public var expected: Int?
    /// Cases in the ledger for the task, voided ones (作废) left out.
    public var registered: Int
    /// Cases whose rectification is accepted (`accepted` or `closed`: 验收销号).
    public var closed: Int
    /// `registered - closed`: still being worked on.
    public var open: Int
    /// Open cases whose deadline day has ended.
    public var overdue: Int

    public init(sources: [CaseSource], expected: Int?, registered: Int, closed: Int, open: Int, overdue: Int) {
        self.sources = sources
        self.expected = expected
        self.registered = registered
        self.closed = closed
        self.open = open
        self.overdue = overdue
    }

    /// What the task's completion counts against: the plan's number, else what is registered.
    public var total: Int { expected ?? registered }

    /// Every expected case registered and every registered one closed.
    public var isDone: Bool { open == 0 && closed >= (expected ?? 0) }

    /// The closed share in percent (0 when nothing is counted yet).
    public var closedPercent: Double { total > 0 ? min(Double(closed) / Double(total) * 100, 100) : 0 }

    /// How the office reads it: `台账 登记 200 / 237，销号 196，未销号 4，逾期 1`.
    public var summary: String {
        var parts = ["登记 \(registered)" + (expected.map { " / \($0)" } ?? ""), "销号 \(closed)", "未销号 \(open)"]
        if overdue > 0 { parts.append("逾期 \(overdue)") }
        return "台账" + parts.joined(separator: "，")
    }
}

extension TaskLedger: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        sources = try members.required(CodingKeys.sources)
        expected = try members.optional(CodingKeys.expected)
        registered = try members.required(CodingKeys.registered)
        closed = try members.required(CodingKeys.closed)
        open = try members.required(CodingKeys.open)
        overdue = try members.required(CodingKeys.overdue)
    }
}
