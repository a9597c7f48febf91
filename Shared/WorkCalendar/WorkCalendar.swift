import Foundation
import Schema

/// Working days as the State Council publishes them each year (国务院办公厅关于…部分节假日安排的通知):
/// the statutory holidays with the days joined to them, and the weekends worked instead (调休).
/// A due date that falls on a day off moves to the next working day. The bundled file covers
/// 2024–2027; a deployment replaces it with `holidaysFile` (docs/operations.md).
///
/// Days are `YYYY-MM-DD` strings in the district's calendar, as everywhere in the protocol; the
/// arithmetic is on civil days, so no time zone can shift a day.
public struct WorkCalendar: Codable, Sendable, Equatable {
    /// A run of days off named after its holiday (国庆节: 10-01 to 10-07).
    public struct Holiday: Codable, Sendable, Equatable {
        public var name: String
        public var from: String
        public var to: String
        public init(name: String, from: String, to: String) {
            self.name = name
            self.from = from
            self.to = to
        }
    }

    /// One year's notice.
    public struct Year: Codable, Sendable, Equatable {
        public var year: Int
        /// The notice it transcribes, or why it is not confirmed.
        public var notice: String
        /// False while the year's notice is not published: only the statutory days themselves are known.
        public var confirmed: Bool
        public var holidays: [Holiday]
        /// Weekend days worked instead of days joined to a holiday (调休上班).
        public var workdays: [String]
        public init(year: Int, notice: String, confirmed: Bool, holidays: [Holiday], workdays: [String]) {
            self.year = year
            self.notice = notice
            self.confirmed = confirmed
            self.holidays = holidays
            self.workdays = workdays
        }
    }

    public var title: String?
    public private(set) var years: [Year]
    /// Day → holiday name, and the 调休 working weekends; derived from `years`.
    private var daysOff: [String: String]
    private var weekendsWorked: Set<String>

    enum CodingKeys: String, CodingKey { case title, years }

    public init(title: String? = nil, years: [Year]) throws(WorkCalendarError) {
        self.title = title
        self.years = years.sorted { $0.year < $1.year }
        daysOff = [:]
        weekendsWorked = []
        try index(file: "（节假日安排）")
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        title = try container.decodeIfPresent(String.self, forKey: .title)
        years = try container.decode([Year].self, forKey: .years).sorted { $0.year < $1.year }
        daysOff = [:]
        weekendsWorked = []
        try index(file: "（节假日安排）")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(title, forKey: .title)
        try container.encode(years, forKey: .years)
    }

