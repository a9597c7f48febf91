import Foundation
import PlanFormat
import Schema
import Testing
import WorkCalendar

@testable import TaskRegistry

/// The holiday calendar shipped as data (the State Council's notices for 2024–2026, 2027's
/// statutory days), and due dates that move off weekends and holidays.
@Suite struct WorkCalendarTests {
    let calendar = WorkCalendar.bundled

    @Test func nationalDay2026IsOffAndTheMakeUpSaturdayAndSundayAreWorked() {
        // 国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。
        for day in 1...7 {
            let text = String(format: "2026-10-%02d", day)
            #expect(!calendar.isWorkingDay(text), "\(text)")
            #expect(calendar.holiday(on: text) == "国庆节")
        }
        #expect(calendar.isWorkingDay("2026-10-08"))
        #expect(calendar.isWorkingDay("2026-09-20"), "a 调休 Sunday is a working day")
        #expect(calendar.isWorkingDay("2026-10-10"), "a 调休 Saturday is a working day")
        #expect(!calendar.isWorkingDay("2026-10-11"), "an ordinary Sunday is not")
        #expect(calendar.nextWorkingDay(onOrAfter: "2026-10-05") == "2026-10-08")
        #expect(calendar.nextWorkingDay(onOrAfter: "2026-10-10") == "2026-10-10")
        #expect(calendar.nextWorkingDay(onOrAfter: "2026-10-11") == "2026-10-12")
    }

    @Test func eachPublishedYearMatchesItsNotice() {
        // 2024 (国办发明电〔2023〕7号): 春节 2月10日至17日，2月4日（星期日）、2月18日（星期日）上班.
        #expect((10...17).allSatisfy { !calendar.isWorkingDay(String(format: "2024-02-%02d", $0)) })
        #expect(calendar.isWorkingDay("2024-02-04") && calendar.isWorkingDay("2024-02-18"))
        #expect(calendar.isWorkingDay("2024-05-11") && calendar.isWorkingDay("2024-10-12") && calendar.isWorkingDay("2024-09-14"))
        #expect(calendar.holiday(on: "2024-06-10") == "端午节")
        // 2025 (国办发明电〔2024〕12号): 国庆节、中秋节 10月1日至8日，9月28日（周日）、10月11日（周六）上班.
        #expect(calendar.holiday(on: "2025-10-08") == "国庆节、中秋节")
        #expect(calendar.isWorkingDay("2025-09-28") && calendar.isWorkingDay("2025-10-11"))
        #expect(calendar.holiday(on: "2025-01-28") == "春节" && calendar.isWorkingDay("2025-01-26"))
        #expect(calendar.isWorkingDay("2025-01-02"), "元旦 2025 is one day, no 调休")
        // 2026: 春节 2月15日至23日，2月14日（周六）、2月28日（周六）上班; 元旦 1月1日至3日，1月4日（周日）上班.
        #expect(calendar.nextWorkingDay(onOrAfter: "2026-02-15") == "2026-02-24")
        #expect(calendar.isWorkingDay("2026-02-14") && calendar.isWorkingDay("2026-02-28") && calendar.isWorkingDay("2026-01-04"))
        #expect(calendar.nextWorkingDay(onOrAfter: "2026-05-01") == "2026-05-06")
        #expect(calendar.isWorkingDay("2026-05-09"))
        #expect([2024, 2025, 2026].allSatisfy { calendar.isConfirmed(year: $0) })
    }

    @Test func year2027HasItsStatutoryDaysOnlyAndSaysItIsUnconfirmed() {
        #expect(!calendar.isConfirmed(year: 2027))
        #expect(calendar.holiday(on: "2027-02-05") == "春节" && calendar.holiday(on: "2027-02-08") == "春节")
        #expect(calendar.holiday(on: "2027-10-01") == "国庆节" && calendar.isWorkingDay("2027-10-04"))
        // Beyond the file: weekends only.
        #expect(!calendar.isConfirmed(year: 2028))
        #expect(calendar.isWorkingDay("2028-10-02") && !calendar.isWorkingDay("2028-10-01"))
    }

