import ArgumentParser
import DubanConfig
import Foundation
import Messaging
import Schema
import Trust

/// `duban audit`: who changed what, from every service's audit trail, and whether each chain holds.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "审计记录：谁（证书、角色、单位）在何时做了哪项变更；--verify 逐条核对哈希链。",
        discussion: """
            每项存储的变更都记入该服务的审计记录，与变更同在一个事务中写入，只增不改，每条的哈希包含前一条的哈希。\
            --verify 在本机取回全部条目重新计算，任何条目被改动、插入或删除都会指出断裂处（并以非零状态退出）。
            """)

    @OptionGroup var options: GlobalOptions
    @Option(help: "服务（可重复；默认全部）：\(ServiceName.helpList)。") var service: [String] = []
    @Option(help: "只看某单位的。") var unit: String?
    @Option(help: "只看某证书的（证书名，如 unit-12）。") var principal: String?
    @Option(help: "只看某请求类型的（如 progress.report）。") var type: String?
    @Option(help: "起始时间（含），YYYY-MM-DD 或 RFC 3339。") var since: String?
    @Option(help: "截止时间（不含）。") var until: String?
    @Flag(help: "核对每个服务的哈希链。") var verify = false

    func run() async throws {
        let services = service.isEmpty ? ServiceName.allCases : try ServiceName.resolve(service, option: "--service")
        try await options.checkUnits([("--unit", unit)])
        var rows: [[String]] = []
        var all: [AuditEntry] = []
        var broken = 0
        for name in services {
            try await options.withClient(for: name) { client in
                let request = AuditListRequest(unit: unit, principal: principal, type: type, since: since, until: until)
                let entries = try await Self.read(client, request, options: options)
                all += entries
                guard verify else { return }
                let whole = try await Self.read(client, AuditListRequest(), options: options)
                let server = try await perform(client, SystemTypes.auditVerify, Empty(), options: options)
                if let problem = AuditChain.firstBreak(whole) {
                    broken += 1
                    rows.append([name.rawValue, "断裂", "第 \(problem.seq) 条", problem.problem])
                } else if whole.last?.hash ?? AuditEntry.genesis != server.headHash || !server.ok {
                    broken += 1
                    rows.append([name.rawValue, "不符", "", server.problem ?? "服务端链头与取回的条目不一致"])
                } else {
                    rows.append([name.rawValue, "完整", "\(whole.count) 条", "链头 \(String(server.headHash.prefix(16)))…"])
                }
            }
        }
        all.sort { ($0.at, $0.stream, $0.seq) < ($1.at, $1.stream, $1.seq) }
        if options.json {
            try printJSON(all)
        } else {
            print(
                TextTable.render(
                    header: ["时间", "服务", "请求", "证书", "角色", "单位（发送方）", "摘要"],
                    rows: all.map { entry in
                        [
                            String(entry.at.prefix(19)).replacingOccurrences(of: "T", with: " "), entry.stream, entry.type,
                            entry.principal ?? "（无认证）", Role(rawValue: entry.role)?.chineseName ?? entry.role,
                            entry.unit ?? entry.actor ?? "", Self.short(entry.summary),
                        ]
                    }))
            print("共 \(all.count) 条")
        }
        if verify {
            print(TextTable.render(header: ["服务", "哈希链", "条目", "说明"], rows: rows))
            if broken > 0 { throw ExitCode(2) }
        }
    }

    /// Every entry matching `request`, read on page by page.
    static func read(_ client: RPCClient, _ request: AuditListRequest, options: GlobalOptions) async throws -> [AuditEntry] {
        var request = request
        var entries: [AuditEntry] = []
        while true {
            request.limit = 5000
            let page: [AuditEntry]
            do {
                page = try await client.callAll(SystemTypes.auditList, request, timeout: options.replyTimeout, retries: 2)
            } catch {
                throw CallFailed(SystemTypes.auditList.name, error)
            }
            entries += page
            guard let last = page.last, page.count == 5000 else { return entries }
            request.after = last.seq
        }
    }

    /// The request's body, briefly.
    static func short(_ summary: String) -> String {
        let body = summary.range(of: "\"body\":").map { String(summary[$0.upperBound...]) } ?? summary
        return body.count > 40 ? String(body.prefix(40)) + "…" : body
    }
}
