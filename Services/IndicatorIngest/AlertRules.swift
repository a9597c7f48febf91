import Foundation
import Schema

/// What the alert rules look at for one station and parameter after a batch: every reading the
/// batch stored, judged in time order.
public struct SeriesBatch: Sendable {
    public var station: String
    public var parameter: String
    /// The readings this batch stored (new or revised), oldest first (ms, value).
    public var readings: [(ts: Int64, value: Double)]
    /// The newest reading stored before this batch: only readings after it can change a live alert.
    public var prior: (ts: Int64, value: Double)?
    /// The district days the batch touched, with the mean and hour count of all their stored readings (air daily means).
    public var days: [String: (mean: Double, hours: Int)]
    /// The newest marked reading (below detection, 维护…) the batch stored for the station: judged by
    /// no rule, it still proves the station is reporting and ends a silence.
    public var alive: Int64?

    public init(
        station: String, parameter: String, readings: [(ts: Int64, value: Double)], prior: (ts: Int64, value: Double)?,
        days: [String: (mean: Double, hours: Int)], alive: Int64? = nil
    ) {
        self.alive = alive
        self.station = station
        self.parameter = parameter
        self.readings = readings
        self.prior = prior
        self.days = days
    }
}

/// An alert to raise (with its body) or clear.
public struct AlertTransition: Sendable {
    public var key: String
    public var raise: Bool
    public var body: AlertBody
}

/// A historical finding as judged from one batch: the exceedances of one kind in one series on one day.
public struct FindingDraft: Sendable {
    public var kind: String
    public var station: String
    public var parameter: String
    public var day: String
    /// How bad the worst exceedance is (class, or value over limit): the worst one is kept.
    public var rank: Double
    public var value: Double
    public var limit: Double?
    public var severity: String
    public var readingTs: Int64
    public var firstTs: Int64
    public var lastTs: Int64
    public var readings: Int
    /// What the worst exceedance was, for the message.
    public var detail: String
    public var message: String

    public var alert: String { "\(kind):\(station):\(parameter):\(day)" }

    /// The `ingest.alert.raised` body that publishes it.
    public func body(at: String) -> AlertBody {
        AlertBody(
            alert: alert, kind: kind, station: station, parameter: parameter, indicator: nil, severity: severity, message: message,
            value: value, limit: limit, at: at, readingTs: time(readingTs), historical: true)
    }
}

/// What a batch's readings decide: live alert transitions, and findings in the past.
public struct Judgement: Sendable {
    /// When it was judged (the service's clock): findings are recorded at this time.
    public var at: String
    public var transitions: [AlertTransition] = []
    public var findings: [FindingDraft] = []
}

/// The alert rules: every stored reading is judged. Readings within the live window that are newer
/// than anything stored before raise a live alert once when a condition starts and clear it once it
/// ends, so a continuing condition never produces a storm; older readings (an import, a back-fill,
/// readings sent out of order) produce historical findings, one per kind, series and district day.
public enum AlertRules {
    /// How far back a reading still describes the present: two expected intervals, at least six hours.
    public static func liveWindow(_ station: StationConfig) -> Int64 {
        Int64(max(6 * 3600, 2 * 60 * (station.expectedIntervalMinutes ?? 0)) * 1000)
    }

    /// How long a station may send nothing before it is silent: three expected intervals (the flood
    /// season's during it).
    static func silenceAfter(_ station: StationConfig, now: Date) -> Int64? {
        station.expectedInterval(on: Timestamp.districtDate(now)).map { Int64($0 * 3 * 60 * 1000) }
    }

