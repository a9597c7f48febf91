import ArgumentParser
import DubanConfig
import Formats
import Foundation
import Messaging
import OfficeFormats
import Schema

/// Filters shared by `cases list` and `cases export`.
struct CaseFilters: ParsableArguments {
    @Option(help: "状态：\(CaseState.helpList)。")
    var status: String?
    @Option(help: "责任单位。") var unit: String?
    @Option(help: "问题来源，如 混错接点位（sewer_misconnection）。") var source: String?
    @Option(help: "批次。") var batch: String?
    @Option(help: "所属任务，如 10。") var task: String?
    @Flag(inversion: .prefixedNo, help: "只看逾期的（--overdue）或只看未逾期的（--no-overdue）。") var overdue: Bool?

    /// The request the filters make, each named value resolved (and each unit checked) before anything is sent.
    func request(_ options: GlobalOptions) async throws -> CaseListRequest {
        let status = try CaseState.resolve(self.status, option: "--status")
        let source = try CaseSource.resolve(self.source, option: "--source")
        try await options.checkUnits([("--unit", unit)])
        return CaseListRequest(status: status, unit: unit, source: source, batch: batch, task: task, overdue: overdue)
    }
}

func evidenceRefs(_ texts: [String]) throws -> [EvidenceRef] {
    try texts.enumerated().map { index, text in
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("--evidence 第 \(index + 1) 项应写作 名称=地址 或 名称=地址#sha256，收到 \(text)")
        }
        let parts = text[text.index(after: equals)...].split(separator: "#", maxSplits: 1).map(String.init)
        return EvidenceRef(name: String(text[..<equals]), uri: parts.first ?? "", sha256: parts.count > 1 ? parts[1] : nil)
    }
}

