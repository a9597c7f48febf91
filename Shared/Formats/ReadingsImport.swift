import Foundation
import Schema

/// Turns a monitoring station's CSV export into readings, remembering each reading's line.
///
/// Two layouts are read. Long: one reading per row, columns station/站点, parameter/项目,
/// ts/监测时间, value/监测值, and optionally unit/单位, flag/标记, 检出限/detection_limit. Wide: one sample per row, a time
/// column (ts/监测时间/时间) and one column per parameter, named by id (`nh3n`) or as GB 3838 and
/// GB 3095 name it (氨氮, 溶解氧, PM2.5…), with an optional unit in brackets: `氨氮(mg/L)`; the
/// station comes from a station column or from `defaultStation`. Times are RFC 3339, or
/// `YYYY-MM-DD HH:MM[:SS]` in the district's time (+08:00). Empty cells are skipped.
///
/// Marked values become marked readings (`ReadingMark`): `0.01L`, `<0.01`, and `ND`/`未检出` with a
/// limit from the 检出限 column, are below detection with that limit; 维护, 校准, 停运 (in the cell, or
/// in a status column for the whole row) are status-marked, with the cell's number when it has one.
public enum ReadingsImport {
    public struct Row: Sendable {
        public var line: Int
        public var reading: SubmittedReading?
        public var problem: String?
        /// What the line says and cannot be sent (a below-detection mark without its limit): said, not sent.
        public var note: String?
    }

    /// What a monitoring export writes in place of, or beside, a measured value.
    public enum Mark: Equatable, Sendable {
        /// `0.01L`, `<0.01`, `ND`, `未检出`: below the detection limit, when the export gives it.
        case belowDetection(limit: Double?)
        /// 维护, 校准, 停运: the analyser was not measuring.
        case status(String)
    }

    static let statusWords: [String: ReadingMark] = [
        "维护": .maintenance, "停机维护": .maintenance, "校准": .calibration, "仪器校准": .calibration, "停运": .stopped,
    ]

