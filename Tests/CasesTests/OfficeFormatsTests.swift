import DubanTesting
import Formats
import Foundation
import Messaging
import OfficeFormats
import Schema
import Testing

/// Runs a Python script (openpyxl, python-docx: installed by scripts/setup.sh) and returns what it printed.
@discardableResult
func python(_ script: String, _ arguments: [String] = []) throws -> String {
    let path = try TestSupport.temporaryDirectory("duban-py") + "/script.py"
    try script.write(toFile: path, atomically: true, encoding: .utf8)
    return try TestSupport.run("/usr/bin/env", ["python3", path] + arguments)
}

/// Runs the `duban` CLI against a test ledger (its endpoints in a configuration file, no keys).
/// Returns the output and whether it exited 0.
func duban(_ ledger: Ledger, _ arguments: [String]) throws -> (output: String, ok: Bool) {
    let dir = try TestSupport.temporaryDirectory("duban-cli")
    let config = """
        {"cases": {"rpc": "\(ledger.cases.endpoints.rpc)", "events": "\(ledger.cases.endpoints.events)"},
         "registry": {"rpc": "\(ledger.registry.endpoints.rpc)", "events": "\(ledger.registry.endpoints.events)"}, "keysDir": ""}
        """
    try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
    let binary = (TestSupport.binDirectory as NSString).appendingPathComponent("duban")
    do {
        return (try TestSupport.run(binary, ["--config", "\(dir)/config.json"] + arguments), true)
    } catch let failure as TestFailure {
        return ("\(failure)", false)
    }
}

extension JSONValue {
    func member(_ key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}

@Suite struct OfficeFormatsTests {
    /// A ledger as an office writes it: dates three ways, a 维护-free plain sheet with the variants of the headers.
    static let utf8CSV =
        "\u{FEFF}问题来源,问题标题,整改责任单位,整改时限,所属任务,批次,位置,经度,纬度,外部编号,整改措施\r\n"
        + "混错接点位,南川东路12号雨污混接,区城乡建设局,2026-12-31,10,第一批,南川东路12号,101.75,36.61,HCJ-P001,雨污分流改造\r\n"
        + "混错接点位,\"南大街3号,污水接入雨水管\",区城乡建设局,2026/3/5,10,第一批,南大街3号,101.76,36.62,HCJ-P002,改接\r\n"
        + "混错接点位,七一路8号混接,区城乡建设局,2027年1月9日,10,第二批,七一路8号,101.77,36.63,HCJ-P003,封堵\r\n"

    static func bodies(_ records: [LedgerCSV.Record], shortRows: Bool = false) throws -> [JSONValue] {
        let rows = try LedgerCSV.importRows(records, shortRows: shortRows)
        #expect(rows.allSatisfy { $0.problem == nil }, "\(rows.compactMap(\.problem))")
        return rows.compactMap(\.body)
    }

