import Foundation
import HTTPTypes
import Hummingbird
import IndicatorIngest
import Schema

/// 监测: each station's daily means as the services judged them (`readings.query`), drawn on the
/// server as SVG (no script, no chart library), with the target class's limit as a line and each
/// point coloured by its class; the sections' class month by month; open 超标 and 预警 notices, and
/// the findings ingest recorded.
extension WebConsole {
    /// The national standards the ingest service judges with: the same bundled file, for the limit lines.
    static let standards: Standards? = try? Standards.bundled()

    func addMonitoringRoutes(to router: Router<WebContext>) {
        router.get("/monitoring") { request, context in try await self.monitoringPage(request, context) }
    }

    /// GB 3838's classes and the colours the page gives them (I, II blue; III green; IV yellow; V orange; 劣V red).
    static let classColours: [String: String] = [
        "I": "#2166ac", "II": "#4393c3", "III": "#1f7a5c", "IV": "#c99a06", "V": "#e66101", "劣V": "#b3261e",
    ]

    static func classTag(_ waterClass: String, target: String?) -> String {
        let met = target.flatMap { target in
            WaterClass(label: waterClass).flatMap { value in WaterClass(label: target).map { value <= $0 } }
        }
        let kind = met == true ? "met" : met == false ? "critical" : ""
        return "<span class=\"tag \(kind)\">\(esc(waterClass))类</span>"
    }

    func monitoringPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let from = wireFrom(session.user)
        let requested = request.uri.queryParameters["to"].map(String.init)
        let to = requested.flatMap { Self.parseDay($0) != nil ? $0 : nil } ?? Self.today()
        let end = Self.parseDay(to)!
        let start = Self.districtFormatter("yyyy-MM-dd").string(from: end.addingTimeInterval(-29 * 86_400))
        let yearStart = String(to.prefix(4)) + "-01-01"
        let unitFilter = session.user.role == .unit ? session.user.unit : nil

        let stations = try await gateway.callAll(.ingest, IngestTypes.stationList, Empty(), from: from)
        async let alerts = attempt {
            try await gateway.callAll(
                .notify, NotifyTypes.noticeList, NoticeListRequest(unit: unitFilter, kind: .indicatorBreach, state: .open), from: from)
        }
        var html = "<h1>监测</h1><form method=\"get\" action=\"/monitoring\" class=\"filters\">"
        html += "<label for=\"to\">截至日期（YYYY-MM-DD）</label><input type=\"text\" id=\"to\" name=\"to\" value=\"\(esc(to))\">"
        html += "<button type=\"submit\">查看</button></form>"
        html += "<p class=\"muted\">\(esc(start)) 至 \(esc(to)) 的日均值（城中区时间）；水质按 GB 3838-2002 单因子评价，虚线为目标类别的限值。</p>"
        html += card("超标与预警（未解除）", body: await alerts.map(Self.alertList))

