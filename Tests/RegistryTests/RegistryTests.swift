import DubanTesting
import Foundation
import Messaging
import PlanFormat
import Schema
import ServiceKit
import Testing

@testable import TaskRegistry

func date(_ text: String) -> Date { Timestamp.parse(text)! }

/// The plan, read back through the running registry, against the seed text.
@Suite struct PlanTranscriptionTests {
    @Test func thePlanReadBackMatchesTheSeedFieldByField() async throws {
        let seed = try SeedPlan.parse()
        let service = try await InProcessService.start(RegistryService.self, dataDirectory: try TestSupport.temporaryDirectory())
        let client = try await RPCClient.connect(to: service.endpoints.rpc, from: "test")
        let plan = try await client.call(RegistryTypes.planGet, Empty(), as: PlanReply.self)

        #expect(plan.tasks.map(\.id) == seed.tasks.map(\.id))
        #expect(plan.tasks.count == 26)
        #expect(
            plan.tasks.map(\.id) == [
                "1", "2", "3", "4", "5", "6", "7", "7.1", "7.2", "7.3", "8", "9", "9.1", "9.2", "10", "11", "11.1", "11.2", "12", "13",
                "14", "15",
                "16", "17", "18", "19",
            ])
        for expected in seed.tasks {
            let task = try #require(plan.tasks.first { $0.id == expected.id })
            if task.subtasks.isEmpty {
                #expect(task.leadUnits == expected.lead, "task \(task.id) lead units")
                #expect(task.cooperatingUnits == expected.cooperating, "task \(task.id) cooperating units")
                #expect(task.deadline == expected.deadline, "task \(task.id) deadline")
                #expect(task.ongoing == expected.ongoing, "task \(task.id) ongoing")
                // The whole text, character for character: `N、title。text` or `（k）text`.
                if task.parent == nil {
                    #expect("\(task.title)。\(task.text)" == expected.heading, "task \(task.id) text")
                } else {
                    #expect(task.text == expected.heading, "task \(task.id) text")
                    #expect(task.text.hasPrefix(task.title), "sub-item \(task.id)'s title is its opening words")
                }
            } else {
                #expect("\(task.title)。" == expected.heading, "parent \(task.id) heading")
                #expect(task.subtasks == seed.tasks.filter { $0.id.hasPrefix("\(task.id).") }.map(\.id))
            }
        }
        // Sub-item parents roll their units up.
        #expect(plan.tasks.first { $0.id == "11" }?.leadUnits == ["区城乡建设局", "区生态环境局", "区农业农村局", "区市政公用服务中心"])
        // The dated milestones inside 7.3's text.
        let milestones = try #require(plan.tasks.first { $0.id == "7.3" }?.milestones)
        #expect(milestones.map(\.date) == ["2024-12-31", "2025-12-31"])
        #expect(milestones.allSatisfy { seed.tasks.first { $0.id == "7.3" }!.heading.contains($0.text) })

