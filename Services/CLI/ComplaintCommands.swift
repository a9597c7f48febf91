import ArgumentParser
import Foundation
import Messaging
import Schema

/// `duban complaints`: 群众举报 taken in by the office, looked up by the complainant, answered.
struct ComplaintsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "complaints", abstract: "群众举报：受理、查询、答复举报人、公开办理情况。",
        subcommands: [Public.self, Submit.self, Status.self, Contact.self, Reply.self], defaultSubcommand: Public.self)

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "受理一件群众举报（专项工作组办公室代录电话、来信举报），登记为整改台账问题。",
            discussion: "举报人的联系方式只保存在举报记录中，仅专项工作组办公室可查看，办结后超过保存期限自动删除。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "举报事项。") var title: String
        @Option(help: "具体情况。") var description: String
        @Option(help: "地点。") var location: String?
        @Option(help: "举报人姓名（可不填）。") var name: String?
        @Option(help: "举报人电话（可不填）。") var phone: String?
        @Option(help: "办理单位（不写为整改台账牵头单位）。") var unit: String?

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            let contact = name == nil && phone == nil ? nil : ComplaintContactDetails(name: name, phone: phone)
            try await options.checkUnits([("--unit", unit)])
            try await options.withClient(for: .cases) { client in
                let receipt = try await perform(
                    client, ComplaintTypes.submit,
                    ComplaintSubmitRequest(title: title, description: description, location: location, contact: contact, unit: unit),
                    options: options)
                if options.json { return try printJSON(receipt) }
                print("已受理：编号 \(receipt.reference)，查询码 \(receipt.code)（请告知举报人，凭编号和查询码查询办理结果）")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "凭编号和查询码查询举报办理情况。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "举报编号，如 JB-2026-0001。") var reference: String
        @Argument(help: "查询码。") var code: String

        func run() async throws {
            try await options.withClient(for: .cases) { client in
                let status = try await perform(
                    client, ComplaintTypes.status, ComplaintStatusRequest(reference: reference, code: code), options: options)
                if options.json { return try printJSON(status) }
                print("\(status.reference)  \(status.title)")
                print("  受理时间  \(status.submittedAt.prefix(16))")
                print("  办理状态  \(status.stateLabel)")
                if let reply = status.reply { print("  答复      \(reply)（\(status.repliedAt?.prefix(10) ?? "")）") }
            }
        }
    }

    struct Contact: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "查看举报人联系方式（仅专项工作组办公室）。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "举报编号。") var id: String

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            try await options.withClient(for: .cases) { client in
                let contact = try await perform(client, ComplaintTypes.contact, ComplaintContactRequest(id: id), options: options)
                if options.json { return try printJSON(contact) }
                if let erased = contact.erasedAt {
                    print("\(contact.id)：联系方式已于 \(erased.prefix(10)) 按保存期限删除")
                } else if let details = contact.contact {
                    print("\(contact.id)：\(details.name ?? "（未留姓名）") \(details.phone ?? "（未留电话）")")
                } else {
                    print("\(contact.id)：举报人未留联系方式")
                }
                if let delivery = contact.replyDelivery {
                    let when = delivery.sentAt.map { "，\($0.prefix(16))" } ?? ""
                    let why = delivery.lastError.map { "：\(DisplayText.sanitized($0))" } ?? ""
                    print("答复短信：\(delivery.state.label)（已尝试 \(delivery.attempts) 次\(when)）\(why)")
                }
            }
        }
    }

    struct Reply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "答复举报人（专项工作组办公室），举报人凭查询码可见。")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "举报编号。") var id: String
        @Argument(help: "答复内容。") var text: String

        func run() async throws {
            var options = options
            if options.from == nil { options.from = officeUnit }
            try await options.withClient(for: .cases) { client in
                let status = try await perform(client, ComplaintTypes.reply, ComplaintReplyRequest(id: id, text: text), options: options)
                if options.json { return try printJSON(status) }
                print("已答复：\(status.reference)（\(status.stateLabel)）")
            }
        }
    }

    struct Public: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "可公开的群众举报办理情况（不含个人信息）。")
        @OptionGroup var options: GlobalOptions
        @Option(help: "年份，如 2026。") var year: String?

        func run() async throws {
            try await options.withClient(for: .cases) { client in
                let items = try await perform(client, ComplaintTypes.publicList, ComplaintPublicListRequest(year: year), options: options)
                    .items
                if options.json { return try printJSON(items) }
                print(
                    TextTable.render(
                        header: ["编号", "举报事项", "地点", "状态", "受理", "办结", "答复"],
                        rows: items.map {
                            [
                                $0.reference, clip($0.title, 30), $0.location ?? "", $0.stateLabel, $0.submittedOn, $0.closedOn ?? "",
                                clip($0.reply ?? "", 40),
                            ]
                        }))
                print("共 \(items.count) 件")
            }
        }
    }
}
