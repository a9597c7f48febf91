import ArgumentParser
import Foundation
import Messaging
import Schema

extension CaseExtendAction: ExpressibleByArgument {
    public init?(argument: String) {
        guard let action = CaseExtendAction(rawValue: argument) ?? CaseExtendAction.allCases.first(where: { $0.label == argument })
        else { return nil }
        self = action
    }
}

/// `duban cases update`: the responsible unit reports how far a case's rectification has come.
struct CaseUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "报送问题整改进展（责任单位报送，也可由专项工作组办公室代报）。",
        discussion: "示例：duban cases update HCJ-2026-0001 \"已完成管网改造 60 米\" --progress 40 --as 区城乡建设局")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "问题编号，如 HCJ-2026-0001。") var id: String
    @Argument(help: "进展情况。") var text: String
    @Option(help: "整改进度，0 到 100。") var progress: Int?
    @Option(help: "佐证材料，写作 名称=地址 或 名称=地址#sha256（可重复）。") var evidence: [String] = []

    func run() async throws {
        var options = options
        if options.from == nil { options.from = officeUnit }
        let refs = try evidenceRefs(evidence)
        try await options.withClient(for: .cases) { client in
            let item = try await perform(
                client, CaseTypes.update, CaseUpdateRequest(id: id, text: text, progress: progress, evidence: refs.isEmpty ? nil : refs),
                as: Case.self, options: options)
            if options.json { return try printJSON(item) }
            print("已报送：\(item.id) \(item.latestUpdate.map { ($0.progress.map { "\($0)% " } ?? "") + $0.text } ?? "")")
        }
    }
}

/// `duban cases visit`: a 实地督导 record, with photos and the problems found on site.
struct CaseVisitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visit", abstract: "记录实地督导（专项工作组办公室、整改台账牵头单位或监管单位），可登记现场发现的新问题。",
        discussion: """
            示例：duban cases visit PWK-2026-0003 --date 2026-11-28 --inspector 张三 --inspector 李四 \\
              --findings "排污口已封堵，下游另有渗漏" --photo 现场照片=https://files/1.jpg#<sha256> --follow-up "下游渗漏点"
            """)
    @OptionGroup var options: GlobalOptions
    @Argument(help: "问题编号。") var id: String
    @Option(help: "督导日期，YYYY-MM-DD。") var date: String
    @Option(help: "督导人员（可重复）。") var inspector: [String] = []
    @Option(help: "督导发现。") var findings: String
    @Option(help: "现场照片或材料，写作 名称=地址#sha256（须附 sha256，可重复）。") var photo: [String] = []
    @Option(help: "现场发现的新问题标题，登记为本问题的后续问题（可重复）。") var followUp: [String] = []
    @Option(help: "新问题的完成时限，YYYY-MM-DD。") var followUpDeadline: String?

    func run() async throws {
        var options = options
        if options.from == nil { options.from = officeUnit }
        let refs = try evidenceRefs(photo)
        let followUps = followUp.map { CaseFollowUp(title: $0, deadline: followUpDeadline) }
        try await options.withClient(for: .cases) { client in
            let reply = try await perform(
                client, CaseTypes.visit,
                CaseVisitRequest(
                    id: id, date: date, inspectors: inspector, findings: findings, evidence: refs.isEmpty ? nil : refs,
                    followUp: followUps.isEmpty ? nil : followUps),
                as: CaseVisitReply.self, options: options)
            if options.json { return try printJSON(reply) }
            print("已记录实地督导：\(reply.case.id)" + (reply.opened.isEmpty ? "" : "；新登记问题 \(reply.opened.joined(separator: "、"))"))
        }
    }
}