    @Test func dayArithmeticHoldsAcrossMonthsLeapYearsAndWeekdays() {
        #expect(WorkCalendar.addingMonths(3, to: "2026-07-05") == "2026-10-05")
        #expect(WorkCalendar.addingMonths(3, to: "2026-11-30") == "2027-02-28")
        #expect(WorkCalendar.addingMonths(3, to: "2023-11-30") == "2024-02-29")
        #expect(WorkCalendar.addingDays(15, to: "2026-10-09") == "2026-10-24")
        #expect(WorkCalendar.dayNumber("2026-02-29") == nil && WorkCalendar.dayNumber("2026-13-01") == nil)
        #expect(WorkCalendar.dayNumber("1970-01-01") == 0)
        // 2026-11-30 is a Monday, 2026-10-10 a Saturday.
        #expect(WorkCalendar.weekday(WorkCalendar.dayNumber("2026-11-30")!) == 1)
        #expect(WorkCalendar.weekday(WorkCalendar.dayNumber("2026-10-10")!) == 6)
    }

    @Test func aBrokenFileIsOneErrorNamingTheField() throws {
        func problem(_ json: String) -> WorkCalendarError? {
            do {
                _ = try WorkCalendar.parse(Data(json.utf8), file: "holidays.json")
                return nil
            } catch { return error }
        }
        let weekday = problem(#"{"years": [{"year": 2026, "notice": "x", "confirmed": true, "holidays": [], "workdays": ["2026-10-09"]}]}"#)
        #expect(weekday?.field == "years[0].workdays[0]" && weekday?.description.contains("不是周末") == true)
        let badDay = problem(
            #"{"years": [{"year": 2026, "notice": "x", "confirmed": true, "#
                + #""holidays": [{"name": "国庆节", "from": "2026-10-01", "to": "2026-10-32"}], "workdays": []}]}"#)
        #expect(badDay?.field == "years[0].holidays[0].to")
        let missing = problem(#"{"years": [{"year": 2026, "confirmed": true, "holidays": [], "workdays": []}]}"#)
        #expect(missing?.field == "years[0].notice", "\(String(describing: missing))")
        #expect(problem("not json")?.message == "不是有效的 JSON")
        #expect(throws: WorkCalendarError.self) { try WorkCalendar.load(path: "/nonexistent/holidays.json") }
        // The bundled file is itself a valid file.
        #expect(try WorkCalendar.load(path: try #require(WorkCalendar.bundledPath)) == calendar)
    }

    /// Monthly reports are due on the dispatch day, moved to the next working day: October 2026's
    /// 5th is in the National Day holiday, so September's reports are due on the 8th.
    @Test func theMonthlyDueDayMovesOffAHoliday() throws {
        var plan = try PlanLoader.load(path: try #require(PlanLoader.bundledPlanPath))
        plan.supervisionStart = "2024-01-01"
        #expect(TaskStatusRules.reportsDueDay(plan: plan, dispatchMonth: Month("2026-10")!) == "2026-10-08")
        #expect(TaskStatusRules.reportsDueDay(plan: plan, dispatchMonth: Month("2026-11")!) == "2026-11-05")
        // 2026-12-05 is a Saturday: Monday the 7th.
        #expect(TaskStatusRules.reportsDueDay(plan: plan, dispatchMonth: Month("2026-12")!) == "2026-12-07")
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2026-10-08T20:00:00+08:00")) == Month("2026-08"))
        #expect(TaskStatusRules.lastDueMonth(plan: plan, now: date("2026-10-09T00:00:00+08:00")) == Month("2026-09"))
        let overview = RegistryService.dispatchOverview(plan: plan, month: Month("2026-09")!, reports: [])
        #expect(overview.due == "2026-10-08")
    }
}
