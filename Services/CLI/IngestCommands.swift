import ArgumentParser
import DubanConfig
import Formats
import Foundation
import Messaging
import OfficeFormats
import Schema

func valueText(_ value: JSONValue?) -> String {
    switch value {
    case .number(let n)?: return n.rounded() == n ? String(Int(n)) : String(format: "%g", n)
    case .string(let s)?: return s
    case .bool(let b)?: return b ? "达标" : "未达标"
    default: return ""
    }
}

func attainmentLabel(_ attainment: String) -> String {
    ["met": "达标", "not_met": "未达标"][attainment] ?? "待评价"
}

struct Indicators: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "13 项目标指标：最新值和达标情况；可导出 CSV 或 XLSX。")
    @OptionGroup var options: GlobalOptions
    @OptionGroup var export: ExportOptions

    func run() async throws {
        let format = try export.chosenFormat()
        try await options.withClient(for: .ingest) { client in
            let reply = try await perform(client, IngestTypes.indicatorList, Empty(), as: ListReply<Indicator>.self, options: options)
            if let format { return try export.write(ExportTable.targets(reply.items), format: format) }
            if options.json { return try printJSON(reply.items) }
            print(
                TextTable.render(
                    header: ["指标", "目标", "最新值", "期间", "评价", "任务"],
                    rows: reply.items.map {
                        let target =
                            $0.threshold == nil && ["at_most", "at_least"].contains($0.operator)
                            ? "市控标准（未配置）" : valueText($0.threshold)
                        return [
                            $0.name,
                            "\(opLabel($0.operator))\(target)\($0.unit.map { $0 == "%" ? "%" : " " + $0 } ?? "")",
                            valueText($0.latest?.value), $0.latest?.period ?? "", attainmentLabel($0.attainment),
                            $0.tasks.joined(separator: "、"),
                        ]
                    }))
        }
    }

    func opLabel(_ op: String) -> String {
        [
            "at_least": "≥", "equal": "=", "at_most": "≤", "class_at_least": "优于或达到", "category_at_least": "达到", "meets_standard": "达到市定标准",
            "within_quota": "控制在国家下达指标内",
        ][op] ?? op
    }
}

struct IndicatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "indicator", abstract: "查看一项指标的历史和趋势，或报送某期数值。",
        subcommands: [Show.self, Report.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "一项指标的历史数值及至 2026 年底的预测。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "指标编号或名称，如 forest_coverage（森林覆盖率）。") var id: String

        func run() async throws {
            let id = try await options.indicatorID(self.id, option: "指标")
            try await options.withClient(for: .ingest) { client in
                let item = try await perform(
                    client, IngestTypes.indicatorGet, IndicatorGetRequest(id: id), as: Indicator.self, options: options)
                if options.json { return try printJSON(item) }
                print("\(item.name)（\(item.id)）：\(item.target)")
                print(
                    "最新 \(valueText(item.latest?.value)) \(item.latest?.period ?? "")，\(attainmentLabel(item.attainment))；"
                        + "2026年底预计 \(valueText(item.projection))"
                )
                if let text = item.provisionalText { print("暂不评价：\(text)") }
                if let judged = item.judgedValue, judged != item.latest?.value { print("按标准修约后 \(valueText(judged)) 参与评价") }
                for part in item.parts ?? [] {
                    print(
                        "  分项 \(part.name)（\(part.id)）：最新 \(valueText(part.latest?.value)) \(part.unit ?? "") \(part.latest?.period ?? "")，"
                            + "目标 \(valueText(part.threshold))，\(attainmentLabel(part.attainment))")
                }
                print(
                    TextTable.render(
                        header: ["期间", "值", "来源", "说明"],
                        rows: (item.history ?? []).map { [$0.period, valueText($0.value), $0.source, $0.note ?? ""] }))
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "报送指标某期数值（YYYY、YYYY-Qn 或 YYYY-MM）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "指标编号或名称。") var id: String
        @Argument(help: "报告期。") var period: String
        @Argument(help: "数值、水质类别（III）、等级（基本稳定）或 true/false。") var value: String
        @Option(help: "数据来源。") var source: String
        @Option(help: "备注。") var note: String?

        func run() async throws {
            let parsed: JSONValue =
                if let number = Double(value) { .number(number) } else if value == "true" || value == "false" {
                    .bool(value == "true")
                } else { .string(value) }
            let id = try await options.indicatorID(self.id, option: "指标")
            try await options.withClient(for: .ingest) { client in
                let stored = try await perform(
                    client, IngestTypes.indicatorReport,
                    IndicatorReportRequest(indicator: id, period: period, value: parsed, source: source, note: note),
                    as: IndicatorValue.self, options: options)
                if options.json { return try printJSON(stored) }
                print("已报送：\(id) \(stored.period) = \(valueText(stored.value))")
            }
        }
    }
}

struct Stations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "监测站点。")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await options.withClient(for: .ingest) { client in
            let reply = try await perform(client, IngestTypes.stationList, Empty(), as: ListReply<Station>.self, options: options)
            if options.json { return try printJSON(reply.items) }
            print(
                TextTable.render(
                    header: ["编号", "名称", "类型", "目标", "项目"],
                    rows: reply.items.map { [$0.id, $0.name, $0.kind, $0.targetClass ?? "", $0.parameters.joined(separator: " ")] }))
        }
    }
}

