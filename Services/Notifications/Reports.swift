import Formats
import Foundation
import Messaging
import Schema
import ServiceKit

/// `report.generate`: the monthly dispatch report, the quarterly supervision list and the annual
/// notification, as Markdown for people and CSV for spreadsheets, from what the other services hold.
enum Reports {
    /// A report is for a period within the plan's years (a month before go-live is 补报 and
    /// welcome, a year the plan does not cover is a typing error). Before the registry has ever
    /// answered, the request hook's 2000–2100 is all that is known.
    static func checkPlanYears(_ request: ReportGenerateRequest, _ known: RegistryDirectory.Snapshot?) throws {
        guard let first = known?.planStart.flatMap({ Int($0.prefix(4)) }), let last = known?.planEnd.flatMap({ Int($0.prefix(4)) }),
            let year = Int(request.period.prefix(4))
        else { return }
        guard (first...last).contains(year) else {
            throw ErrorBody.invalidArgument(
                "报告期 \(ErrorBody.quote(request.period)) 不在方案年度内（\(first)年至\(last)年）", field: "body.period")
        }
    }

    static func generate(_ request: ReportGenerateRequest, peers: PeerClients) async throws -> ReportGenerateReply {
        let months: [String]
        let title: String
        switch request.kind {
        case .monthly:
            guard request.period.count == 7, request.period.dropFirst(4).first == "-", let m = Int(request.period.suffix(2)),
                (1...12).contains(m),
                Int(request.period.prefix(4)) != nil
            else { throw ErrorBody.invalidArgument("月度报告的 period 应为 YYYY-MM", field: "body.period") }
            months = [request.period]
            title = "城中区巩固提升生态环境保护成效三年行动月调度通报（\(request.period.prefix(4))年\(Int(request.period.suffix(2))!)月）"
        case .quarterly:
            guard request.period.count == 7, request.period.dropFirst(4).hasPrefix("-Q"), let q = Int(request.period.suffix(1)),
                (1...4).contains(q)
            else {
                throw ErrorBody.invalidArgument("季度报告的 period 应为 YYYY-Qn", field: "body.period")
            }
            months = (1...3).map { String(format: "%@-%02d", String(request.period.prefix(4)), (q - 1) * 3 + $0) }
            title = "城中区巩固提升生态环境保护成效三年行动季度督办单（\(request.period.prefix(4))年第\(q)季度）"
        case .annual:
            guard request.period.count == 4, Int(request.period) != nil else {
                throw ErrorBody.invalidArgument("年度报告的 period 应为 YYYY", field: "body.period")
            }
            months = (1...12).map { String(format: "%@-%02d", request.period, $0) }
            title = "城中区巩固提升生态环境保护成效三年行动年度通报（\(request.period)年）"
        }
        let registry = peers[.registry]
        let ingest = peers[.ingest]
        let cases = peers[.cases]
        /// A whole list, every page of it.
        func askAll<Body, Item>(_ client: RPCClient, _ rpc: RPC<Body, ListReply<Item>>, _ body: Body) async throws -> [Item] {
            do {
                return try await client.callAll(rpc, body, timeout: .seconds(5), retries: 1)
            } catch is RPCClientError {
                throw ErrorBody.unavailable("生成报告所需的服务暂时无法访问（\(rpc.name)），请稍后重试")
            }
        }
        let tasks = try await askAll(registry, RegistryTypes.taskList, TaskListRequest())
        var overviews: [DispatchOverviewReply] = []
        for month in months {
            if let overview = try? await registry.call(
                RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: month), as: DispatchOverviewReply.self,
                timeout: .seconds(5), retries: 1)
            {
                overviews.append(overview)
            }
        }
        let escalations = try await askAll(registry, RegistryTypes.escalationList, EscalationListRequest())
            .filter { escalation in months.contains { escalation.recordedAt.hasPrefix($0) } }
        let indicators = try await askAll(ingest, IngestTypes.indicatorList, Empty())
        let ledger = try await askAll(cases, CaseTypes.list, CaseListRequest())

        var md = "# \(title)\n\n生成时间：\(Timestamp.now())\n\n"
        var csv = "\u{FEFF}部分,编号,名称,状态,单位,数值,说明\r\n"
        func row(_ fields: [String]) {
            // Escalation reasons and titles are people's text: one starting like a formula stays text in a spreadsheet.
            csv +=
                fields.map(OfficeText.neutralise).map {
                    $0.contains(where: { ",\"\n".contains($0) }) ? "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : $0
                }
                .joined(separator: ",") + "\r\n"
        }

        md += "## 一、任务进展\n\n"
        let leaves = tasks.filter { $0.subtasks.isEmpty }
        for status in TaskStatus.allCases {
            let group = leaves.filter { $0.status == status }
            md += "- \(status.label)：\(group.count) 项\n"
        }
        md += "\n| 编号 | 任务 | 状态 | 进度 | 完成时限 | 责任单位 |\n|---|---|---|---|---|---|\n"
        for task in leaves {
            let status = task.status.map(\.label) ?? ""
            md +=
                "| \(task.id) | \(task.title) | \(status) | \(Int(task.progress ?? 0))% "
                + "| \(task.deadlineText ?? task.deadline ?? "持续推进") | \(task.leadUnits.joined(separator: "、")) |\n"
            row([
                "任务进展", task.id, task.title, status, task.leadUnits.joined(separator: "、"), "\(Int(task.progress ?? 0))",
                task.deadline ?? "持续推进",
            ])
        }

