import Foundation
import Schema

/// What the alert rules look at for one station and parameter after a batch.
public struct SeriesChange: Sendable {
    public var station: String
    public var parameter: String
    /// The newest stored reading (ms, value).
    public var newest: (ts: Int64, value: Double)
    /// The reading just before it, if any.
    public var previous: (ts: Int64, value: Double)?
    /// Air: the newest reading's day, its mean and how many hours it has.
    public var day: (day: String, mean: Double, hours: Int)?

    public init(
        station: String, parameter: String, newest: (ts: Int64, value: Double), previous: (ts: Int64, value: Double)?,
        day: (day: String, mean: Double, hours: Int)?
    ) {
        self.station = station
        self.parameter = parameter
        self.newest = newest
        self.previous = previous
        self.day = day
    }
}

/// An alert to raise (with its body) or clear.
public struct AlertTransition: Sendable {
    public var key: String
    public var raise: Bool
    public var body: AlertBody
}

/// The alert rules: a condition raises its alert once and clears it once it ends, so a
/// continuing condition never produces a storm.
public enum AlertRules {
    /// Transitions for the changed series, given which alert keys are active now.
    public static func evaluate(
        _ changes: [SeriesChange], stations: [String: StationConfig], standards: Standards, active: Set<String>, now: Date
    ) -> [AlertTransition] {
        var out: [AlertTransition] = []
        let at = Timestamp.format(now)
        func set(_ key: String, _ condition: Bool, _ body: @autoclosure () -> AlertBody) {
            if condition != active.contains(key) { out.append(AlertTransition(key: key, raise: condition, body: body())) }
        }
        for change in changes {
            guard let station = stations[change.station] else { continue }
            let day = AirEvaluation.day(change.newest.ts)
            let name =
                standards.waterStandard(on: day)?.parameters[change.parameter]?.name
                ?? standards.airStandard(on: day)?.parameters[change.parameter]?.name ?? change.parameter

            // A station that reports again is no longer silent.
            set(
                "station_silent:\(station.id)", false,
                AlertBody(
                    alert: "station_silent:\(station.id)", kind: "station_silent", station: station.id, parameter: nil, indicator: nil,
                    severity: "warning",
                    message: "\(station.name)恢复数据报送", value: nil, limit: nil, at: at))

            if station.kind == "water", let targetLabel = station.targetClass, let target = WaterClass(label: targetLabel),
                standards.assesses(change.parameter, on: day, lake: station.isLake),
                let cls = standards.waterClass(change.parameter, value: change.newest.value, on: day, lake: station.isLake)
            {
                let key = "class_exceeded:\(station.id):\(change.parameter)"
                let limit = standards.waterStandard(on: day)?.parameters[change.parameter]?.limits?[target.rawValue - 1]
                set(
                    key, cls > target,
                    AlertBody(
                        alert: key, kind: "class_exceeded", station: station.id, parameter: change.parameter, indicator: nil,
                        severity: cls == .worseThanV ? "critical" : "warning",
                        message: cls > target
                            ? "\(station.name)\(name)\(format(change.newest.value))，为\(cls.label)类，劣于目标\(target.label)类"
                            : "\(station.name)\(name)恢复至\(cls.label)类",
                        value: change.newest.value, limit: limit, at: at))
            }

            if station.kind == "air", let dayStats = change.day,
                let limit = standards.airStandard(on: dayStats.day)?.parameters[change.parameter]?.daily?.last
            {
                let key = "limit_exceeded:\(station.id):\(change.parameter)"
                // Judged only once the day has enough hours to be a valid daily mean.
                if dayStats.hours >= standards.validity.minHourlyPerDay {
                    set(
                        key, dayStats.mean > limit,
                        AlertBody(
                            alert: key, kind: "limit_exceeded", station: station.id, parameter: change.parameter, indicator: nil,
                            severity: "warning",
                            message: dayStats.mean > limit
                                ? "\(station.name)\(dayStats.day)\(name)日均值\(format(dayStats.mean))，超过二级标准\(format(limit))"
                                : "\(station.name)\(name)日均值恢复达标",
                            value: dayStats.mean, limit: limit, at: at))
                }
            }

            if let factor = station.jumpFactor, let previous = change.previous, previous.value > 0 {
                let key = "sudden_jump:\(station.id):\(change.parameter)"
                let jumped = change.newest.value >= previous.value * factor && change.newest.value >= (station.jumpFloor ?? 0)
                set(
                    key, jumped,
                    AlertBody(
                        alert: key, kind: "sudden_jump", station: station.id, parameter: change.parameter, indicator: nil,
                        severity: "warning",
                        message: jumped
                            ? "\(station.name)\(name)由\(format(previous.value))突增至\(format(change.newest.value))"
                            : "\(station.name)\(name)突变已恢复",
                        value: change.newest.value, limit: previous.value * factor, at: at))
            }
        }
        return out
    }

    /// Stations whose last reading is older than three expected intervals.
    public static func silence(
        latest: [String: Int64], stations: [StationConfig], active: Set<String>, now: Date
    ) -> [AlertTransition] {
        var out: [AlertTransition] = []
        let at = Timestamp.format(now)
        for station in stations {
            guard let interval = station.expectedIntervalMinutes, let last = latest[station.id] else { continue }
            let silentFor = now.timeIntervalSince1970 - Double(last) / 1000
            let key = "station_silent:\(station.id)"
            let silent = silentFor > interval * 60 * 3
            if silent, !active.contains(key) {
                out.append(
                    AlertTransition(
                        key: key, raise: true,
                        body: AlertBody(
                            alert: key, kind: "station_silent", station: station.id, parameter: nil, indicator: nil, severity: "warning",
                            message: "\(station.name)已\(Int(silentFor / 3600))小时无数据", value: silentFor / 60, limit: interval * 3, at: at)))
            }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e9 ? String(Int(value)) : String(format: "%g", value)
    }
}
