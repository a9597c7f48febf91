import ArgumentParser
import DubanConfig
import Foundation
import Messaging
import OfficeFormats
import Schema

struct Notices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "通报与提醒：查询、查看推送情况、签收。", subcommands: [List.self, Show.self, Ack.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "查询通报与提醒的历史。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "单位。") var unit: String?
        @Option(help: "类型，如 指标预警（indicator_breach）、月调度（monthly_dispatch）。") var kind: String?
        @Option(help: "状态：\(NoticeState.helpList)。") var state: String?
        @Option(help: "发出时间不早于（RFC 3339）。") var since: String?
        @Option(help: "任务编号。") var task: String?
        @Option(help: "要查找的文字。") var q: String?
        @Option(help: "只看该单位尚未签收的。") var pendingUnit: String?

        func run() async throws {
            let kind = try NoticeKind.resolve(self.kind, option: "--kind")
            let state = try NoticeState.resolve(self.state, option: "--state")
            try await options.checkUnits([("--unit", unit), ("--pending-unit", pendingUnit)])
            try await options.withClient(for: .notify) { client in
                let reply = try await perform(
                    client, NotifyTypes.noticeList,
                    NoticeListRequest(unit: unit, kind: kind, since: since, state: state, q: q, task: task, pendingUnit: pendingUnit),
                    as: ListReply<Notice>.self,
                    options: options)
                if options.json { return try printJSON(reply.items) }
                print(
                    TextTable.render(
                        header: ["编号", "时间", "类别", "状态", "单位", "标题"],
                        rows: reply.items.map {
                            [
                                $0.id, String($0.issuedAt.prefix(16)), $0.kind.label, $0.state.label,
                                clip($0.units.joined(separator: "、"), 30), clip($0.title, 44),
                            ]
                        }))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "一条通知及其每次推送情况。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "通知编号。") var id: String

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                let notice = try await perform(client, NotifyTypes.noticeGet, NoticeGetRequest(id: id), as: Notice.self, options: options)
                let deliveries = try await perform(
                    client, NotifyTypes.deliveryList, DeliveryListRequest(notice: id), as: ListReply<DeliveryAttempt>.self, options: options
                )
                if options.json {
                    return try printJSON([
                        "notice": try JSONValue.object(["value": WireCoding.encode(notice).jsonValue()]),
                        "deliveries": try WireCoding.encode(deliveries.items).jsonValue(),
                    ])
                }
                print("\(notice.id) [\(notice.kind.label)，\(notice.severity.label)，\(notice.state.label)] \(notice.title)")
                print(
                    "  单位 \(notice.units.joined(separator: "、"))  时间 \(notice.issuedAt)"
                        + "\(notice.ackBy.map { "  确认 \($0) \(notice.ackComment ?? "")" } ?? "")"
                )
                print("  \(notice.text)")
                for ack in notice.acks {
                    let by = ack.by.map { $0 == ack.unit ? "" : "（\($0)）" } ?? ""
                    print("  签收 \(ack.unit)\(by)  \(String(ack.at.prefix(16)))  \(ack.comment ?? "")")
                }
                if !notice.pendingUnits.isEmpty { print("  待签收 \(notice.pendingUnits.joined(separator: "、"))") }
                print(
                    TextTable.render(
                        header: ["投递", "渠道", "单位", "第几次", "时间", "结果"],
                        rows: deliveries.items.map {
                            [
                                "\($0.delivery)", $0.channel, $0.unit, "\($0.attempt)", String($0.at.prefix(19)),
                                $0.ok ? "成功" : "失败 \($0.error ?? "")",
                            ]
                        }))
            }
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "以本单位名义签收通知（--as），签收后不再向本单位重复提醒。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "通知编号。") var id: String
        @Option(help: "意见。") var comment: String?

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                let notice = try await perform(
                    client, NotifyTypes.noticeAck, NoticeAckRequest(id: id, comment: comment), as: Notice.self, options: options)
                if options.json { return try printJSON(notice) }
                let done = notice.acknowledged ? "各单位均已签收" : "尚待签收：\(notice.pendingUnits.joined(separator: "、"))"
                print("\(notice.id)：已签收（\(notice.acks.map(\.unit).joined(separator: "、"))）；\(done)")
            }
        }
    }
}