    /// Live transitions and findings for a batch's series, given which alert keys are active now.
    public static func evaluate(
        _ batches: [SeriesBatch], stations: [String: StationConfig], standards: Standards, active: Set<String>, now: Date
    ) -> Judgement {
        let at = Timestamp.format(now)
        var out = Judgement(at: at)
        var state = active
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
        var findings: [String: Int] = [:]
        var days: [Int64: String] = [:]
        func dayOf(_ ms: Int64) -> String {
            let index = (ms + Int64(Timestamp.districtOffset) * 1000) / 86_400_000
            if let day = days[index] { return day }
            let day = AirEvaluation.day(ms)
            days[index] = day
            return day
        }
        func set(_ key: String, _ condition: Bool, _ body: () -> AlertBody) {
            guard condition != state.contains(key) else { return }
            if condition { state.insert(key) } else { state.remove(key) }
            out.transitions.append(AlertTransition(key: key, raise: condition, body: body()))
        }
        func find(_ draft: FindingDraft) {
            if let index = findings[draft.alert] {
                var merged = out.findings[index]
                merged.readings += draft.readings
                merged.firstTs = min(merged.firstTs, draft.firstTs)
                merged.lastTs = max(merged.lastTs, draft.lastTs)
                if draft.rank > merged.rank {
                    (merged.rank, merged.value, merged.limit, merged.severity, merged.readingTs, merged.detail) = (
                        draft.rank, draft.value, draft.limit, draft.severity, draft.readingTs, draft.detail
                    )
                }
                out.findings[index] = merged
            } else {
                findings[draft.alert] = out.findings.count
                out.findings.append(draft)
            }
        }
        var newestByStation: [String: Int64] = [:]

        for batch in batches {
            if let alive = batch.alive { newestByStation[batch.station] = max(newestByStation[batch.station] ?? .min, alive) }
            guard let station = stations[batch.station], let last = batch.readings.last else { continue }
            newestByStation[station.id] = max(newestByStation[station.id] ?? .min, last.ts)
            let cutoff = nowMs - liveWindow(station)
            let after = batch.prior?.ts ?? .min
            // The newest stored reading itself counts as live when revised (a correction of the
            // value that raised an alert must be able to clear it).
            func isLive(_ ts: Int64) -> Bool { ts >= cutoff && ts >= after }
            let lastDay = dayOf(last.ts)
            let name =
                standards.waterStandard(on: lastDay)?.parameters[batch.parameter]?.name
                ?? standards.airStandard(on: lastDay)?.parameters[batch.parameter]?.name ?? batch.parameter
            func draft(_ kind: String, _ ts: Int64, value: Double, limit: Double?, rank: Double, severity: String, detail: String)
                -> FindingDraft
            {
                FindingDraft(
                    kind: kind, station: station.id, parameter: batch.parameter, day: dayOf(ts), rank: rank, value: value, limit: limit,
                    severity: severity, readingTs: ts, firstTs: ts, lastTs: ts, readings: 1, detail: detail, message: "")
            }

            if station.kind == "water", let targetLabel = station.targetClass, let target = WaterClass(label: targetLabel) {
                let key = "class_exceeded:\(station.id):\(batch.parameter)"
                for reading in batch.readings {
                    let day = dayOf(reading.ts)
                    guard standards.assesses(batch.parameter, on: day, lake: station.isLake),
                        let cls = standards.waterClass(batch.parameter, value: reading.value, on: day, lake: station.isLake)
                    else { continue }
                    let exceeded = cls > target
                    let severity = cls == .worseThanV ? "critical" : "alert"
                    // A target of 劣V has no limit above it (five limits for classes I–V); lakes have their own.
                    let limits = standards.waterStandard(on: day)?.parameters[batch.parameter].flatMap {
                        station.isLake ? $0.lakeLimits ?? $0.limits : $0.limits
                    }
                    let limit = limits.flatMap { target.rawValue <= $0.count ? $0[target.rawValue - 1] : nil }
                    if isLive(reading.ts) {
                        set(key, exceeded) {
                            AlertBody(
                                alert: key, kind: "class_exceeded", station: station.id, parameter: batch.parameter, indicator: nil,
                                severity: severity,
                                message: exceeded
                                    ? "\(station.name)\(name)\(format(reading.value))，为\(cls.label)类，劣于目标\(target.label)类"
                                    : "\(station.name)\(name)恢复至\(cls.label)类",
                                value: reading.value, limit: limit, at: at, readingTs: time(reading.ts))
                        }
                        // 监测预警: near the limit but not yet over it (a limit that is a ceiling, not DO's floor).
                        let spec = standards.waterStandard(on: day)?.parameters[batch.parameter]
                        let share = station.warningShareOrDefault
                        if share > 0, spec?.direction != "min", let limit, limit > 0 {
                            let warnKey = "approaching_limit:\(station.id):\(batch.parameter)"
                            let near = !exceeded && reading.value >= share * limit
                            set(warnKey, near) {
                                AlertBody(
                                    alert: warnKey, kind: "approaching_limit", station: station.id, parameter: batch.parameter,
                                    indicator: nil, severity: "warning",
                                    message: near
                                        ? "\(station.name)\(name)\(format(reading.value))，已达\(target.label)类限值\(format(limit))的"
                                            + "\(Int((reading.value / limit * 100).rounded()))%，请预判趋势、查找原因"
                                        : "\(station.name)\(name)回落至\(target.label)类限值的\(Int((share * 100).rounded()))%以下"
                                            + (exceeded ? "（已超标，见超标告警）" : ""),
                                    value: reading.value, limit: limit, at: at, readingTs: time(reading.ts), projection: nil)
                            }
                        }
                    } else if exceeded {
                        find(
                            draft(
                                "class_exceeded", reading.ts, value: reading.value, limit: limit, rank: Double(cls.rawValue),
                                severity: severity, detail: "最差\(format(reading.value))，为\(cls.label)类，劣于目标\(target.label)类"))
                    }
                }
            }

            if station.kind == "air" {
                let key = "limit_exceeded:\(station.id):\(batch.parameter)"
                // Each day the batch touched, judged at its last reading in the batch, once it has enough
                // hours to be a valid daily mean.
                var lastOfDay: [String: Int64] = [:]
                for reading in batch.readings { lastOfDay[dayOf(reading.ts)] = reading.ts }
                for (day, ts) in lastOfDay.sorted(by: { $0.value < $1.value }) {
                    guard let stats = batch.days[day], stats.hours >= standards.validity.minHourlyPerDay,
                        let limit = standards.airStandard(on: day)?.parameters[batch.parameter]?.daily?.last
                    else { continue }
                    // HJ 663-2013: the daily mean is rounded to its reporting precision (GB/T 8170,
                    // half-to-even) before the comparison, so 75.5 exceeds 75 and 75.4 does not.
                    let mean = standards.airJudged(batch.parameter, stats.mean, on: day)
                    let exceeded = mean > limit
                    if isLive(ts) {
                        set(key, exceeded) {
                            AlertBody(
                                alert: key, kind: "limit_exceeded", station: station.id, parameter: batch.parameter, indicator: nil,
                                severity: "alert",
                                message: exceeded
                                    ? "\(station.name)\(day)\(name)日均值\(format(mean))，超过二级标准\(format(limit))"
                                    : "\(station.name)\(name)日均值恢复达标",
                                value: mean, limit: limit, at: at, readingTs: time(ts))
                        }
                    } else if exceeded {
                        var finding = draft(
                            "limit_exceeded", ts, value: mean, limit: limit, rank: mean / limit, severity: "alert",
                            detail: "日均值\(format(mean))（\(stats.hours)小时），超过二级标准\(format(limit))")
                        finding.readings = stats.hours
                        find(finding)
                    }
                }
            }

            if let factor = station.jumpFactor {
                let key = "sudden_jump:\(station.id):\(batch.parameter)"
                var previous: (ts: Int64, value: Double)?
                for reading in batch.readings {
                    defer { previous = reading }
                    // The reading just before it: in the batch, or the newest stored one when that is
                    // newer (a batch mixing back-filled and new readings).
                    // (Chosen without building arrays: this runs for every reading of every batch.)
                    var candidate = previous.flatMap { $0.ts < reading.ts ? $0 : nil }
                    if let stored = batch.prior, stored.ts < reading.ts, candidate.map({ stored.ts > $0.ts }) ?? true {
                        candidate = stored
                    }
                    guard let before = candidate, before.value > 0 else { continue }
                    let jumped = reading.value >= before.value * factor && reading.value >= (station.jumpFloor ?? 0)
                    if isLive(reading.ts) {
                        set(key, jumped) {
                            AlertBody(
                                alert: key, kind: "sudden_jump", station: station.id, parameter: batch.parameter, indicator: nil,
                                severity: "alert",
                                message: jumped
                                    ? "\(station.name)\(name)由\(format(before.value))突增至\(format(reading.value))"
                                    : "\(station.name)\(name)突变已恢复",
                                value: reading.value, limit: before.value * factor, at: at, readingTs: time(reading.ts))
                        }
                    } else if jumped {
                        find(
                            draft(
                                "sudden_jump", reading.ts, value: reading.value, limit: before.value * factor,
                                rank: reading.value / before.value, severity: "alert",
                                detail: "由\(format(before.value))突增至\(format(reading.value))"))
                    }
                }
            }
        }

        // A station is silent by its newest reading, not by when readings arrive: one recent enough
        // ends the silence once; back-filled old readings neither end it nor start it again.
        for (id, newest) in newestByStation.sorted(by: { $0.key < $1.key }) {
            guard let station = stations[id], let limit = silenceAfter(station, now: now), nowMs - newest <= limit else { continue }
            let key = "station_silent:\(id)"
            set(key, false) {
                AlertBody(
                    alert: key, kind: "station_silent", station: id, parameter: nil, indicator: nil, severity: "alert",
                    message: "\(station.name)恢复数据报送", value: nil, limit: nil, at: at, readingTs: time(newest))
            }
        }

        for index in out.findings.indices {
            let finding = out.findings[index]
            let station = stations[finding.station]?.name ?? finding.station
            let name =
                standards.waterStandard(on: finding.day)?.parameters[finding.parameter]?.name
                ?? standards.airStandard(on: finding.day)?.parameters[finding.parameter]?.name ?? finding.parameter
            let count = finding.kind == "limit_exceeded" ? "" : "\(finding.readings)个读数超标，"
            out.findings[index].message = "历史数据：\(station)\(finding.day)\(name)\(count)\(finding.detail)"
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
            guard let interval = station.expectedInterval(on: Timestamp.districtDate(now)), let last = latest[station.id] else { continue }
            let silentFor = now.timeIntervalSince1970 - Double(last) / 1000
            let key = "station_silent:\(station.id)"
            let silent = silentFor > interval * 60 * 3
            if silent, !active.contains(key) {
                out.append(
                    AlertTransition(
                        key: key, raise: true,
                        body: AlertBody(
                            alert: key, kind: "station_silent", station: station.id, parameter: nil, indicator: nil, severity: "alert",
                            message: "\(station.name)已\(Int(silentFor / 3600))小时无数据", value: silentFor / 60, limit: interval * 3, at: at,
                            readingTs: time(last))))
            }
        }
        return out
    }

