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
        if request.kind == .closing {
            guard request.period == "\(first)-\(last)" else {
                throw ErrorBody.invalidArgument(
                    "收官报告的期间应为方案起止年度 \(first)-\(last)，收到 \(ErrorBody.quote(request.period))", field: "body.period")
            }
            return
        }
        guard (first...last).contains(year) else {
            throw ErrorBody.invalidArgument(
                "报告期 \(ErrorBody.quote(request.period)) 不在方案年度内（\(first)年至\(last)年）", field: "body.period")
        }
    }

    /// A whole list, every page of it; a peer that does not answer is `unavailable` for the report.
    static func askAll<Body, Item>(_ client: RPCClient, _ rpc: RPC<Body, ListReply<Item>>, _ body: Body) async throws -> [Item] {
        do {
            return try await client.callAll(rpc, body, timeout: .seconds(5), retries: 1)
        } catch is RPCClientError {
            throw ErrorBody.unavailable("生成报告所需的服务暂时无法访问（\(rpc.name)），请稍后重试")
        }
    }

    static func generate(_ request: ReportGenerateRequest, peers: PeerClients, now: Date) async throws -> ReportGenerateReply {
        if request.kind == .closing { return try await closing(request, peers: peers, now: now) }
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
        case .closing:
            throw ErrorBody.internal("收官报告另行生成")
        }
        let registry = peers[.registry]
        let ingest = peers[.ingest]
        let cases = peers[.cases]
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

        var md = "# \(title)\n\n生成时间：\(Timestamp.districtDate(now)) \(districtMinute(now))\n\n"
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
        // Counted over the same list, with the same labels, as `duban status`, so the two agree.
        md +=
            "共 \(tasks.count) 项："
            + TaskStatus.allCases.map { status in
                "\(status.label) \(tasks.filter { $0.status == status }.count)"
            }.joined(separator: "　") + "\n"
        let leaves = tasks.filter { $0.subtasks.isEmpty }
        md += "\n| 编号 | 任务 | 状态 | 进度 | 完成时限 | 责任单位 | 原因 |\n|---|---|---|---|---|---|---|\n"
        for task in leaves {
            let status = task.status.map(\.label) ?? ""
            // Why it stands where it stands, in the registry's words (the deciding reason first).
            let why = (task.reasons ?? []).map(\.text).joined(separator: "；")
            md +=
                "| \(task.id) | \(task.title) | \(status) | \(Int(task.progress ?? 0))% "
                + "| \(task.deadlineText ?? task.deadline ?? "持续推进") | \(task.leadUnits.joined(separator: "、")) | \(cell(why)) |\n"
            row([
                "任务进展", task.id, task.title, status, task.leadUnits.joined(separator: "、"), "\(Int(task.progress ?? 0))",
                [task.deadline ?? "持续推进", why].filter { !$0.isEmpty }.joined(separator: "；"),
            ])
        }

        md += "\n## 二、调度报送情况\n\n"
        let today = Timestamp.districtDate(now)
        for overview in overviews {
            let late = overview.missing.filter { _ in today > overview.due }.count
            md +=
                "- \(overview.period)：已报送 \(overview.reported.count) 项，未报送 \(overview.missing.count) 项"
                + "（其中已逾期 \(late) 项；报送截止 \(overview.due)）\n"
            for missing in overview.missing {
                let state = today > overview.due ? "未报（已逾期）" : "未报（未到期）"
                row(["未报送", missing.task, overview.period, state, missing.unit, "", "截止\(overview.due)"])
            }
        }
        if request.kind == .monthly, let overview = overviews.first {
            // What each unit did, grouped as the office reads the dispatch: its reports with their
            // 问题 and 下步计划, then what it still owes.
            let reports = try await askAll(registry, RegistryTypes.progressList, ProgressListRequest(period: overview.period))
            md += unitSections(overview: overview, reports: reports, tasks: tasks, overdue: today > overview.due)
            for report in reports.sorted(by: { ($0.unit, $0.task) < ($1.unit, $1.task) }) {
                row([
                    "已报送", report.task, report.period, "已报", report.unit, "\(Int(report.percent))",
                    [report.summary, report.problems.map { "问题：" + $0 }, report.nextSteps.map { "下步计划：" + $0 }]
                        .compactMap { $0 }.joined(separator: "；"),
                ])
            }
        } else {
            let missingAll = overviews.flatMap { overview in overview.missing.map { (overview, $0) } }
            if !missingAll.isEmpty {
                md += "\n| 月份 | 任务 | 未报送单位 | 状态 |\n|---|---|---|---|\n"
                for (overview, pair) in missingAll {
                    md += "| \(overview.period) | \(pair.task) | \(pair.unit) | \(today > overview.due ? "已逾期" : "未到期") |\n"
                }
            }
        }

        md += "\n## 三、目标指标\n\n| 指标 | 目标 | 最新值 | 期间 | 评价 |\n|---|---|---|---|---|\n"
        let attainmentLabel = ["met": "达标", "not_met": "未达标", "unknown": "待评价"]
        for indicator in indicators {
            let value = indicator.latest.map { valueText($0.value) } ?? ""
            // A provisional value (too few valid days under GB 3095) is not judged: say so, not 待评价.
            let judged = indicator.provisional == true ? "暂不评价（有效数据不足）" : attainmentLabel[indicator.attainment] ?? indicator.attainment
            md += "| \(indicator.name) | \(indicator.target) | \(value) | \(indicator.latest?.period ?? "") | \(judged) |\n"
            row([
                "目标指标", indicator.id, indicator.name, judged,
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
            case .annual, .closing: return true
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

    /// 收官报告: the whole plan at its end — every task's outcome with its reasons, every target's
    /// final value and attainment, the ledger's final state, the supervision and accountability it
    /// took — for the office's closing summary to the leading group.
    static func closing(_ request: ReportGenerateRequest, peers: PeerClients, now: Date) async throws -> ReportGenerateReply {
        let years = request.period.split(separator: "-")
        let title = "城中区巩固提升生态环境保护成效三年行动收官报告（\(years.first ?? "")—\(years.last ?? "")年）"
        let tasks = try await askAll(peers[.registry], RegistryTypes.taskList, TaskListRequest())
        let indicators = try await askAll(peers[.ingest], IngestTypes.indicatorList, Empty())
        let ledger = try await askAll(peers[.cases], CaseTypes.list, CaseListRequest())
        let escalations = try await askAll(peers[.registry], RegistryTypes.escalationList, EscalationListRequest())
        var orders: [SupervisionOrder] = []
        for year in (Int(years.first ?? "") ?? 0)...(Int(years.last ?? "") ?? 0) {
            orders += try await askAll(peers[.registry], SupervisionTypes.list, SupervisionListRequest(year: String(year)))
        }
        var md = "# \(title)\n\n生成时间：\(Timestamp.districtDate(now)) \(districtMinute(now))\n\n"
        var csv = "\u{FEFF}部分,编号,名称,状态,单位,数值,说明\r\n"
        func row(_ fields: [String]) {
            csv +=
                fields.map(OfficeText.neutralise).map {
                    $0.contains(where: { ",\"\n".contains($0) }) ? "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : $0
                }
                .joined(separator: ",") + "\r\n"
        }

        md +=
            "## 一、任务完成情况\n\n共 \(tasks.count) 项："
            + TaskStatus.allCases.map { status in
                "\(status.label) \(tasks.filter { $0.status == status }.count)"
            }.joined(separator: "　") + "\n\n| 编号 | 任务 | 结果 | 进度 | 完成时限 | 责任单位 | 说明 |\n|---|---|---|---|---|---|---|\n"
        for task in tasks {
            let outcome = task.status?.label ?? ""
            let why = (task.reasons ?? []).map(\.text).joined(separator: "；")
            md +=
                "| \(task.id) | \(cell(task.title)) | \(outcome) | \(Int(task.progress ?? 0))% "
                + "| \(task.deadlineText ?? task.deadline ?? "持续推进") "
                + "| \(task.leadUnits.joined(separator: "、")) | \(cell(why)) |\n"
            row(["任务完成情况", task.id, task.title, outcome, task.leadUnits.joined(separator: "、"), "\(Int(task.progress ?? 0))", why])
        }

        let attainmentLabel = ["met": "达标", "not_met": "未达标", "unknown": "待评价"]
        let met = indicators.filter { $0.attainment == "met" }.count
        let notMet = indicators.filter { $0.attainment == "not_met" }.count
        md +=
            "\n## 二、目标指标完成情况\n\n共 \(indicators.count) 项：达标 \(met)　未达标 \(notMet)　待评价 \(indicators.count - met - notMet)\n\n"
            + "| 指标 | 目标 | 最终值 | 期间 | 评价 |\n|---|---|---|---|---|\n"
        for indicator in indicators {
            let value = indicator.latest.map { valueText($0.value) } ?? "无数据"
            let judged = indicator.provisional == true ? "暂不评价（有效数据不足）" : attainmentLabel[indicator.attainment] ?? indicator.attainment
            md += "| \(indicator.name) | \(cell(indicator.target)) | \(value) | \(indicator.latest?.period ?? "") | \(judged) |\n"
            row([
                "目标指标", indicator.id, indicator.name, judged, indicator.tasks.joined(separator: "、"), value, indicator.latest?.period ?? "",
            ])
        }

        let done: Set<CaseState> = [.accepted, .closed]
        let counted = ledger.filter { $0.state != .voided }
        let open = counted.filter { !done.contains($0.state) }
        md +=
            "\n## 三、问题整改台账最终状态\n\n登记 \(counted.count) 件（另作废 \(ledger.count - counted.count) 件），"
            + "已销号 \(counted.count - open.count) 件，未销号 \(open.count) 件，其中逾期 \(open.filter(\.overdue).count) 件。\n\n"
            + "| 来源 | 登记 | 已销号 | 未销号 |\n|---|---|---|---|\n"
        for source in CaseSource.allCases {
            let group = counted.filter { $0.source == source }
            guard !group.isEmpty else { continue }
            let closed = group.filter { done.contains($0.state) }.count
            md += "| \(source.label) | \(group.count) | \(closed) | \(group.count - closed) |\n"
            row(["整改台账", source.rawValue, source.label, "已销号", "", "\(closed)", "登记\(group.count)"])
        }
        if !open.isEmpty {
            md += "\n### 未销号问题\n\n| 编号 | 问题 | 责任单位 | 状态 | 完成时限 |\n|---|---|---|---|---|\n"
            for item in open.prefix(500) {
                let state = item.state.label + (item.overdue ? "（逾期）" : "")
                md += "| \(item.id) | \(cell(item.title)) | \(item.unit) | \(state) | \(item.deadline ?? "") |\n"
                row(["未销号问题", item.id, item.title, item.state.label, item.unit, "", item.deadline ?? ""])
            }
            if open.count > 500 { md += "\n另有 \(open.count - 500) 件未列出，见台账导出。\n" }
        }

        md += "\n## 四、督办与问责\n\n"
        let items = orders.flatMap(\.items)
        md += "- 下发督办单 \(orders.count) 份，督办事项 \(items.count) 项，已办结 \(items.filter { $0.state == .accepted }.count) 项。\n"
        let levelLabel: [EscalationLevel: String] = [.notice: "通报", .interview: "约谈", .accountability: "问责"]
        for level in EscalationLevel.allCases {
            let group = escalations.filter { $0.level == level }
            md += "- \(levelLabel[level]!) \(group.count) 次" + (group.isEmpty ? "" : "：" + group.map(\.unit).joined(separator: "、")) + "\n"
            row(["督办与问责", level.rawValue, levelLabel[level]!, "", group.map(\.unit).joined(separator: "、"), "\(group.count)", ""])
        }
        let plans = try await askAll(peers[.registry], ImplementationPlanTypes.list, ImplementationPlanListRequest())
        let section = ImplementationPlanNotices.reportSection(plans, heading: "五、具体实施方案")
        md += section.markdown
        section.rows.forEach(row)
        return ReportGenerateReply(title: title, markdown: md, csv: csv)
    }

    /// The dispatch month by unit: each unit's reports (progress, what it did, its 问题 and 下步计划),
    /// then the tasks it has not reported, as 未报（未到期） or 未报（已逾期）.
    static func unitSections(overview: DispatchOverviewReply, reports: [ProgressReport], tasks: [PlanTask], overdue: Bool) -> String {
        let titles = Dictionary(tasks.map { ($0.id, $0.title) }, uniquingKeysWith: { first, _ in first })
        // The plan's order (7.3 before 10), not the ids' spelling.
        let rank = Dictionary(tasks.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        func planOrder(_ a: String, _ b: String) -> Bool { (rank[a] ?? .max, a) < (rank[b] ?? .max, b) }
        let units = Set(reports.map(\.unit)).union(overview.missing.map(\.unit))
        // Units with most missing first, as the dispatch lists them; then by name for a stable order.
        let ordered = units.sorted { a, b in
            let missingA = overview.missing.filter { $0.unit == a }.count
            let missingB = overview.missing.filter { $0.unit == b }.count
            return missingA != missingB ? missingA > missingB : a < b
        }
        var md = "\n### 各单位报送情况\n"
        for unit in ordered {
            let own = reports.filter { $0.unit == unit }.sorted { planOrder($0.task, $1.task) }
            let owed = overview.missing.filter { $0.unit == unit }.map(\.task).sorted(by: planOrder)
            md += "\n#### \(unit)（已报 \(own.count) 项，\(overdue ? "未报（已逾期）" : "未报（未到期）") \(owed.count) 项）\n\n"
            for report in own {
                md += "- 任务 \(report.task) \(titles[report.task] ?? "")：进度 \(Int(report.percent))%。\(cell(report.summary))\n"
                if let measures = report.measures, !measures.isEmpty { md += "  - 主要措施：\(cell(measures))\n" }
                if let problems = report.problems, !problems.isEmpty { md += "  - 存在问题：\(cell(problems))\n" }
                if let next = report.nextSteps, !next.isEmpty { md += "  - 下步计划：\(cell(next))\n" }
                if report.backfill == true { md += "  - （补报）\n" }
            }
            for task in owed {
                md += "- 任务 \(task) \(titles[task] ?? "")：\(overdue ? "未报（已逾期）" : "未报（未到期）")，报送截止 \(overview.due)\n"
            }
        }
        return md
    }

    /// `HH:mm` in the district's clock.
    static func districtMinute(_ now: Date) -> String {
        let start = Timestamp.startOfDistrictDay(Timestamp.districtDate(now)) ?? now
        let minutes = max(0, Int(now.timeIntervalSince(start) / 60))
        return String(format: "%02d:%02d", minutes / 60, minutes % 60)
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
