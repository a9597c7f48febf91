import ArgumentParser
import Foundation
import Messaging
import Schema

/// `duban cause`: a breach's cause report (原因报告), owed by the lead units behind the section's target.
struct CauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cause", abstract: "水质超标原因报告：查看待报告事项，报送超标原因。",
        subcommands: [List.self, Report.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "原因报告及报送情况。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "只看该单位须报告的。") var unit: String?
        @Flag(help: "只看逾期未报告的。") var overdue = false

        func run() async throws {
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .notify) { client in
                let reports = try await perform(
                    client, CauseReportTypes.list, CauseListRequest(unit: unit, overdue: overdue ? true : nil), options: options
                ).items
                if options.json { return try printJSON(reports) }
                print(
                    TextTable.render(
                        header: ["编号", "状态", "报告时限", "未报告单位", "超标情况"],
                        rows: reports.map {
                            [
                                $0.id, $0.state.label + ($0.overdue ? "（逾期）" : ""), $0.due, $0.pendingUnits.joined(separator: "、"),
                                clip($0.message, 50),
                            ]
                        }))
                print("共 \(reports.count) 件")
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "报送超标原因（须报告的牵头单位；专项工作组办公室可用 --unit 代录）。",
            discussion: "示例：duban cause report YY-2026-0001 \"上游生活污水管网破损溢流\" --measures \"已临时封堵\" --as 区生态环境局")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "原因报告编号，如 YY-2026-0001。") var id: String
        @Argument(help: "超标原因。") var cause: String
        @Option(help: "处置措施。") var measures: String?
        @Option(help: "佐证材料，写作 名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []
        @Option(help: "代哪个单位录入（仅专项工作组办公室）。") var unit: String?

        func run() async throws {
            let refs = try evidenceRefs(evidence)
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .notify) { client in
                let report = try await perform(
                    client, CauseReportTypes.report,
                    CauseReportRequest(id: id, cause: cause, measures: measures, evidence: refs.isEmpty ? nil : refs, unit: unit),
                    options: options)
                if options.json { return try printJSON(report) }
                print(
                    "已报送：\(report.id)"
                        + (report.pendingUnits.isEmpty ? "，全部单位已报告" : "；尚待 \(report.pendingUnits.joined(separator: "、")) 报告"))
            }
        }
    }
}