    /// Days of readings a trend is fitted to.
    static let trendWindowDays = 7.0

    /// 趋势分析: for each assessed parameter of a water station with a target class, a straight line
    /// fitted to the last seven days of readings; when it rises and crosses the target's limit within
    /// the station's horizon while the newest reading is still within it, a `trend_rising` warning
    /// carries the projected value at the horizon; it clears when that is no longer so.
    public static func trend(
        _ samples: [StoredSample], station: StationConfig, standards: Standards, active: Set<String>, now: Date
    ) -> [AlertTransition] {
        guard station.kind == "water", let targetLabel = station.targetClass, let target = WaterClass(label: targetLabel) else {
            return []
        }
        let horizon = station.trendHorizonOrDefault
        let day = Timestamp.districtDate(now)
        let nowDays = now.timeIntervalSince1970 / 86_400
        let at = Timestamp.format(now)
        var out: [AlertTransition] = []
        for parameter in station.parameters {
            guard let spec = standards.waterStandard(on: day)?.parameters[parameter], spec.direction != "min",
                standards.assesses(parameter, on: day, lake: station.isLake),
                let limits = station.isLake ? spec.lakeLimits ?? spec.limits : spec.limits, target.rawValue <= limits.count
            else { continue }
            let limit = limits[target.rawValue - 1]
            let points = samples.filter { $0.parameter == parameter }.map { (x: Double($0.ts) / 86_400_000, y: $0.value) }.sorted {
                $0.x < $1.x
            }
            let key = "trend_rising:\(station.id):\(parameter)"
            var rising = false
            var projected: Double?
            var daysToCross: Double?
            // At least three readings spread over two days: a line through fewer says nothing.
            if horizon > 0, points.count >= 3, let first = points.first?.x, let last = points.last, last.x - first >= 2,
                last.y < limit
            {
                let n = Double(points.count)
                let meanX = points.reduce(0) { $0 + $1.x } / n
                let meanY = points.reduce(0) { $0 + $1.y } / n
                let sxx = points.reduce(0) { $0 + ($1.x - meanX) * ($1.x - meanX) }
                let sxy = points.reduce(0) { $0 + ($1.x - meanX) * ($1.y - meanY) }
                if sxx > 0 {
                    let slope = sxy / sxx
                    let value = { (x: Double) in meanY + slope * (x - meanX) }
                    if slope > 0 {
                        let cross = meanX + (limit - meanY) / slope
                        daysToCross = cross - nowDays
                        projected = (value(nowDays + horizon) * 10_000).rounded() / 10_000
                        rising = (daysToCross ?? .infinity) <= horizon
                    }
                }
            }
            guard rising != active.contains(key) else { continue }
            let name = spec.name
            let days = max(0, Int((daysToCross ?? 0).rounded(.up)))
            out.append(
                AlertTransition(
                    key: key, raise: rising,
                    body: AlertBody(
                        alert: key, kind: "trend_rising", station: station.id, parameter: parameter, indicator: nil, severity: "warning",
                        message: rising
                            ? "\(station.name)\(name)近\(Int(trendWindowDays))日呈上升趋势，按趋势约\(days)天内将超过\(target.label)类限值"
                                + "\(format(limit))，请分析原因、提前采取措施"
                            : (points.last.map { $0.y >= limit } ?? false)
                                ? "\(station.name)\(name)已超过\(target.label)类限值，见超标告警"
                                : "\(station.name)\(name)上升趋势已缓解",
                        value: points.last?.y, limit: limit, at: at,
                        readingTs: points.last.map { time(Int64(($0.x * 86_400_000).rounded())) },
                        projection: projected)))
        }
        return out
    }

    static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e9 ? String(Int(value)) : String(format: "%g", value)
    }
}