    /// Checks every day and builds the lookup: a holiday run within its year and in order, 调休
    /// days on weekends only, no day both off and worked, each year once.
    private mutating func index(file: String) throws(WorkCalendarError) {
        var seenYears: Set<Int> = []
        for (y, entry) in years.enumerated() {
            let path = "years[\(y)]"
            guard (1949...2200).contains(entry.year) else {
                throw WorkCalendarError(file: file, field: "\(path).year", message: "年份应在 1949 到 2200 之间（收到 \(entry.year)）")
            }
            guard seenYears.insert(entry.year).inserted else {
                throw WorkCalendarError(file: file, field: "\(path).year", message: "\(entry.year) 年重复出现")
            }
            for (h, holiday) in entry.holidays.enumerated() {
                let field = "\(path).holidays[\(h)]"
                guard !holiday.name.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw WorkCalendarError(file: file, field: "\(field).name", message: "须写明节日名称")
                }
                guard let from = Self.dayNumber(holiday.from) else {
                    throw WorkCalendarError(file: file, field: "\(field).from", message: "日期应为 YYYY-MM-DD（收到 \(holiday.from)）")
                }
                guard let to = Self.dayNumber(holiday.to) else {
                    throw WorkCalendarError(file: file, field: "\(field).to", message: "日期应为 YYYY-MM-DD（收到 \(holiday.to)）")
                }
                guard from <= to, to - from < 15 else {
                    throw WorkCalendarError(
                        file: file, field: field, message: "放假起止日期应先后有序且不超过 15 天（\(holiday.from) 至 \(holiday.to)）")
                }
                // A run may begin in the year before (元旦 with the last days of December), never elsewhere.
                guard holiday.to.hasPrefix("\(entry.year)-") || holiday.from.hasPrefix("\(entry.year)-") else {
                    throw WorkCalendarError(file: file, field: field, message: "放假日期不在 \(entry.year) 年内（\(holiday.from) 至 \(holiday.to)）")
                }
                for number in from...to {
                    let day = Self.day(number)
                    if daysOff[day] != nil {
                        throw WorkCalendarError(file: file, field: field, message: "\(day) 重复列为放假日")
                    }
                    daysOff[day] = holiday.name
                }
            }
            for (w, day) in entry.workdays.enumerated() {
                let field = "\(path).workdays[\(w)]"
                guard let number = Self.dayNumber(day) else {
                    throw WorkCalendarError(file: file, field: field, message: "日期应为 YYYY-MM-DD（收到 \(day)）")
                }
                guard Self.weekday(number) >= 6 else {
                    throw WorkCalendarError(file: file, field: field, message: "\(day) 不是周末，无需列为调休上班日")
                }
                weekendsWorked.insert(day)
            }
        }
        if let both = weekendsWorked.sorted().first(where: { daysOff[$0] != nil }) {
            throw WorkCalendarError(file: file, field: "years", message: "\(both) 既列为放假日又列为调休上班日")
        }
    }

    // MARK: Loading

    /// The bundled calendar (2024–2027).
    public static let bundled: WorkCalendar = {
        guard let path = bundledPath else { fatalError("the bundled holiday calendar is missing from the build") }
        do {
            return try load(path: path)
        } catch {
            fatalError("the bundled holiday calendar is broken: \(error)")
        }
    }()

    public static var bundledPath: String? {
        Bundle.module.path(forResource: "holidays-cn-2024-2027", ofType: "json")
    }

    /// Reads a calendar file (the bundled one's format, docs/operations.md); every problem is one
    /// error naming the file and the field.
    public static func load(path: String) throws(WorkCalendarError) -> WorkCalendar {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkCalendarError(file: path, field: nil, message: "无法读取节假日文件")
        }
        return try parse(data, file: path)
    }

    public static func parse(_ data: Data, file: String) throws(WorkCalendarError) -> WorkCalendar {
        struct Raw: Decodable {
            var title: String?
            var years: [Year]
        }
        let raw: Raw
        do {
            raw = try JSONDecoder().decode(Raw.self, fromUntrusted: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw WorkCalendarError(file: file, field: Self.path(context.codingPath + [key]), message: "缺少字段 \(key.stringValue)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw WorkCalendarError(file: file, field: Self.path(context.codingPath), message: "类型不对")
        } catch let DecodingError.valueNotFound(_, context) {
            throw WorkCalendarError(file: file, field: Self.path(context.codingPath), message: "不能为空")
        } catch {
            throw WorkCalendarError(file: file, field: nil, message: "不是有效的 JSON")
        }
        var calendar: WorkCalendar
        do {
            calendar = try WorkCalendar(title: raw.title, years: raw.years)
        } catch {
            throw WorkCalendarError(file: file, field: error.field, message: error.message)
        }
        calendar.title = raw.title
        return calendar
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
    }

    // MARK: Days

    /// Whether people work on `day`: a 调休 weekend is a working day, a holiday is not, nor is any
    /// other weekend. An unreadable day is not a working day.
    public func isWorkingDay(_ day: String) -> Bool {
        guard let number = Self.dayNumber(day) else { return false }
        if weekendsWorked.contains(day) { return true }
        if daysOff[day] != nil { return false }
        return Self.weekday(number) <= 5
    }

    /// The holiday `day` belongs to, if it is one.
    public func holiday(on day: String) -> String? { daysOff[day] }

    /// Whether the year's notice is transcribed (false for a year with the statutory days only, and
    /// for a year the file does not cover, where only weekends are days off).
    public func isConfirmed(year: Int) -> Bool { years.first { $0.year == year }?.confirmed ?? false }

    /// `day` itself when people work on it, else the next day they do (a due date on a day off moves there).
    public func nextWorkingDay(onOrAfter day: String) -> String {
        guard var number = Self.dayNumber(day) else { return day }
        // The longest run of days off the State Council has published is 9 days; 60 is a safe stop.
        for _ in 0..<60 {
            let candidate = Self.day(number)
            if isWorkingDay(candidate) { return candidate }
            number += 1
        }
        return day
    }

    // MARK: Civil-day arithmetic

    /// Days since 1970-01-01 of a valid `YYYY-MM-DD` (proleptic Gregorian), else nil.
    public static func dayNumber(_ day: String) -> Int? {
        let parts = day.split(separator: "-", omittingEmptySubsequences: false)
        guard day.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1, d <= daysIn(y, m)
        else { return nil }
        return daysFromCivil(y, m, d)
    }

    /// The `YYYY-MM-DD` of a day number.
    public static func day(_ number: Int) -> String {
        let (y, m, d) = civilFromDays(number)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// 1 (Monday) … 7 (Sunday).
    public static func weekday(_ number: Int) -> Int {
        // 1970-01-01 was a Thursday.
        ((number % 7 + 7) % 7 + 3) % 7 + 1
    }

    public static func addingDays(_ days: Int, to day: String) -> String? {
        dayNumber(day).map { Self.day($0 + days) }
    }

    /// The same day `months` later, or the month's last day when it has fewer (11-30 + 3 → 02-28).
    public static func addingMonths(_ months: Int, to day: String) -> String? {
        guard let number = dayNumber(day) else { return nil }
        let (y, m, d) = civilFromDays(number)
        let total = y * 12 + (m - 1) + months
        let (year, month) = (total / 12, total % 12 + 1)
        return String(format: "%04d-%02d-%02d", year, month, min(d, daysIn(year, month)))
    }

    static func daysIn(_ y: Int, _ m: Int) -> Int { Timestamp.daysInMonth(y, m) }

    // The proleptic Gregorian day arithmetic is Timestamp's (one implementation for the system).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int { Timestamp.daysFromCivil(year, month, day) }
    static func civilFromDays(_ days: Int) -> (Int, Int, Int) { Timestamp.civil(fromDays: days) }
}

/// A holiday file that cannot be used: which file, which field, what is wrong (in Chinese, for the
/// people who edit the file).
public struct WorkCalendarError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var field: String?
    public var message: String

    public init(file: String, field: String?, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String { "节假日文件 \(file)：\(field.map { "\($0)：" } ?? "")\(message)" }
}
