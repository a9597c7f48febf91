import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import OfficeFormats
import Schema
import Synchronization

/// Uploads waiting for the office to confirm their import, in memory: a preview holds the file
/// until it is confirmed, replaced or 30 minutes old. Bounded in count (each file is bounded by
/// the upload limit), so repeated previews cost at most `capacity` files; a restart forgets them
/// and the office uploads again.
public final class PendingImports: Sendable {
    public struct Entry: Sendable {
        public let user: String
        public let filename: String
        public let data: Data
        public let created: ContinuousClock.Instant
    }

    static let lifetime: Duration = .seconds(30 * 60)
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(capacity: Int = 8) { self.capacity = max(1, capacity) }

    /// Keeps `data` for `user` and returns the token that names it.
    public func keep(_ data: Data, filename: String, user: String, now: ContinuousClock.Instant = .now) -> String {
        let token = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        entries.withLock { map in
            map = map.filter { now - $0.value.created < Self.lifetime && $0.value.user != user }
            while map.count >= capacity, let oldest = map.min(by: { $0.value.created < $1.value.created })?.key {
                map.removeValue(forKey: oldest)
            }
            map[token] = Entry(user: user, filename: filename, data: data, created: now)
        }
        return token
    }

    /// Takes the upload `token` names, once, if it is `user`'s and not too old.
    public func take(_ token: String, user: String, now: ContinuousClock.Instant = .now) -> Entry? {
        entries.withLock { map in
            guard let entry = map[token], entry.user == user, now - entry.created < Self.lifetime else { return nil }
            map.removeValue(forKey: token)
            return entry
        }
    }

    public var count: Int { entries.withLock { $0.count } }
}

extension WebConsole {
    func addLedgerTransferRoutes(to router: Router<WebContext>) {
        router.get("/cases/export") { request, context in try await self.exportLedger(request, context) }
        router.get("/cases/import") { request, context in try await self.importForm(request, context) }
        router.post("/cases/import") { request, context in try await self.previewImport(request, context) }
        router.post("/cases/import/confirm") { request, context in try await self.confirmImport(request, context) }
    }

    // MARK: Export

    /// The ledger as the office files it: the service's CSV (UTF-8 with BOM, cells neutralised
    /// against formulas), or a workbook made here from it, with the list page's filters.
    func exportLedger(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        let filters = LedgerFilters(request.uri.queryParameters)
        let format = request.uri.queryParameters["format"].map(String.init) ?? "csv"
        guard ["csv", "xlsx"].contains(format) else { throw WebError.invalid("导出格式应为 csv 或 xlsx，收到 \(format)") }
        let wanted = filters.request
        let reply = try await gateway.call(
            .cases, CaseTypes.export,
            CaseExportRequest(
                format: "csv", status: wanted.status, unit: wanted.unit, source: wanted.source, batch: wanted.batch, task: wanted.task,
                overdue: wanted.overdue),
            from: wireFrom(session.user), timeout: .seconds(30))
        let data: Data
        let type: String
        let name: String
        if format == "xlsx" {
            data = try XLSXWriter.ledger(csv: reply.content, byBatch: request.uri.queryParameters["by_batch"] != nil)
            type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            name = (reply.filename as NSString).deletingPathExtension + ".xlsx"
        } else {
            data = Data(reply.content.utf8)
            type = "text/csv; charset=utf-8"
            name = reply.filename
        }
        logger.info("web: ledger exported", metadata: ["user": "\(session.user.name)", "format": "\(format)", "count": "\(reply.count)"])
        return Self.attachment(data, type: type, name: name, asciiName: "duban-ledger.\(format)")
    }

    // MARK: Import