    @Test func aGBKCSVAndAnOpenpyxlWorkbookImportLikeTheUTF8CSV() async throws {
        let dir = try TestSupport.temporaryDirectory()
        try Data(Self.utf8CSV.utf8).write(to: URL(fileURLWithPath: "\(dir)/utf8.csv"))
        // Excel's "CSV (逗号分隔)" on a Chinese Windows: GBK, no BOM. And UTF-16 (Excel's "Unicode 文本" encoding).
        try python(
            """
            import sys, datetime, openpyxl
            d = sys.argv[1]
            text = open(d + '/utf8.csv', encoding='utf-8-sig', newline='').read()
            open(d + '/gbk.csv', 'wb').write(text.encode('gbk'))
            open(d + '/utf16.csv', 'wb').write(text.encode('utf-16'))
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = '台账'
            ws.append(['问题来源', '问题标题', '整改责任单位', '整改时限', '所属任务', '批次', '位置', '经度', '纬度', '外部编号', '整改措施'])
            ws.append(['混错接点位', '南川东路12号雨污混接', '区城乡建设局', datetime.date(2026, 12, 31), 10, '第一批', '南川东路12号',
                       101.75, 36.61, 'HCJ-P001', '雨污分流改造'])
            ws.append(['混错接点位', '南大街3号,污水接入雨水管', '区城乡建设局', datetime.datetime(2026, 3, 5), 10, '第一批', '南大街3号',
                       101.76, 36.62, 'HCJ-P002', '改接'])
            ws.append(['混错接点位', '七一路8号混接', '区城乡建设局', '2027年1月9日', 10, '第二批', '七一路8号', 101.77, 36.63, 'HCJ-P003', '封堵'])
            wb.save(d + '/ledger.xlsx')
            """, [dir])
        let gbkData = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/gbk.csv"))
        #expect(String(data: gbkData, encoding: .utf8) == nil)  // really not UTF-8
        let expected = try Self.bodies(try LedgerCSV.parse(Self.utf8CSV))
        #expect(expected.count == 3)
        #expect(expected[1].member("deadline") == .string("2026-03-05"))
        #expect(expected[2].member("deadline") == .string("2027-01-09"))
        let gbk = try #require(OfficeText.decode(gbkData))
        #expect(gbk.encoding == "GB18030")
        #expect(try Self.bodies(try LedgerCSV.parse(gbk.text)) == expected)
        let utf16 = try #require(OfficeText.decode(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/utf16.csv"))))
        #expect(utf16.encoding == "UTF-16")
        #expect(try Self.bodies(try LedgerCSV.parse(utf16.text)) == expected)
        let workbook = try XLSXReader.read(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/ledger.xlsx")))
        #expect(try Self.bodies(workbook, shortRows: true) == expected)

        // Through the CLI into a real ledger: the GBK file and the workbook give the same cases as the UTF-8 file.
        var stored: [[String]] = []
        for file in ["utf8.csv", "gbk.csv", "ledger.xlsx"] {
            let ledger = try await Ledger.start()
            let run = try duban(ledger, ["cases", "import", "\(dir)/\(file)"])
            #expect(run.ok && run.output.contains("新增 3 件"), "\(file): \(run.output)")
            let office = try await ledger.client(officeUnit)
            let items = try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items
            stored.append(
                items.map {
                    [
                        $0.title, $0.unit, $0.deadline ?? "", $0.task ?? "", $0.batch ?? "", "\($0.coordinates?.lon ?? 0)",
                        $0.externalRef ?? "",
                    ]
                    .joined(separator: "|")
                })
            await office.close()
            try await ledger.stop()
        }
        #expect(stored[0].count == 3 && stored[1] == stored[0] && stored[2] == stored[0], "\(stored)")
    }

    /// Found by Fuzz/fuzz-xlsx, each a crash or a hang of `duban case import` and `duban reading
    /// import`, now one clear error: a workbook whose ZIP headers point past the end of the file (a
    /// trap inside ZIPFoundation's in-memory reader), one whose part's deflate stream asks for more
    /// bytes than the file has (ZIPFoundation's inflate loop spun for ever), and one whose XML holds
    /// bytes that are not UTF-8 (a trap inside Foundation's XMLParser). The inputs are the fuzzer's.
    @Test(.timeLimit(.minutes(1)), arguments: ["xlsx-offset-past-end.xlsx", "xlsx-deflate-past-end.xlsx", "xlsx-invalid-utf8-in-xml.xlsx"])
    func aDamagedWorkbookIsRefusedNotACrash(file: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/fuzz/\(file)"))
        let error = #expect(throws: XLSXReader.ReadError.self) { try XLSXReader.read(data) }
        #expect(error?.description.contains("XLSX") == true, "\(String(describing: error))")
    }

    @Test func datesEncodingsHeadersAndMessagesAsOfficesNeedThem() throws {
        #expect(OfficeText.date("2026-12-31") == "2026-12-31")
        #expect(OfficeText.date("2026/1/5") == "2026-01-05")
        #expect(OfficeText.date("2026年12月31日") == "2026-12-31")
        #expect(OfficeText.date("2026/12/31 0:00") == "2026-12-31")
        #expect(OfficeText.date("46387") == "2026-12-31")
        #expect(OfficeText.excelSerial("2026-12-31") == 46387)
        #expect(OfficeText.date("2026-02-30") == nil && OfficeText.date("2026") == nil && OfficeText.date("明年") == nil)
        #expect(OfficeText.decode(Data([0xEF, 0xBB, 0xBF] + Array("编号".utf8)))?.text == "编号")
        #expect(OfficeText.neutralise("=1+1") == "'=1+1" && OfficeText.unneutralise("'=1+1") == "=1+1")
        #expect(OfficeText.neutralise("南川") == "南川" && OfficeText.unneutralise("'南川") == "'南川")

        // A file that only looks like a workbook is one clear error, not a crash.
        for bytes in [Array("PK\u{3}\u{4}not a zip".utf8), []] {
            do {
                _ = try XLSXReader.read(Data(bytes))
                Issue.record("a broken workbook was read")
            } catch let error as XLSXReader.ReadError {
                #expect(error.description.contains("不是有效的 XLSX"), "\(error)")
            }
        }
        // A mistyped header is named with its column and the nearest valid name.
        do {
            _ = try LedgerCSV.importRows(try LedgerCSV.parse("来源,问题标提,责任单位\r\n混错接点位,x,区城乡建设局\r\n"))
            Issue.record("a mistyped header was taken")
        } catch {
            #expect("\(error)".contains("「问题标提」") && "\(error)".contains("「问题标题」") && "\(error)".contains("第 1 行"), "\(error)")
        }
        // A bad date names the user's own column, the value, and the forms that work.
        let rows = try LedgerCSV.importRows(
            try LedgerCSV.parse("问题来源,标题,牵头单位,整改期限\r\n混错接点位,x,区城乡建设局,2026-13-01\r\n混错结点位,y,区城乡建设局,\r\n"))
        #expect(rows[0].problem?.contains("「整改期限」：「2026-13-01」不是日期") == true, "\(rows[0].problem ?? "")")
        #expect(rows[1].problem?.contains("是否为「混错接点位」") == true, "\(rows[1].problem ?? "")")
    }

    /// Export → edit three cells → re-import, for the XLSX and the CSV ledger.
    /// A ledger of 1,200 rows goes as one request, so one transaction: a connection lost halfway
    /// cannot leave part of it stored (it went in chunks of 500 before). A chunk past the service's
    /// limit is refused before anything is read or sent.
    @Test func aLedgerOfUpTo5000RowsIsOneRequestAndOneTransaction() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let dir = try TestSupport.temporaryDirectory()
        var csv = "问题来源,问题标题,整改责任单位,外部编号\r\n"
        for index in 1...1_200 { csv += "混错接点位,南川东路\(index)号雨污混接,区城乡建设局,HCJ-B\(index)\r\n" }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/big.csv"))
        let run = try duban(ledger, ["cases", "import", "\(dir)/big.csv"])
        #expect(run.ok && run.output.contains("新增 1200 件"), "\(run.output)")
        let imports = try await office.call(SystemTypes.auditList, AuditListRequest(type: CaseTypes.import.name)).items
        #expect(imports.count == 1, "\(imports.count) case.import requests")
        #expect(try await office.callAll(CaseTypes.list, CaseListRequest()).count == 1_200)
        let tooBig = try duban(ledger, ["cases", "import", "\(dir)/big.csv", "--chunk", "5001"])
        #expect(!tooBig.ok && tooBig.output.contains("--chunk：应在 1 到 5000 之间，收到 5001"), "\(tooBig.output)")
        await office.close()
        try await ledger.stop()
    }

