import CaseTracking
import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// `duban report` against the four real services: beside the Markdown and the CSV, a Word 公文 that
/// python-docx opens, with the report's title, sections and every one of its tables.
@Suite(.serialized) struct ReportDocumentTests {
    /// The four services on 2026-11-20, supervised since the plan began, each given the others.
    static func startAll(_ dir: String) async throws -> (InProcessService, InProcessService, InProcessService, InProcessService) {
        let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock) {
            $0.supervisionStart = "2024-01-01"
        }
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock) {
            $0.endpoints[.registry] = registry.endpoints
        }
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.endpoints[.cases] = cases.endpoints
        }
        return (registry, ingest, cases, notify)
    }

    @Test(arguments: [(ReportKind.monthly, "2026-10"), (.quarterly, "2026-Q3"), (.annual, "2026"), (.closing, "2024-2026")])
    func theReportIsAlsoAWordDocumentWithItsTables(kind: ReportKind, period: String) async throws {
        let dir = try TestSupport.temporaryDirectory()
        let (registry, ingest, cases, notify) = try await Self.startAll(dir)
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        _ = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(source: .publicReport, title: "南川河岸垃圾倾倒", unit: "区城市管理局", deadline: "2026-10-31"), as: Case.self)
        await office.close()

        let config = """
            {"registry": {"rpc": "\(registry.endpoints.rpc)", "events": "\(registry.endpoints.events)"},
             "notify": {"rpc": "\(notify.endpoints.rpc)", "events": "\(notify.endpoints.events)"}, "keysDir": ""}
            """
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        let output = try TestSupport.run(
            (TestSupport.binDirectory as NSString).appendingPathComponent("duban"),
            ["--config", "\(dir)/config.json", "report", kind.rawValue, period, "--out", "\(dir)/report.md"])
        #expect(output.contains("\(dir)/report.docx"), "\(output)")
        // Section 七: go-live 2024-01-01, so every bound unit's 具体实施方案 was due 2024-04-01 and is late.
        let markdown = try String(contentsOfFile: "\(dir)/report.md", encoding: .utf8)
        let plansHeading = kind == .closing ? "## 五、具体实施方案" : "## 七、具体实施方案"
        #expect(markdown.contains(plansHeading) && markdown.contains("| 区城乡建设局 | 2024-04-01 | 待报送（逾期） |  |"))

        // The document against the Markdown written beside it: same title, every section, every table cell.
        let script = """
            import sys, docx
            md = open(sys.argv[1], encoding='utf-8').read().splitlines()
            d = docx.Document(sys.argv[2])
            paras = [p.text for p in d.paragraphs if p.text]
            title = [l[2:] for l in md if l.startswith('# ')][0]
            assert paras[1] == title, (paras[1], title)
            assert paras[2] == '区各有关单位：', paras[2]
            for h in [l[3:] for l in md if l.startswith('## ')]:
                assert h in paras, h
            tables, current = [], []
            for l in md + ['']:
                if l.startswith('|'):
                    cells = [c.strip() for c in l.strip().strip('|').split('|')]
                    if not all(set(c) <= set('-:') and c for c in cells):
                        current.append(cells)
                elif current:
                    tables.append(current)
                    current = []
            got = [[[c.text for c in row.cells] for row in t.rows] for t in d.tables]
            assert got == tables, (got, tables)
            assert paras[-1].endswith('日') and paras[-1].startswith('2026年'), paras[-1]
            print('tables', len(got), 'rows', sum(len(t) for t in got))
            """
        try script.write(toFile: "\(dir)/check.py", atomically: true, encoding: .utf8)
        let checked = try TestSupport.run("/usr/bin/env", ["python3", "\(dir)/check.py", "\(dir)/report.md", "\(dir)/report.docx"])
        // Every report has at least the tasks, the targets and the ledger tables; the script compared each cell.
        let tables = checked.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        #expect(checked.hasPrefix("tables ") && tables >= 3, "\(checked)")

        // One page as a picture for a person to look at, where LibreOffice and poppler are installed
        // (scripts/setup.sh tries: libreoffice-writer-nogui, poppler-utils); skipped where they are not.
        let soffice = "/usr/bin/soffice"
        let pdftoppm = "/usr/bin/pdftoppm"
        if kind == .monthly, FileManager.default.isExecutableFile(atPath: soffice), FileManager.default.isExecutableFile(atPath: pdftoppm) {
            let out = try TestSupport.temporaryDirectory("duban-report-page")
            try TestSupport.run(
                soffice,
                ["-env:UserInstallation=file://\(out)/profile", "--headless", "--convert-to", "pdf", "--outdir", out, "\(dir)/report.docx"])
            try TestSupport.run(pdftoppm, ["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", "\(out)/report.pdf", "\(out)/report"])
            #expect(FileManager.default.fileExists(atPath: "\(out)/report.png"))
            print("月调度通报第一页：\(out)/report.png")
        }
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }

    /// Issue #15: the monthly report says what each unit reported (its 问题 and 下步计划), groups the
    /// month by unit with 已报 / 未报（已逾期）, dates itself by the service clock, and counts the
    /// tasks and the ledger exactly as `duban status` does.
    @Test func theMonthlyReportSaysWhatEachUnitReportedAndAgreesWithDubanStatus() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let (registry, ingest, cases, notify) = try await Self.startAll(dir)
        let unit = try await RPCClient.connect(to: registry.endpoints.rpc, from: "区城乡建设局")
        _ = try await unit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(
                task: "10", period: "2026-10", unit: "区城乡建设局", percent: 40, summary: "完成第一批 60 处混错接点位整治",
                measures: "逐点建立台账", problems: "部分点位涉及老旧小区，施工协调难", nextSteps: "11月完成第二批 80 处"),
            as: ProgressReport.self)
        await unit.close()
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        _ = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(source: .publicReport, title: "南川河岸垃圾倾倒", unit: "区城市管理局", deadline: "2026-10-31"), as: Case.self)
        await office.close()

        let config = """
            {"registry": {"rpc": "\(registry.endpoints.rpc)", "events": "\(registry.endpoints.events)"},
             "ingest": {"rpc": "\(ingest.endpoints.rpc)", "events": "\(ingest.endpoints.events)"},
             "cases": {"rpc": "\(cases.endpoints.rpc)", "events": "\(cases.endpoints.events)"},
             "notify": {"rpc": "\(notify.endpoints.rpc)", "events": "\(notify.endpoints.events)"}, "keysDir": ""}
            """
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        let duban = (TestSupport.binDirectory as NSString).appendingPathComponent("duban")
        _ = try TestSupport.run(duban, ["--config", "\(dir)/config.json", "report", "monthly", "2026-10", "--out", "\(dir)/report.md"])
        let report = try String(contentsOfFile: "\(dir)/report.md", encoding: .utf8)
        let status = try TestSupport.run(duban, ["--config", "\(dir)/config.json", "status"])
        // The dispatch says why the lagging tasks lag, in the registry's words.
        let dispatch = try TestSupport.run(duban, ["--config", "\(dir)/config.json", "dispatch", "2026-10"])
        let reader = try await RPCClient.connect(to: registry.endpoints.rpc)
        let one = try await reader.call(RegistryTypes.taskGet, TaskGetRequest(id: "1"), as: PlanTask.self)
        await reader.close()
        let reason = try #require(one.reasons?.first?.text)
        #expect(dispatch.contains("滞后、逾期任务及原因：") && dispatch.contains(reason), "\(dispatch)")

        // Dated by the service clock, not the machine's.
        #expect(report.contains("生成时间：2026-11-20 10:00"), "\(report.prefix(300))")
        // What the unit did, its problems and its next steps, under its own heading.
        #expect(report.contains("#### 区城乡建设局（已报 1 项"))
        #expect(report.contains("- 任务 10 加快推进湟河流域治污设施建设：进度 40%。完成第一批 60 处混错接点位整治"))
        #expect(report.contains("  - 存在问题：部分点位涉及老旧小区，施工协调难"))
        #expect(report.contains("  - 下步计划：11月完成第二批 80 处"))
        // October's reports were due at November's dispatch: a unit that owes one is 已逾期.
        #expect(report.contains("#### 区委组织部（已报 0 项，未报（已逾期）"))
        #expect(report.contains("：未报（已逾期），报送截止 2026-11-"))
        // Each task says why it stands where it stands (the registry's reasons), as in duban task.
        #expect(report.contains("| 1 | 提高政治站位 | 进度滞后 |") && report.contains("2026-10"), "\(report.prefix(2000))")
        let taskOne = report.split(separator: "\n").first { $0.hasPrefix("| 1 | 提高政治站位 |") } ?? ""
        #expect(
            taskOne.split(separator: "|").count >= 7
                && !(taskOne.split(separator: "|").last ?? "").trimmingCharacters(in: .whitespaces).isEmpty)

        // The same counts as `duban status`: the tasks by status, word for word, and the ledger.
        func line(_ text: String, startingWith prefix: String) -> String? {
            text.split(separator: "\n").map(String.init).first { $0.hasPrefix(prefix) && $0.contains("项：") }
        }
        let reportTasks = try #require(line(report, startingWith: "共 "))
        #expect(line(status, startingWith: "共 ") == reportTasks, "\(status)")
        #expect(reportTasks.contains("共 ") && reportTasks.contains("滞后"))
        #expect(report.contains("共 1 件，逾期 1 件") && status.contains("共 1 件：") && status.contains("其中逾期 1"))

        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }

    /// 收官报告 (issue #15): every task's outcome with its reasons, every target's final value, the
    /// ledger's final state with what is still open, the supervision and accountability; only for
    /// the plan's own years.
    @Test func theClosingReportCoversEveryTaskTargetAndTheLedger() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let (registry, ingest, cases, notify) = try await Self.startAll(dir)
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        _ = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "南川河岸垃圾倾倒", unit: "区城市管理局", deadline: "2026-10-31"),
            as: Case.self)
        await office.close()
        let client = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        let report = try await client.call(
            NotifyTypes.reportGenerate, ReportGenerateRequest(kind: .closing, period: "2024-2026"), as: ReportGenerateReply.self)
        #expect(report.title == "城中区巩固提升生态环境保护成效三年行动收官报告（2024—2026年）")
        for section in ["## 一、任务完成情况", "## 二、目标指标完成情况", "## 三、问题整改台账最终状态", "## 四、督办与问责", "### 未销号问题"] {
            #expect(report.markdown.contains(section), "\(section)")
        }
        let taskRows = report.markdown.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| 编号") }
        #expect(taskRows.count >= 26 + 13 + 1)
        #expect(report.markdown.contains("共 26 项：") && report.markdown.contains("登记 1 件（另作废 0 件），已销号 0 件，未销号 1 件，其中逾期 1 件"))
        #expect(report.markdown.contains("| 10 | 加快推进湟河流域治污设施建设 |"))
        for (period, field) in [("2024-2025", "body.period"), ("2026", "body.period"), ("2026-2024", "body.period")] {
            let refusal: ErrorBody? = await {
                do {
                    _ = try await client.call(
                        NotifyTypes.reportGenerate, ReportGenerateRequest(kind: .closing, period: period), as: ReportGenerateReply.self)
                    return nil
                } catch { return error as? ErrorBody }
            }()
            #expect(refusal?.field == field && refusal?.code == .invalidArgument, "\(period)")
        }
        await client.close()
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }
}
