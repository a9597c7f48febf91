/// Indicator ingestion's request types and topics (PROTOCOL.md section 6, **ingest**).
public enum IngestTypes {
    public static let indicatorList = RPC<Empty, ListReply<Indicator>>("indicator.list", .read, allow: .readers)
    public static let indicatorGet = RPC<IndicatorGetRequest, Indicator>("indicator.get", .read, allow: .readers)
    public static let indicatorReport = RPC<IndicatorReportRequest, IndicatorValue>("indicator.report", .write, allow: .units)
    public static let stationList = RPC<Empty, ListReply<Station>>("station.list", .read, allow: .everyone)
    public static let readingSubmit = RPC<ReadingSubmitRequest, ReadingSubmitReply>(
        "reading.submit", .write, allow: .stations, textLimit: nil)
    public static let waterClass = RPC<WaterClassRequest, WaterClassReply>("water.class", .read, allow: .readers)
    public static let airAnnual = RPC<AirAnnualRequest, AirAnnualReply>("air.annual", .read, allow: .readers)
    /// Historical findings: exceedances in readings older than the live window, one per station, parameter, kind and day.
    public static let findingList = RPC<FindingListRequest, ListReply<Finding>>("finding.list", .read, allow: .readers)

    public static let readingsAccepted = "ingest.readings.accepted"
    public static let indicatorUpdated = "ingest.indicator.updated"
    public static let alertRaised = "ingest.alert.raised"
    public static let alertCleared = "ingest.alert.cleared"

    /// The most readings one `reading.submit` may carry.
    public static let maxReadingsPerMessage = 10_000
}

/// The plan's 13 targets, by id (PROTOCOL.md section 3).
public enum IndicatorID {
    public static let all = [
        "forest_coverage", "water_quality_liuyiqiao", "aquatic_eco_evaluation", "sewage_treatment_rate", "pm25_annual_mean",
        "industrial_solid_waste_utilization", "hazardous_waste_safe_disposal", "manure_facility_matching", "manure_utilization",
        "farmland_film_recovery", "rural_sewage_treatment", "urban_garbage_harmless", "emissions_carbon_intensity",
    ]
}

/// Water parameters of GB 3838-2002 and air parameters, by id (PROTOCOL.md section 3).
public enum ParameterID {
    public static let water = [
        "ph", "do", "codmn", "cod", "bod5", "nh3n", "tp", "tn", "cu", "zn", "f", "se", "as", "hg", "cd", "cr6", "pb", "cn", "phenol",
        "petroleum", "las", "sulfide", "fecal_coliform",
    ]
    public static let air = ["pm25", "pm10", "so2", "no2", "o3", "co"]
}

/// A period's value of an indicator.
public struct IndicatorValue: Codable, Sendable, Equatable {
    public var period: String
    /// A number, a water class (`III`), or a category (`基本稳定`).
    public var value: JSONValue
    public var source: String
    public var note: String?
    public var reportedAt: String?
    /// True while the value cannot yet be valid under its standard's data-validity rules (the PM2.5
    /// annual mean of a year without enough valid days, GB 3095-2012 §8.2): it is shown, never judged.
    /// Absent (false) for every other value.
    public var provisional: Bool?

    enum CodingKeys: String, CodingKey {
        case period, value, source, note, provisional
        case reportedAt = "reported_at"
    }

    public init(
        period: String, value: JSONValue, source: String, note: String? = nil, reportedAt: String? = nil, provisional: Bool? = nil
    ) {
        self.provisional = provisional == true ? true : nil
        self.period = period
        self.value = value
        self.source = source
        self.note = note
        self.reportedAt = reportedAt
    }
}

