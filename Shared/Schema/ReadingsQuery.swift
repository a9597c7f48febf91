/// `readings.query`: what a station measured, as means per hour, day or month, with each
/// parameter's unit, the class the means fall in (water) and how much of the period has data,
/// so a dashboard draws what the services judged without a bridge of its own (docs/ingest.md).
public enum ReadingsTypes {
    public static let query = RPC<ReadingsQueryRequest, ReadingsQueryReply>("readings.query", .read, allow: .readers)
    /// The most buckets (times parameters) one query answers.
    public static let maxPoints = 50_000
}

public enum ReadingsInterval: String, Codable, Sendable, CaseIterable {
    case hour, day, month
}

/// `readings.query {station, parameters?, from, to, every?: hour|day|month}`: `from`/`to` are
/// dates (`to` inclusive) or RFC 3339 times; `parameters` defaults to all the station measures.
public struct ReadingsQueryRequest: Codable, Sendable, Equatable {
    public var station: String
    public var parameters: [String]?
    public var from: String
    public var to: String
    public var every: ReadingsInterval?
    public init(station: String, parameters: [String]? = nil, from: String, to: String, every: ReadingsInterval? = nil) {
        self.station = station
        self.parameters = parameters
        self.from = from
        self.to = to
        self.every = every
    }
}

/// One bucket of one parameter: `t` is `2026-11-20T10:00+08:00`, `2026-11-20` or `2026-11`.
public struct ReadingPoint: Codable, Sendable, Equatable {
    public var t: String
    public var mean: Double
    public var min: Double
    public var max: Double
    public var count: Int
    /// Water: the single-factor class of the mean (GB 3838-2002), when the standard classes it.
    public var `class`: String?
    /// How many of the `count` readings were below the detection limit: each entered `mean`, `min` and
    /// `max` as half its limit (未检出按检出限一半参与计算). Absent when none was.
    public var belowDetection: Int?
    /// With `below_detection`: the largest of their limits (a bucket of nothing else reads `<limit`).
    public var detectionLimit: Double?

    enum CodingKeys: String, CodingKey {
        case t, mean, min, max, count, `class`
        case belowDetection = "below_detection"
        case detectionLimit = "detection_limit"
    }

    public init(
        t: String, mean: Double, min: Double, max: Double, count: Int, class waterClass: String? = nil, belowDetection: Int? = nil,
        detectionLimit: Double? = nil
    ) {
        self.t = t
        self.mean = mean
        self.min = min
        self.max = max
        self.count = count
        self.class = waterClass
        self.belowDetection = belowDetection
        self.detectionLimit = detectionLimit
    }
}

/// Readings of a bucket the analyser marked (维护, 校准, 停运): stored and shown, in no mean or count.
public struct MarkedBucket: Codable, Sendable, Equatable {
    public var t: String
    /// `maintenance`, `calibration` or `stopped`.
    public var mark: String
    public var count: Int
    public init(t: String, mark: String, count: Int) {
        self.t = t
        self.mark = mark
        self.count = count
    }
}

/// How much of the period has data: buckets with at least one reading out of all of them, and
/// readings against what the station's interval leads one to expect.
public struct ReadingCoverage: Codable, Sendable, Equatable {
    public var buckets: Int
    public var withData: Int
    public var readings: Int
    public var expectedReadings: Int?
    public var ratio: Double

    enum CodingKeys: String, CodingKey {
        case buckets, readings, ratio
        case withData = "with_data"
        case expectedReadings = "expected_readings"
    }

    public init(buckets: Int, withData: Int, readings: Int, expectedReadings: Int?) {
        self.buckets = buckets
        self.withData = withData
        self.readings = readings
        self.expectedReadings = expectedReadings
        self.ratio = buckets == 0 ? 0 : (Double(withData) / Double(buckets) * 1000).rounded() / 1000
    }
}

public struct ReadingSeries: Codable, Sendable, Equatable {
    public var parameter: String
    public var unit: String
    public var points: [ReadingPoint]
    public var coverage: ReadingCoverage
    /// The status-marked readings, per bucket and mark, oldest first; absent when there are none.
    public var marked: [MarkedBucket]?
    public init(parameter: String, unit: String, points: [ReadingPoint], coverage: ReadingCoverage, marked: [MarkedBucket]? = nil) {
        self.parameter = parameter
        self.unit = unit
        self.points = points
        self.coverage = coverage
        self.marked = marked
    }
}

/// Water: a bucket's class from all its means (the worst assessed parameter decides, as `water.class`).
public struct BucketClass: Codable, Sendable, Equatable {
    public var t: String
    public var `class`: String
    public var factors: [String]
    public init(t: String, class waterClass: String, factors: [String]) {
        self.t = t
        self.class = waterClass
        self.factors = factors
    }
}

public struct ReadingsQueryReply: Codable, Sendable, Equatable {
    public var station: String
    public var name: String
    public var kind: String
    public var every: ReadingsInterval
    public var targetClass: String?
    public var series: [ReadingSeries]
    public var classes: [BucketClass]?

    enum CodingKeys: String, CodingKey {
        case station, name, kind, every, series, classes
        case targetClass = "target_class"
    }

    public init(
        station: String, name: String, kind: String, every: ReadingsInterval, targetClass: String?, series: [ReadingSeries],
        classes: [BucketClass]?
    ) {
        self.station = station
        self.name = name
        self.kind = kind
        self.every = every
        self.targetClass = targetClass
        self.series = series
        self.classes = classes
    }
}