struct WaterClassCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "water-class",
        abstract: "断面一段时间均值的水质类别（GB 3838-2002，单因子评价：最差项目决定）。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "站点编号或名称，如 liuyiqiao（六一桥入湟断面，或写 六一桥）。") var station: String
    @Option(help: "起（YYYY-MM-DD 或 RFC 3339 时间）。") var from: String
    @Option(help: "止（YYYY-MM-DD 或 RFC 3339 时间）。") var to: String

    func run() async throws {
        let station = try await options.stationID(self.station, option: "站点")
        try await options.withClient(for: .ingest) { client in
            let reply = try await perform(
                client, IngestTypes.waterClass, WaterClassRequest(station: station, from: from, to: to), as: WaterClassReply.self,
                options: options)
            if options.json { return try printJSON(reply) }
            print(
                "\(station) \(from) 至 \(to)：\(reply.class)类（决定因子 \(reply.factors.joined(separator: "、"))，"
                    + "\(reply.months.map { "\($0) 个月（各月均值的平均）、" } ?? "")样本 \(reply.samples) 个）")
            print(
                TextTable.render(
                    header: ["项目", "均值"], rows: reply.means.sorted { $0.key < $1.key }.map { [$0.key, String(format: "%g", $0.value)] }))
        }
    }
}

struct AirAnnual: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "air-annual", abstract: "PM2.5 年均浓度（按 GB 3095 数据有效性规定）。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "站点编号或名称。") var station: String
    @Argument(help: "年份。") var year: Int

    func run() async throws {
        let station = try await options.stationID(self.station, option: "站点")
        try await options.withClient(for: .ingest) { client in
            let reply = try await perform(
                client, IngestTypes.airAnnual, AirAnnualRequest(station: station, year: year), as: AirAnnualReply.self, options: options)
            if options.json { return try printJSON(reply) }
            print(
                "\(station) \(year)：PM2.5 年均 \(reply.pm25Mean.map { String(format: "%.1f", $0) } ?? "—") µg/m³，有效日 \(reply.validDays) 天，"
                    + (reply.valid
                        ? "有效，按HJ 663修约为 \(reply.pm25Judged.map { String(format: "%g", $0) } ?? "—")，\(reply.grade ?? "")"
                        : reply.provisionalText ?? "有效天数不足，暂不评价"))
        }
    }
}