    func importForm(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return loginRedirect(request) }
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有专项工作组办公室可以导入整改台账") }
        return htmlResponse(Page(title: "导入台账", body: importFormHTML(session), session: session).render())
    }

    func importFormHTML(_ session: WebSession, error: String? = nil) -> String {
        var html = "<h1>导入整改台账</h1>"
        if let error { html += "<div class=\"error\" id=\"form-error\">\(esc(error))</div>" }
        html += """
            <section class="card"><p>上传 CSV 或 XLSX：编号为空的行登记为新问题；有编号的行（导出后修改再导入）只更新所改的字段，\
            状态不随导入更改。先预览，列出每一个有误的行，确认后才写入。编码自动识别（UTF-8、GBK/GB18030、UTF-16）。</p>
            <p class="muted">列：编号 来源 问题标题 责任单位 完成时限 问题描述 所属任务 批次 位置 经度 纬度 外部编号 监管单位 验收单位 整改措施 状态</p>
            <form method="post" action="/cases/import" enctype="multipart/form-data" id="import-form">\(csrfField(session))
            <label for="import-file">台账文件</label><input type="file" id="import-file" name="file" accept=".csv,.xlsx" required>
            <button type="submit" id="import-preview">预览</button></form></section>
            """
        return html
    }

    /// Reads the upload, asks the ledger what it would do (`dry_run`), and shows every refused
    /// line and every change before anything is written; the file waits for the confirmation.
    func previewImport(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session, limit: settings.maxUploadBytes + (64 << 10))
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有专项工作组办公室可以导入整改台账") }
        func fail(_ message: String) -> Response {
            htmlResponse(Page(title: "导入台账", body: importFormHTML(session, error: message), session: session).render(), status: .badRequest)
        }
        guard let file = form.files["file"], !file.bytes.isEmpty else { return fail("请选择要导入的 CSV 或 XLSX 文件") }
        let filename = EvidenceTypes.cleanName(file.filename)
        let ext = (filename as NSString).pathExtension.lowercased()
        guard ["csv", "xlsx", "txt"].contains(ext) else { return fail("「\(filename)」不是 CSV 或 XLSX 文件") }
        guard file.bytes.count <= settings.maxUploadBytes else {
            return fail("文件过大：\(file.bytes.count) 字节，上限 \(settings.maxUploadBytes) 字节")
        }
        let data = Data(file.bytes)
        let (ledgerFile, outcome): (LedgerImport, LedgerImport.Outcome)
        do {
            (ledgerFile, outcome) = try await runImport(data, session: session, dryRun: true)
        } catch let error as LedgerImport.Unreadable {
            return fail("「\(filename)」：\(error.description)")
        }
        let sendable = ledgerFile.rows.contains { $0.body != nil }
        var html = "<h1>导入预览：\(esc(filename))</h1>"
        html += "<section class=\"card\" id=\"import-summary\"><p>试导入（尚未写入）：将新增 \(outcome.imported) 件，将更新 \(outcome.updated) 件，"
        html += "未变 \(outcome.unchanged) 件\(outcome.existing > 0 ? "，已在台账 \(outcome.existing) 件" : "")，"
        html += "<b>\(outcome.problems.count) 行有误</b>。</p>"
        if !outcome.problems.isEmpty { html += "<p>有误的行不会导入；可修改文件后重新预览，或只导入其余各行。</p>" }
        html += "</section>"
        html += importLines(outcome, dryRun: true)
        if sendable, outcome.imported + outcome.updated > 0 {
            let token = pendingImports.keep(data, filename: filename, user: session.user.name)
            let label = outcome.problems.isEmpty ? "确认导入" : "确认导入其余 \(outcome.imported + outcome.updated) 件"
            html += """
                <form method="post" action="/cases/import/confirm" id="import-confirm-form">\(csrfField(session))\
                <input type="hidden" name="token" value="\(esc(token))">\
                <button type="submit" id="import-confirm">\(esc(label))</button> <a href="/cases/import">重新选择文件</a></form>
                """
        } else {
            html += "<p class=\"muted\" id=\"import-nothing\">没有可写入的内容。</p><p><a href=\"/cases/import\">重新选择文件</a></p>"
        }
        logger.info(
            "web: ledger import previewed",
            metadata: [
                "user": "\(session.user.name)", "rows": "\(ledgerFile.rows.count)", "refused": "\(outcome.problems.count)",
            ])
        return htmlResponse(Page(title: "导入预览", body: html, session: session).render())
    }

    func confirmImport(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { throw WebError(status: 401, "请先登录") }
        let form = try await form(request, session: session)
        guard session.user.role.actsAsOffice else { throw WebError.forbidden("只有专项工作组办公室可以导入整改台账") }
        guard let token = form.text("token"), token.count <= 128, let pending = pendingImports.take(token, user: session.user.name)
        else {
            let page = Page(title: "导入台账", body: importFormHTML(session, error: "预览已过期或已导入，请重新上传文件"), session: session)
            return htmlResponse(page.render(), status: .conflict)
        }
        let (_, outcome) = try await runImport(pending.data, session: session, dryRun: false)
        var html = "<h1>导入结果：\(esc(pending.filename))</h1>"
        let existing = outcome.existing > 0 ? "，已在台账 \(outcome.existing) 件" : ""
        html += "<section class=\"card\" id=\"import-summary\"><div class=\"ok\" id=\"flash\">"
        html += "已新增 \(outcome.imported) 件，已更新 \(outcome.updated) 件，未变 \(outcome.unchanged) 件\(existing)，"
        html += "\(outcome.problems.count) 行有误未导入</div></section>"
        html += importLines(outcome, dryRun: false)
        html += "<p><a href=\"/cases\">返回台账</a></p>"
        logger.info(
            "web: ledger imported",
            metadata: [
                "user": "\(session.user.name)", "imported": "\(outcome.imported)", "updated": "\(outcome.updated)",
                "refused": "\(outcome.problems.count)",
            ])
        return htmlResponse(Page(title: "导入结果", body: html, session: session).render())
    }

    /// Sends the file's rows to `case.import` in chunks, as the CLI does, for the person's unit.
    func runImport(_ data: Data, session: WebSession, dryRun: Bool) async throws -> (LedgerImport, LedgerImport.Outcome) {
        let ledgerFile = try LedgerImport(data)
        var outcome = ledgerFile.outcome()
        let from = wireFrom(session.user)
        // Up to 5,000 rows a request: a file of up to that many is stored in one transaction.
        for slice in ledgerFile.chunks() {
            let reply = try await gateway.call(
                .cases, CaseTypes.import, CaseImportRequest(cases: slice.compactMap(\.body), dryRun: dryRun ? true : nil), from: from,
                timeout: .seconds(60))
            ledgerFile.add(reply, for: slice, to: &outcome)
        }
        var known: [String] = []
        if outcome.namesUnknownUnits,
            let units = try? await gateway.call(.registry, RegistryTypes.unitList, Empty(), from: from).items
        {
            known = units.filter { !$0.collective }.map(\.name)
        }
        outcome.finish(knownUnits: known)
        return (ledgerFile, outcome)
    }

    func importLines(_ outcome: LedgerImport.Outcome, dryRun: Bool) -> String {
        var html = ""
        func table(_ id: String, _ title: String, _ lines: [(line: Int, text: String)], _ head: String) {
            guard !lines.isEmpty else { return }
            html += "<section class=\"card\"><h2>\(esc(title))</h2><table id=\"\(id)\"><tr><th>行号</th><th>\(esc(head))</th></tr>"
            for line in lines { html += "<tr><td>第 \(line.line) 行</td><td>\(esc(line.text))</td></tr>" }
            html += "</table></section>"
        }
        table("import-refused", "有误的行（不导入）", outcome.problems, "问题")
        table("import-changes", dryRun ? "将修改" : "已修改", outcome.changes, "修改内容")
        table("import-notes", "提示", outcome.notes, "说明")
        return html
    }
}