    @Test(arguments: ["xlsx", "csv"]) func reimportingAnEditedExportChangesExactlyTheEditedFields(format: String) async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let dir = try TestSupport.temporaryDirectory()
        try Data(Self.utf8CSV.utf8).write(to: URL(fileURLWithPath: "\(dir)/in.csv"))
        #expect(try duban(ledger, ["cases", "import", "\(dir)/in.csv"]).ok)
        let before = try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items
        // The third case moves on, so that its state in the export is not its state at re-import.
        _ = try await office.call(CaseTypes.transition, CaseTransitionRequest(id: before[2].id, action: .assign), as: Case.self)

        let file = "\(dir)/ledger.\(format)"
        let export = try duban(ledger, ["cases", "export", "--format", format, "--out", file])
        #expect(export.ok, "\(export.output)")
        // Times as a spreadsheet shows them, in the district's clock (the test's clock reads 10:00 +08:00).
        let exported =
            format == "csv"
            ? try LedgerCSV.parse(try String(contentsOfFile: file, encoding: .utf8))
            : try XLSXReader.read(try Data(contentsOf: URL(fileURLWithPath: file)))
        let opened = try #require(exported.first?.fields.firstIndex(of: "登记时间"))
        #expect(exported.dropFirst().allSatisfy { $0.fields[opened] == "2026-11-20 10:00" }, "\(exported.map(\.fields))")
        let progress = try #require(exported.first?.fields.firstIndex(of: "最新进展"))
        #expect(exported[3].fields[progress] == "2026-11-20 10:00 已交办", "\(exported[3].fields)")
        // Edit as an office does: a deadline, a unit, the measures; and the state cell, which must not apply.
        try python(
            """
            import sys, csv, datetime
            path, fmt = sys.argv[1], sys.argv[2]
            if fmt == 'xlsx':
                import openpyxl
                wb = openpyxl.load_workbook(path)
                ws = wb.active
                head = [c.value for c in ws[1]]
                col = lambda name: head.index(name) + 1
                ws.cell(row=2, column=col('完成时限')).value = datetime.date(2027, 3, 31)
                ws.cell(row=3, column=col('责任单位')).value = '区生态环境局'
                ws.cell(row=4, column=col('整改措施')).value = '封堵并复查'
                ws.cell(row=4, column=col('状态')).value = '已销号'
                wb.save(path)
            else:
                rows = list(csv.reader(open(path, encoding='utf-8-sig', newline='')))
                head = rows[0]
                rows[1][head.index('完成时限')] = '2027/3/31'
                rows[2][head.index('责任单位')] = '区生态环境局'
                rows[3][head.index('整改措施')] = '封堵并复查'
                rows[3][head.index('状态')] = '已销号'
                csv.writer(open(path, 'w', encoding='gbk', newline=''), lineterminator='\\r\\n').writerows(rows)
            """, [file, format])