/// An indicator: one of the plan's targets with its latest value and attainment.
public struct Indicator: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var target: String
    public var `operator`: String
    public var threshold: JSONValue?
    public var unit: String?
    public var tasks: [String]
    public var latest: IndicatorValue?
    /// `met`, `not_met` or `unknown` (no value, no threshold, or a provisional value).
    public var attainment: String
    public var history: [IndicatorValue]?
    /// The value projected to the end of 2026 from the history, when there is enough of it.
    public var projection: JSONValue?
    /// True when the latest value is provisional (`latest.provisional`): attainment stays `unknown`.
    public var provisional: Bool?
    /// Why it is not judged, in Chinese (`有效天数不足，暂不评价……`), with `provisional`.
    public var provisionalText: String?
    /// The latest value as compared with the threshold: rounded to the standard's reporting precision
    /// (HJ 663-2013, GB/T 8170 round-half-even) where one applies; absent otherwise.
    public var judgedValue: JSONValue?
    /// For a target of several separately judged quantities (`emissions_carbon_intensity`): each
    /// part as an indicator of its own. The target's `attainment` is `met` when every part is met,
    /// `not_met` when any is not, else `unknown`; without any part's value, its own true/false decides.
    public var parts: [Indicator]?

    enum CodingKeys: String, CodingKey {
        case id, name, target, `operator`, threshold, unit, tasks, latest, attainment, history, projection, provisional, parts
        case provisionalText = "provisional_text"
        case judgedValue = "judged_value"
    }

    public init(
        id: String, name: String, target: String, operator: String, threshold: JSONValue?, unit: String?, tasks: [String],
        latest: IndicatorValue?, attainment: String, history: [IndicatorValue]? = nil, projection: JSONValue? = nil,
        provisional: Bool? = nil, provisionalText: String? = nil, judgedValue: JSONValue? = nil, parts: [Indicator]? = nil
    ) {
        self.provisional = provisional
        self.provisionalText = provisionalText
        self.judgedValue = judgedValue
        self.parts = parts
        self.id = id
        self.name = name
        self.target = target
        self.operator = `operator`
        self.threshold = threshold
        self.unit = unit
        self.tasks = tasks
        self.latest = latest
        self.attainment = attainment
        self.history = history
        self.projection = projection
    }
}

public struct IndicatorGetRequest: Codable, Sendable {
    public var id: String
    public init(id: String) { self.id = id }
}

public struct IndicatorReportRequest: Codable, Sendable, Equatable {
    public var indicator: String
    public var period: String
    public var value: JSONValue
    public var source: String
    public var note: String?
    public init(indicator: String, period: String, value: JSONValue, source: String, note: String? = nil) {
        self.indicator = indicator
        self.period = period
        self.value = value
        self.source = source
        self.note = note
    }
}

/// A monitoring station (configuration).
public struct Station: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// `water` or `air`.
    public var kind: String
    public var parameters: [String]
    /// For water sections: the target class (`III` for 六一桥).
    public var targetClass: String?

    enum CodingKeys: String, CodingKey {
        case id, name, kind, parameters
        case targetClass = "target_class"
    }

    public init(id: String, name: String, kind: String, parameters: [String], targetClass: String? = nil) {
        self.id = id
        self.name = name
        self.kind = kind
        self.parameters = parameters
        self.targetClass = targetClass
    }
}

/// A quality mark on a reading (PROTOCOL.md section 6, `reading.submit`): below the detection limit,
/// or one of the analyser's status flags. Status-marked readings are stored and shown, never judged.
public enum ReadingMark: String, Sendable, CaseIterable, Codable {
    case belowDetection = "below_detection"
    case maintenance, calibration, stopped

    /// How a person reads it (the words monitoring exports write).
    public var chineseName: String {
        switch self {
        case .belowDetection: return "未检出"
        case .maintenance: return "维护"
        case .calibration: return "校准"
        case .stopped: return "停运"
        }
    }

    /// True for the analyser's status flags: the value, if any, measures nothing.
    public var isStatus: Bool { self != .belowDetection }
}

/// One reading as submitted. Decoding never fails on a bad field: the problem is kept, so that
/// the reading is rejected on its own with its index while the rest of the batch is judged.
public struct SubmittedReading: Codable, Sendable, Equatable {
    public var station: String
    public var parameter: String
    public var ts: String
    /// NaN when a marked reading carries no value (`value` omitted, as a 维护 row or `ND` may be).
    public var value: Double
    public var unit: String?
    /// `revision` to replace the stored value of an existing (station, parameter, ts).
    public var flag: String?
    /// A `ReadingMark` raw value; kept as text so that an unknown mark is refused with its field.
    public var mark: String?
    /// With `below_detection`: the limit, in `unit`.
    public var detectionLimit: Double?
    /// Why the reading could not be read, when it could not.
    public var problem: ErrorBody?

