import Foundation

/// Plausible ranges for every date, time and period a request carries (docs/protocol.md, "Ranges").
/// A date that parses is not yet a date the district can mean: `0000-01-01`, `9999-12-31` or a
/// reading from 1900 are typing or clock errors, and stored they would make a case overdue at once
/// or an alert nobody can clear. Each kind of value is judged here, once, and every refusal names
/// its field.
public enum PlausibleRange {
    /// The first and last calendar years any date may fall in.
    public static let years: ClosedRange<Int> = 2000...2100
    /// How far ahead of the service's clock a reading may be dated (a station's clock running fast).
    public static let readingLead: TimeInterval = 3600
    /// How far ahead a silence may reach: longer than that is not a silence but a channel switched off.
    public static let silenceHorizonDays = 366

    /// A calendar date `YYYY-MM-DD`, four ASCII digits of year within `years`.
    public static func date(_ text: String, field: String) throws(ErrorBody) {
        guard let (y, m, d) = civilDate(text) else {
            throw .invalidArgument("\(lastName(field)) 应为日期，格式 YYYY-MM-DD（收到 \(ErrorBody.quote(text))）", field: field)
        }
        guard years.contains(y), d <= Timestamp.daysInMonth(y, m) else {
            throw .invalidArgument("\(lastName(field)) \(ErrorBody.quote(text)) 超出可接受的范围（\(rangeText)）", field: field)
        }
    }

    /// An RFC 3339 time with an offset, within `years` (as the district's calendar reads it).
    @discardableResult
    public static func instant(_ text: String, field: String) throws(ErrorBody) -> Date {
        guard text.utf8.prefix(4).allSatisfy({ (48...57).contains($0) }), let instant = Timestamp.parse(text) else {
            throw .invalidArgument("\(lastName(field)) 应为带时区偏移的 RFC 3339 时间（收到 \(ErrorBody.quote(text))）", field: field)
        }
        guard years.contains(Timestamp.districtCivil(instant).year) else {
            throw .invalidArgument("\(lastName(field)) \(ErrorBody.quote(text)) 超出可接受的范围（\(rangeText)）", field: field)
        }
        return instant
    }

    /// A day still ahead or today (a new deadline, a reply's due day): a plausible date not before `today`.
    public static func dayFromToday(_ text: String, today: String, field: String) throws(ErrorBody) {
        try date(text, field: field)
        guard text >= today else { throw .invalidArgument("\(lastName(field)) \(text) 已过（今天是 \(today)）", field: field) }
    }

    /// A day that has happened (a visit, an interview): a plausible date not after `today`.
    public static func dayUpToToday(_ text: String, today: String, field: String) throws(ErrorBody) {
        try date(text, field: field)
        guard text <= today else { throw .invalidArgument("\(lastName(field)) \(text) 晚于今天（\(today)）", field: field) }
    }

    /// A date `YYYY-MM-DD` or an RFC 3339 time (the query filters that take either).
    public static func dateOrInstant(_ text: String, field: String) throws(ErrorBody) {
        if text.utf8.count == 10 { try date(text, field: field) } else { try instant(text, field: field) }
    }

    /// A reading's time: not before 2000 and no more than `readingLead` ahead of `now`.
    @discardableResult
    public static func reading(_ text: String, now: Date, field: String) throws(ErrorBody) -> Date {
        let time = try instant(text, field: field)
        guard time.timeIntervalSince(now) <= readingLead else {
            throw .invalidArgument("\(lastName(field)) \(ErrorBody.quote(text)) 晚于服务当前时间一小时以上", field: field)
        }
        return time
    }

    /// The end of a silence: a time within `years`, and no more than `silenceHorizonDays` after `now`.
    public static func silenceEnd(_ text: String, now: Date, field: String) throws(ErrorBody) {
        let end = try instant(text, field: field)
        guard end.timeIntervalSince(now) <= Double(silenceHorizonDays) * 86_400 else {
            throw .invalidArgument("静默最长 \(silenceHorizonDays) 天（\(lastName(field)) 收到 \(ErrorBody.quote(text))）", field: field)
        }
    }

    /// A calendar year within `years`.
    public static func year(_ year: Int, field: String) throws(ErrorBody) {
        guard years.contains(year) else {
            throw .invalidArgument("\(lastName(field)) \(year) 超出可接受的范围（\(rangeText)）", field: field)
        }
    }

    /// The grammar of a reporting period.
    public enum PeriodForm: Sendable {
        case year, quarter, month
    }