        for station in stations {
            async let daily = attempt {
                try await gateway.call(
                    .ingest, ReadingsTypes.query, ReadingsQueryRequest(station: station.id, from: start, to: to, every: .day), from: from)
            }
            let classed = station.kind == "water" && station.targetClass != nil
            async let monthly = attempt { () async throws -> ReadingsQueryReply? in
                guard classed else { return nil }
                return try await gateway.call(
                    .ingest, ReadingsTypes.query, ReadingsQueryRequest(station: station.id, from: yearStart, to: to, every: .month),
                    from: from)
            }
            async let findings = attempt {
                try await gateway.callAll(
                    .ingest, IngestTypes.findingList, FindingListRequest(station: station.id, from: start, to: to), from: from)
            }
            let days = Self.days(from: start, to: to)
            var section = ""
            switch await daily {
            case .success(let reply):
                section += Self.coverageLine(reply)
                if case .success(let months?) = await monthly {
                    section += Self.monthlyClasses(months, year: String(to.prefix(4)))
                }
                let charted = reply.series.filter { !$0.points.isEmpty || $0.marked?.isEmpty == false }
                if charted.isEmpty { section += "<p class=\"muted\">这 30 天没有监测数据</p>" }
                section += "<div class=\"charts\">"
                for series in charted {
                    section += Self.chart(series, days: days, targetClass: reply.targetClass, kind: reply.kind, day: to)
                }
                section += "</div>"
            case .failure(let error):
                logger.warning("web: readings.query failed", metadata: ["station": "\(station.id)", "error": "\(error)"])
                section += "<p class=\"error\">暂时无法取得监测数据</p>"
            }
            if case .success(let list) = await findings, !list.isEmpty {
                section += "<h3>超标记录</h3><ul class=\"feed\">"
                for finding in list.suffix(10).reversed() {
                    section += "<li>\(esc(finding.day)) \(esc(finding.message))</li>"
                }
                section += "</ul>"
            }
            let target = station.targetClass.map { "（目标 \(esc($0)) 类）" } ?? ""
            html +=
                "<section class=\"card station\" id=\"station-\(esc(station.id))\">"
                + "<h2>\(esc(station.name))\(target)</h2>\(section)</section>"
        }
        if stations.isEmpty { html += "<p class=\"muted\">尚未配置监测站点</p>" }
        return htmlResponse(Page(title: "监测", body: html, session: session).render())
    }

    static func parseDay(_ text: String) -> Date? {
        guard text.count == 10 else { return nil }
        return districtFormatter("yyyy-MM-dd").date(from: text)
    }

    static func days(from start: String, to end: String) -> [String] {
        guard var day = parseDay(start), let last = parseDay(end) else { return [] }
        var out: [String] = []
        let formatter = districtFormatter("yyyy-MM-dd")
        while day <= last, out.count < 400 {
            out.append(formatter.string(from: day))
            day = day.addingTimeInterval(86_400)
        }
        return out
    }

    static func alertList(_ notices: [Notice]) -> String {
        let open = notices.sorted { $0.issuedAt > $1.issuedAt }.prefix(20)
        if open.isEmpty { return "<p class=\"muted\" id=\"alerts\">当前没有未解除的超标或预警</p>" }
        var html = "<ul class=\"feed\" id=\"alerts\">"
        for notice in open {
            html += "<li><span class=\"tag \(notice.severity.rawValue)\">\(esc(severityLabel(notice.severity)))</span> "
            html += "<a href=\"/notices/\(urlSegment(notice.id))\">\(esc(notice.title))</a>"
            html += " <span class=\"muted\">\(esc(shortTime(notice.issuedAt)))</span></li>"
        }
        return html + "</ul>"
    }

    /// How much of the 30 days has data: the best-covered parameter's days and readings.
    static func coverageLine(_ reply: ReadingsQueryReply) -> String {
        guard let best = reply.series.max(by: { $0.coverage.withData < $1.coverage.withData }) else {
            return "<p class=\"muted\">该站点没有监测项目</p>"
        }
        let coverage = best.coverage
        var text = "数据覆盖：\(coverage.withData)/\(coverage.buckets) 天（\(Int((coverage.ratio * 100).rounded()))%）"
        if let expected = coverage.expectedReadings, expected > 0 {
            text += "，读数 \(coverage.readings)/\(expected)（\(Int((Double(coverage.readings) / Double(expected) * 100).rounded()))%）"
        }
        return "<p class=\"coverage\"><b>\(esc(text))</b></p>"
    }

    /// The section's class each month of the year so far, against its target.
    static func monthlyClasses(_ reply: ReadingsQueryReply, year: String) -> String {
        let classes = (reply.classes ?? []).filter { $0.t.hasPrefix(year) }
        guard !classes.isEmpty else { return "<p class=\"muted\">\(esc(year)) 年尚无逐月水质类别</p>" }
        var html = "<h3>\(esc(year)) 年逐月水质类别</h3><table class=\"months\" id=\"months-\(esc(reply.station))\"><tr>"
        for item in classes { html += "<th>\(esc(String(item.t.suffix(2))))月</th>" }
        html += "</tr><tr>"
        for item in classes {
            let names = item.factors.map { standards?.waterStandard(on: item.t + "-01")?.parameters[$0]?.name ?? $0 }
            let factors = names.isEmpty ? "" : "<div class=\"muted\">\(esc(names.joined(separator: "、")))</div>"
            html += "<td>\(classTag(item.class, target: reply.targetClass))\(factors)</td>"
        }
        return html + "</tr></table>"
    }

    /// One parameter's daily means over the days as an SVG chart: a line through the means, a dot
    /// per day coloured by its class, the target class's limit dashed.
    static func chart(_ series: ReadingSeries, days: [String], targetClass: String?, kind: String, day: String) -> String {
        let width = 560.0
        let height = 170.0
        let left = 48.0
        let right = 10.0
        let top = 14.0
        let bottom = 22.0
        let name = kind == "water" ? standards?.waterStandard(on: day)?.parameters[series.parameter]?.name : nil
        var limit: Double?
        if kind == "water", let targetClass, let index = WaterClass(label: targetClass)?.rawValue, index <= 5,
            let spec = standards?.waterStandard(on: day)?.parameters[series.parameter], spec.range == nil,
            let limits = spec.limits, limits.count == 5
        {
            limit = limits[index - 1]
        }
        let byDay = Dictionary(series.points.map { ($0.t, $0) }, uniquingKeysWith: { a, _ in a })
        let values = series.points.map(\.mean) + (limit.map { [$0] } ?? [])
        let low = min(0, values.min() ?? 0)
        let high = max((values.max() ?? 1) * 1.1, low + 1e-9)
        let plotW = width - left - right
        let plotH = height - top - bottom
        func x(_ index: Int) -> Double { left + (days.count > 1 ? Double(index) / Double(days.count - 1) * plotW : plotW / 2) }
        func y(_ value: Double) -> Double { top + plotH - (value - low) / (high - low) * plotH }
        let title = "\(name ?? series.parameter)（\(series.unit)）"
        var svg = """
            <svg class="chart" viewBox="0 0 \(Int(width)) \(Int(height))" width="100%" role="img" aria-label="\(esc(title))日均值">\
            <rect x="\(left)" y="\(top)" width="\(plotW)" height="\(plotH)" fill="#fafbfc" stroke="#d5dbe1"/>
            """
        for fraction in [0.0, 0.5, 1.0] {
            let value = low + (high - low) * fraction
            svg +=
                "<text x=\"\(left - 4)\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#5b6b7a\">"
                + "\(esc(Self.number(value)))</text>"
        }
        for index in [0, days.count / 2, days.count - 1] where index >= 0 && index < days.count {
            svg += "<text x=\"\(f(x(index)))\" y=\"\(height - 6)\" text-anchor=\"middle\" font-size=\"10\" fill=\"#5b6b7a\">"
            svg += "\(esc(String(days[index].suffix(5))))</text>"
        }
        if let limit, let targetClass {
            svg += "<line class=\"limit\" x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(f(y(limit)))\" y2=\"\(f(y(limit)))\" "
            svg += "stroke=\"#b3261e\" stroke-dasharray=\"5 4\" stroke-width=\"1.5\"/>"
            svg += "<text x=\"\(width - right - 2)\" y=\"\(f(y(limit) - 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#b3261e\">"
            svg += "\(esc(targetClass))类限值 \(esc(Self.number(limit)))</text>"
        }
        var path: [String] = []
        var dots = ""
        for (index, dayText) in days.enumerated() {
            guard let point = byDay[dayText] else { continue }
            path.append("\(f(x(index))),\(f(y(point.mean)))")
            let colour = point.class.flatMap { classColours[$0] } ?? "#5b6b7a"
            let classText = point.class.map { "，\($0)类" } ?? ""
            // A day of nothing but below-detection readings is drawn hollow: its height is half the limit, not a measurement.
            let hollow = point.belowDetection == point.count
            dots += "<circle cx=\"\(f(x(index)))\" cy=\"\(f(y(point.mean)))\" r=\"3.5\" "
            dots += hollow ? "fill=\"#fff\" stroke=\"\(colour)\" stroke-width=\"1.5\">" : "fill=\"\(colour)\">"
            dots += "<title>\(esc(dayText))：\(esc(Self.pointText(point, unit: series.unit)))\(esc(classText))</title></circle>"
        }
        // Status-marked days (维护, 校准, 停运): a grey tick on the axis; they have no value to draw.
        for item in series.marked ?? [] {
            guard let index = days.firstIndex(of: item.t) else { continue }
            let word = ReadingMark(rawValue: item.mark)?.chineseName ?? item.mark
            dots += "<rect class=\"marked\" x=\"\(f(x(index) - 2))\" y=\"\(f(top + plotH - 6))\" width=\"4\" height=\"6\" fill=\"#8a96a3\">"
            dots += "<title>\(esc(item.t))：\(esc(word)) \(item.count) 条</title></rect>"
        }
        if path.count > 1 {
            svg += "<polyline points=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"#9aa7b3\" stroke-width=\"1.2\"/>"
        }
        svg += dots + "</svg>"
        let coverage = "\(series.coverage.withData)/\(series.coverage.buckets) 天有数据"
        return
            "<figure class=\"chart\" id=\"chart-\(esc(series.parameter))\">"
            + "<figcaption>\(esc(title)) <span class=\"muted\">\(coverage)</span>"
            + "</figcaption>\(svg)\(markLine(series))</figure>"
    }

    /// A point's value as a person reads it: `<0.01（未检出）` when every reading was below detection,
    /// the mean with how many were otherwise.
    static func pointText(_ point: ReadingPoint, unit: String) -> String {
        guard let below = point.belowDetection, below > 0 else { return "\(number(point.mean)) \(unit)" }
        let limit = point.detectionLimit.map { number($0) } ?? "检出限"
        if below == point.count { return "<\(limit) \(unit)（未检出）" }
        return "\(number(point.mean)) \(unit)（含未检出 \(below) 条，按检出限 \(limit) 的一半计）"
    }

    /// The days with below-detection or status-marked readings, under the chart.
    static func markLine(_ series: ReadingSeries) -> String {
        var parts: [String] = []
        let below = series.points.filter { ($0.belowDetection ?? 0) > 0 }
        if !below.isEmpty {
            parts.append(
                "未检出：" + below.map { "\(String($0.t.suffix(5))) \(pointText($0, unit: series.unit))" }.joined(separator: "；"))
        }
        var byMark: [String: [String]] = [:]
        for item in series.marked ?? [] {
            byMark[ReadingMark(rawValue: item.mark)?.chineseName ?? item.mark, default: []].append(
                "\(String(item.t.suffix(5)))（\(item.count) 条）")
        }
        for mark in ReadingMark.allCases where mark.isStatus {
            guard let days = byMark[mark.chineseName] else { continue }
            parts.append("\(mark.chineseName)：\(days.joined(separator: "、"))")
        }
        guard !parts.isEmpty else { return "" }
        return "<p class=\"marks muted\" id=\"marks-\(esc(series.parameter))\">\(esc(parts.joined(separator: "　")))</p>"
    }

    static func number(_ value: Double) -> String { display(.number((value * 1000).rounded() / 1000)) }
}

private func f(_ value: Double) -> String { String(format: "%.1f", value) }