    enum CodingKeys: String, CodingKey {
        case station, parameter, ts, value, unit, flag, mark
        case detectionLimit = "detection_limit"
    }

    public init(
        station: String, parameter: String, ts: String, value: Double, unit: String? = nil, flag: String? = nil, mark: String? = nil,
        detectionLimit: Double? = nil
    ) {
        self.station = station
        self.parameter = parameter
        self.ts = ts
        self.value = value
        self.unit = unit
        self.flag = flag
        self.mark = mark
        self.detectionLimit = detectionLimit
    }

    public init(from decoder: any Decoder) throws {
        guard let c = try? decoder.container(keyedBy: CodingKeys.self) else {
            station = ""
            parameter = ""
            ts = ""
            value = .nan
            problem = .invalidArgument("每条读数应为 JSON 对象", field: "")
            return
        }
        var problem: ErrorBody?
        func string(_ key: CodingKeys) -> String {
            if let s = try? c.decode(String.self, forKey: key) { return s }
            if problem == nil { problem = .invalidArgument("\(key.stringValue) 应为字符串", field: key.stringValue) }
            return ""
        }
        station = string(.station)
        parameter = string(.parameter)
        ts = string(.ts)
        // A mark that is not text is refused here; an unknown one by ReadingRules, with the same field.
        if c.contains(.mark), (try? c.decodeNil(forKey: .mark)) != true {
            mark = try? c.decode(String.self, forKey: .mark)
            if mark == nil, problem == nil { problem = .invalidArgument("mark 应为字符串", field: "mark") }
        }
        if let number = try? c.decode(Double.self, forKey: .value) {
            value = number
        } else if let text = try? c.decode(String.self, forKey: .value), let number = Double(text) {
            // "NaN", "Infinity" and numeric strings arrive as strings; finiteness is judged later.
            value = number
            // NaN stands for "no value" on a marked reading: sent explicitly, it is refused, not taken as absent.
            if mark != nil, number.isNaN, problem == nil { problem = .invalidArgument("value 应为有限数值（收到 \(text)）", field: "value") }
        } else if mark != nil, !c.contains(.value) || (try? c.decodeNil(forKey: .value)) == true {
            value = .nan
        } else {
            value = .nan
            if problem == nil { problem = .invalidArgument("value 应为数字", field: "value") }
        }
        if c.contains(.detectionLimit), (try? c.decodeNil(forKey: .detectionLimit)) != true {
            if let number = try? c.decode(Double.self, forKey: .detectionLimit) {
                detectionLimit = number
            } else if let text = try? c.decode(String.self, forKey: .detectionLimit), let number = Double(text) {
                detectionLimit = number
            } else if problem == nil {
                problem = .invalidArgument("detection_limit 应为数字", field: "detection_limit")
            }
        }
        unit = try? c.decodeIfPresent(String.self, forKey: .unit)
        flag = try? c.decodeIfPresent(String.self, forKey: .flag)
        self.problem = problem
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(station, forKey: .station)
        try c.encode(parameter, forKey: .parameter)
        try c.encode(ts, forKey: .ts)
        if value.isFinite {
            try c.encode(value, forKey: .value)
        } else if !(mark != nil && value.isNaN) {
            try c.encode("\(value)", forKey: .value)
        }
        try c.encodeIfPresent(unit, forKey: .unit)
        try c.encodeIfPresent(flag, forKey: .flag)
        try c.encodeIfPresent(mark, forKey: .mark)
        if let detectionLimit {
            if detectionLimit.isFinite {
                try c.encode(detectionLimit, forKey: .detectionLimit)
            } else {
                try c.encode("\(detectionLimit)", forKey: .detectionLimit)
            }
        }
    }