extension Data {
    func jsonValue() throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: self) }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "生成月调度通报、季度督办单或年度通报，写入文件。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "monthly（月度）、quarterly（季度）、annual（年度）或 closing（收官，期间为方案起止年度，如 2024-2026）。") var kind: String
    @Argument(help: "YYYY-MM、YYYY-Qn、YYYY，收官报告为 YYYY-YYYY。") var period: String
    @Option(help: "Markdown 文件（默认：当前目录下 <标题>.md）。") var out: String?
    @Option(help: "同时写出 CSV 到此处。") var csv: String?
    @Option(help: "Word 公文（.docx）写到这里（默认：与 Markdown 同名）。") var docx: String?

    func run() async throws {
        let kind = try ReportKind.named(self.kind, option: "报告类型")
        try await options.withClient(for: .notify) { client in
            let report = try await perform(
                client, NotifyTypes.reportGenerate, ReportGenerateRequest(kind: kind, period: period), as: ReportGenerateReply.self,
                options: options)
            let path = out ?? "\(report.title).md"
            try Data(report.markdown.utf8).write(to: URL(fileURLWithPath: path))
            let csvPath = csv ?? (path as NSString).deletingPathExtension + ".csv"
            try Data(report.csv.utf8).write(to: URL(fileURLWithPath: csvPath))
            // The 公文 an office sends, from the same Markdown.
            let docxPath = docx ?? (path as NSString).deletingPathExtension + ".docx"
            let document = try GongwenDocument.docx(
                markdown: report.markdown, agency: "城中区巩固提升生态环境保护成效三年行动\(officeUnit)", recipients: "区各有关单位")
            try document.write(to: URL(fileURLWithPath: docxPath))
            print("\(path)\n\(csvPath)\n\(docxPath)")
        }
    }
}

struct SilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence", abstract: "在一段时间内暂停推送相符的通知（照常记录，不推送）。",
        subcommands: [Add.self, List.self, Expire.self], defaultSubcommand: List.self)

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "新增静默。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "通知类型，如 指标预警（indicator_breach）。") var kind: String?
        @Option(help: "单位。") var unit: String?
        @Option(help: "任务编号。") var task: String?
        @Option(help: "指标编号或名称，如 forest_coverage（森林覆盖率）。") var indicator: String?
        @Option(name: .customLong("case"), help: "问题编号。") var caseID: String?
        @Option(help: "截止时间（RFC 3339）。") var until: String
        @Option(help: "原因。") var comment: String

        func run() async throws {
            let kind = try NoticeKind.resolve(self.kind, option: "--kind")
            try await options.checkUnits([("--unit", unit)])
            var indicator = indicator
            if let named = indicator { indicator = try await options.indicatorID(named, option: "--indicator") }
            try await options.withClient(for: .notify) { client in
                let silence = try await perform(
                    client, NotifyTypes.silenceSet,
                    SilenceSetRequest(
                        matchers: SilenceMatchers(kind: kind, unit: unit, task: task, indicator: indicator, case: caseID), endsAt: until,
                        comment: comment),
                    as: Silence.self, options: options)
                if options.json { return try printJSON(silence) }
                print("静默 \(silence.id)：至 \(silence.endsAt)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "列出静默。")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                let reply = try await perform(client, NotifyTypes.silenceList, Empty(), as: ListReply<Silence>.self, options: options)
                if options.json { return try printJSON(reply.items) }
                print(
                    TextTable.render(
                        header: ["编号", "开始", "结束", "条件", "说明"],
                        rows: reply.items.map {
                            let m = $0.matchers
                            let what = [m.kind?.label, m.unit, m.task.map { "任务\($0)" }, m.indicator, m.case].compactMap { $0 }.joined(
                                separator: " ")
                            return ["\($0.id)", String($0.startsAt.prefix(16)), String($0.endsAt.prefix(16)), what, $0.comment]
                        }))
            }
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "立即结束静默。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "静默编号。") var id: Int

        func run() async throws {
            try await options.withClient(for: .notify) { client in
                _ = try await perform(
                    client, NotifyTypes.silenceExpire, SilenceExpireRequest(id: id), as: ListReply<Silence>.self, options: options)
                print("静默 \(id) 已结束")
            }
        }
    }
}