        // A dry run says what would change and writes nothing.
        let dry = try duban(ledger, ["cases", "import", file, "--dry-run"])
        #expect(dry.ok && dry.output.contains("将新增 0 件，将更新 3 件，未变 0 件，0 行有误"), "\(dry.output)")
        #expect(dry.output.contains("将修改 \(before[0].id)：完成时限 2026-12-31 → 2027-03-31"), "\(dry.output)")
        #expect(try await office.call(CaseTypes.get, CaseGetRequest(id: before[0].id), as: Case.self).deadline == "2026-12-31")

        let run = try duban(ledger, ["cases", "import", file])
        #expect(run.ok && run.output.contains("新增 0 件，更新 3 件，未变 0 件，0 行有误"), "\(run.output)")
        #expect(run.output.contains("提示 \(before[2].id)：状态为「已交办」，文件中为「已销号」"), "\(run.output)")
        let after = try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items
        #expect(after.count == 3)
        var expected = before
        expected[0].deadline = "2027-03-31"
        expected[1].unit = "区生态环境局"
        expected[2].measures = "封堵并复查"
        for (a, e) in zip(after, expected) {
            #expect(
                [a.id, a.title, a.unit, a.deadline, a.measures, a.location, a.batch, a.task, a.externalRef, a.description]
                    == [e.id, e.title, e.unit, e.deadline, e.measures, e.location, e.batch, e.task, e.externalRef, e.description])
            #expect(a.coordinates == e.coordinates && a.source == e.source)
        }
        #expect(after[2].state == .assigned && after[0].state == .registered)
        // The deadline change is in the history like an extension, with both dates.
        let extended = try await office.call(CaseTypes.get, CaseGetRequest(id: before[0].id), as: Case.self)
        let history = extended.history ?? []
        #expect(
            history.last?.action == "extend_grant" && history.last?.deadlineChange == DeadlineChange(from: "2026-12-31", to: "2027-03-31"))
        #expect(extended.originalDeadline == "2026-12-31")

        // The same file again: every row already as the ledger has it.
        let again = try duban(ledger, ["cases", "import", file])
        #expect(again.ok && again.output.contains("新增 0 件，更新 0 件，未变 3 件"), "\(again.output)")
        // The first file again, without 编号: the same cases by their 外部编号, not duplicates, not errors.
        let first = try duban(ledger, ["cases", "import", "\(dir)/in.csv"])
        #expect(first.ok && first.output.contains("新增 0 件，更新 0 件，未变 0 件，已在台账 3 件，0 行有误"), "\(first.output)")
        // A mistyped unit is named with the file's own column and the nearest unit the plan has.
        try Data("问题来源,问题标题,整改责任单位\r\n群众举报,河岸垃圾,区城乡建设\r\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/typo.csv"))
        let typo = try duban(ledger, ["cases", "import", "\(dir)/typo.csv"])
        #expect(!typo.ok && typo.output.contains("typo.csv:2: 「整改责任单位」：") && typo.output.contains("是否为「区城乡建设局」？"), "\(typo.output)")
        #expect(try await office.call(CaseTypes.list, CaseListRequest(), as: ListReply<Case>.self).items.count == 3)
        await office.close()
        try await ledger.stop()
    }

    @Test func formulaLookingTitlesComeBackAsTextInCSVAndXLSX() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        let titles = ["=HYPERLINK(\"http://evil.example\",\"点此查看\")", "+1+2", "-3", "@SUM(A1:A2)", "\t隐藏", "正常标题"]
        for title in titles {
            _ = try await office.call(
                CaseTypes.open, CaseOpenRequest(source: .sewerMisconnection, title: title, unit: "区城乡建设局"), as: Case.self)
        }
        let dir = try TestSupport.temporaryDirectory()
        #expect(try duban(ledger, ["cases", "export", "--out", "\(dir)/l.csv"]).ok)
        #expect(try duban(ledger, ["cases", "export", "--format", "xlsx", "--out", "\(dir)/l.xlsx"]).ok)
        let csv = try String(contentsOfFile: "\(dir)/l.csv", encoding: .utf8)
        #expect(csv.contains(",\"'=HYPERLINK(\"\"http") && csv.contains(",'+1+2,") && csv.contains(",'-3,") && csv.contains(",'@SUM"))
        // openpyxl sees every title as a string cell (type s), none as a formula (type f).
        let cells = try python(
            """
            import sys, openpyxl
            ws = openpyxl.load_workbook(sys.argv[1]).active
            head = [c.value for c in ws[1]]
            for row in ws.iter_rows(min_row=2):
                c = row[head.index('问题标题')]
                print(c.data_type + '|' + c.value)
            """, ["\(dir)/l.xlsx"])
        #expect(!cells.contains("f|") && cells.contains("s|'=HYPERLINK") && cells.contains("s|'+1+2"), "\(cells)")
        // Read back (both files), the titles are the titles: the `'` is the export's, not the data's.
        for records in [try LedgerCSV.parse(csv), try XLSXReader.read(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/l.xlsx")))] {
            let rows = try LedgerCSV.importRows(records, shortRows: true)
            #expect(rows.compactMap { $0.body?.member("title") } == titles.map { JSONValue.string($0) })
        }
        let again = try duban(ledger, ["cases", "import", "\(dir)/l.xlsx"])
        #expect(again.ok && again.output.contains("新增 0 件，更新 0 件，未变 6 件"), "\(again.output)")
        await office.close()
        try await ledger.stop()
    }

    @Test func theXLSXLedgerHasDateCellsAFrozenHeaderAndRedOverdueRows() async throws {
        let ledger = try await Ledger.start()
        let office = try await ledger.client(officeUnit)
        _ = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(source: .sewerMisconnection, title: "逾期点位", unit: "区城乡建设局", deadline: "2026-10-01", batch: "第一批"),
            as: Case.self)
        _ = try await office.call(
            CaseTypes.open,
            CaseOpenRequest(source: .sewerMisconnection, title: "未到期点位", unit: "区城乡建设局", deadline: "2026-12-31", batch: "第二批"),
            as: Case.self)
        let dir = try TestSupport.temporaryDirectory()
        #expect(try duban(ledger, ["cases", "export", "--format", "xlsx", "--out", "\(dir)/l.xlsx"]).ok)
        #expect(try duban(ledger, ["cases", "export", "--format", "xlsx", "--by-batch", "--out", "\(dir)/b.xlsx"]).ok)
        let report = try python(
            """
            import sys, openpyxl
            wb = openpyxl.load_workbook(sys.argv[1])
            ws = wb.active
            head = [c.value for c in ws[1]]
            print('freeze', ws.freeze_panes)
            for name in ['最新进展', '退回原因', '材料', '验收时间', '销号时间']:
                print('has', name, name in head)
            for row in ws.iter_rows(min_row=2):
                d = row[head.index('完成时限')]
                print('row', row[head.index('问题标题')].value, d.is_date, d.value.date().isoformat(), d.fill.fgColor.rgb)
            print('width', ws.column_dimensions['C'].width)
            print('sheets', openpyxl.load_workbook(sys.argv[2]).sheetnames)
            """, ["\(dir)/l.xlsx", "\(dir)/b.xlsx"])
        #expect(report.contains("freeze A2"), "\(report)")
        #expect(!report.contains("False"), "\(report)")
        #expect(report.contains("row 逾期点位 True 2026-10-01 FFFFC7CE"), "\(report)")
        #expect(report.contains("row 未到期点位 True 2026-12-31 00000000"), "\(report)")
        #expect(report.contains("sheets ['第一批', '第二批']"), "\(report)")
        await office.close()
        try await ledger.stop()
    }

    @Test func readingsTakeOfficeTimesAndMarkedValuesBecomeMarkedReadingsNotErrors() throws {
        let csv = """
            监测时间,状态,pH值,溶解氧(mg/L),氨氮(mg/L),总磷(mg/L),石油类(mg/L),挥发酚(mg/L)
            2026/11/1 8:00,,7.9,8.2,0.42,0.08,0.01L,<0.0003
            2026年11月1日 12:00,维护,,,,,,
            2026-11-01 16:00,,维护,维护,维护,维护,维护,维护
            2026-11-01 20:00,,8.0,8.1,ND,0.07,0.02,0.0004
            2026/11/2 0:00,,8.0,东经,0.3,0.07,0.02,0.0004

            """
        let records = try LedgerCSV.parse(csv).map { (line: $0.line, fields: $0.fields) }
        let rows = try ReadingsImport.rows(records, defaultStation: "liuyiqiao")
        let readings = rows.compactMap(\.reading)
        #expect(readings.first?.ts == "2026-11-01T08:00:00+08:00" && readings.first?.parameter == "ph")
        #expect(readings.filter { $0.ts == "2026-11-01T20:00:00+08:00" }.count == 5)
        // Below detection with the limit the cell gives; a 维护 row (status column or every cell) marks each parameter, without a value.
        let marked = readings.filter { $0.mark != nil }
        #expect(
            marked.filter { $0.mark == "below_detection" }.map { "\($0.parameter) \($0.detectionLimit ?? 0)" }
                == ["petroleum 0.01", "phenol 0.0003"])
        let maintenance = marked.filter { $0.mark == "maintenance" }
        #expect(maintenance.count == 12 && maintenance.allSatisfy(\.value.isNaN), "\(maintenance)")
        #expect(Set(maintenance.map(\.ts)) == ["2026-11-01T12:00:00+08:00", "2026-11-01T16:00:00+08:00"])
        // Only ND with no limit anywhere cannot be sent: a note on its line, not an error.
        let notes = rows.compactMap { row in row.note.map { "\(row.line):\($0)" } }
        #expect(notes.count == 1 && notes[0].hasPrefix("5:氨氮(mg/L)：「ND」低于检出限但未给出检出限"), "\(notes)")
        // Only the bad value is an error, named with its parameter and value.
        #expect(rows.compactMap(\.problem) == ["溶解氧(mg/L)：「东经」不是数字"])
        // The sample in examples/ reads whole.
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/formats/readings-wide.csv")
        let text = try #require(OfficeText.decode(try Data(contentsOf: sample))).text
        let sampleRows = try ReadingsImport.rows(
            try LedgerCSV.parse(text).map { (line: $0.line, fields: $0.fields) }, defaultStation: "liuyiqiao")
        #expect(sampleRows.count == 15 && sampleRows.allSatisfy { $0.reading != nil }, "\(sampleRows.compactMap(\.problem))")
    }

    static let reportMarkdown = """
        # 城中区巩固提升生态环境保护成效三年行动月调度通报（2026年11月）

        生成时间：2026-11-30T10:00:00.000+08:00

        ## 一、任务进展

        - 按期推进：2 项
        - 滞后：1 项

        | 编号 | 任务 | 状态 | 进度 | 完成时限 | 责任单位 |
        |---|---|---|---|---|---|
        | 1 | 提高政治站位 | 按期推进 | 50% | 持续推进 | 区委组织部、区委宣传部 |
        | 10 | 雨污混错接改造 | 滞后 | 20% | 2026-12-31 | 区城乡建设局 |

        ## 二、调度报送情况

        - 2026-11：已报送 1 项，未报送 1 项（截止 2026-11-25）

        | 月份 | 任务 | 未报送单位 |
        |---|---|---|
        | 2026-11 | 10 | 区城乡建设局 |

        ## 五、通报约谈问责

        本期无。
        """

    @Test func theReportDocxOpensInPythonDocxWithItsSectionsAndTables() throws {
        let dir = try TestSupport.temporaryDirectory()
        let data = try GongwenDocument.docx(
            markdown: Self.reportMarkdown, agency: "城中区巩固提升生态环境保护成效三年行动专项工作组办公室", recipients: "区各有关单位")
        try data.write(to: URL(fileURLWithPath: "\(dir)/report.docx"))
        let text = try python(
            """
            import sys, docx
            d = docx.Document(sys.argv[1])
            for p in d.paragraphs:
                if p.text: print('P|' + p.text)
            fonts = set()
            for p in d.paragraphs:
                for r in p.runs:
                    e = r._element.rPr.rFonts
                    fonts.add(e.get('{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia'))
            print('FONTS|' + ','.join(sorted(fonts)))
            for t in d.tables:
                print('T|' + ';'.join('/'.join(c.text for c in row.cells) for row in t.rows))
            s = d.sections[0]
            print('PAGE|%d|%d' % (round(s.page_width.mm), round(s.top_margin.mm)))
            """, ["\(dir)/report.docx"])
        let lines = text.split(separator: "\n").map(String.init)
        let paragraphs = lines.filter { $0.hasPrefix("P|") }.map { String($0.dropFirst(2)) }
        #expect(
            Array(paragraphs.prefix(3)) == [
                "城中区巩固提升生态环境保护成效三年行动专项工作组办公室", "城中区巩固提升生态环境保护成效三年行动月调度通报（2026年11月）", "区各有关单位：",
            ], "\(paragraphs)")
        #expect(paragraphs.contains("一、任务进展") && paragraphs.contains("滞后：1 项") && paragraphs.contains("本期无。"))
        #expect(Array(paragraphs.suffix(2)) == ["城中区巩固提升生态环境保护成效三年行动专项工作组办公室", "2026年11月30日"], "\(paragraphs)")
        let tables = lines.filter { $0.hasPrefix("T|") }
        #expect(tables.count == 2, "\(text)")
        #expect(tables.first == "T|编号/任务/状态/进度/完成时限/责任单位;1/提高政治站位/按期推进/50%/持续推进/区委组织部、区委宣传部;10/雨污混错接改造/滞后/20%/2026-12-31/区城乡建设局")
        #expect(tables.last == "T|月份/任务/未报送单位;2026-11/10/区城乡建设局")
        #expect(text.contains("仿宋_GB2312") && text.contains("方正小标宋"), "\(text)")
        #expect(text.contains("PAGE|210|37"), "\(text)")
    }
}