/// The 台账 page's filters, read from its query and kept in its links (export takes the same).
struct LedgerFilters {
    var status: CaseState?
    var unit: String?
    var source: CaseSource?
    var batch: String?
    var task: String?
    var overdue: Bool?
    /// Words to find in the number, title, location, measures or external number.
    var search: String?

    init(_ query: FlatDictionary<Substring, Substring>) {
        func text(_ name: String) -> String? {
            guard let value = query[Substring(name)].map({ String($0).trimmingCharacters(in: .whitespaces) }), !value.isEmpty,
                value.count <= 100
            else {
                return nil
            }
            return value
        }
        status = text("status").flatMap(CaseState.init(rawValue:))
        unit = text("unit")
        source = text("source").flatMap(CaseSource.init(rawValue:))
        batch = text("batch")
        task = text("task")
        overdue = query["overdue"] != nil ? true : nil
        search = text("q")
    }

    var request: CaseListRequest {
        CaseListRequest(status: status, unit: unit, source: source, batch: batch, task: task, overdue: overdue)
    }

    func matches(_ item: Case) -> Bool {
        guard let search else { return true }
        return [item.id, item.title, item.location ?? "", item.measures ?? "", item.externalRef ?? ""].contains { $0.contains(search) }
    }

    /// The query string that keeps these filters (for the export links).
    var query: String {
        var parts: [(String, String)] = []
        if let status { parts.append(("status", status.rawValue)) }
        if let unit { parts.append(("unit", unit)) }
        if let source { parts.append(("source", source.rawValue)) }
        if let batch { parts.append(("batch", batch)) }
        if let task { parts.append(("task", task)) }
        if overdue == true { parts.append(("overdue", "1")) }
        return parts.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
    }
}