    /// Equal as the wire reads them: NaN (no value) equals NaN.
    public static func == (a: SubmittedReading, b: SubmittedReading) -> Bool {
        a.station == b.station && a.parameter == b.parameter && a.ts == b.ts
            && (a.value == b.value || (a.value.isNaN && b.value.isNaN)) && a.unit == b.unit && a.flag == b.flag && a.mark == b.mark
            && (a.detectionLimit == b.detectionLimit || (a.detectionLimit?.isNaN == true && b.detectionLimit?.isNaN == true))
            && a.problem == b.problem
    }
}

public struct ReadingSubmitRequest: Codable, Sendable, Equatable {
    public var readings: [SubmittedReading]
    public init(readings: [SubmittedReading]) { self.readings = readings }
}

extension ReadingSubmitRequest: FastDecodable, Fingerprintable {
    /// The well-formed case only, read exactly as `init(from:)` reads it; anything else (a reading
    /// that is not an object, a field of the wrong type, a value sent as text) returns nil, and the
    /// JSONDecoder path answers it reading by reading.
    public static func fastDecode(_ json: FastJSON) -> ReadingSubmitRequest? {
        guard case .object = json, let elements = json["readings"]?.array else { return nil }
        var readings: [SubmittedReading] = []
        readings.reserveCapacity(elements.count)
        for element in elements {
            guard case .object(let members) = element else { return nil }
            var station: String?
            var parameter: String?
            var ts: String?
            var value: Double?
            var unit: String?
            var flag: String?
            var mark: String?
            var detectionLimit: Double?
            // A repeated key counts once, the first time, as JSONDecoder reads it.
            var seen: UInt16 = 0
            func first(_ bit: UInt16) -> Bool {
                defer { seen |= bit }
                return seen & bit == 0
            }
            for (key, member) in members {
                switch key {
                case "station" where first(1): station = member.string
                case "parameter" where first(2): parameter = member.string
                case "ts" where first(4): ts = member.string
                case "value" where first(8):
                    // null is "no value" (allowed on a marked reading); text such as "NaN" is the JSONDecoder path's to judge.
                    if case .null = member { continue }
                    guard let number = member.number else { return nil }
                    value = number
                // Like `try? decodeIfPresent(String.self, …)`: a non-string unit or flag reads as absent.
                case "unit" where first(16): unit = member.string
                case "flag" where first(32): flag = member.string
                // A mark or limit of another type is a problem the JSONDecoder path names; null reads as absent.
                case "mark" where first(64):
                    if case .null = member { continue }
                    guard let text = member.string else { return nil }
                    mark = text
                case "detection_limit" where first(128):
                    if case .null = member { continue }
                    guard let number = member.number else { return nil }
                    detectionLimit = number
                default: continue
                }
            }
            // Only a marked reading may leave out its value (NaN: none).
            guard let station, let parameter, let ts, let value = value ?? (mark == nil ? nil : .nan) else { return nil }
            readings.append(
                SubmittedReading(
                    station: station, parameter: parameter, ts: ts, value: value, unit: unit, flag: flag, mark: mark,
                    detectionLimit: detectionLimit))
        }
        return ReadingSubmitRequest(readings: readings)
    }

    public func fingerprint(into bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + readings.count * 48)
        for reading in readings {
            for text in [reading.station, reading.parameter, reading.ts, reading.unit ?? "\u{1}", reading.flag ?? "\u{1}"] {
                bytes.append(contentsOf: text.utf8)
                bytes.append(0)
            }
            withUnsafeBytes(of: reading.value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            // An unmarked reading's bytes stay what they were before marks existed, so that a retry across
            // the upgrade still matches its key. A mark or limit follows 0xFF, a byte UTF-8 never holds, so
            // it cannot be read as the start of the next reading's station.
            guard reading.mark != nil || reading.detectionLimit != nil else { continue }
            bytes.append(0xFF)
            bytes.append(contentsOf: (reading.mark ?? "\u{1}").utf8)
            bytes.append(0)
            if let limit = reading.detectionLimit {
                bytes.append(1)
                withUnsafeBytes(of: limit.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            } else {
                bytes.append(0)
            }
        }
    }
}

public struct ReadingSubmitReply: Codable, Sendable, Equatable {
    public var accepted: Int
    public var duplicates: Int
    public var rejected: [RejectedItem]
    public init(accepted: Int, duplicates: Int, rejected: [RejectedItem]) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.rejected = rejected
    }
}

