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

/// The real `duban` binary against the four services, started here on free ports: every option
/// that takes a status, station, indicator, unit, source or kind takes the Chinese name as well
/// as the id, a near miss is refused with the name meant before anything is sent, and the
/// dispatch, the targets and the readings export as CSV and XLSX (read back with openpyxl).
@Suite(.serialized) struct CLINamesAndExportTests {
    /// The four services, and a configuration file naming them (no keys: `--as` is the envelope's from).
    struct Deployment {
        var registry: InProcessService
        var ingest: InProcessService
        var cases: InProcessService
        var notify: InProcessService
        var directory: String
        var config: String

        static func start() async throws -> Deployment {
            let dir = try TestSupport.temporaryDirectory("duban-names")
            let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
            // Supervised since January: October's reports are owed, and late (due early November).
            let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.supervisionStart = "2026-01-01"
            }
            let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.endpoints[.registry] = registry.endpoints
            }
            let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.endpoints[.registry] = registry.endpoints
            }
            let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock, tickSeconds: 0.2) {
                $0.endpoints[.registry] = registry.endpoints
                $0.endpoints[.ingest] = ingest.endpoints
                $0.endpoints[.cases] = cases.endpoints
            }
            let services = [("registry", registry), ("ingest", ingest), ("cases", cases), ("notify", notify)]
            let entries = services.map { name, service in
                "\"\(name)\": {\"rpc\": \"\(service.endpoints.rpc)\", \"events\": \"\(service.endpoints.events)\"}"
            }
            let config = "\(dir)/duban.json"
            try Data("{\(entries.joined(separator: ", ")), \"keysDir\": \"\"}".utf8).write(to: URL(fileURLWithPath: config))
            return Deployment(registry: registry, ingest: ingest, cases: cases, notify: notify, directory: dir, config: config)
        }

        func stop() async throws {
            try await notify.stop()
            try await cases.stop()
            try await ingest.stop()
            try await registry.stop()
        }

        /// What the CLI printed, and whether it exited 0.
        func duban(_ arguments: [String]) -> (output: String, ok: Bool) {
            do {
                return (try TestSupport.run("\(TestSupport.binDirectory)/duban", ["--config", config] + arguments), true)
            } catch {
                return ("\(error)", false)
            }
        }

        /// Hourly 氨氮 at 六一桥 for 2026-11-01 to 03, class IV (worse than the section's III) on the 2nd.
        func submitReadings() async throws {
            let station = try await RPCClient.connect(to: ingest.endpoints.rpc, from: "station")
            var readings: [SubmittedReading] = []
            for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
                for hour in 0..<24 {
                    readings.append(
                        SubmittedReading(
                            station: "liuyiqiao", parameter: "nh3n", ts: String(format: "\(day)T%02d:00:00+08:00", hour),
                            value: day == "2026-11-02" ? 1.2 : 0.4))
                }
            }
            let reply = try await station.call(
                IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
            #expect(reply.accepted == 72)
            await station.close()
        }
    }

    /// Runs a Python script (openpyxl, installed by scripts/setup.sh) and returns what it printed.
    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let path = try TestSupport.temporaryDirectory("duban-py") + "/check.py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        return try TestSupport.run("/usr/bin/env", ["python3", path] + arguments)
    }

    @Test func everyNamedOptionTakesTheChineseNameAndANearMissGetsTheNameMeant() async throws {
        let d = try await Deployment.start()
        try await d.submitReadings()

        // Each option: the id and the Chinese name give the same answer (JSON, unchanged by the name used).
        let same: [(String, [String], [String])] = [
            ("tasks --status", ["tasks", "--status", "overdue", "--json"], ["tasks", "--status", "逾期未完成", "--json"]),
            ("tasks --unit", ["tasks", "--unit", "区农业农村局", "--json"], ["tasks", "--unit", "区农业农村局", "--json"]),
            ("cases --status", ["cases", "list", "--status", "rectifying", "--json"], ["cases", "list", "--status", "整改中", "--json"]),
            (
                "cases --source", ["cases", "list", "--source", "sewer_misconnection", "--json"],
                ["cases", "list", "--source", "混错接点位", "--json"]
            ),
            ("notices --kind", ["notices", "--kind", "monthly_dispatch", "--json"], ["notices", "--kind", "月调度", "--json"]),
            ("notices --state", ["notices", "--state", "open", "--json"], ["notices", "--state", "待签收", "--json"]),
            (
                "supervision --state", ["supervision", "--state", "pending", "--json"],
                ["supervision", "--state", "待答复", "--json"]
            ),
            ("indicator", ["indicator", "forest_coverage", "--json"], ["indicator", "森林覆盖率", "--json"]),
            (
                "readings station", ["readings", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--json"],
                ["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--json"]
            ),
            (
                "readings station (full name)", ["readings", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--json"],
                ["readings", "六一桥入湟断面", "--from", "2026-11-01", "--to", "2026-11-03", "--json"]
            ),
            (
                "water-class station", ["water-class", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--json"],
                ["water-class", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--json"]
            ),
            (
                "water-class station (full name)", ["water-class", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--json"],
                ["water-class", "六一桥入湟断面", "--from", "2026-11-01", "--to", "2026-11-03", "--json"]
            ),
            (
                "readings --every", ["readings", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--every", "month", "--json"],
                ["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--every", "月", "--json"]
            ),
        ]
        for (what, byID, byName) in same {
            // The services' rhythm may issue a notice between two runs: a few tries to see both answers alike.
            var outputs: [(output: String, ok: Bool)] = []
            for _ in 0..<3 {
                outputs = [d.duban(byID), d.duban(byName)]
                if outputs[0].output == outputs[1].output { break }
            }
            #expect(outputs[0].ok && outputs[1].ok, "\(what): \(outputs[0].output) / \(outputs[1].output)")
            #expect(outputs[0].output == outputs[1].output, "\(what)")
        }
        #expect(d.duban(["audit", "--service", "任务登记"]).ok)
        // Not empty answers, so that the comparisons above compare something.
        #expect(d.duban(["tasks", "--unit", "区农业农村局"]).output.contains("区农业农村局"))
        #expect(d.duban(["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03"]).output.contains("2026-11-02"))
        #expect(d.duban(["indicator", "森林覆盖率"]).output.contains("forest_coverage"))
        #expect(d.duban(["water-class", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03"]).output.contains("III类（决定因子 nh3n"))
        #expect(d.duban(["ping", "任务登记", "通知提醒"]).ok)

        // A near miss: refused in Chinese, naming the option and the name meant.
        let nearMisses: [([String], String)] = [
            (["tasks", "--status", "逾期"], "--status：未知的状态「逾期」，是否为「逾期未完成」？"),
            (["tasks", "--status", "lagginng"], "--status：未知的状态「lagginng」，是否为「进度滞后」？"),
            (["tasks", "--unit", "区农业局"], "--unit：未知的单位「区农业局」，是否为「区农业农村局」？"),
            (
                ["escalate", "--unit", "区农业农村局", "--level", "约淡", "--reason", "连续两个月未报送"],
                "--level：未知的方式「约淡」，是否为「约谈」？"
            ),
            (
                ["escalate", "--unit", "区农业局", "--level", "约谈", "--reason", "连续两个月未报送"],
                "--unit：未知的单位「区农业局」，是否为「区农业农村局」？"
            ),
            (
                ["cases", "open", "--source", "群众举报", "--title", "河道垃圾", "--unit", "区农业局"],
                "--unit：未知的单位「区农业局」，是否为「区农业农村局」？"
            ),
            (["cases", "list", "--status", "整改"], "--status：未知的状态「整改」，是否为「整改中」？"),
            (["cases", "list", "--source", "混错结点位"], "--source：未知的来源「混错结点位」，是否为「混错接点位」？"),
            (["cases", "list", "--unit", "区城乡建设"], "--unit：未知的单位「区城乡建设」，是否为「区城乡建设局」？"),
            (["notices", "--kind", "月调"], "--kind：未知的类型「月调」，是否为「月调度」？"),
            (["notices", "--state", "待签"], "--state：未知的状态「待签」，是否为「待签收」？"),
            (["notices", "--unit", "区农业局"], "--unit：未知的单位「区农业局」，是否为「区农业农村局」？"),
            (["supervision", "--state", "待答"], "--state：未知的状态「待答」，是否为「待答复」？"),
            (["indicator", "森林覆盖"], "指标：未知的指标「森林覆盖」，是否为「森林覆盖率（forest_coverage）」？"),
            (
                ["silence", "add", "--indicator", "森林复盖率", "--until", "2026-12-31T00:00:00+08:00", "--comment", "核查中"],
                "--indicator：未知的指标「森林复盖率」，是否为「森林覆盖率（forest_coverage）」？"
            ),
            (
                ["readings", "六一桥入黄断面", "--from", "2026-11-01", "--to", "2026-11-03"],
                "站点：未知的站点「六一桥入黄断面」，是否为「六一桥入湟断面（liuyiqiao）」？"
            ),
            (
                ["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--parameter", "氨"],
                "--parameter：未知的监测项目「氨」，是否为「氨氮（nh3n）」？"
            ),
            (
                ["water-class", "六一桥入黄断面", "--from", "2026-11-01", "--to", "2026-11-03"],
                "站点：未知的站点「六一桥入黄断面」，是否为「六一桥入湟断面（liuyiqiao）」？"
            ),
            (["report", "月度报", "2026-10"], "报告类型：未知的报告类型「月度报」，是否为「月度」？"),
            (["ping", "任务登"], "服务：未知的服务「任务登」，是否为「任务登记」？"),
            (["audit", "--service", "registy"], "--service：未知的服务「registy」，是否为「任务登记」？"),
            (
                ["channels", "set", "群", "--kind", "钉钉群", "--target", "https://example.invalid/hook"],
                "--kind：未知的渠道类型「钉钉群」，是否为「钉钉」？"
            ),
            (["keys", "add", "unit-x", "--role", "unit", "--unit", "区农业局"], "--unit：未知的单位「区农业局」，是否为「区农业农村局」？"),
            (
                ["keys", "add", "station-x", "--role", "station", "--stations", "六一桥入黄断面"],
                "--stations：未知的站点「六一桥入黄断面」，是否为「六一桥入湟断面（liuyiqiao）」？"
            ),
            (["plan-impl", "--state", "已退"], "--state：未知的状态「已退」，是否为「已退回待重新报送」？"),
        ]
        for (arguments, message) in nearMisses {
            let run = d.duban(arguments)
            #expect(!run.ok, "\(arguments) was accepted")
            #expect(run.output.contains(message), "\(arguments): \(run.output)")
        }
        // Nothing was sent for the refused escalation and case: none recorded.
        #expect(d.duban(["escalations", "--json"]).output.filter { !$0.isWhitespace } == "[]")
        #expect(d.duban(["cases", "list", "--json"]).output.filter { !$0.isWhitespace } == "[]")
        // Far from any name: the valid ones listed.
        let far = d.duban(["tasks", "--status", "xyz"])
        #expect(far.output.contains("--status：未知的状态「xyz」；可选：未开始、正常推进、进度滞后、逾期未完成"), "\(far.output)")
        try await d.stop()
    }

    @Test func theDispatchTheTargetsAndTheReadingsExportAsCSVAndXLSX() async throws {
        let d = try await Deployment.start()
        try await d.submitReadings()
        // One unit reports for October, its summary formula-looking; the rest of the month's reports are missing and late.
        let unit = try await RPCClient.connect(to: d.registry.endpoints.rpc, from: "区城乡建设局")
        _ = try await unit.call(
            RegistryTypes.progressReport,
            ProgressReportRequest(task: "10", period: "2026-10", unit: "区城乡建设局", percent: 40, summary: "=HYPERLINK(\"http://x\",\"点击\")"),
            as: ProgressReport.self)
        await unit.close()
        // A target not met: 森林覆盖率 30 % against 31.48 %.
        let forestry = try await RPCClient.connect(to: d.ingest.endpoints.rpc, from: "区自然资源和林业局")
        _ = try await forestry.call(
            IngestTypes.indicatorReport,
            IndicatorReportRequest(indicator: "forest_coverage", period: "2025", value: .number(30), source: "统计年报"),
            as: IndicatorValue.self)
        await forestry.close()

        let out = d.directory
        let runs: [[String]] = [
            ["dispatch", "2026-10", "--format", "xlsx", "--out", "\(out)/dispatch.xlsx"],
            ["dispatch", "2026-10", "--out", "\(out)/dispatch.csv"],
            ["indicators", "--format", "xlsx", "--out", "\(out)/targets.xlsx"],
            ["indicators", "--format", "csv", "--out", "\(out)/targets.csv"],
            ["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--format", "xlsx", "--out", "\(out)/readings.xlsx"],
            ["readings", "六一桥", "--from", "2026-11-01", "--to", "2026-11-03", "--every", "小时", "--out", "\(out)/readings-hourly.xlsx"],
            ["readings", "liuyiqiao", "--from", "2026-11-01", "--to", "2026-11-03", "--format", "csv", "--out", "\(out)/readings.csv"],
        ]
        for arguments in runs {
            let run = d.duban(arguments)
            #expect(run.ok, "\(arguments): \(run.output)")
        }
        #expect(!d.duban(["indicators", "--format", "pdf"]).ok)

        // Read back with openpyxl: headers, a date cell's type, the frozen header, a highlighted row.
        let checked = try Self.python(
            """
            import sys, datetime, openpyxl
            d = sys.argv[1]
            def sheet(name):
                wb = openpyxl.load_workbook(d + '/' + name)
                return wb.worksheets[0]
            def red(cell):
                return (cell.fill.fgColor.rgb or '').upper().endswith('FFC7CE')
            def header(ws):
                return [c.value for c in ws[1]]

            ws = sheet('dispatch.xlsx')
            h = header(ws)
            assert h[:7] == ['责任单位', '任务编号', '任务', '报送情况', '完成进度（%）', '报送时间', '报送截止'], h
            assert ws.freeze_panes == 'A2', ws.freeze_panes
            rows = list(ws.iter_rows(min_row=2))
            late = [r for r in rows if r[3].value == '未报（已逾期）']
            assert late and all(red(c) for c in late[0]), [(c.value, c.fill.fgColor.rgb) for c in late[0]]
            assert isinstance(late[0][6].value, datetime.datetime), repr(late[0][6].value)
            done = [r for r in rows if r[3].value == '已报送' and r[0].value == '区城乡建设局' and r[1].value == '10']
            assert len(done) == 1, len(done)
            assert isinstance(done[0][5].value, datetime.datetime), repr(done[0][5].value)
            assert done[0][4].value == 40, repr(done[0][4].value)
            assert done[0][7].value.startswith("'="), done[0][7].value
            assert ws.column_dimensions['C'].width > ws.column_dimensions['B'].width
            print('dispatch', len(rows), len(late))

            ws = sheet('targets.xlsx')
            h = header(ws)
            assert h[:4] == ['指标', '指标编号', '目标', '最新值'], h
            assert ws.freeze_panes == 'A2'
            rows = list(ws.iter_rows(min_row=2))
            assert len(rows) == 13, len(rows)
            forest = [r for r in rows if r[1].value == 'forest_coverage'][0]
            assert forest[0].value == '森林覆盖率' and forest[3].value == 30 and forest[8].value == '未达标', [c.value for c in forest]
            assert red(forest[0]), forest[0].fill.fgColor.rgb
            assert isinstance(forest[7].value, datetime.datetime), repr(forest[7].value)
            assert not any(red(r[0]) for r in rows if r[8].value != '未达标')
            print('targets', len(rows))

            ws = sheet('readings.xlsx')
            h = header(ws)
            assert h == ['站点', '监测时间', '氨氮(mg/L)', '水质类别', '决定因子', '目标类别'], h
            assert ws.freeze_panes == 'A2'
            rows = list(ws.iter_rows(min_row=2))
            assert [r[1].value for r in rows] == [datetime.datetime(2026, 11, day) for day in (1, 2, 3)], [r[1].value for r in rows]
            assert rows[1][2].value == 1.2 and rows[1][3].value == 'IV' and rows[1][5].value == 'III', [c.value for c in rows[1]]
            assert red(rows[1][0]) and not red(rows[0][0]) and not red(rows[2][0])
            ws = sheet('readings-hourly.xlsx')
            rows = list(ws.iter_rows(min_row=2))
            assert len(rows) == 72 and rows[1][1].value == datetime.datetime(2026, 11, 1, 1, 0), (len(rows), rows[1][1].value)
            print('readings', len(rows))
            """, [out])
        #expect(checked.contains("dispatch") && checked.contains("targets 13") && checked.contains("readings 72"), "\(checked)")

        // The CSVs: UTF-8 with a BOM, the same headers, the formula-looking summary neutralised.
        func csv(_ name: String) throws -> String {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(name)"))
            #expect(data.starts(with: [0xEF, 0xBB, 0xBF]), "\(name): a BOM")
            return String(decoding: data.dropFirst(3), as: UTF8.self)
        }
        let dispatchCSV = try csv("dispatch.csv")
        #expect(dispatchCSV.hasPrefix("责任单位,任务编号,任务,报送情况,完成进度（%）,报送时间,报送截止"))
        #expect(dispatchCSV.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"点击\"\")\""), "\(dispatchCSV.prefix(600))")
        #expect(dispatchCSV.contains("未报（已逾期）"))
        let targetsCSV = try csv("targets.csv")
        #expect(targetsCSV.hasPrefix("指标,指标编号,目标,最新值"))
        #expect(targetsCSV.contains("森林覆盖率,forest_coverage,"))
        let readingsCSV = try csv("readings.csv")
        #expect(readingsCSV.contains("六一桥入湟断面,2026-11-02,1.2,IV,氨氮,III"), "\(readingsCSV)")
        try await d.stop()
    }
}
