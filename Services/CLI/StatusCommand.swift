import ArgumentParser
import DubanConfig
import Foundation
import Messaging
import Schema

/// `duban status`: the office's one-screen overview. Each section comes from the service that owns
/// the data; a service that does not answer leaves its section marked unavailable instead of hiding
/// the others, and the command exits 1 so scripts notice.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "一屏总览：服务状态、按状态的任务（列出滞后和逾期的）、13 项目标指标、整改台账、最近的通知。")

    @OptionGroup var options: GlobalOptions
    @Option(help: "显示最近多少条通知。") var notices: Int = 5

    struct Overview: Encodable {
        var services: [String: PingReply] = [:]
        var down: [String] = []
        var tasks: [PlanTask]?
        var indicators: [Indicator]?
        var cases: [Case]?
        var notices: [Notice]?
    }

    func run() async throws {
        let deployment = try await options.deployment()
        var overview = Overview()
        var pingRows: [[String]] = []
        for service in ServiceName.allCases {
            let endpoint = deployment[service].rpc
            let client = try await options.connect(to: service)
            do {
                let reply = try await client.call(SystemTypes.ping, Empty(), as: PingReply.self, timeout: options.replyTimeout, retries: 0)
                overview.services[service.rawValue] = reply
                let streams = reply.streams.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }.joined(separator: " ")
                pingRows.append([service.rawValue, endpoint, deployment[service].events, "up", reply.instance, streams])
                switch service {
                case .registry:
                    overview.tasks = try? await perform(
                        client, RegistryTypes.taskList, TaskListRequest(), as: ListReply<PlanTask>.self, options: options
                    ).items
                case .ingest:
                    overview.indicators = try? await perform(
                        client, IngestTypes.indicatorList, Empty(), as: ListReply<Indicator>.self, options: options
                    ).items
                case .cases:
                    overview.cases = try? await perform(
                        client, CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self, options: options
                    ).items
                case .notify:
                    overview.notices = try? await perform(
                        client, NotifyTypes.noticeList, NoticeListRequest(), as: ListReply<Notice>.self, options: options
                    ).items
                }
            } catch {
                overview.down.append(service.rawValue)
                pingRows.append([service.rawValue, endpoint, deployment[service].events, "DOWN", "", "\(error)"])
            }
            await client.close()
        }
        if options.json {
            try printJSON(overview)
        } else {
            print(TextTable.render(header: ["service", "rpc", "events", "state", "instance", "streams (name@head)"], rows: pingRows))
            print(render(overview))
        }
        if !overview.down.isEmpty { throw ExitCode(1) }
    }

    func render(_ overview: Overview) -> String {
        var out: [String] = []

        out.append("\n■ 任务 tasks")
        if let tasks = overview.tasks {
            let counts = TaskStatus.allCases.map { status in "\(status.label) \(tasks.filter { $0.status == status }.count)" }
            out.append("共 \(tasks.count) 项：" + counts.joined(separator: "　"))
            let attention = tasks.filter { $0.status == .lagging || $0.status == .overdue }
            if !attention.isEmpty {
                out.append(
                    TextTable.render(
                        header: ["编号", "状态", "进度", "完成时限", "任务", "责任单位", "原因"],
                        rows: attention.map {
                            [
                                $0.id, $0.status?.label ?? "", percentLabel($0.progress), $0.deadlineText ?? ($0.deadline ?? ""),
                                clip($0.title, 24), clip($0.leadUnits.joined(separator: "、"), 24),
                                clip(($0.reasons ?? []).first?.text ?? "", 36),
                            ]
                        }))
            }
        } else {
            out.append("（任务登记服务不可用 registry unavailable）")
        }

        out.append("\n■ 目标指标 targets")
        if let indicators = overview.indicators {
            let met = indicators.filter { $0.attainment == "met" }.count
            let notMet = indicators.filter { $0.attainment == "not_met" }.count
            out.append("共 \(indicators.count) 项：达标 \(met)　未达标 \(notMet)　待评价 \(indicators.count - met - notMet)")
            out.append(
                TextTable.render(
                    header: ["指标", "最新值", "期间", "评价"],
                    rows: indicators.map {
                        [
                            clip($0.name, 40),
                            valueText($0.latest?.value) + ($0.latest != nil ? ($0.unit.map { $0 == "%" ? "%" : " " + $0 } ?? "") : ""),
                            $0.latest?.period ?? "", attainmentLabel($0.attainment),
                        ]
                    }))
        } else {
            out.append("（指标服务不可用 ingest unavailable）")
        }

        out.append("\n■ 整改台账 ledger")
        if let cases = overview.cases {
            let counts = CaseState.allCases.map { state in "\(state.label) \(cases.filter { $0.state == state }.count)" }
            let overdue = cases.filter(\.overdue)
            out.append("共 \(cases.count) 件：" + counts.joined(separator: "　") + "　其中逾期 \(overdue.count)")
            for item in overdue.prefix(5) {
                out.append("  逾期 \(item.id) \(clip(item.title, 40)) — \(item.unit)，时限 \(item.deadline ?? "")")
            }
        } else {
            out.append("（整改台账服务不可用 cases unavailable）")
        }
        // The registry's figures for the tasks the ledger measures (they follow the ledger's events).
        let linked = (overview.tasks ?? []).filter { $0.ledger != nil }
        if !linked.isEmpty {
            out.append(
                TextTable.render(
                    header: ["任务", "问题来源", "应有", "登记", "销号", "未销号", "逾期"],
                    rows: linked.map { task in
                        let ledger = task.ledger!
                        return [
                            "\(task.id) \(clip(task.title, 20))", clip(ledger.sources.map(\.label).joined(separator: "、"), 24),
                            ledger.expected.map(String.init) ?? "—", "\(ledger.registered)", "\(ledger.closed)", "\(ledger.open)",
                            "\(ledger.overdue)",
                        ]
                    }))
        }

        out.append("\n■ 最近通报与提醒 recent notices")
        if let notices = overview.notices {
            let open = notices.filter { $0.state == .open }.count
            out.append("共 \(notices.count) 条，待处理 \(open) 条")
            let recent = notices.sorted { $0.issuedAt > $1.issuedAt }.prefix(self.notices)
            if !recent.isEmpty {
                out.append(
                    TextTable.render(
                        header: ["时间", "类别", "单位", "标题"],
                        rows: recent.map {
                            [
                                String($0.issuedAt.prefix(16)), $0.kind.label, clip($0.units.joined(separator: "、"), 24),
                                clip($0.title, 40),
                            ]
                        }))
            }
        } else {
            out.append("（通知服务不可用 notify unavailable）")
        }
        return out.joined(separator: "\n")
    }
}