public struct WaterClassRequest: Codable, Sendable {
    public var station: String
    public var from: String
    public var to: String
    public init(station: String, from: String, to: String) {
        self.station = station
        self.from = from
        self.to = to
    }
}

/// `water.class` reply: single-factor evaluation; `factors` names the parameters that decide.
public struct WaterClassReply: Codable, Sendable, Equatable {
    public var `class`: String
    public var factors: [String]
    public var means: [String: Double]
    public var samples: Int
    /// Calendar months with samples: each parameter's mean is the mean of its monthly means
    /// (《地表水环境质量评价办法（试行）》), so a month sampled often weighs no more than one sampled once.
    public var months: Int?
    public init(class: String, factors: [String], means: [String: Double], samples: Int, months: Int? = nil) {
        self.months = months
        self.class = `class`
        self.factors = factors
        self.means = means
        self.samples = samples
    }
}

public struct AirAnnualRequest: Codable, Sendable {
    public var station: String
    public var year: Int
    public init(station: String, year: Int) {
        self.station = station
        self.year = year
    }
}

public struct AirAnnualReply: Codable, Sendable, Equatable {
    public var pm25Mean: Double?
    public var validDays: Int
    public var valid: Bool
    public var grade: String?
    /// The mean rounded as HJ 663-2013 reports it (GB/T 8170 round-half-even; PM2.5 to whole µg/m³):
    /// the value compared with the limits.
    public var pm25Judged: Double?
    /// While the year is not valid: why it is not judged, in Chinese.
    public var provisionalText: String?

    enum CodingKeys: String, CodingKey {
        case valid, grade
        case pm25Mean = "pm25_mean"
        case validDays = "valid_days"
        case pm25Judged = "pm25_judged"
        case provisionalText = "provisional_text"
    }

    public init(
        pm25Mean: Double?, validDays: Int, valid: Bool, grade: String?, pm25Judged: Double? = nil, provisionalText: String? = nil
    ) {
        self.pm25Judged = pm25Judged
        self.provisionalText = provisionalText
        self.pm25Mean = pm25Mean
        self.validDays = validDays
        self.valid = valid
        self.grade = grade
    }
}

/// `ingest.readings.accepted` body.
public struct ReadingsAccepted: Codable, Sendable, Equatable {
    public var station: String
    public var count: Int
    public var from: String
    public var to: String
    public init(station: String, count: Int, from: String, to: String) {
        self.station = station
        self.count = count
        self.from = from
        self.to = to
    }
}

/// `ingest.alert.raised` / `ingest.alert.cleared` body: a live alert, a warning, or a historical finding.
public struct AlertBody: Codable, Sendable, Equatable {
    public var alert: String
    /// `class_exceeded`, `limit_exceeded`, `station_silent`, `sudden_jump`, `mean_class_exceeded`, `target_missed`.
    public var kind: String
    public var station: String?
    public var parameter: String?
    public var indicator: String?
    /// `warning` (a projection says a target will be missed; carries `projection`), `alert` (a limit is
    /// exceeded now) or `critical` (worse than class V).
    public var severity: String
    public var message: String
    public var value: Double?
    public var limit: Double?
    /// When the event was decided (the service's clock).
    public var at: String
    /// The reading (or, for a daily mean, the day's last reading) that decided it; absent for silence and annual means.
    public var readingTs: String?
    /// True for a finding in readings older than the live window: recorded and listed, never paged.
    public var historical: Bool
    /// For warnings: the projected value that will miss the target.
    public var projection: Double?

    enum CodingKeys: String, CodingKey {
        case alert, kind, station, parameter, indicator, severity, message, value, limit, at, historical, projection
        case readingTs = "reading_ts"
    }

    public init(
        alert: String, kind: String, station: String?, parameter: String?, indicator: String?, severity: String, message: String,
        value: Double?,
        limit: Double?, at: String, readingTs: String? = nil, historical: Bool = false, projection: Double? = nil
    ) {
        self.alert = alert
        self.kind = kind
        self.station = station
        self.parameter = parameter
        self.indicator = indicator
        self.severity = severity
        self.message = message
        self.value = value
        self.limit = limit
        self.at = at
        self.readingTs = readingTs
        self.historical = historical
        self.projection = projection
    }

