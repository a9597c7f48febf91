import ArgumentParser
import DubanConfig
import Formats
import Foundation
import Messaging
import PlanFormat
import Schema

extension EscalationLevel: NamedOption {
    static var noun: String { "方式" }

    var label: String {
        switch self {
        case .notice: return "通报"
        case .interview: return "约谈"
        case .accountability: return "问责"
        }
    }
}

/// Shortens text to `width` terminal columns.
func clip(_ text: String, _ width: Int) -> String {
    var out = ""
    for character in text {
        if TextTable.displayWidth(out + String(character)) > width - 1 { return out + "…" }
        out.append(character)
    }
    return out
}

func percentLabel(_ value: Double?) -> String {
    guard let value else { return "" }
    return value.rounded() == value ? "\(Int(value))%" : String(format: "%.1f%%", value)
}

struct Tasks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "方案任务及当前状态。")

    @OptionGroup var options: GlobalOptions
    @Option(help: "只看该单位牵头或配合的任务。") var unit: String?
    @Option(help: "任务类别：一至六，或其标题。") var category: String?
    @Option(help: "状态：\(TaskStatus.helpList)。") var status: String?

    func run() async throws {
        let status = try TaskStatus.resolve(self.status, option: "--status")
        try await options.checkUnits([("--unit", unit)])
        try await options.withClient(for: .registry) { client in
            let reply = try await perform(
                client, RegistryTypes.taskList, TaskListRequest(unit: unit, category: category, status: status),
                as: ListReply<PlanTask>.self,
                options: options)
            if options.json { return try printJSON(reply.items) }
            print(
                TextTable.render(
                    header: ["编号", "状态", "进度", "完成时限", "任务", "责任单位", "原因"],
                    rows: reply.items.map {
                        [
                            $0.id, $0.status?.label ?? "", percentLabel($0.progress),
                            $0.deadlineText ?? ($0.deadline ?? (($0.ongoing) ? "持续推进" : "")),
                            clip($0.title, 30), clip($0.leadUnits.joined(separator: "、"), 30),
                            clip(($0.reasons ?? []).map(\.text).joined(separator: "；"), 40),
                        ]
                    }))
        }
    }
}

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "一项任务的全部内容：原文、责任单位、完成时限、节点要求、最新进展。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "方案中的任务编号：5、7.3、11.2。") var id: String

    func run() async throws {
        try await options.withClient(for: .registry) { client in
            let task = try await perform(client, RegistryTypes.taskGet, TaskGetRequest(id: id), as: PlanTask.self, options: options)
            if options.json { return try printJSON(task) }
            print("\(task.id)、\(task.title)")
            print("  任务分组  \(task.category)")
            print("  状态      \(task.status?.label ?? "") (\(task.status?.rawValue ?? ""))，进度 \(percentLabel(task.progress))")
            for reason in task.reasons ?? [] { print("  原因      \(reason.text)（\(reason.code)）") }
            if let ledger = task.ledger {
                print("  台账      \(ledger.summary)（\(ledger.sources.map(\.label).joined(separator: "、"))）")
            }
            print("  完成时限  \(task.deadlineText ?? task.deadline ?? "持续推进")\(task.deadline.map { " (\($0))" } ?? "")")
            print("  责任单位  \(task.leadUnits.joined(separator: "、"))")
            if !task.cooperatingUnits.isEmpty { print("  配合单位  \(task.cooperatingUnits.joined(separator: "、"))") }
            if !task.subtasks.isEmpty { print("  子任务    \(task.subtasks.joined(separator: "、"))") }
            for milestone in task.milestones { print("  节点      \(milestone.date) \(percentLabel(milestone.percent)) \(milestone.text)") }
            if !task.targets.isEmpty { print("  目标      \(task.targets.joined(separator: ", "))") }
            if !task.text.isEmpty { print("\n\(task.text)") }
            if let reports = task.latestReports, !reports.isEmpty {
                print("\n最新调度情况")
                print(
                    TextTable.render(
                        header: ["单位", "月份", "进度", "版本", "情况"],
                        rows: reports.map { [$0.unit, $0.period, percentLabel($0.percent), "\($0.revision)", clip($0.summary, 50)] }))
            }
        }
    }
}