extension WebConsole {
    /// The units a ledger filter offers: the plan's, without the collective names.
    func ledgerUnits(_ session: WebSession) async throws -> [String] {
        try await gateway.call(.registry, RegistryTypes.unitList, Empty(), from: wireFrom(session.user)).items.filter { !$0.collective }
            .map(
                \.name)
    }

    func ledgerFilterForm(_ filters: LedgerFilters, units: [String]) -> String {
        func options<T>(_ all: [T], selected: T?, value: (T) -> String, label: (T) -> String) -> String where T: Equatable {
            "<option value=\"\">全部</option>"
                + all.map { "<option value=\"\(esc(value($0)))\"\($0 == selected ? " selected" : "")>\(esc(label($0)))</option>" }.joined()
        }
        func field(_ label: String, _ id: String, _ control: String) -> String {
            "<span class=\"field\"><label for=\"\(id)\">\(label)</label>\(control)</span>"
        }
        func text(_ id: String, _ value: String?, placeholder: String = "") -> String {
            let type = id == "q" ? "search" : "text"
            return "<input type=\"\(type)\" id=\"\(id)\" name=\"\(id)\" value=\"\(esc(value ?? ""))\" placeholder=\"\(placeholder)\">"
        }
        var html = "<form method=\"get\" action=\"/cases\" id=\"ledger-filters\" class=\"filters\">"
        html += field("查找", "q", text("q", filters.search, placeholder: "编号、问题、位置、措施或外部编号"))
        html += field(
            "状态", "status",
            "<select id=\"status\" name=\"status\">"
                + options(CaseState.allCases, selected: filters.status, value: \.rawValue, label: \.label)
                + "</select>")
        html += field(
            "责任单位", "unit",
            "<select id=\"unit\" name=\"unit\">" + options(units, selected: filters.unit, value: { $0 }, label: { $0 }) + "</select>")
        html += field(
            "问题来源", "source",
            "<select id=\"source\" name=\"source\">"
                + options(CaseSource.allCases, selected: filters.source, value: \.rawValue, label: \.label)
                + "</select>")
        html += field("批次", "batch", text("batch", filters.batch))
        html += field("所属任务", "task", text("task", filters.task))
        let checked = filters.overdue == true ? " checked" : ""
        html += "<span class=\"field\"><label><input type=\"checkbox\" name=\"overdue\" value=\"1\"\(checked)> 只看逾期</label>"
        html += "<button type=\"submit\">筛选</button></span></form>"
        return html
    }
}