/// `duban cases extend`: 延期, asked by the unit and decided by the office.
struct CaseExtendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extend", abstract: "问题延期：责任单位申请（request），专项工作组办公室同意（grant）或不同意（refuse）。",
        discussion: """
            示例：duban cases extend request HCJ-2026-0001 --deadline 2027-03-31 --reason "冬季冻土无法施工" --as 区城乡建设局
                  duban cases extend grant HCJ-2026-0001 --reason "同意"
            """)
    @OptionGroup var options: GlobalOptions
    @Argument(help: "request（申请延期）、grant（同意延期）或 refuse（不同意延期）。") var action: CaseExtendAction
    @Argument(help: "问题编号。") var id: String
    @Option(help: "新的完成时限，YYYY-MM-DD（申请时必填；同意时不写即按申请）。") var deadline: String?
    @Option(help: "理由。") var reason: String

    func run() async throws {
        var options = options
        if options.from == nil {
            guard action != .request else { throw ValidationError("--as：延期由责任单位申请，请写明单位，如 --as 区城乡建设局") }
            options.from = officeUnit
        }
        try await options.withClient(for: .cases) { client in
            let item = try await perform(
                client, CaseTypes.extend, CaseExtendRequest(id: id, action: action, deadline: deadline, reason: reason), as: Case.self,
                options: options)
            if options.json { return try printJSON(item) }
            switch action {
            case .request: print("已申请延期：\(item.id) 申请至 \(item.pendingExtension?.deadline ?? "")，待审批")
            case .grant: print("已同意延期：\(item.id) 完成时限 \(item.deadline ?? "")（原 \(item.originalDeadline ?? "无")）")
            case .refuse: print("已不同意延期：\(item.id) 完成时限仍为 \(item.deadline ?? "无")")
            }
        }
    }
}

/// `duban cases void`: a case registered by mistake, kept with its reason.
struct CaseVoidCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "void", abstract: "作废误登记的问题（专项工作组办公室；保留记录和原因，不删除）。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "问题编号。") var id: String
    @Option(help: "作废原因。") var reason: String

    func run() async throws {
        var options = options
        if options.from == nil { options.from = officeUnit }
        try await options.withClient(for: .cases) { client in
            let item = try await perform(client, CaseTypes.void, CaseVoidRequest(id: id, reason: reason), as: Case.self, options: options)
            if options.json { return try printJSON(item) }
            print("已作废：\(item.id)（\(item.voidReason ?? "")）")
        }
    }
}

/// `duban cases assign-batch`: every registered case of a batch assigned at once.
struct CaseAssignBatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign-batch", abstract: "批量交办一个批次中全部已登记的问题，可统一完成时限（专项工作组办公室）。",
        discussion: "示例：duban cases assign-batch 第一批 --deadline 2027-06-30")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "批次。") var batch: String
    @Option(help: "统一的完成时限，YYYY-MM-DD。") var deadline: String?
    @Option(help: "交办意见。") var comment: String?

    func run() async throws {
        var options = options
        if options.from == nil { options.from = officeUnit }
        try await options.withClient(for: .cases) { client in
            let reply = try await perform(
                client, CaseTypes.assignBatch, CaseAssignBatchRequest(batch: batch, deadline: deadline, comment: comment),
                as: CaseAssignBatchReply.self, options: options)
            if options.json { return try printJSON(reply) }
            print(
                "\(reply.batch)：已交办 \(reply.assigned.count) 件" + (reply.deadline.map { "，完成时限 \($0)" } ?? "")
                    + (reply.skipped > 0 ? "；另有 \(reply.skipped) 件不在已登记状态，未变动" : ""))
        }
    }
}

/// `duban cases link`: similar cases linked (举一反三).
struct CaseLinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link", abstract: "关联同类问题（举一反三）。")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "问题编号。") var id: String
    @Argument(help: "与之关联的问题编号。") var related: String
    @Option(help: "说明。") var comment: String?

    func run() async throws {
        var options = options
        if options.from == nil { options.from = officeUnit }
        try await options.withClient(for: .cases) { client in
            let item = try await perform(
                client, CaseTypes.link, CaseLinkRequest(id: id, related: related, comment: comment), as: Case.self, options: options)
            if options.json { return try printJSON(item) }
            print("\(item.id) 关联问题：\((item.related ?? []).joined(separator: "、"))")
        }
    }
}