        md += "\n## 二、调度报送情况\n\n"
        for overview in overviews {
            md += "- \(overview.period)：已报送 \(overview.reported.count) 项，未报送 \(overview.missing.count) 项（截止 \(overview.due)）\n"
            for missing in overview.missing {
                row(["未报送", missing.task, overview.period, "未报送", missing.unit, "", "截止\(overview.due)"])
            }
        }
        let missingAll = overviews.flatMap { overview in overview.missing.map { (overview.period, $0) } }
        if !missingAll.isEmpty {
            md += "\n| 月份 | 任务 | 未报送单位 |\n|---|---|---|\n"
            for (period, pair) in missingAll { md += "| \(period) | \(pair.task) | \(pair.unit) |\n" }
        }

        md += "\n## 三、目标指标\n\n| 指标 | 目标 | 最新值 | 期间 | 评价 |\n|---|---|---|---|---|\n"
        let attainmentLabel = ["met": "达标", "not_met": "未达标", "unknown": "待评价"]
        for indicator in indicators {
            let value = indicator.latest.map { valueText($0.value) } ?? ""
            md +=
                "| \(indicator.name) | \(indicator.target) | \(value) | \(indicator.latest?.period ?? "") "
                + "| \(attainmentLabel[indicator.attainment] ?? indicator.attainment) |\n"
            row([
                "目标指标", indicator.id, indicator.name, attainmentLabel[indicator.attainment] ?? indicator.attainment,
                indicator.tasks.joined(separator: "、"), value, indicator.latest?.period ?? "",
            ])
        }

        md +=
            "\n## 四、问题整改台账\n\n共 \(ledger.count) 件，逾期 \(ledger.filter(\.overdue).count) 件。\n\n| 来源 | "
            + CaseState.allCases.map(\.label).joined(separator: " | ") + " | 合计 |\n|---|"
            + String(repeating: "---|", count: CaseState.allCases.count + 1) + "\n"
        for source in CaseSource.allCases {
            let group = ledger.filter { $0.source == source }
            guard !group.isEmpty else { continue }
            let counts = CaseState.allCases.map { state in group.filter { $0.state == state }.count }
            md += "| \(source.label) | " + counts.map(String.init).joined(separator: " | ") + " | \(group.count) |\n"
            for (state, count) in zip(CaseState.allCases, counts) where count > 0 {
                row(["整改台账", source.rawValue, source.label, state.label, "", "\(count)", ""])
            }
        }

        md += "\n## 五、通报约谈问责\n\n"
        if escalations.isEmpty { md += "本期无。\n" }
        let levelLabel: [EscalationLevel: String] = [.notice: "通报", .interview: "约谈", .accountability: "问责"]
        for escalation in escalations {
            md += "- \(escalation.recordedAt.prefix(10)) 对\(escalation.unit)\(levelLabel[escalation.level]!)：\(escalation.reason)\n"
            row([
                "通报约谈问责", "\(escalation.id)", escalation.reason, levelLabel[escalation.level]!, escalation.unit, "",
                String(escalation.recordedAt.prefix(10)),
            ])
        }

        // 督办单: the period's orders, each item's unit, state and the reply that answered it.
        let year = String(request.period.prefix(4))
        let orders = try await askAll(registry, SupervisionTypes.list, SupervisionListRequest(year: year)).filter { order in
            switch request.kind {
            case .annual: return true
            case .quarterly: return order.period == request.period || months.contains { order.issuedAt.hasPrefix($0) }
            case .monthly: return months.contains { order.issuedAt.hasPrefix($0) }
            }
        }.sorted { $0.id < $1.id }
        md += "\n## 六、督办事项\n\n"
        if orders.isEmpty { md += "本期无。\n" }
        for order in orders {
            let done = order.items.filter { $0.state == .accepted }.count
            let late = order.items.filter(\.overdue).count
            md +=
                "### \(order.title)（\(order.id)）\n\n\(order.issuedAt.prefix(10)) 下发，答复时限 \(order.replyDeadline)；"
                + "共 \(order.items.count) 项，已办结 \(done) 项，逾期未答复 \(late) 项。\n\n"
            guard !order.items.isEmpty else { continue }
            md += "| 序号 | 责任单位 | 督办问题 | 状态 | 答复 |\n|---|---|---|---|---|\n"
            for item in order.items {
                let state = item.state.label + (item.overdue ? "（逾期）" : "")
                let reply = item.reply?.measures ?? ""
                md += "| \(item.no) | \(item.unit) | \(cell(item.problem)) | \(state) | \(cell(reply)) |\n"
                row(["督办事项", "\(order.id)-\(item.no)", item.problem, state, item.unit, "", reply])
            }
            md += "\n"
        }
        // 具体实施方案: where each bound unit's plan stands (a one-time obligation: every report shows it).
        let plans = try await askAll(registry, ImplementationPlanTypes.list, ImplementationPlanListRequest())
        let section = ImplementationPlanNotices.reportSection(plans)
        md += section.markdown
        section.rows.forEach(row)
        return ReportGenerateReply(title: title, markdown: md, csv: csv)
    }

    /// Text for a Markdown table cell: no pipe or line break breaks the row.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "｜").replacingOccurrences(of: "\n", with: " ")
    }

    static func valueText(_ value: JSONValue) -> String {
        switch value {
        case .number(let n): return n.rounded() == n ? String(Int(n)) : String(format: "%g", n)
        case .string(let s): return s
        case .bool(let b): return b ? "达标" : "未达标"
        default: return ""
        }
    }
}