extension ReadingsInterval: NamedOption {
    static var noun: String { "时段" }
    var label: String {
        switch self {
        case .hour: return "小时"
        case .day: return "日"
        case .month: return "月"
        }
    }
    static func fromOtherName(_ text: String) -> ReadingsInterval? {
        ["每小时": .hour, "时": .hour, "每日": .day, "天": .day, "每天": .day, "每月": .month][text]
    }
}

struct Readings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "监测数据：查看、导出（CSV 或 XLSX）、导入。", subcommands: [Show.self, Import.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "站点一段时间的监测数据（每小时、每日或每月均值；水质断面另有类别；标出未检出和维护、校准、停运），可导出 CSV 或 XLSX。",
            discussion: "示例：duban readings 六一桥 --from 2026-11-01 --to 2026-11-30 --format xlsx --out 六一桥11月.xlsx")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "站点编号或名称，如 liuyiqiao（六一桥入湟断面，或写 六一桥）。") var station: String
        @Option(help: "起（YYYY-MM-DD 或 RFC 3339 时间）。") var from: String
        @Option(help: "止（含当日，YYYY-MM-DD 或 RFC 3339 时间）。") var to: String
        @Option(help: "均值时段：\(ReadingsInterval.helpList)。") var every: String = "day"
        @Option(help: "只看这些项目（可重复），如 nh3n 或 氨氮。") var parameter: [String] = []
        @OptionGroup var export: ExportOptions

        func run() async throws {
            let format = try export.chosenFormat()
            let every = try ReadingsInterval.named(self.every, option: "--every")
            let station = try await options.stationID(self.station, option: "站点")
            let parameters = try parameter.map { text in
                let choices = ExportTable.parameterLabels.sorted { $0.key < $1.key }.map {
                    NameChoice(value: $0.key, label: "\($0.value)（\($0.key)）", names: [$0.key, $0.value])
                }
                return try OptionNames.resolve(text, option: "--parameter", noun: "监测项目", among: choices)
            }
            try await options.withClient(for: .ingest) { client in
                let reply = try await perform(
                    client, ReadingsTypes.query,
                    ReadingsQueryRequest(
                        station: station, parameters: parameters.isEmpty ? nil : parameters, from: from, to: to, every: every),
                    options: options)
                let table = ExportTable.readings(reply)
                if let format { return try export.write(table, format: format) }
                if options.json { return try printJSON(reply) }
                print("\(reply.name)（\(reply.station)）\(from) 至 \(to)，\(every.label)均值")
                print(TextTable.render(header: table.headers.dropFirst().map { $0 }, rows: table.rows.map { Array($0.dropFirst()) }))
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "导入监测站点导出的 CSV 或 XLSX，显示进度，逐行列出未接收的数据及原因。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "CSV 或 XLSX 文件。") var file: String
        @Option(help: "文件没有站点列时使用的站点（编号或名称）。") var station: String?
        @Option(help: "每条消息的读数条数（最多 10000）。") var chunk: Int = 5000

        func run() async throws {
            guard (1...10_000).contains(chunk) else { throw ValidationError("--chunk：应在 1 到 10000 之间") }
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("无法读取文件 \(file)") }
            var station = station
            if let named = station { station = try await options.stationID(named, option: "--station") }
            let rows: [ReadingsImport.Row]
            do {
                let parsed: [LedgerCSV.Record]
                if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
                    parsed = try XLSXReader.read(data)
                } else {
                    guard let decoded = OfficeText.decode(data) else {
                        throw ValidationError("\(file)：无法识别文件编码（支持 UTF-8、GBK/GB18030、UTF-16），也不是 XLSX")
                    }
                    parsed = try LedgerCSV.parse(decoded.text)
                }
                // A workbook drops a row's empty trailing cells: pad them back to the header's width.
                let width = parsed.first?.fields.count ?? 0
                let records = parsed.map {
                    (line: $0.line, fields: $0.fields + Array(repeating: "", count: max(0, width - $0.fields.count)))
                }
                rows = try ReadingsImport.rows(records, defaultStation: station)
            } catch let error as LedgerCSV.SyntaxError {
                throw ValidationError("\(file): \(error)")
            } catch let error as ReadingsImport.ImportError {
                throw ValidationError("\(file): \(error)")
            } catch let error as XLSXReader.ReadError {
                throw ValidationError("\(file)：\(error)")
            }
            var problems: [(Int, String)] = rows.compactMap { row in row.problem.map { (row.line, $0) } }
            let notes: [(Int, String)] = rows.compactMap { row in row.note.map { (row.line, $0) } }
            let good = rows.filter { $0.reading != nil }
            // A station's export goes in under that station's certificate (`station-ID` from
            // `duban keys init`), unless told otherwise.
            var options = options
            if options.from == nil, options.cert == nil, let station { options.from = "station-\(station)" }
            try await options.withClient(for: .ingest) { client in
                var accepted = 0
                var duplicates = 0
                // Marked readings taken (stored or already held), for the summary.
                var belowDetection = 0
                var statusMarked = 0
                let started = ContinuousClock.now
                // One key per chunk of this run: a retried chunk is applied once, and importing the file
                // again is a new run whose readings are counted as duplicates, not replayed.
                let run = UUID().uuidString.lowercased()
                for start in stride(from: 0, to: good.count, by: chunk) {
                    let slice = Array(good[start..<min(start + chunk, good.count)])
                    let reply = try await perform(
                        client, IngestTypes.readingSubmit, ReadingSubmitRequest(readings: slice.map { $0.reading! }),
                        as: ReadingSubmitReply.self,
                        options: options, key: "\(run):\(start)")
                    accepted += reply.accepted
                    duplicates += reply.duplicates
                    let refused = Set(reply.rejected.map(\.index))
                    for (index, row) in slice.enumerated() where !refused.contains(index) {
                        guard let mark = row.reading?.mark.flatMap(ReadingMark.init(rawValue:)) else { continue }
                        if mark.isStatus { statusMarked += 1 } else { belowDetection += 1 }
                    }
                    for rejected in reply.rejected {
                        let field = rejected.field.map { $0.replacingOccurrences(of: "body.readings[\(rejected.index)].", with: "") } ?? ""
                        let reading = slice[rejected.index].reading!
                        problems.append(
                            (slice[rejected.index].line, "\(reading.parameter) \(field): \(rejected.message) (\(rejected.code.rawValue))"))
                    }
                    progress(done: start + slice.count, total: good.count, started: started)
                }
                FileHandle.standardError.write(Data("\n".utf8))
                problems.sort { $0.0 < $1.0 }
                let marks =
                    belowDetection + statusMarked == 0 ? "" : "（其中低于检出限 \(belowDetection) 条、维护/校准/停运 \(statusMarked) 条）"
                print(
                    "\(file): 入库 \(accepted) 条，重复 \(duplicates) 条\(marks)，\(problems.count) 条有误"
                        + (notes.isEmpty ? "" : "，\(notes.count) 处提示未导入"))
                for (line, note) in notes.prefix(200) { print("  \(file):\(line): 提示 \(note)") }
                for (line, problem) in problems.prefix(200) { print("  \(file):\(line): \(problem)") }
                if problems.count > 200 { print("  …另有 \(problems.count - 200) 条") }
                if !problems.isEmpty { throw ExitCode(1) }
            }
        }

        func progress(done: Int, total: Int, started: ContinuousClock.Instant) {
            let width = 30
            let filled = total == 0 ? width : width * done / total
            let seconds =
                Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                + Double((ContinuousClock.now - started).components.seconds)
            let rate = seconds > 0 ? Int(Double(done) / seconds) : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\(bar) \(done)/\(total) 条 \(rate) 条/秒".utf8))
        }
    }
}
