import Foundation
import Schema
import Yams

/// A monitoring station as configured.
public struct StationConfig: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var kind: String
    public var waterBody: String?
    public var targetClass: String?
    public var expectedIntervalMinutes: Double?
    public var jumpFactor: Double?
    public var jumpFloor: Double?
    public var parameters: [String]
    /// Water: a reading at or above this share of its target class's limit is a warning before the
    /// breach (`warning_share`, 0.8 when unset; 0 turns the warning off).
    public var warningShare: Double?
    /// Water: a 7-day trend projected to cross the target limit within this many days is a warning
    /// (`trend_horizon_days`, 7 when unset; 0 turns it off).
    public var trendHorizonDays: Double?
    /// 汛期: between these month-days (`06-01` to `09-30`, inclusive) readings are expected every
    /// `expected_interval_minutes` of the season instead, so silence is noticed sooner.
    public var floodSeason: FloodSeason?

    enum CodingKeys: String, CodingKey {
        case id, name, kind, parameters
        case waterBody = "water_body"
        case targetClass = "target_class"
        case expectedIntervalMinutes = "expected_interval_minutes"
        case jumpFactor = "jump_factor"
        case jumpFloor = "jump_floor"
        case warningShare = "warning_share"
        case trendHorizonDays = "trend_horizon_days"
        case floodSeason = "flood_season"
    }

    /// The interval readings are expected at on a district day (`YYYY-MM-DD`): the flood season's
    /// within it, else the station's.
    public func expectedInterval(on day: String) -> Double? {
        if let season = floodSeason, season.contains(day) { return season.expectedIntervalMinutes }
        return expectedIntervalMinutes
    }

    /// The share of the limit that warns (0.8 unless configured).
    public var warningShareOrDefault: Double { warningShare ?? 0.8 }
    /// Days ahead a trend warns (7 unless configured).
    public var trendHorizonOrDefault: Double { trendHorizonDays ?? 7 }

    public var isLake: Bool { waterBody == "lake" || waterBody == "reservoir" }

    public var station: Station { Station(id: id, name: name, kind: kind, parameters: parameters, targetClass: targetClass) }
}

/// A station's flood season (汛期) by month-day, with its denser sampling.
public struct FloodSeason: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var expectedIntervalMinutes: Double

    enum CodingKeys: String, CodingKey {
        case from, to
        case expectedIntervalMinutes = "expected_interval_minutes"
    }

    public init(from: String, to: String, expectedIntervalMinutes: Double) {
        self.from = from
        self.to = to
        self.expectedIntervalMinutes = expectedIntervalMinutes
    }

    /// Whether a day falls in the season (a season may run over the new year: `11-01` to `02-28`).
    public func contains(_ day: String) -> Bool {
        let monthDay = String(day.suffix(5))
        return from <= to ? (from...to).contains(monthDay) : monthDay >= from || monthDay <= to
    }

    static func isMonthDay(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let m = Int(parts[0]), let d = Int(parts[1]) else { return false }
        return (1...12).contains(m) && (1...31).contains(d)
    }
}

public enum StationsFile {
    struct File: Codable { var stations: [StationConfig] }

    public static func load(path: String) throws -> [StationConfig] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let stations = try YAMLDecoder().decode(File.self, from: text).stations
        var seen: Set<String> = []
        for station in stations {
            guard seen.insert(station.id).inserted else { throw ConfigurationErrorText("\(path): station \(station.id) is listed twice") }
            guard ["water", "air"].contains(station.kind) else {
                throw ConfigurationErrorText("\(path): station \(station.id): kind must be water or air")
            }
            let known = station.kind == "water" ? ParameterID.water : ParameterID.air
            for parameter in station.parameters where !known.contains(parameter) {
                throw ConfigurationErrorText("\(path): station \(station.id): unknown parameter \(parameter)")
            }
            if let season = station.floodSeason {
                guard FloodSeason.isMonthDay(season.from), FloodSeason.isMonthDay(season.to), season.expectedIntervalMinutes > 0 else {
                    throw ConfigurationErrorText(
                        "\(path): station \(station.id): flood_season needs from and to as MM-DD and expected_interval_minutes above 0")
                }
            }
            if let interval = station.expectedIntervalMinutes, interval <= 0 {
                throw ConfigurationErrorText("\(path): station \(station.id): expected_interval_minutes must be above 0")
            }
            if let share = station.warningShare, !(0...1).contains(share) {
                throw ConfigurationErrorText("\(path): station \(station.id): warning_share must be between 0 and 1")
            }
            if let days = station.trendHorizonDays, !(0...90).contains(days) {
                throw ConfigurationErrorText("\(path): station \(station.id): trend_horizon_days must be between 0 and 90")
            }
            if let target = station.targetClass, WaterClassLabels.all.firstIndex(of: target) == nil {
                throw ConfigurationErrorText("\(path): station \(station.id): target_class \(target) is not a GB 3838 class")
            }
        }
        return stations
    }

    public static func bundledPath() -> String? { Bundle.module.path(forResource: "stations", ofType: "yaml") }
}

enum WaterClassLabels {
    static let all = ["I", "II", "III", "IV", "V", "劣V"]
}

/// A configuration file that cannot be used.
public struct ConfigurationErrorText: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