    public static func mark(_ text: String) -> Mark? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if statusWords[trimmed] != nil { return .status(trimmed) }
        if ["ND", "N.D.", "N.D", "未检出"].contains(trimmed.uppercased()) { return .belowDetection(limit: nil) }
        for prefix in ["<", "＜", "&lt;"] where trimmed.hasPrefix(prefix) {
            if let limit = Double(trimmed.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)) {
                return .belowDetection(limit: limit)
            }
        }
        if trimmed.uppercased().hasSuffix("L"), let limit = Double(trimmed.dropLast()) { return .belowDetection(limit: limit) }
        return nil
    }

    /// A below-detection mark the line gives no limit for: the wire needs the limit to store it.
    static func missingLimit(parameter: String, raw: String) -> String {
        "\(parameter)：「\(raw)」低于检出限但未给出检出限，未导入（可写作 0.01L 或 <0.01，或加「检出限」列）"
    }

    /// A reading of a marked cell: below detection with its limit (the `limitCell` when the value does
    /// not say it), or status-marked with the cell's number when it has one; a note when it cannot be sent.
    static func marked(
        _ mark: Mark, line: Int, station: String, parameter: String, time: String, value: String, unit: String?, limitCell: String?,
        label: String
    ) -> Row {
        guard let ts = self.time(time) else { return Row(line: line, problem: "监测时间「\(time)」不是时间（可写 2026-11-01 08:00、2026/11/1 8:00）") }
        let station = station.trimmingCharacters(in: .whitespaces)
        switch mark {
        case .belowDetection(let given):
            let column = limitCell?.trimmingCharacters(in: .whitespaces) ?? ""
            guard let limit = given ?? Double(column) else {
                if !column.isEmpty { return Row(line: line, problem: "\(label)：检出限「\(column)」不是数字") }
                return Row(line: line, note: missingLimit(parameter: label, raw: value))
            }
            return Row(
                line: line,
                reading: SubmittedReading(
                    station: station, parameter: parameter, ts: ts, value: .nan, unit: unit, mark: ReadingMark.belowDetection.rawValue,
                    detectionLimit: limit))
        case .status(let word):
            let text = value.trimmingCharacters(in: .whitespaces)
            let number: Double
            if text.isEmpty || statusWords[text] != nil {
                number = .nan
            } else if let parsed = Double(text) {
                number = parsed
            } else {
                return Row(line: line, problem: "\(label)：「\(value)」不是数字")
            }
            return Row(
                line: line,
                reading: SubmittedReading(
                    station: station, parameter: parameter, ts: ts, value: number, unit: unit, mark: statusWords[word]?.rawValue))
        }
    }

    static let names: [String: String] = [
        "pH": "ph", "pH值": "ph", "ph": "ph", "溶解氧": "do", "高锰酸盐指数": "codmn", "化学需氧量": "cod", "五日生化需氧量": "bod5", "氨氮": "nh3n", "总磷": "tp",
        "总氮": "tn", "铜": "cu", "锌": "zn", "氟化物": "f", "硒": "se", "砷": "as", "汞": "hg", "镉": "cd", "铬（六价）": "cr6", "铬(六价)": "cr6",
        "六价铬": "cr6",
        "铅": "pb", "氰化物": "cn", "挥发酚": "phenol", "石油类": "petroleum", "阴离子表面活性剂": "las", "硫化物": "sulfide", "粪大肠菌群": "fecal_coliform",
        "PM2.5": "pm25", "PM10": "pm10", "二氧化硫": "so2", "二氧化氮": "no2", "臭氧": "o3", "一氧化碳": "co", "细颗粒物": "pm25", "可吸入颗粒物": "pm10",
    ]

    /// A parameter id and unit from a header such as `氨氮(mg/L)` or `nh3n`.
    static func parameter(_ header: String) -> (String, String?)? {
        var name = header.trimmingCharacters(in: .whitespaces)
        var unit: String?
        for (open, close) in [("(", ")"), ("（", "）")] {
            if let range = name.range(of: open), name.hasSuffix(close), !name.hasPrefix("铬") {
                unit = String(name[range.upperBound..<name.index(before: name.endIndex)])
                name = String(name[..<range.lowerBound])
            }
        }
        if ParameterID.water.contains(name) || ParameterID.air.contains(name) { return (name, unit) }
        if let id = names[name] ?? names[header.trimmingCharacters(in: .whitespaces)] { return (id, unit) }
        return nil
    }

    /// RFC 3339, or a local date and time taken as +08:00: `YYYY-MM-DD HH:MM[:SS]`, and the date as
    /// offices write it (`2026/3/5 8:00`, `2026年3月5日 08:00`; see `OfficeText.date`).
    public static func time(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if Timestamp.parse(trimmed) != nil { return trimmed }
        let parts = trimmed.split(separator: " ")
        guard parts.count == 2, let day = OfficeText.date(String(parts[0])), !String(parts[0]).allSatisfy(\.isNumber) else { return nil }
        let clock = parts[1].split(separator: ":")
        guard (2...3).contains(clock.count), clock.allSatisfy({ (1...2).contains($0.count) && Int($0) != nil }) else { return nil }
        let padded = clock.map { $0.count == 1 ? "0\($0)" : String($0) }
        let candidate = "\(day)T\(padded.joined(separator: ":"))\(clock.count == 2 ? ":00" : "")+08:00"
        return Timestamp.parse(candidate) == nil ? nil : candidate
    }

    public static func rows(_ records: [(line: Int, fields: [String])], defaultStation: String?) throws -> [Row] {
        guard let header = records.first else { throw ImportError("文件是空的") }
        let columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        func column(_ names: [String]) -> Int? { columns.firstIndex { names.contains($0) } }
        let stationColumn = column(["station", "站点", "断面", "点位", "站点编号"])
        let timeColumn = column(["ts", "监测时间", "时间", "采样时间"])
        guard let timeColumn else { throw ImportError("第 \(header.line) 行：缺少时间列（监测时间、时间、采样时间或 ts）") }
        if stationColumn == nil, defaultStation == nil {
            throw ImportError("第 \(header.line) 行：缺少站点列（站点、断面、点位或 station）；也可用 --station 指定")
        }
        var out: [Row] = []
        if let parameterColumn = column(["parameter", "项目", "监测项目", "指标"]) {
            guard let valueColumn = column(["value", "监测值", "浓度", "值"]) else {
                throw ImportError("第 \(header.line) 行：缺少监测值列（监测值、浓度或 value）")
            }
            let unitColumn = column(["unit", "单位"])
            let flagColumn = column(["flag", "标记"])
            // Read for its marks only: other words there (正常) are the station's own and say nothing to us.
            let statusColumn = column(["状态", "数据状态", "数据标识"])
            let limitColumn = column(["detection_limit", "检出限"])
            for record in records.dropFirst() {
                guard record.fields.count == columns.count else {
                    out.append(Row(line: record.line, problem: "有 \(record.fields.count) 格，表头有 \(columns.count) 列"))
                    continue
                }
                let raw = record.fields[parameterColumn].trimmingCharacters(in: .whitespaces)
                guard let (parameter, headerUnit) = self.parameter(raw) else {
                    let hint = OfficeText.nearest(raw, in: Array(names.keys)).map { "，是否为「\($0)」？" } ?? ""
                    out.append(Row(line: record.line, problem: "未知的监测项目「\(raw)」\(hint)"))
                    continue
                }
                let flag = flagColumn.map { record.fields[$0].trimmingCharacters(in: .whitespaces) } ?? ""
                if let mark = mark(flag) ?? statusColumn.flatMap({ mark(record.fields[$0]) }) ?? mark(record.fields[valueColumn]) {
                    out.append(
                        marked(
                            mark, line: record.line, station: stationColumn.map { record.fields[$0] } ?? defaultStation!,
                            parameter: parameter, time: record.fields[timeColumn], value: record.fields[valueColumn],
                            unit: unitColumn.map { record.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? headerUnit,
                            limitCell: limitColumn.map { record.fields[$0] }, label: raw))
                    continue
                }
                out.append(
                    make(
                        line: record.line, station: stationColumn.map { record.fields[$0] } ?? defaultStation!, parameter: parameter,
                        time: record.fields[timeColumn], value: record.fields[valueColumn],
                        unit: unitColumn.map { record.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 } ?? headerUnit,
                        flag: flagColumn.map { record.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 }, label: raw))
            }
            return out
        }
        let statusColumn = column(["状态", "数据状态", "数据标识", "标记", "flag"])
        var parameterColumns: [(Int, String, String?)] = []
        for (index, name) in columns.enumerated() where index != timeColumn && index != stationColumn && index != statusColumn {
            guard let (parameter, unit) = parameter(name) else {
                let hint = OfficeText.nearest(name, in: Array(names.keys) + ["监测时间", "站点", "状态"]).map { "，是否为「\($0)」？" } ?? ""
                throw ImportError("第 \(header.line) 行：第 \(index + 1) 列「\(name)」不是监测项目\(hint)")
            }
            parameterColumns.append((index, parameter, unit))
        }
        for record in records.dropFirst() {
            guard record.fields.count == columns.count else {
                out.append(Row(line: record.line, problem: "有 \(record.fields.count) 格，表头有 \(columns.count) 列"))
                continue
            }
            // One sample, one time: a bad time is one problem for the line, not one per cell.
            guard time(record.fields[timeColumn]) != nil else {
                out.append(Row(line: record.line, problem: "监测时间「\(record.fields[timeColumn])」不是时间（可写 2026-11-01 08:00、2026/11/1 8:00）"))
                continue
            }
            // A row the station marks (维护, 校准, 停运) is one note, not one error per parameter.
            let cells = parameterColumns.map { record.fields[$0.0].trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let rowStatus =
                statusColumn.flatMap { mark(record.fields[$0]) }
                ?? cells.first.flatMap { first in
                    cells.allSatisfy { $0 == first } ? mark(first).flatMap { if case .status = $0 { return $0 } else { return nil } } : nil
                }
            // A status for the whole row marks every parameter cell of it, empty or not: the analyser was down for all.
            if case .status = rowStatus, let rowStatus {
                for (index, parameter, unit) in parameterColumns {
                    out.append(
                        marked(
                            rowStatus, line: record.line, station: stationColumn.map { record.fields[$0] } ?? defaultStation!,
                            parameter: parameter, time: record.fields[timeColumn], value: record.fields[index], unit: unit, limitCell: nil,
                            label: columns[index]))
                }
                continue
            }
            for (index, parameter, unit) in parameterColumns where !record.fields[index].trimmingCharacters(in: .whitespaces).isEmpty {
                if let mark = mark(record.fields[index]) {
                    out.append(
                        marked(
                            mark, line: record.line, station: stationColumn.map { record.fields[$0] } ?? defaultStation!,
                            parameter: parameter, time: record.fields[timeColumn], value: record.fields[index], unit: unit, limitCell: nil,
                            label: columns[index]))
                    continue
                }
                out.append(
                    make(
                        line: record.line, station: stationColumn.map { record.fields[$0] } ?? defaultStation!, parameter: parameter,
                        time: record.fields[timeColumn], value: record.fields[index], unit: unit, flag: nil, label: columns[index]))
            }
        }
        return out
    }

    /// `label` is the parameter as the file names it (its column header or 项目 cell), for messages.
    static func make(
        line: Int, station: String, parameter: String, time: String, value: String, unit: String?, flag: String?, label: String? = nil
    ) -> Row {
        guard let ts = self.time(time) else { return Row(line: line, problem: "监测时间「\(time)」不是时间（可写 2026-11-01 08:00、2026/11/1 8:00）") }
        guard let number = Double(value.trimmingCharacters(in: .whitespaces)) else {
            return Row(line: line, problem: "\(label ?? parameter)：「\(value)」不是数字")
        }
        return Row(
            line: line,
            reading: SubmittedReading(
                station: station.trimmingCharacters(in: .whitespaces), parameter: parameter, ts: ts, value: number, unit: unit, flag: flag))
    }

    public struct ImportError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
