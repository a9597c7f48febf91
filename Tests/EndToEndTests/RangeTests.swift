import CaseTracking
import DubanTesting
import Foundation
import IndicatorIngest
import Messaging
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import Testing

/// Plausible ranges (docs/protocol.md, "Ranges"): every date, time and period a request carries is
/// judged before its handler runs, and a refusal is `invalid_argument` naming the field.
@Suite(.serialized) struct RangeTests {
    static func refusal<Body, Reply>(_ client: RPCClient, _ rpc: RPC<Body, Reply>, _ body: Body) async -> ErrorBody? {
        do {
            _ = try await client.call(rpc, body, as: Reply.self)
            return nil
        } catch { return error as? ErrorBody }
    }

    @Test func implausibleDatesTimesAndPeriodsAreRefusedWithTheFieldNamed() async throws {
        let dir = try TestSupport.temporaryDirectory()
        let clock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
        clock.freeze(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!)
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: dir, clock: clock)
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: dir, clock: clock)
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: dir, clock: clock) {
            $0.endpoints[.registry] = registry.endpoints
        }
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: dir, clock: clock) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.endpoints[.cases] = cases.endpoints
        }
        let office = try await RPCClient.connect(to: cases.endpoints.rpc, from: officeUnit)
        let notifyOffice = try await RPCClient.connect(to: notify.endpoints.rpc, from: officeUnit)
        let registryOffice = try await RPCClient.connect(to: registry.endpoints.rpc, from: officeUnit)
        let ingestOffice = try await RPCClient.connect(to: ingest.endpoints.rpc, from: officeUnit)
        let station = try await RPCClient.connect(to: ingest.endpoints.rpc, from: "六一桥自动站")

        // Case deadlines: outside 2000-01-01…2100-12-31 or not four plain digits of year.
        for deadline in ["0000-01-01", "9999-12-31", "+026-01-01", "1999-12-31", "2101-01-01", "2026-02-30"] {
            let refused = await Self.refusal(
                office, CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局", deadline: deadline))
            #expect(refused?.code == .invalidArgument && refused?.field == "body.deadline", "\(deadline): \(String(describing: refused))")
        }
        let opened = try await office.call(
            CaseTypes.open, CaseOpenRequest(source: .publicReport, title: "x", unit: "区城乡建设局", deadline: "2100-12-31"), as: Case.self)
        #expect(opened.deadline == "2100-12-31")
        // An imported row is judged by the same rule, with its index.
        let imported = try await office.call(
            CaseTypes.import,
            CaseImportRequest(cases: [
                .object([
                    "source": .string("public_report"), "title": .string("y"), "unit": .string("区城乡建设局"), "deadline": .string("9999-12-31"),
                ]),
                .object([
                    "source": .string("public_report"), "title": .string("z"), "unit": .string("区城乡建设局"), "deadline": .string("2027-01-31"),
                ]),
            ]), as: CaseImportReply.self)
        #expect(imported.rejected.map(\.field) == ["body.cases[0].deadline"])

        // Readings: not before 2000, at most an hour ahead of the service's clock; the rest of the batch stands.
        let readings = ["0001-01-01T00:00:00+08:00", "1900-06-01T08:00:00+08:00", "2026-11-20T11:30:00+08:00", "2026-11-20T10:50:00+08:00"]
            .map { SubmittedReading(station: "liuyiqiao", parameter: "nh3n", ts: $0, value: 0.5) }
        let submitted = try await station.call(
            IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(submitted.accepted == 1)
        #expect(submitted.rejected.map(\.field) == (0..<3).map { "body.readings[\($0)].ts" })
        #expect(submitted.rejected.allSatisfy { $0.code == .invalidArgument })

        // Ingest's own dates and periods.
        var refused = await Self.refusal(
            ingestOffice, IngestTypes.waterClass, WaterClassRequest(station: "liuyiqiao", from: "1900-01-01", to: "2026-11-20"))
        #expect(refused?.field == "body.from")
        refused = await Self.refusal(ingestOffice, IngestTypes.airAnnual, AirAnnualRequest(station: "liuyiqiao", year: 1))
        #expect(refused?.field == "body.year")
        refused = await Self.refusal(ingestOffice, IngestTypes.findingList, FindingListRequest(to: "9999-12-31"))
        #expect(refused?.field == "body.to")
        refused = await Self.refusal(
            ingestOffice, IngestTypes.indicatorReport,
            IndicatorReportRequest(indicator: "x", period: "-026", value: .number(1), source: "s"))
        #expect(refused?.field == "body.period")

        // Registry periods.
        refused = await Self.refusal(registryOffice, RegistryTypes.dispatchOverview, DispatchOverviewRequest(period: "-026-01"))
        #expect(refused?.code == .invalidArgument && refused?.field == "body.period")
        refused = await Self.refusal(registryOffice, RegistryTypes.progressList, ProgressListRequest(period: "0000-01"))
        #expect(refused?.field == "body.period")
        refused = await Self.refusal(registryOffice, SystemTypes.auditList, AuditListRequest(since: "0001-01-01"))
        #expect(refused?.field == "body.since")

        // Reports: the plan's years only (2024–2026 for the bundled plan; 2024 is 补报 before go-live and welcome).
        // Once notify's directory holds the plan (fetched at start), its years bound a report.
        #expect(
            await TestSupport.eventually {
                await Self.refusal(notifyOffice, NotifyTypes.reportGenerate, ReportGenerateRequest(kind: .monthly, period: "2023-12"))?.code
                    == .invalidArgument
            })
        for (kind, period) in [(ReportKind.monthly, "-026-01"), (.monthly, "2023-12"), (.annual, "2027"), (.quarterly, "2026-Q5")] {
            refused = await Self.refusal(notifyOffice, NotifyTypes.reportGenerate, ReportGenerateRequest(kind: kind, period: period))
            #expect(refused?.code == .invalidArgument && refused?.field == "body.period", "\(period): \(String(describing: refused))")
        }

        // Silences: times within range, and no longer than a year ahead.
        for (start, end, field) in [
            (nil, "9999-12-31T00:00:00+08:00", "body.ends_at"), (nil, "2028-01-01T00:00:00+08:00", "body.ends_at"),
            ("0001-01-01T00:00:00Z", "2026-12-01T00:00:00+08:00", "body.starts_at"),
        ] as [(String?, String, String)] {
            refused = await Self.refusal(
                notifyOffice, NotifyTypes.silenceSet,
                SilenceSetRequest(matchers: SilenceMatchers(unit: "区城乡建设局"), startsAt: start, endsAt: end, comment: "检修"))
            #expect(refused?.code == .invalidArgument && refused?.field == field, "\(end): \(String(describing: refused))")
        }
        let silence = try await notifyOffice.call(
            NotifyTypes.silenceSet,
            SilenceSetRequest(matchers: SilenceMatchers(unit: "区城乡建设局"), endsAt: "2027-06-01T00:00:00+08:00", comment: "检修"),
            as: Silence.self)
        #expect(silence.endsAt.hasPrefix("2027-06-01"))
        refused = await Self.refusal(notifyOffice, NotifyTypes.noticeList, NoticeListRequest(since: "1900-01-01T00:00:00Z"))
        #expect(refused?.field == "body.since")

        for client in [office, notifyOffice, registryOffice, ingestOffice, station] { await client.close() }
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }
}
