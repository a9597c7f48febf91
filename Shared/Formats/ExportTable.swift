import Foundation
import Schema

/// A table an office exports (the month's dispatch, the targets), built from the wire data the
/// services send: headers in the plan's words, which columns hold dates, times and numbers, and
/// which rows are drawn as overdue. The CSV is written here; the workbook by OfficeFormats.
public struct ExportTable: Sendable, Equatable {
    public var name: String
    public var headers: [String]
    public var rows: [[String]]
    /// Columns of `YYYY-MM-DD` dates, of `YYYY-MM-DD HH:MM` times (district time), of numbers.
    public var dateColumns: Set<Int>
    public var timeColumns: Set<Int>
    public var numberColumns: Set<Int>
    /// Rows (0-based, after the header) an office must see at once: overdue, not met.
    public var highlighted: Set<Int>

    public init(
        name: String, headers: [String], rows: [[String]], dateColumns: Set<Int> = [], timeColumns: Set<Int> = [],
        numberColumns: Set<Int> = [], highlighted: Set<Int> = []
    ) {
        self.name = name
        self.headers = headers
        self.rows = rows
        self.dateColumns = dateColumns
        self.timeColumns = timeColumns
        self.numberColumns = numberColumns
        self.highlighted = highlighted
    }

    /// UTF-8 with a BOM (Excel opens it as such) and CRLF; every text cell that would start a
    /// formula gets a leading `'`, as in the ledger's export.
    public var csv: String {
        "\u{FEFF}" + ([headers] + rows).map { LedgerCSV.row($0.map(Self.guarded)) }.joined()
    }

    /// A cell as exported: neutralised when it would start a formula, but a plain number (`-1.5`)
    /// stays a number, which a spreadsheet never evaluates as anything else.
    public static func guarded(_ text: String) -> String {
        Double(text) != nil && !text.hasPrefix("+") ? text : OfficeText.neutralise(text)
    }
}

extension ExportTable {
    /// How a month's dispatch reads in a row's 报送情况.
    public static let reportedLabel = "已报送"
    public static let missingLateLabel = "未报（已逾期）"
    public static let missingOpenLabel = "未报（未到期）"