struct Progress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "月调度进展报送。", subcommands: [Report.self, List.self], defaultSubcommand: List.self)

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "报送单位某月的任务进展；再次报送即为更正。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "任务编号，如 7.3。") var task: String
        @Option(help: "月份，YYYY-MM。") var period: String
        @Option(help: "报送单位（方案中的名称）。") var unit: String
        @Option(help: "完成进度，0 到 100。") var percent: Double
        @Option(help: "本月进展情况。") var summary: String
        @Option(help: "采取的措施。") var measures: String?
        @Option(help: "存在的问题。") var problems: String?
        @Option(help: "下步计划。") var nextSteps: String?
        @Option(help: "佐证材料，写作 名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []

        func run() async throws {
            let refs = try evidence.enumerated().map { index, text -> EvidenceRef in
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    throw ValidationError("--evidence 第 \(index + 1) 项应写作 名称=地址 或 名称=地址#sha256，收到 \(text)")
                }
                let name = String(text[..<equals])
                let rest = String(text[text.index(after: equals)...])
                let parts = rest.split(separator: "#", maxSplits: 1).map(String.init)
                return EvidenceRef(name: name, uri: parts.first ?? "", sha256: parts.count > 1 ? parts[1] : nil)
            }
            try await options.checkUnits([("--unit", unit)])
            let request = ProgressReportRequest(
                task: task, period: period, unit: unit, percent: percent, summary: summary, measures: measures, problems: problems,
                nextSteps: nextSteps,
                evidence: refs.isEmpty ? nil : refs)
            try await options.withClient(for: .registry) { client in
                let report = try await perform(client, RegistryTypes.progressReport, request, as: ProgressReport.self, options: options)
                if options.json { return try printJSON(report) }
                print("已报送：任务 \(report.task) \(report.period) \(report.unit) \(percentLabel(report.percent))（第 \(report.revision) 版）")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "查看报送情况。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "任务编号。") var task: String?
        @Option(help: "月份，YYYY-MM。") var period: String?
        @Option(help: "单位。") var unit: String?
        @Flag(help: "列出每次更正，不只最新一次。") var history = false

        func run() async throws {
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .registry) { client in
                let reply = try await perform(
                    client, RegistryTypes.progressList, ProgressListRequest(task: task, period: period, unit: unit, history: history),
                    as: ListReply<ProgressReport>.self, options: options)
                if options.json { return try printJSON(reply.items) }
                print(
                    TextTable.render(
                        header: ["任务", "月份", "单位", "进度", "版本", "报送时间", "情况"],
                        rows: reply.items.map {
                            [
                                $0.task, $0.period, $0.unit, percentLabel($0.percent), "\($0.revision)", String($0.reportedAt.prefix(16)),
                                clip($0.summary, 40),
                            ]
                        }))
            }
        }
    }
}

struct Dispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "月调度：某月已报送和未报送的单位。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "月份，YYYY-MM。") var period: String
    @OptionGroup var export: ExportOptions

    func run() async throws {
        let format = try export.chosenFormat()
        try await options.withClient(for: .registry) { client in
            let reply = try await perform(
                client, RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: period), as: DispatchOverviewReply.self,
                options: options)
            if let format {
                // The document: every task and unit of the month with its report (or none), built in Formats.
                let reports = try await perform(
                    client, RegistryTypes.progressList, ProgressListRequest(period: reply.period), as: ListReply<ProgressReport>.self,
                    options: options)
                let tasks = try await perform(
                    client, RegistryTypes.taskList, TaskListRequest(), as: ListReply<PlanTask>.self, options: options)
                let table = ExportTable.dispatch(
                    reply, reports: reports.items, tasks: tasks.items, today: Timestamp.districtDate(Date()))
                return try export.write(table, format: format)
            }
            if options.json { return try printJSON(reply) }
            // Grouped by unit, as the office reads a dispatch: what each unit has reported, and
            // what it has not, still within the deadline or already past it.
            let late = Timestamp.districtDate(Date()) > reply.due
            let missingLabel = late ? "未报（已逾期）" : "未报（未到期）"
            print("\(reply.period) 月调度（报送截止 \(reply.due)）：已报 \(reply.reported.count) 项，\(missingLabel) \(reply.missing.count) 项")
            var byUnit: [String: (reported: [String], missing: [String])] = [:]
            for item in reply.reported { byUnit[item.unit, default: ([], [])].reported.append(item.task) }
            for item in reply.missing { byUnit[item.unit, default: ([], [])].missing.append(item.task) }
            let rows = byUnit.keys.sorted { (byUnit[$0]!.missing.count, $1) > (byUnit[$1]!.missing.count, $0) }.map { unit in
                [unit, byUnit[unit]!.reported.joined(separator: "、"), byUnit[unit]!.missing.joined(separator: "、")]
            }
            print(TextTable.render(header: ["单位", "已报", missingLabel], rows: rows))
            // Why the tasks of the month stand behind: each lagging or overdue task with its reasons.
            let behind = try await perform(
                client, RegistryTypes.taskList, TaskListRequest(), as: ListReply<PlanTask>.self, options: options
            )
            .items.filter { $0.subtasks.isEmpty && ($0.status == .lagging || $0.status == .overdue) }
            if !behind.isEmpty {
                print("\n滞后、逾期任务及原因：")
                print(
                    TextTable.render(
                        header: ["编号", "状态", "责任单位", "原因"],
                        rows: behind.map {
                            [
                                $0.id, $0.status?.label ?? "", $0.leadUnits.joined(separator: "、"),
                                ($0.reasons ?? []).map(\.text).joined(separator: "；"),
                            ]
                        }))
            }
        }
    }
}

