import ArgumentParser
import Foundation
import Messaging
import Schema

extension SupervisionDecision: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "accept", "同意", "同意办结", "办结": self = .accept
        case "return", "退回": self = .return
        default: return nil
        }
    }
}

/// `duban supervision`: 督办单, issued by the office (and each quarter by the registry itself),
/// answered item by item by the units, accepted or returned by the office.
struct SupervisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervision", abstract: "督办单：下发、答复、审核、查看（季督办和专项督办）。",
        subcommands: [List.self, Show.self, Issue.self, Reply.self, Review.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "督办单及其事项。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "只看该单位的事项。") var unit: String?
        @Option(help: "事项状态：pending（待答复）、replied（已答复待审核）、accepted（已办结）、returned（已退回）。") var state: String?
        @Option(help: "年份，如 2026。") var year: String?
        @Flag(help: "只看逾期未答复的事项。") var overdue = false

        func run() async throws {
            let state = try SupervisionItemState.resolve(self.state, option: "--state")
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .registry) { client in
                let orders = try await perform(
                    client, SupervisionTypes.list,
                    SupervisionListRequest(unit: unit, state: state, year: year, overdue: overdue ? true : nil), options: options
                ).items
                if options.json { return try printJSON(orders) }
                var rows: [[String]] = []
                for order in orders {
                    for item in order.items {
                        rows.append([
                            order.id, "\(item.no)", item.unit, item.state.label + (item.overdue ? "（逾期）" : ""), item.deadline,
                            clip(item.problem, 40),
                        ])
                    }
                }
                print(TextTable.render(header: ["督办单", "序号", "责任单位", "状态", "答复时限", "督办问题"], rows: rows))
                print("共 \(orders.count) 张督办单，\(rows.count) 项")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "一张督办单的全部事项、答复和审核意见。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "督办单编号，如 DB-2026-Q4 或 DB-2026-001。") var id: String

        func run() async throws {
            try await options.withClient(for: .registry) { client in
                guard
                    let order = try await perform(client, SupervisionTypes.list, SupervisionListRequest(order: id), options: options).items
                        .first
                else { throw ValidationError("没有督办单 \(id)") }
                if options.json { return try printJSON(order) }
                print("\(order.id)  \(order.title)（\(order.kind.label)）")
                print("  下发时间  \(order.issuedAt.prefix(16))\(order.issuedBy.map { "，\($0)" } ?? "")")
                print("  答复时限  \(order.replyDeadline)")
                for item in order.items {
                    print("\n第\(item.no)项  \(item.unit)  \(item.state.label)\(item.overdue ? "（逾期）" : "")  答复时限 \(item.deadline)")
                    if !item.tasks.isEmpty { print("  涉及任务  \(item.tasks.joined(separator: "、"))") }
                    if !item.cases.isEmpty { print("  涉及问题  \(item.cases.joined(separator: "、"))") }
                    print("  督办问题  \(item.problem)")
                    print("  整改要求  \(item.measure)")
                    for reply in item.replies ?? [] { print("  答复      \(reply.at.prefix(16)) \(reply.by ?? "")：\(reply.measures)") }
                    for review in item.reviews ?? [] {
                        print("  审核      \(review.at.prefix(16)) \(review.decision.label)：\(review.comment)")
                    }
                }
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "下发督办单（专项工作组办公室）。",
            discussion: """
                每个 --item 写作 单位|任务编号（多个用逗号）|督办问题|整改要求，问题编号可用 --item-case 附在最后一项。
                示例：duban supervision issue --deadline 2026-12-15 --title 混错接专项督办单 \\
                  --item "区城乡建设局|10|混错接点位整治进度滞后|12月10日前报送分批整治计划"
                季度督办（事项按滞后、逾期任务自动列出）：duban supervision issue --quarter 2026-Q4 --deadline 2027-01-25
                """)
        @OptionGroup var options: GlobalOptions
        @Option(help: "答复时限，YYYY-MM-DD。") var deadline: String
        @Option(help: "标题。") var title: String?
        @Option(help: "季度督办的季度，如 2026-Q4（不写 --item 时自动列出滞后、逾期任务）。") var quarter: String?
        @Option(help: "督办事项：单位|任务|问题|要求（可重复）。") var item: [String] = []

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            let drafts = try item.enumerated().map { index, text in
                let parts = text.split(separator: "|", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                guard parts.count == 4 else {
                    throw ValidationError("--item 第 \(index + 1) 项应为 单位|任务|问题|要求 四段，收到 \(parts.count) 段：\(text)")
                }
                let tasks = parts[1].split(whereSeparator: { $0 == "," || $0 == "，" || $0 == "、" }).map(String.init)
                return SupervisionItemDraft(unit: parts[0], tasks: tasks.isEmpty ? nil : tasks, problem: parts[2], measure: parts[3])
            }
            let request = SupervisionIssueRequest(
                kind: quarter == nil ? .adhoc : .quarterly, period: quarter, title: title, replyDeadline: deadline,
                items: drafts.isEmpty ? nil : drafts)
            try await options.withClient(for: .registry) { client in
                let order = try await perform(client, SupervisionTypes.issue, request, options: options)
                if options.json { return try printJSON(order) }
                print("已下发：\(order.id) \(order.title)，\(order.items.count) 项，答复时限 \(order.replyDeadline)")
            }
        }
    }

    struct Reply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "答复督办事项（责任单位）。",
            discussion: "示例：duban supervision reply DB-2026-001 1 \"已制定分五批整治计划\" --evidence 整治计划=https://files/plan.pdf --as 区城乡建设局")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "督办单编号。") var order: String
        @Argument(help: "事项序号。") var item: Int
        @Argument(help: "整改措施和进展。") var measures: String
        @Option(help: "佐证材料，写作 名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []

        func run() async throws {
            let refs = try evidenceRefs(evidence)
            try await options.withClient(for: .registry) { client in
                let reply = try await perform(
                    client, SupervisionTypes.reply,
                    SupervisionReplyRequest(order: order, item: item, measures: measures, evidence: refs.isEmpty ? nil : refs),
                    options: options)
                if options.json { return try printJSON(reply) }
                print("已答复：\(reply.id) 第\(item)项，待专项工作组办公室审核")
            }
        }
    }

    struct Review: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "审核督办答复：accept（同意办结）或 return（退回，须写理由）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "督办单编号。") var order: String
        @Argument(help: "事项序号。") var item: Int
        @Argument(help: "accept（同意办结）或 return（退回）。") var decision: SupervisionDecision
        @Option(help: "审核意见（退回时必填）。") var comment: String = ""
        @Option(help: "退回后的答复时限，YYYY-MM-DD（不写为 7 天后）。") var deadline: String?

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            try await options.withClient(for: .registry) { client in
                let reviewed = try await perform(
                    client, SupervisionTypes.review,
                    SupervisionReviewRequest(order: order, item: item, decision: decision, comment: comment, deadline: deadline),
                    options: options)
                if options.json { return try printJSON(reviewed) }
                let state = reviewed.items.first { $0.no == item }
                let again = state.map { $0.state == .returned ? "，答复时限 \($0.deadline)" : "" } ?? ""
                print("\(reviewed.id) 第\(item)项：\(state?.state.label ?? "")\(again)")
            }
        }
    }
}
