import ArgumentParser
import Crypto
import Foundation
import Messaging
import Schema

extension ImplementationPlanAction: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "accept", "通过", "审核通过": self = .accept
        case "return", "退回": self = .return
        default: return nil
        }
    }
}

/// `duban plan-impl`: the units' 具体实施方案 (保障措施: 3个月内制定), submitted by each unit with the
/// document, reviewed by the office.
struct ImplementationPlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan-impl", abstract: "具体实施方案：各部门报送、专项工作组办公室审核、查看报送情况。",
        subcommands: [List.self, Show.self, Submit.self, Review.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "各单位具体实施方案的报送和审核情况。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "只看该单位。") var unit: String?
        @Option(help: "状态：pending（待报送）、submitted（已报送待审核）、accepted（已通过）、returned（已退回）。")
        var state: String?
        @Flag(help: "只看逾期未报送的单位。") var overdue = false

        func run() async throws {
            let state = try ImplementationPlanState.resolve(self.state, option: "--state")
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .registry) { client in
                let plans = try await perform(
                    client, ImplementationPlanTypes.list,
                    ImplementationPlanListRequest(unit: unit, state: state, overdue: overdue ? true : nil), options: options
                ).items
                if options.json { return try printJSON(plans) }
                let rows = plans.map { plan in
                    [
                        plan.unit, plan.state.label + (plan.overdue ? "（逾期）" : ""), plan.due,
                        plan.submission.map { clip($0.title, 30) } ?? "", plan.submission.map { String($0.at.prefix(10)) } ?? "",
                    ]
                }
                print(TextTable.render(header: ["单位", "状态", "报送时限", "实施方案", "报送日期"], rows: rows))
                let owed = plans.filter { $0.state.owed }.count
                print("共 \(plans.count) 个单位，待报送 \(owed) 个，其中逾期 \(plans.filter(\.overdue).count) 个")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "一个单位的实施方案：每次报送和审核意见。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "单位，如 区城乡建设局。") var unit: String

        func run() async throws {
            try await options.checkUnits([("单位", unit)])
            try await options.withClient(for: .registry) { client in
                guard
                    let plan = try await perform(
                        client, ImplementationPlanTypes.list, ImplementationPlanListRequest(unit: unit), options: options
                    ).items.first
                else { throw ValidationError("\(unit) 不在须制定具体实施方案的单位之列") }
                if options.json { return try printJSON(plan) }
                print("\(plan.unit)  \(plan.state.label)\(plan.overdue ? "（逾期）" : "")  报送时限 \(plan.due)")
                for submission in plan.submissions {
                    print("  报送  \(submission.at.prefix(16)) \(submission.by ?? "")：\(submission.title)\(submission.late ? "（逾期报送）" : "")")
                    for item in submission.evidence { print("        \(item.name) \(item.uri) \(item.sha256 ?? "")") }
                    if let note = submission.note { print("        说明：\(note)") }
                }
                for review in plan.reviews {
                    print(
                        "  审核  \(review.at.prefix(16)) \(review.action.label)：\(review.comment)\(review.due.map { "（请于\($0)前重新报送）" } ?? "")"
                    )
                }
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "报送具体实施方案（责任单位）。",
            discussion: """
                方案文件用 --file 指定时自动计算 sha256；--uri 写文件存放的地址（不写则为本机路径）。
                示例：duban plan-impl submit 区城乡建设局 "区城乡建设局生态环境保护三年行动具体实施方案" \\
                  --file ./实施方案.pdf --uri https://files.example/城建局实施方案.pdf --as 区城乡建设局
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "报送单位。") var unit: String
        @Argument(help: "实施方案名称。") var title: String
        @Option(help: "实施方案文件（本机路径），计算其 sha256。") var file: String?
        @Option(help: "文件存放地址（与 --file 同用）。") var uri: String?
        @Option(help: "其他佐证材料，写作 名称=地址#sha256（可重复）。") var evidence: [String] = []
        @Option(help: "说明。") var note: String?

        func run() async throws {
            var refs: [EvidenceRef] = []
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("无法读取文件 \(file)") }
                let digest = Hex.lowercase(SHA256.hash(data: data))
                let url = URL(fileURLWithPath: file)
                refs.append(EvidenceRef(name: url.lastPathComponent, uri: uri ?? url.absoluteString, sha256: digest))
            } else if uri != nil {
                throw ValidationError("--uri 须与 --file 同用（由文件计算 sha256）")
            }
            refs += try evidenceRefs(evidence)
            guard !refs.isEmpty else { throw ValidationError("须用 --file 或 --evidence 附上实施方案文件") }
            try await options.checkUnits([("报送单位", unit)])
            let request = ImplementationPlanSubmitRequest(unit: unit, title: title, evidence: refs, note: note)
            try await options.withClient(for: .registry) { client in
                let plan = try await perform(client, ImplementationPlanTypes.submit, request, options: options)
                if options.json { return try printJSON(plan) }
                print("已报送：\(plan.unit)《\(title)》，待专项工作组办公室审核")
            }
        }
    }

    struct Review: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "审核实施方案：accept（通过）或 return（退回，须写理由）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "单位。") var unit: String
        @Argument(help: "accept（通过）或 return（退回）。") var action: ImplementationPlanAction
        @Option(help: "审核意见（退回时必填）。") var comment: String = ""
        @Option(help: "退回后的报送时限，YYYY-MM-DD（不写为 15 天后，遇节假日顺延）。") var due: String?

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            try await options.checkUnits([("单位", unit)])
            try await options.withClient(for: .registry) { client in
                let plan = try await perform(
                    client, ImplementationPlanTypes.review,
                    ImplementationPlanReviewRequest(unit: unit, action: action, comment: comment, due: due), options: options)
                if options.json { return try printJSON(plan) }
                print("\(plan.unit)的实施方案：\(plan.state.label)\(plan.state == .returned ? "，请于\(plan.due)前重新报送" : "")")
            }
        }
    }
}