    /// A period `YYYY`, `YYYY-Qn` or `YYYY-MM` (those `forms` allow), its year within `years`;
    /// returns the year and the form found.
    @discardableResult
    public static func period(_ text: String, field: String, forms: Set<PeriodForm> = [.year, .quarter, .month]) throws(ErrorBody)
        -> (year: Int, form: PeriodForm)
    {
        let b = Array(text.utf8)
        let digits = { (range: Range<Int>) in range.allSatisfy { $0 < b.count && (48...57).contains(b[$0]) } }
        var found: (Int, PeriodForm)?
        if b.count >= 4, digits(0..<4) {
            let y = Int(String(decoding: b[0..<4], as: UTF8.self))!
            if b.count == 4 {
                found = (y, .year)
            } else if b.count == 7, b[4] == UInt8(ascii: "-"), b[5] == UInt8(ascii: "Q"), (49...52).contains(b[6]) {
                found = (y, .quarter)
            } else if b.count == 7, b[4] == UInt8(ascii: "-"), digits(5..<7),
                (1...12).contains(Int(String(decoding: b[5..<7], as: UTF8.self))!)
            {
                found = (y, .month)
            }
        }
        guard let (y, form) = found, forms.contains(form) else {
            let shapes = [(PeriodForm.year, "YYYY"), (.quarter, "YYYY-Qn"), (.month, "YYYY-MM")].filter { forms.contains($0.0) }.map(\.1)
            throw .invalidArgument(
                "\(lastName(field)) 应为 \(shapes.joined(separator: "、"))（收到 \(ErrorBody.quote(text))）", field: field)
        }
        guard years.contains(y) else {
            throw .invalidArgument("\(lastName(field)) \(ErrorBody.quote(text)) 超出可接受的范围（\(rangeText)）", field: field)
        }
        return (y, form)
    }

    /// `YYYY-MM-DD` read strictly: ASCII digits only (no sign, no fifth year digit).
    static func civilDate(_ text: String) -> (Int, Int, Int)? {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
            [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ (48...57).contains(b[$0]) })
        else { return nil }
        func number(_ range: Range<Int>) -> Int { Int(String(decoding: b[range], as: UTF8.self))! }
        let (y, m, d) = (number(0..<4), number(5..<7), number(8..<10))
        guard (1...12).contains(m), d >= 1 else { return nil }
        return (y, m, d)
    }

    private static var rangeText: String { "\(years.lowerBound)-01-01 至 \(years.upperBound)-12-31" }

    /// `deadline` of `body.cases[3].deadline`: the name a person typed.
    private static func lastName(_ field: String) -> String {
        String(field.split(separator: ".").last ?? Substring(field))
    }
}

/// A request body whose dates, times and periods are judged before its handler runs (the server
/// calls this for every type whose body conforms, with the service's clock).
public protocol RangeChecked {
    func checkRanges(now: Date, field: String) throws(ErrorBody)
}

// Every request body that carries a date, time or period, judged in one place each.

extension CaseOpenRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let deadline { try PlausibleRange.date(deadline, field: "\(field).deadline") }
    }
}

extension IndicatorReportRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        try PlausibleRange.period(period, field: "\(field).period")
    }
}

extension WaterClassRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        try PlausibleRange.dateOrInstant(from, field: "\(field).from")
        try PlausibleRange.dateOrInstant(to, field: "\(field).to")
    }
}

extension AirAnnualRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        try PlausibleRange.year(year, field: "\(field).year")
    }
}

extension FindingListRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let from { try PlausibleRange.dateOrInstant(from, field: "\(field).from") }
        if let to { try PlausibleRange.dateOrInstant(to, field: "\(field).to") }
    }
}

extension NoticeListRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let since { try PlausibleRange.dateOrInstant(since, field: "\(field).since") }
        if let until { try PlausibleRange.dateOrInstant(until, field: "\(field).until") }
    }
}

extension SilenceSetRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let startsAt { try PlausibleRange.instant(startsAt, field: "\(field).starts_at") }
        try PlausibleRange.silenceEnd(endsAt, now: now, field: "\(field).ends_at")
    }
}

extension ReportGenerateRequest: RangeChecked {
    /// The form the kind asks for; the plan's years are the notify handler's to judge (it knows the plan).
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        let form: PlausibleRange.PeriodForm
        switch kind {
        case .monthly: form = .month
        case .quarterly: form = .quarter
        case .annual: form = .year
        case .closing:
            // Two years, `YYYY-YYYY`: each a plausible year, the first not after the last.
            let years = period.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard years.count == 2, years.allSatisfy({ $0.count == 4 }) else {
                throw .invalidArgument("收官报告的期间应为 YYYY-YYYY（方案起止年度），收到 \(ErrorBody.quote(period))", field: "\(field).period")
            }
            let first = try PlausibleRange.period(years[0], field: "\(field).period", forms: [.year]).year
            let last = try PlausibleRange.period(years[1], field: "\(field).period", forms: [.year]).year
            guard first <= last else { throw .invalidArgument("收官报告的起始年度晚于结束年度", field: "\(field).period") }
            return
        }
        try PlausibleRange.period(period, field: "\(field).period", forms: [form])
    }
}

extension ProgressReportRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        try PlausibleRange.period(period, field: "\(field).period", forms: [.month])
    }
}

extension ProgressListRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let period { try PlausibleRange.period(period, field: "\(field).period", forms: [.month]) }
    }
}

extension DispatchOverviewRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        try PlausibleRange.period(period, field: "\(field).period", forms: [.month])
    }
}

extension AuditListRequest: RangeChecked {
    public func checkRanges(now: Date, field: String) throws(ErrorBody) {
        if let since { try PlausibleRange.dateOrInstant(since, field: "\(field).since") }
        if let until { try PlausibleRange.dateOrInstant(until, field: "\(field).until") }
    }
}

extension String {
    /// Nil for an empty string (an optional text a person left blank).
    public var nonEmpty: String? { isEmpty ? nil : self }
}