struct CasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cases", abstract: "整改台账：登记、办理、导入、导出问题。",
        subcommands: [
            List.self, Show.self, Open.self, Move.self, Import.self, Export.self, Batches.self, CaseUpdateCommand.self,
            CaseVisitCommand.self, CaseExtendCommand.self, CaseVoidCommand.self, CaseAssignBatchCommand.self, CaseLinkCommand.self,
        ], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "整改台账中的问题。")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: CaseFilters

        func run() async throws {
            let request = try await filters.request(options)
            try await options.withClient(for: .cases) { client in
                let reply = try await perform(client, CaseTypes.list, request, as: ListReply<Case>.self, options: options)
                if options.json { return try printJSON(reply.items) }
                print(
                    TextTable.render(
                        header: ["编号", "来源", "状态", "逾期", "完成时限", "责任单位", "问题"],
                        rows: reply.items.map {
                            [
                                $0.id, $0.source.label, $0.state.label, $0.overdue ? "逾期" : "", $0.deadline ?? "", $0.unit,
                                clip($0.title, 40),
                            ]
                        }))
                print("共 \(reply.items.count) 件")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "一个问题的全部档案（一案一档）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "问题编号，如 HCJ-2026-0001。") var id: String

        func run() async throws {
            try await options.withClient(for: .cases) { client in
                let item = try await perform(client, CaseTypes.get, CaseGetRequest(id: id), as: Case.self, options: options)
                if options.json { return try printJSON(item) }
                print("\(item.id)  \(item.title)")
                print("  来源      \(item.source.label)\(item.externalRef.map { "（\($0)）" } ?? "")")
                print("  状态      \(item.state.label)\(item.overdue ? "，已逾期" : "")")
                print("  责任单位  \(item.unit)")
                if let unit = item.supervisingUnit { print("  监管单位  \(unit)") }
                if let unit = item.acceptanceUnit { print("  验收单位  \(unit)") }
                if let deadline = item.deadline { print("  完成时限  \(deadline)") }
                if let task = item.task { print("  所属任务  \(task)") }
                if let batch = item.batch { print("  批次      \(batch)") }
                if let location = item.location { print("  位置      \(location)\(item.coordinates.map { "（\($0.lon), \($0.lat)）" } ?? "")") }
                if let description = item.description { print("  问题描述  \(description)") }
                if let measures = item.measures { print("  整改措施  \(measures)") }
                if let original = item.originalDeadline { print("  原完成时限 \(original)") }
                if let update = item.latestUpdate {
                    print("  最新进展  \(update.at.prefix(10))\(update.progress.map { " \($0)%" } ?? "") \(update.text)")
                }
                if let pending = item.pendingExtension {
                    print("  延期申请  \(pending.by) 申请延期至 \(pending.deadline)：\(pending.reason)（待审批）")
                }
                if let related = item.related { print("  关联问题  \(related.joined(separator: "、"))") }
                if let reason = item.voidReason { print("  作废原因  \(reason)") }
                print("\n办理过程")
                print(
                    TextTable.render(
                        header: ["时间", "操作", "状态", "办理单位", "意见", "情况", "材料"],
                        rows: (item.history ?? []).map {
                            [
                                String($0.at.prefix(16)), $0.actionLabel, $0.to.label, $0.actor, $0.comment ?? "", $0.detailText,
                                $0.evidence.map(\.name).joined(separator: "、"),
                            ]
                        }))
            }
        }
    }

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "在整改台账中登记问题（专项工作组办公室或整改台账牵头单位）。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "问题来源，如 中央生态环境保护督察（central_inspection）。") var source: String
        @Option(help: "问题标题（一句话）。") var title: String
        @Option(help: "责任单位。") var unit: String
        @Option(help: "完成时限，YYYY-MM-DD。") var deadline: String?
        @Option(help: "问题描述。") var description: String?
        @Option(help: "所属任务，如 7.3。") var task: String?
        @Option(help: "批次。") var batch: String?
        @Option(help: "位置。") var location: String?
        @Option(help: "纬度。") var lat: Double?
        @Option(help: "经度。") var lon: Double?
        @Option(help: "督察反馈的问题编号（外部编号）。") var externalRef: String?
        @Option(help: "监管单位。") var supervisingUnit: String?
        @Option(help: "指定的验收单位。") var acceptanceUnit: String?
        @Option(help: "整改措施。") var measures: String?

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            if (lat == nil) != (lon == nil) { throw ValidationError("--lat 与 --lon 须同时填写") }
            let source = try CaseSource.named(self.source, option: "--source")
            try await options.checkUnits([("--unit", unit), ("--supervising-unit", supervisingUnit), ("--acceptance-unit", acceptanceUnit)])
            let request = CaseOpenRequest(
                source: source, title: title, unit: unit, deadline: deadline, description: description, task: task, batch: batch,
                location: location,
                coordinates: lat.flatMap { lat in lon.map { Coordinates(lat: lat, lon: $0) } }, externalRef: externalRef,
                supervisingUnit: supervisingUnit,
                acceptanceUnit: acceptanceUnit, measures: measures)
            try await options.withClient(for: .cases) { client in
                let item = try await perform(client, CaseTypes.open, request, as: Case.self, options: options)
                if options.json { return try printJSON(item) }
                print("已登记：\(item.id) \(item.title)")
            }
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "move",
            abstract: "办理问题：assign（交办）、start（开始整改）、submit（提交验收）、accept（验收通过）、reject（退回整改）、close（销号）或 reopen（重新整改）。",
            discussion: """
                开始整改、提交验收由责任单位办理（用 --as 写明单位）；交办、验收通过、退回整改、销号、重新整改由专项工作组办公室办理 \
                （不写 --as 即为办公室）。验收通过须附 --evidence。
                示例：duban cases move start HCJ-2026-0001 --as 区城乡建设局
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "assign（交办）、start（开始整改）、submit（提交验收）、accept（验收通过）、reject（退回整改）、close（销号）或 reopen（重新整改）。") var action: CaseAction
        @Argument(help: "问题编号。") var id: String
        @Option(help: "意见（退回整改、重新整改时必填）。") var comment: String?
        @Option(help: "佐证材料，写作 名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []

        func run() async throws {
            var options = options
            if options.from == nil {
                guard ![.start, .submit].contains(action) else {
                    throw ValidationError("--as：开始整改、提交验收由责任单位办理，请写明单位，如 --as 区城乡建设局")
                }
                options.from = officeUnit
            }
            let refs = try evidenceRefs(evidence)
            try await options.withClient(for: .cases) { client in
                let item = try await perform(
                    client, CaseTypes.transition,
                    CaseTransitionRequest(id: id, action: action, comment: comment, evidence: refs.isEmpty ? nil : refs),
                    as: Case.self, options: options)
                if options.json { return try printJSON(item) }
                print("\(item.id)：\(item.state.label)")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "导入整改台账（CSV 或 XLSX）：新问题登记，带编号的行更新该问题；每个有误的行注明行号。",
            discussion: """
                列（中文列名、常见别名或字段名）：编号 来源 问题标题 责任单位 完成时限 问题描述 所属任务 批次 位置 经度 纬度 外部编号 监管单位 验收单位 整改措施 状态。
                编号为空的行登记为新问题；有编号的行（导出后修改再导入）只更新所改的字段，状态不随导入更改，相同的行计为未变。
                编码自动识别：UTF-8（有无 BOM）、GBK/GB18030、UTF-16。日期可写 2026-12-31、2026/12/31、2026年12月31日。
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "CSV 或 XLSX 文件。") var file: String
        @Option(help: "每次请求的行数（最多 5000）。不超过此数的文件在一个事务中写入：中途断开不会只写入一部分。")
        var chunk: Int = CaseTypes.maxImportRows
        @Flag(help: "只显示将会新增和修改的内容，不写入。") var dryRun = false

        func validate() throws {
            guard (1...CaseTypes.maxImportRows).contains(chunk) else {
                throw ValidationError("--chunk：应在 1 到 \(CaseTypes.maxImportRows) 之间，收到 \(chunk)")
            }
        }

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("无法读取 \(file)") }
            let ledgerFile: LedgerImport
            do {
                ledgerFile = try LedgerImport(data)
            } catch {
                throw ValidationError("\(file)：\(error)")
            }
            var outcome = ledgerFile.outcome()
            let chunks = ledgerFile.chunks(of: chunk)
            let total = chunks.reduce(0) { $0 + $1.count }
            var sent = 0
            try await options.withClient(for: .cases) { client in
                for slice in chunks {
                    let reply = try await perform(
                        client, CaseTypes.import, CaseImportRequest(cases: slice.map { $0.body! }, dryRun: dryRun ? true : nil),
                        as: CaseImportReply.self, options: options)
                    ledgerFile.add(reply, for: slice, to: &outcome)
                    sent += slice.count
                    FileHandle.standardError.write(Data("\r导入进度 \(sent)/\(total)".utf8))
                }
                FileHandle.standardError.write(Data("\n".utf8))
            }
            // A unit the plan does not know: the nearest name it does, when one is close (区农业局 → 区农业农村局).
            var knownUnits: [String] = []
            if outcome.namesUnknownUnits,
                let units = try? await options.withClient(
                    for: .registry,
                    { client in
                        try await perform(client, RegistryTypes.unitList, Empty(), as: ListReply<PlanUnit>.self, options: options).items
                    })
            {
                knownUnits = units.filter { !$0.collective }.map(\.name)
            }
            outcome.finish(knownUnits: knownUnits)
            let problems = outcome.problems.map { ($0.line, $0.text) }
            let (imported, updated, unchanged, existing) = (outcome.imported, outcome.updated, outcome.unchanged, outcome.existing)
            let changes = outcome.changes.map { ($0.line, $0.text) }
            let notes = outcome.notes.map { ($0.line, $0.text) }
            if options.json {
                func lines(_ list: [(Int, String)], _ key: String) -> JSONValue {
                    .array(list.map { .object(["line": .number(Double($0.0)), key: .string($0.1)]) })
                }
                try printJSON([
                    "imported": JSONValue.number(Double(imported)), "updated": .number(Double(updated)),
                    "unchanged": .number(Double(unchanged)), "existing": .number(Double(existing)), "dry_run": .bool(dryRun),
                    "rejected": lines(problems, "problem"),
                    "changes": lines(changes, "change"), "notes": lines(notes, "note"),
                ])
            } else {
                let verb = dryRun ? "将" : ""
                print(
                    "\(file)：\(dryRun ? "试导入（未写入）：" : "")\(verb)新增 \(imported) 件，\(verb)更新 \(updated) 件，"
                        + "未变 \(unchanged) 件，\(existing > 0 ? "已在台账 \(existing) 件，" : "")\(problems.count) 行有误"
                )
                for (line, change) in changes.sorted(by: { $0.0 < $1.0 }) {
                    print("  \(file):\(line): \(dryRun ? "将修改" : "已修改") \(change)")
                }
                for (line, note) in notes.sorted(by: { $0.0 < $1.0 }) { print("  \(file):\(line): 提示 \(note)") }
                for (line, problem) in problems { print("  \(file):\(line): \(problem)") }
            }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "导出整改台账：CSV（UTF-8 带 BOM，Excel 可直接打开）或 XLSX（日期单元格、冻结表头、逾期行标红）。")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: CaseFilters
        @Option(help: "csv 或 xlsx。") var format: String = "csv"
        @Flag(help: "XLSX 每个批次一张工作表。") var byBatch = false
        @Option(help: "写到哪个文件（默认：台账的文件名，当前目录）。") var out: String?

        func run() async throws {
            guard ["csv", "xlsx"].contains(format) else { throw ValidationError("--format：应为 csv 或 xlsx，收到 \(format)") }
            let f = try await filters.request(options)
            try await options.withClient(for: .cases) { client in
                // The ledger travels as the service's CSV; the workbook is made here, so the service links no document library.
                let reply = try await perform(
                    client, CaseTypes.export,
                    CaseExportRequest(
                        format: "csv", status: f.status, unit: f.unit, source: f.source, batch: f.batch, task: f.task, overdue: f.overdue),
                    as: CaseExportReply.self, options: options)
                let path = out ?? (format == "xlsx" ? (reply.filename as NSString).deletingPathExtension + ".xlsx" : reply.filename)
                let data = format == "xlsx" ? try XLSXWriter.ledger(csv: reply.content, byBatch: byBatch) : Data(reply.content.utf8)
                try data.write(to: URL(fileURLWithPath: path))
                print("\(path): \(reply.count) 件")
            }
        }
    }

    struct Batches: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "各批次整改进度（如 237 处混错接点位已销号多少）。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "问题来源。") var source: String?

        func run() async throws {
            let source = try CaseSource.resolve(self.source, option: "--source")
            try await options.withClient(for: .cases) { client in
                let reply = try await perform(
                    client, CaseTypes.batches, CaseBatchesRequest(source: source), as: ListReply<BatchProgress>.self, options: options)
                if options.json { return try printJSON(reply.items) }
                print(
                    TextTable.render(
                        header: ["批次", "总数", "已销号", "逾期", "各状态"],
                        rows: reply.items.map { batch in
                            [
                                batch.batch.isEmpty ? "（未分批）" : batch.batch, "\(batch.total)", "\(batch.closed)", "\(batch.overdue)",
                                CaseState.allCases.compactMap { state in batch.byState[state.rawValue].map { "\(state.label) \($0)" } }
                                    .joined(
                                        separator: "，"),
                            ]
                        }))
            }
        }
    }
}

extension CaseAction: ExpressibleByArgument {}