struct Escalate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "记录对单位的通报（notice）、约谈（interview）或问责（accountability）。")

    @OptionGroup var options: GlobalOptions
    @Option(help: "单位。") var unit: String
    @Option(help: "notice（通报）、interview（约谈）或 accountability（问责）。") var level: String
    @Option(help: "原因。") var reason: String
    @Option(help: "涉及的任务编号（可重复）。") var task: [String] = []

    func run() async throws {
        var options = options
        // Escalations are the office's to record.
        if options.from == nil { options.from = officeUnit }
        let level = try EscalationLevel.named(self.level, option: "--level")
        try await options.checkUnits([("--unit", unit)])
        try await options.withClient(for: .registry) { client in
            let escalation = try await perform(
                client, RegistryTypes.escalationRecord,
                EscalationRecordRequest(unit: unit, level: level, reason: reason, tasks: task.isEmpty ? nil : task),
                as: Escalation.self, options: options)
            if options.json { return try printJSON(escalation) }
            print("已记录：对\(escalation.unit)\(escalation.level.label)（第 \(escalation.id) 号）")
        }
    }
}

struct Escalations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "已记录的通报、约谈、问责（某单位或全部）。")

    @OptionGroup var options: GlobalOptions
    @Option(help: "单位。") var unit: String?

    func run() async throws {
        try await options.checkUnits([("--unit", unit)])
        try await options.withClient(for: .registry) { client in
            let reply = try await perform(
                client, RegistryTypes.escalationList, EscalationListRequest(unit: unit), as: ListReply<Escalation>.self, options: options)
            if options.json { return try printJSON(reply.items) }
            print(
                TextTable.render(
                    header: ["编号", "单位", "方式", "任务", "时间", "事由"],
                    rows: reply.items.map {
                        [
                            "\($0.id)", $0.unit, $0.level.label, $0.tasks.joined(separator: "、"), String($0.recordedAt.prefix(16)),
                            clip($0.reason, 40),
                        ]
                    }))
        }
    }
}

struct Units: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "方案中的单位。")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await options.withClient(for: .registry) { client in
            let reply = try await perform(client, RegistryTypes.unitList, Empty(), as: ListReply<PlanUnit>.self, options: options)
            if options.json { return try printJSON(reply.items) }
            print(
                TextTable.render(
                    header: ["单位", "类别", "说明"],
                    rows: reply.items.map { unit in
                        let note = unit.aliasOf.map { "即\($0)" } ?? unit.members.map { "含" + $0.joined(separator: "、") } ?? ""
                        return [clip(unit.name, 40), unit.kind, clip(note, 60)]
                    }))
        }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "方案文件：校验、载入任务登记服务、查看现行方案。",
        subcommands: [Check.self, Load.self, Show.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "在本机校验方案文件，逐条指出问题所在的行。")
        @Argument(help: "方案文件（YAML）。") var file: String

        func run() throws {
            do {
                let plan = try PlanLoader.load(path: file)
                print("\(file): ok — \(plan.title): \(plan.tasks.count) tasks, \(plan.units.count) units, \(plan.targets.count) targets")
            } catch {
                print(error.description)
                throw ExitCode(1)
            }
        }
    }

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "用方案文件替换现行方案（已报送的进展和通报约谈记录保留）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "方案文件（YAML）。") var file: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("无法读取文件 \(file)") }
            try await options.withClient(for: .registry) { client in
                let reply = try await perform(
                    client, RegistryTypes.planLoad, PlanLoadRequest(content: String(decoding: data, as: UTF8.self), name: file),
                    as: PlanLoadReply.self,
                    options: options)
                if options.json { return try printJSON(reply) }
                print("loaded \(reply.title): \(reply.tasks) tasks, \(reply.units) units, \(reply.targets) targets at \(reply.loadedAt)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "现行方案（JSON）。")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await options.withClient(for: .registry) { client in
                try printJSON(try await perform(client, RegistryTypes.planGet, Empty(), as: PlanReply.self, options: options))
            }
        }
    }
}

/// `duban accept`: the office accepts (验收) a task every lead unit reported complete.
struct AcceptTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept", abstract: "验收：责任单位均报送完成（待验收）的任务，经专项工作组办公室核查后验收为已完成。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "任务编号，如 7.3。") var id: String
    @Option(help: "验收意见。") var comment: String
    @Option(help: "验收材料，名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []

    func run() async throws {
        let refs = try evidenceRefs(evidence)
        try await options.withClient(for: .registry) { client in
            let review = try await perform(
                client, RegistryTypes.taskAccept, TaskAcceptRequest(task: id, comment: comment, evidence: refs.isEmpty ? nil : refs),
                options: options)
            if options.json { return try printJSON(review) }
            print("已验收：任务 \(review.task)，状态 \(review.status?.label ?? "")")
        }
    }
}

/// `duban return`: the office returns a task reported complete; its units report again.
struct ReturnTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "return", abstract: "退回：待验收的任务核查未通过，退回责任单位，重新报送后再验收。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "任务编号，如 7.3。") var id: String
    @Option(help: "退回理由。") var reason: String

    func run() async throws {
        try await options.withClient(for: .registry) { client in
            let review = try await perform(client, RegistryTypes.taskReturn, TaskReturnRequest(task: id, reason: reason), options: options)
            if options.json { return try printJSON(review) }
            print("已退回：任务 \(review.task)，状态 \(review.status?.label ?? "")")
        }
    }
}
