import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OfficeFormats
import Schema

/// 月调度通报, 季度督办单 and 年度通报 as pages and downloads: the report notify assembles
/// (`report.generate`), shown as HTML and offered as the 公文 (.docx), the table (.csv) and the
/// Markdown. A leader's chat message about a report opens its page here (`?notice=` links back to
/// the notice for 签收).
extension WebConsole {
    func addReportRoutes(to router: Router<WebContext>) {
        router.get("/reports") { request, context in try await self.reportsPage(request, context) }
        router.get("/reports/:kind/:period") { request, context in try await self.reportPage(request, context) }
        router.get("/reports/:kind/:period/download/:format") { request, context in try await self.reportDownload(request, context) }
    }

    /// The kind and period from the path: the kind one of three words, the period digits, `-` and
    /// `Q` only (notify checks the rest and says what is wrong).
    func reportRequest(_ context: WebContext) throws -> ReportGenerateRequest {
        guard let kind = ReportKind(rawValue: context.parameters.get("kind") ?? "") else {
            throw WebError.notFound("没有这种报告（月度 monthly、季度 quarterly、年度 annual、收官 closing）")
        }
        let period = context.parameters.get("period") ?? ""
        guard (4...9).contains(period.count), period.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-" || $0 == "Q") }) else {
            throw WebError(status: 400, "报告期格式不对：月度为 2026-10，季度为 2026-Q3，年度为 2026，收官为 2024-2026")
        }
        return ReportGenerateRequest(kind: kind, period: period)
    }

    static func kindLabel(_ kind: ReportKind) -> String {
        switch kind {
        case .monthly: return "月调度通报"
        case .quarterly: return "季度督办单"
        case .annual: return "年度通报"
        case .closing: return "收官报告"
        }
    }

    /// The recent periods of each kind, up to last month.
    func reportsPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let (year, month, _) = Timestamp.districtCivil(Date())
        var months: [String] = []
        var (y, m) = (year, month)
        for _ in 0..<12 {
            (y, m) = m == 1 ? (y - 1, 12) : (y, m - 1)
            months.append(String(format: "%04d-%02d", y, m))
        }
        let quarters = (0..<4).map { back -> String in
            let index = (year * 4 + (month - 1) / 3) - 1 - back
            return "\(index / 4)-Q\(index % 4 + 1)"
        }
        // The plan's own years: the annual reports it covers and the closing report's period.
        let plan = try? await gateway.call(.registry, RegistryTypes.planGet, Empty(), from: wireFrom(session.user))
        let first = plan.flatMap { Int($0.start.prefix(4)) } ?? year - 1
        let last = plan.flatMap { Int($0.end.prefix(4)) } ?? year
        let years = (first...max(first, min(last, year))).map(String.init)
        func links(_ kind: ReportKind, _ periods: [String]) -> String {
            periods.map { "<a href=\"/reports/\(kind.rawValue)/\($0)\">\(esc($0))</a>" }.joined(separator: "　")
        }
        let body = """
            <h1>报告</h1>
            <section class="card"><h2>月调度通报</h2><p id="monthly">\(links(.monthly, months))</p></section>
            <section class="card"><h2>季度督办单</h2><p id="quarterly">\(links(.quarterly, quarters))</p></section>
            <section class="card"><h2>年度通报</h2><p id="annual">\(links(.annual, years))</p></section>
            <section class="card"><h2>收官报告</h2><p id="closing">\(links(.closing, ["\(first)-\(last)"]))</p></section>
            """
        return htmlResponse(Page(title: "报告", body: body, session: session).render())
    }

    func reportPage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let wanted = try reportRequest(context)
        let report = try await gateway.call(
            .notify, NotifyTypes.reportGenerate, wanted, from: wireFrom(session.user), timeout: .seconds(30))
        let base = "/reports/\(wanted.kind.rawValue)/\(urlSegment(wanted.period))/download"
        var html = "<p class=\"muted\"><a href=\"/reports\">报告</a> · \(esc(Self.kindLabel(wanted.kind)))</p>"
        if let notice = request.uri.queryParameters["notice"].map(String.init), !notice.isEmpty, notice.count <= 64 {
            html += "<p id=\"notice-link\"><a class=\"button\" href=\"/notices/\(urlSegment(notice))\">查看并签收通知</a></p>"
        }
        html += """
            <p id="downloads"><a class="button" href="\(base)/docx">下载公文（Word）</a> \
            <a class="button" href="\(base)/csv">下载表格（CSV）</a> <a href="\(base)/md">Markdown</a></p>
            <article class="card report" id="report">\(Self.reportHTML(report.markdown))</article>
            """
        return htmlResponse(Page(title: report.title, body: html, session: session).render())
    }

    func reportDownload(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let wanted = try reportRequest(context)
        let format = context.parameters.get("format") ?? ""
        guard ["docx", "csv", "md"].contains(format) else { throw WebError.notFound("没有这种格式（docx、csv、md）") }
        let report = try await gateway.call(
            .notify, NotifyTypes.reportGenerate, wanted, from: wireFrom(session.user), timeout: .seconds(30))
        let data: Data
        let type: String
        switch format {
        case "docx":
            data = try GongwenDocument.docx(
                markdown: report.markdown, agency: "城中区巩固提升生态环境保护成效三年行动\(officeUnit)", recipients: "区各有关单位")
            type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        case "csv":
            data = Data(report.csv.utf8)
            type = "text/csv; charset=utf-8"
        default:
            data = Data(report.markdown.utf8)
            type = "text/markdown; charset=utf-8"
        }
        return Self.attachment(
            data, type: type, name: "\(report.title).\(format)", asciiName: "duban-\(wanted.kind.rawValue)-\(wanted.period).\(format)")
    }

    /// The report's Markdown as HTML: the few forms notify writes (headings, lists, tables,
    /// paragraphs), every text escaped.
    static func reportHTML(_ markdown: String) -> String {
        var html = ""
        var table: [[String]] = []
        var list: [String] = []
        func flush() {
            if !list.isEmpty {
                html += "<ul>" + list.joined() + "</ul>"
                list = []
            }
            if !table.isEmpty {
                html += "<div class=\"scroll\"><table>"
                for (index, row) in table.enumerated() {
                    let tag = index == 0 ? "th" : "td"
                    html += "<tr>" + row.map { "<\(tag)>\(esc($0))</\(tag)>" }.joined() + "</tr>"
                }
                html += "</table></div>"
                table = []
            }
        }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("|") {
                if !list.isEmpty { flush() }
                let cells = trimmed.dropFirst().split(separator: "|", omittingEmptySubsequences: false)
                    .dropLast(trimmed.hasSuffix("|") ? 1 : 0).map { $0.trimmingCharacters(in: .whitespaces) }
                if cells.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 == "-" || $0 == ":" } }) { continue }
                table.append(cells)
                continue
            }
            if trimmed.hasPrefix("- ") {
                if !table.isEmpty { flush() }
                let nested = line.hasPrefix("  ")
                list.append("<li\(nested ? " class=\"sub\"" : "")>\(esc(String(trimmed.dropFirst(2))))</li>")
                continue
            }
            flush()
            if trimmed.isEmpty { continue }
            let level = trimmed.prefix { $0 == "#" }.count
            if (1...4).contains(level), trimmed.dropFirst(level).first == " " {
                html += "<h\(level)>\(esc(String(trimmed.dropFirst(level + 1))))</h\(level)>"
            } else {
                html += "<p>\(esc(trimmed))</p>"
            }
        }
        flush()
        return html
    }
}