        // The 13 targets, each clause found in the goals as the plan writes it.
        #expect(plan.targets.map(\.indicator) == IndicatorID.all)
        for target in plan.targets { #expect(seed.goals.contains(target.text), "\(target.indicator): \(target.text)") }
        let numbers = seed.goals.matches(of: /达到 ?([0-9]+(?:\.[0-9]+)?)%/).map { Double($0.1)! }
        #expect(numbers == [31.48, 95, 60, 100, 100, 85, 92, 100])
        #expect(plan.targets.compactMap { if case .number(let n) = $0.threshold { n } else { nil } } == numbers)
        let byID = Dictionary(uniqueKeysWithValues: plan.targets.map { ($0.indicator, $0) })
        #expect(
            byID["water_quality_liuyiqiao"]?.threshold == .string("III") && byID["water_quality_liuyiqiao"]?.operator == "class_at_least")
        #expect(byID["aquatic_eco_evaluation"]?.threshold == .string("基本稳定"))
        #expect(byID["pm25_annual_mean"]?.operator == "at_most" && byID["pm25_annual_mean"]?.thresholdFrom == "city_control_value")
        #expect(byID["hazardous_waste_safe_disposal"]?.operator == "equal")
        #expect(byID["forest_coverage"]?.operator == "at_least" && byID["forest_coverage"]?.tasks == ["3"])
        #expect(byID["emissions_carbon_intensity"]?.operator == "within_quota")
        // Every target is carried by tasks whose text states it.
        for target in plan.targets {
            for id in target.tasks { #expect(plan.tasks.first { $0.id == id } != nil) }
        }
        // The rule that every department delivers its implementation plan within 3 months.
        #expect(plan.rules.contains { $0.withinMonths == 3 && $0.text.contains("3个月内制定具体实施方案") })
        #expect(plan.categories.count == 6 && plan.categories[2] == "（三）持续深入打好污染防治攻坚战")

        // Units: every unit a task names is in the registry, collective names as written.
        let units = try await client.call(RegistryTypes.unitList, Empty(), as: ListReply<PlanUnit>.self).items
        let names = Set(units.map(\.name))
        for task in seed.tasks { for unit in task.lead + task.cooperating { #expect(names.contains(unit), "unit \(unit)") } }
        for collective in ["区直各单位", "各涉河镇办", "各街道办事处", "区委各部门"] {
            #expect(units.first { $0.name == collective }?.collective == true)
        }
        #expect(names.contains(officeUnit))
        #expect(units.first { $0.name == "区市场监管局" }?.aliasOf == "区市场监督管理局")
        await client.close()
        try await service.stop()
    }
}

/// The status rules, one by one, on the real plan, with the clock set.
@Suite struct StatusRuleTests {
    let plan = try! PlanLoader.load(path: PlanLoader.bundledPlanPath!)

    func reports(_ entries: [(unit: String, month: String, percent: Double)]) -> TaskReports {
        var reports = TaskReports()
        for entry in entries.sorted(by: { $0.month < $1.month }) {
            reports.latestPercent[entry.unit] = entry.percent
            reports.monthsReported[entry.unit, default: []].insert(Month(entry.month)!)
        }
        return reports
    }

    func status(_ id: String, _ entries: [(unit: String, month: String, percent: Double)] = [], at now: String) -> TaskStatus {
        TaskStatusRules.leafStatus(plan.task(id)!, plan: plan, reports: reports(entries), now: date(now))
    }

    @Test func nothingIsDueBeforeTheFirstDispatchDay() {
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2024-02-05T23:00:00+08:00")) == nil)
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2024-02-06T00:00:00+08:00")) == Month("2024-01"))
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2026-11-29T12:00:00+08:00")) == Month("2026-10"))
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2027-06-01T00:00:00+08:00")) == Month("2026-12"))
        #expect(status("10", at: "2024-01-20T10:00:00+08:00") == .notStarted)
        #expect(status("5", at: "2024-01-20T10:00:00+08:00") == .notStarted)
    }

    @Test func anOngoingTaskLagsWhenItsMonthlyReportsStop() {
        let reported = [("区城乡建设局", "2026-09", 30.0), ("区城乡建设局", "2026-10", 35.0)]
        #expect(status("10", reported, at: "2026-11-20T10:00:00+08:00") == .onTrack)
        // December 8th: November's report was due on the 5th, a Saturday, so on Monday the 7th, and never came.
        #expect(status("10", reported, at: "2026-12-08T10:00:00+08:00") == .lagging)
        // On the moved due day itself it is not yet late.
        #expect(status("10", reported, at: "2026-12-07T23:59:00+08:00") == .onTrack)
        #expect(status("10", reported, at: "2026-12-06T10:00:00+08:00") == .onTrack)
        // Ongoing tasks are never completed, and never overdue.
        #expect(status("10", [("区城乡建设局", "2026-10", 100)], at: "2026-11-20T10:00:00+08:00") == .onTrack)
        #expect(status("10", [("区城乡建设局", "2026-12", 100)], at: "2027-03-01T10:00:00+08:00") == .onTrack)
    }

    @Test func everyLeadUnitMustReport() {
        // Task 8 has two lead units; one silent unit makes it lag.
        let one = [("区生态环境局", "2026-10", 90.0)]
        #expect(status("8", one, at: "2026-11-20T10:00:00+08:00") == .lagging)
        let both = one + [("区城乡建设局", "2026-10", 90.0)]
        #expect(status("8", both, at: "2026-11-20T10:00:00+08:00") == .onTrack)
        // 区市场监管局 is 区市场监督管理局: either name counts for task 12's lead unit.
        let task12 = plan.task("12")!
        #expect(TaskStatusRules.expectedReporters(task12, plan: plan).contains("区市场监督管理局"))
    }

    @Test func aDatedTaskIsOverdueOnceItsDeadlineDayEnds() {
        let partial = [("区生态环境局", "2024-11", 60.0), ("区生态环境局", "2024-12", 80.0)]
        #expect(status("5", partial, at: "2024-12-31T23:59:59+08:00") != .overdue)
        #expect(status("5", partial, at: "2025-01-01T00:00:00+08:00") == .overdue)
        #expect(status("5", partial, at: "2026-06-01T00:00:00+08:00") == .overdue)
    }

    @Test func aDatedTaskAwaitsTheOfficesAcceptanceWhenEveryLeadUnitReportsAHundred() {
        #expect(status("5", [("区生态环境局", "2024-12", 100)], at: "2025-03-01T00:00:00+08:00") == .awaitingAcceptance)
        let task16 = [("区生态环境局", "2025-11", 100.0), ("区人民法院", "2025-11", 100.0), ("区人民检察院", "2025-11", 100.0)]
        #expect(status("16", task16, at: "2025-12-02T00:00:00+08:00") != .awaitingAcceptance, "城中公安分局 has not finished")
        #expect(status("16", task16 + [("城中公安分局", "2025-11", 100.0)], at: "2025-12-02T00:00:00+08:00") == .awaitingAcceptance)
        // Accepted by the office: completed.
        var reports = TaskReports()
        reports.latestPercent["区生态环境局"] = 100
        reports.review = ("accepted", "2025-03-01T10:00:00.000+08:00")
        #expect(
            TaskStatusRules.leafStatus(plan.task("5")!, plan: plan, reports: reports, now: Timestamp.parse("2025-03-02T00:00:00+08:00")!)
                == .completed)
    }

    @Test func aMissedMilestoneMakesATaskLag() {
        // 7.3: all outfalls traced by the end of 2024 (50 % by then).
        let reports = [("区生态环境局", "2024-12", 40.0), ("区生态环境局", "2025-01", 45.0)]
        #expect(status("7.3", reports, at: "2025-02-01T00:00:00+08:00") == .lagging)
        let onPace = [("区生态环境局", "2024-12", 55.0), ("区生态环境局", "2025-01", 60.0)]
        #expect(status("7.3", onPace, at: "2025-02-01T00:00:00+08:00") == .onTrack)
    }

    @Test func progressFarBehindTheLineLags() {
        // Task 3 runs 2024-01-01 … 2026-12-31; by July 2025 half the time has gone: 50 % expected,
        // less the plan's tolerance of 15 points.
        let slow = [("区自然资源和林业局", "2025-06", 30.0)]
        #expect(status("3", slow, at: "2025-07-10T00:00:00+08:00") == .lagging)
        let fair = [("区自然资源和林业局", "2025-06", 40.0)]
        #expect(status("3", fair, at: "2025-07-10T00:00:00+08:00") == .onTrack)
    }

    @Test func parentsRollUpFromTheirSubItems() {
        #expect(TaskStatusRules.rollUp([.completed, .completed]) == .completed)
        #expect(TaskStatusRules.rollUp([.completed, .overdue, .lagging]) == .overdue)
        #expect(TaskStatusRules.rollUp([.onTrack, .lagging]) == .lagging)
        #expect(TaskStatusRules.rollUp([.notStarted, .notStarted]) == .notStarted)
        #expect(TaskStatusRules.rollUp([.notStarted, .onTrack, .completed]) == .onTrack)
        let statuses = TaskStatusRules.statuses(plan: plan, reports: [:], now: date("2026-01-05T00:00:00+08:00"))
        #expect(statuses["7.3"] == .overdue && statuses["7"] == .overdue)
    }

    /// The registry keeps task views until `nextChange`; this checks the promise behind that: with
    /// the reports unchanged, no status differs at any instant before it. Random reports and random
    /// instants over the plan's three years (and after), instants between sampled densely, and the
    /// moments just before the change and around the straight line's crossings in particular.
    @Test func statusesHoldUntilTheNextChangeTheRulesName() {
        var random = SystemRandomNumberGenerator()
        let start = date("2023-12-20T00:00:00+08:00").timeIntervalSince1970
        let end = date("2027-03-01T00:00:00+08:00").timeIntervalSince1970
        let months = (2024...2026).flatMap { year in (1...12).map { Month(year: year, month: $0) } }
        var checked = 0
        for _ in 0..<300 {
            var reports: [String: TaskReports] = [:]
            for task in plan.tasks where !task.isParent && Bool.random(using: &random) {
                var entry = TaskReports()
                for unit in TaskStatusRules.expectedReporters(task, plan: plan) where Int.random(in: 0..<4, using: &random) > 0 {
                    entry.latestPercent[unit] = [0, 10, 35, 50, 72.5, 99, 100].randomElement(using: &random)!
                    entry.monthsReported[unit] = Set(
                        (0..<Int.random(in: 1...6, using: &random)).map { _ in months.randomElement(using: &random)! })
                }
                reports[task.id] = entry
            }
            let now = Date(timeIntervalSince1970: Double.random(in: start..<end, using: &random))
            let next = TaskStatusRules.nextChange(plan: plan, reports: reports, now: now)
            #expect(next >= now)
            let before = TaskStatusRules.statuses(plan: plan, reports: reports, now: now)
            let span = min(next.timeIntervalSince(now), 400 * 86_400)
            var instants = (1..<40).map { now.addingTimeInterval(span * Double($0) / 40) }
            if next < .distantFuture { instants += [next.addingTimeInterval(-0.0005), next.addingTimeInterval(-1)].filter { $0 >= now } }
            for instant in instants {
                let later = TaskStatusRules.statuses(plan: plan, reports: reports, now: instant)
                #expect(later == before, "statuses changed at \(instant) before the next change \(next) computed at \(now)")
                checked += 1
            }
        }
        #expect(checked > 10_000)
    }
}

/// A plan file with mistakes is refused with every mistake named.
@Suite struct PlanLoaderTests {
    @Test func everyProblemIsNamedWithFileLineAndPath() throws {
        let yaml = """
            title: 测试方案
            start: 2024-01-01
            end: 2023-12-31
            units:
              - {name: 区生态环境局, kind: government}
              - {name: 区生态环境局, kind: ministry}
            categories:
              - {id: "一", title: 测试}
            tasks:
              - id: "1"
                category: "一"
                title: 第一项
                text: 内容
                lead: [区生态环境局, 区不存在局]
                deadline: 2026-13-01
              - id: "x"
                category: "九"
                title: 第二项
            targets:
              - {indicator: forest_coverage, text: 森林覆盖率, operator: at_least, threshold: lots, tasks: ["9"]}
            """
        do {
            _ = try PlanLoader.parse(yaml, file: "broken.yaml")
            Issue.record("a broken plan must be refused")
        } catch {
            let text = error.description
            #expect(text.contains("broken.yaml:3: end: 结束日期 2023-12-31 早于开始日期 2024-01-01"), "\(text)")
            #expect(text.contains("broken.yaml:6: units[1]: 单位 区生态环境局 重复列出"), "\(text)")
            #expect(text.contains("未知的单位类型 ministry"))
            #expect(text.contains("broken.yaml:14:") && text.contains("未知单位 区不存在局"), "\(text)")
            #expect(text.contains("2026-13-01 不是日期"))
            #expect(text.contains("任务编号 x 应为数字"))
            #expect(text.contains("未知的任务类别 九"))
            #expect(text.contains("（任务 x）") && text.contains("缺少责任单位"))
            #expect(text.contains("targets[0].threshold: 应为数字"))
            #expect(text.contains("targets[0].tasks: 未知任务 9"))
            #expect(error.problems.count >= 10)
        }
    }

    @Test func notYAMLAtAllIsNamedWithItsLine() {
        do {
            _ = try PlanLoader.parse("title: a\n  - b: [\n", file: "bad.yaml")
            Issue.record("must fail")
        } catch {
            #expect(error.description.contains("bad.yaml:"))
            #expect(error.description.contains("不是有效的 YAML"))
        }
    }

    @Test func theBundledPlanIsValid() throws {
        let plan = try PlanLoader.load(path: try #require(PlanLoader.bundledPlanPath))
        #expect(plan.tasks.count == 26 && plan.targets.count == 13)
    }
}
