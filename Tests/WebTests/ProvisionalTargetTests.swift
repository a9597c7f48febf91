import DubanTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Messaging
import Schema
import Testing
import WebConsole

/// The dashboard's target table says a provisional value is not judged, and why.
@Suite(.serialized) struct ProvisionalTargetTests {
    @Test func aPM25MeanWithTooFewValidDaysShowsAsNotJudged() async throws {
        let harness = try await WebHarness.start()
        let ingest = try await harness.rpc(.ingest, from: "城中区空气自动站")
        // January only (31 valid days): the year's mean cannot be valid yet.
        let readings = (1...31).flatMap { day in
            (0..<20).map {
                SubmittedReading(
                    station: "chengzhong_air", parameter: "pm25", ts: String(format: "2026-01-%02dT%02d:00:00+08:00", day, $0), value: 20)
            }
        }
        _ = try await ingest.call(IngestTypes.readingSubmit, ReadingSubmitRequest(readings: readings), as: ReadingSubmitReply.self)
        #expect(
            try await TestSupport.eventually {
                try await ingest.call(IngestTypes.indicatorGet, IndicatorGetRequest(id: "pm25_annual_mean"), as: Indicator.self)
                    .provisional == true
            })
        await ingest.close()
        try await harness.console.application().test(.live) { client in
            let office = Browser(client)
            _ = try await office.login("office1")
            let page = String(buffer: try await office.get("/").body)
            #expect(page.contains("暂不评价</span>") && page.contains("title=\"有效天数不足，暂不评价"))
        }
        try await harness.stop()
    }
}