    /// The month's dispatch (月调度): one row per task and unit that reported or owes a report,
    /// units with missing reports first; 未报（已逾期） rows and tasks 逾期未完成 highlighted.
    /// `today` (`YYYY-MM-DD`, district date) decides whether a missing report is late.
    public static func dispatch(_ overview: DispatchOverviewReply, reports: [ProgressReport], tasks: [PlanTask], today: String)
        -> ExportTable
    {
        let late = today > overview.due
        let byTask = Dictionary(tasks.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var latest: [TaskUnit: ProgressReport] = [:]
        for report in reports where report.period == overview.period {
            let key = TaskUnit(task: report.task, unit: report.unit)
            if latest[key].map({ $0.revision < report.revision }) ?? true { latest[key] = report }
        }
        let missing = overview.missing.map { ($0, late ? missingLateLabel : missingOpenLabel) }
        let reported = overview.reported.map { ($0, reportedLabel) }
        let ordered = (missing + reported).sorted { a, b in
            let (ra, rb) = (a.1 == reportedLabel ? 1 : 0, b.1 == reportedLabel ? 1 : 0)
            if ra != rb { return ra < rb }
            if a.0.unit != b.0.unit { return a.0.unit < b.0.unit }
            return taskOrder(a.0.task).lexicographicallyPrecedes(taskOrder(b.0.task))
        }
        var rows: [[String]] = []
        var highlighted: Set<Int> = []
        for (item, state) in ordered {
            let task = byTask[item.task]
            let report = latest[item]
            if state == missingLateLabel || task?.status == .overdue { highlighted.insert(rows.count) }
            rows.append([
                item.unit, item.task, task?.title ?? "", state, report.map { number($0.percent) } ?? "",
                report.map { LedgerCSV.localTime($0.reportedAt) } ?? "", overview.due, report?.summary ?? "",
                task?.status?.label ?? "", task?.deadline ?? "", (task?.reasons ?? []).map(\.text).joined(separator: "；"),
            ])
        }
        return ExportTable(
            name: "\(overview.period)月调度",
            headers: ["责任单位", "任务编号", "任务", "报送情况", "完成进度（%）", "报送时间", "报送截止", "本月进展情况", "任务状态", "完成时限", "原因"],
            rows: rows, dateColumns: [6, 9], timeColumns: [5], numberColumns: [4], highlighted: highlighted)
    }

    /// The plan's targets (主要目标): each with its goal, latest value and whether it is met;
    /// 未达标 rows highlighted.
    public static func targets(_ indicators: [Indicator]) -> ExportTable {
        var rows: [[String]] = []
        var highlighted: Set<Int> = []
        for indicator in indicators {
            if indicator.attainment == "not_met" { highlighted.insert(rows.count) }
            let latest = indicator.latest
            rows.append([
                indicator.name, indicator.id, indicator.target, text(latest?.value), indicator.unit ?? "", latest?.period ?? "",
                latest?.source ?? "", latest?.reportedAt.map(LedgerCSV.localTime) ?? "", attainmentLabel(indicator.attainment),
                text(indicator.projection), indicator.tasks.joined(separator: "、"), indicator.provisionalText ?? latest?.note ?? "",
            ])
        }
        return ExportTable(
            name: "主要目标",
            headers: ["指标", "指标编号", "目标", "最新值", "单位", "期间", "数据来源", "报送时间", "评价", "2026年底预计", "相关任务", "说明"],
            rows: rows, timeColumns: [7], numberColumns: [3, 9], highlighted: highlighted)
    }

    /// A station's readings (`readings.query`): one row per hour, day or month, a column per
    /// parameter (its mean, in the plan's and the standards' names with the unit), and for water the
    /// class of the row's means; rows worse than the section's target class highlighted.
    public static func readings(_ reply: ReadingsQueryReply) -> ExportTable {
        // Parameters the station measures but did not report in the period make no column.
        var reply = reply
        reply.series = reply.series.filter { !$0.points.isEmpty || $0.marked?.isEmpty == false }
        var times: [String] = []
        var cells: [String: [String: String]] = [:]
        for series in reply.series {
            for point in series.points {
                if cells[point.t] == nil { times.append(point.t) }
                cells[point.t, default: [:]][series.parameter] = readingText(point)
            }
            // A bucket of nothing but 维护/校准/停运 readings says so; beside measured ones it is left to the mean.
            let measured = Set(series.points.map(\.t))
            for item in series.marked ?? [] where !measured.contains(item.t) {
                if cells[item.t] == nil { times.append(item.t) }
                let word = ReadingMark(rawValue: item.mark)?.chineseName ?? item.mark
                let known = cells[item.t]?[series.parameter]
                cells[item.t, default: [:]][series.parameter] = known.map { "\($0)、\(word)" } ?? word
            }
        }
        times.sort()
        let classes = Dictionary((reply.classes ?? []).map { ($0.t, $0) }, uniquingKeysWith: { first, _ in first })
        let water = reply.kind == "water"
        var headers = ["站点", reply.every == .month ? "月份" : "监测时间"]
        headers += reply.series.map { "\(parameterLabel($0.parameter))(\($0.unit))" }
        if water { headers += ["水质类别", "决定因子", "目标类别"] }
        var rows: [[String]] = []
        var highlighted: Set<Int> = []
        for t in times {
            var row = [reply.name, bucketText(t)]
            row += reply.series.map { series in cells[t]?[series.parameter] ?? "" }
            if water {
                let bucket = classes[t]
                row += [bucket?.class ?? "", (bucket?.factors ?? []).map(parameterLabel).joined(separator: "、"), reply.targetClass ?? ""]
                if let found = bucket?.class, let target = reply.targetClass, classRank(found) > classRank(target) {
                    highlighted.insert(rows.count)
                }
            }
            rows.append(row)
        }
        let timeColumn: Set<Int> = [1]
        return ExportTable(
            name: "\(reply.name)监测数据", headers: headers, rows: rows, dateColumns: reply.every == .day ? timeColumn : [],
            timeColumns: reply.every == .hour ? timeColumn : [], numberColumns: Set(2..<(2 + reply.series.count)),
            highlighted: highlighted)
    }

    /// A bucket's mean as a person reads it: the number; `<0.01（未检出）` when every reading in it was
    /// below the detection limit (the mean is then half the limit, not a measurement).
    static func readingText(_ point: ReadingPoint) -> String {
        guard let below = point.belowDetection, below == point.count, let limit = point.detectionLimit else { return number(point.mean) }
        return "<\(number(limit))（未检出）"
    }

    /// The names the standards (GB 3838-2002, GB 3095-2012) give the parameters.
    public static let parameterLabels: [String: String] = [
        "ph": "pH", "do": "溶解氧", "codmn": "高锰酸盐指数", "cod": "化学需氧量", "bod5": "五日生化需氧量", "nh3n": "氨氮", "tp": "总磷", "tn": "总氮",
        "cu": "铜", "zn": "锌", "f": "氟化物", "se": "硒", "as": "砷", "hg": "汞", "cd": "镉", "cr6": "铬（六价）", "pb": "铅", "cn": "氰化物",
        "phenol": "挥发酚", "petroleum": "石油类", "las": "阴离子表面活性剂", "sulfide": "硫化物", "fecal_coliform": "粪大肠菌群",
        "pm25": "PM2.5", "pm10": "PM10", "so2": "二氧化硫", "no2": "二氧化氮", "o3": "臭氧", "co": "一氧化碳",
    ]

    public static func parameterLabel(_ id: String) -> String { parameterLabels[id] ?? id }

    /// A bucket as a sheet shows it: `2026-11-20T10:00+08:00` (district time) as `2026-11-20 10:00`.
    static func bucketText(_ t: String) -> String {
        t.count > 10 && t.contains("T") ? String(t.prefix(16)).replacingOccurrences(of: "T", with: " ") : t
    }

    /// I best, 劣V worst (GB 3838-2002).
    static func classRank(_ text: String) -> Int { ["I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "劣V": 6][text] ?? 0 }

    public static func attainmentLabel(_ attainment: String) -> String {
        ["met": "达标", "not_met": "未达标"][attainment] ?? "待评价"
    }

    /// `7.3` before `10`: a task number compared part by part.
    static func taskOrder(_ id: String) -> [Int] { id.split(separator: ".").map { Int($0) ?? Int.max } }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .number(let n)?: return number(n)
        case .string(let s)?: return s
        case .bool(let b)?: return b ? "达标" : "未达标"
        default: return ""
        }
    }
}