    /// Bodies stored before `historical` existed read as live.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        alert = try c.decode(String.self, forKey: .alert)
        kind = try c.decode(String.self, forKey: .kind)
        station = try c.decodeIfPresent(String.self, forKey: .station)
        parameter = try c.decodeIfPresent(String.self, forKey: .parameter)
        indicator = try c.decodeIfPresent(String.self, forKey: .indicator)
        severity = try c.decode(String.self, forKey: .severity)
        message = try c.decode(String.self, forKey: .message)
        value = try c.decodeIfPresent(Double.self, forKey: .value)
        limit = try c.decodeIfPresent(Double.self, forKey: .limit)
        at = try c.decode(String.self, forKey: .at)
        readingTs = try c.decodeIfPresent(String.self, forKey: .readingTs)
        historical = try c.decodeIfPresent(Bool.self, forKey: .historical) ?? false
        projection = try c.decodeIfPresent(Double.self, forKey: .projection)
    }
}

/// `finding.list` request: every filter optional; days are district days `YYYY-MM-DD`, inclusive.
public struct FindingListRequest: Codable, Sendable, Equatable {
    public var station: String?
    public var parameter: String?
    public var from: String?
    public var to: String?
    /// At most this many, oldest day first (default 1,000, at most 10,000).
    public var limit: Int?

    public init(station: String? = nil, parameter: String? = nil, from: String? = nil, to: String? = nil, limit: Int? = nil) {
        self.station = station
        self.parameter = parameter
        self.from = from
        self.to = to
        self.limit = limit
    }
}

/// A historical finding: the exceedances of one kind in one station's parameter on one district day,
/// found in readings older than the live window (a back-fill or an import). Recorded once; later
/// readings of the same day add to it without publishing again.
public struct Finding: Codable, Sendable, Equatable {
    /// The key its `ingest.alert.raised` carried: `<kind>:<station>:<parameter>:<day>`.
    public var alert: String
    public var kind: String
    public var station: String
    public var parameter: String
    public var day: String
    public var severity: String
    public var message: String
    /// The worst value (for `limit_exceeded`, the daily mean).
    public var value: Double
    public var limit: Double?
    /// The worst reading's time.
    public var readingTs: String
    public var firstTs: String
    public var lastTs: String
    /// How many readings (days, for daily means) exceeded.
    public var readings: Int
    public var recordedAt: String

    enum CodingKeys: String, CodingKey {
        case alert, kind, station, parameter, day, severity, message, value, limit, readings
        case readingTs = "reading_ts"
        case firstTs = "first_ts"
        case lastTs = "last_ts"
        case recordedAt = "recorded_at"
    }

    public init(
        alert: String, kind: String, station: String, parameter: String, day: String, severity: String, message: String, value: Double,
        limit: Double?, readingTs: String, firstTs: String, lastTs: String, readings: Int, recordedAt: String
    ) {
        self.alert = alert
        self.kind = kind
        self.station = station
        self.parameter = parameter
        self.day = day
        self.severity = severity
        self.message = message
        self.value = value
        self.limit = limit
        self.readingTs = readingTs
        self.firstTs = firstTs
        self.lastTs = lastTs
        self.readings = readings
        self.recordedAt = recordedAt
    }
}

/// `ingest.indicator.updated` body.
public struct IndicatorUpdated: Codable, Sendable, Equatable {
    public var indicator: String
    public var period: String
    public var value: JSONValue
    public var attainment: String
    public var previousAttainment: String?
    public var source: String
    public var tasks: [String]

    enum CodingKeys: String, CodingKey {
        case indicator, period, value, attainment, source, tasks
        case previousAttainment = "previous_attainment"
    }

    public init(
        indicator: String, period: String, value: JSONValue, attainment: String, previousAttainment: String?, source: String,
        tasks: [String]
    ) {
        self.indicator = indicator
        self.period = period
        self.value = value
        self.attainment = attainment
        self.previousAttainment = previousAttainment
        self.source = source
        self.tasks = tasks
    }
}
