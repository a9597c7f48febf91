import ArgumentParser
import DubanConfig
import Formats
import Foundation
import Messaging
import Schema

/// One value an option may name, with every name it goes by (its id, the office's Chinese name,
/// other names offices write) and the name a suggestion shows.
struct NameChoice<Value> {
    var value: Value
    var label: String
    var names: [String]
}

/// Resolves what a person typed for an option into the value it means, or refuses it with one
/// Chinese error that names the option and, when one is close, the valid name meant
/// (`--status：未知的状态「逾期」，是否为「逾期未完成」？`).
enum OptionNames {
    static func resolve<Value>(_ text: String, option: String, noun: String, among choices: [NameChoice<Value>]) throws -> Value {
        let typed = text.trimmingCharacters(in: .whitespaces)
        if let hit = choices.first(where: { $0.names.contains(typed) }) { return hit.value }
        throw ValidationError(refusal(typed, option: option, noun: noun, among: choices))
    }

    static func refusal<Value>(_ typed: String, option: String, noun: String, among choices: [NameChoice<Value>]) -> String {
        let head = "\(option)：未知的\(noun)「\(typed)」"
        if let near = suggestion(typed, among: choices) { return head + "，是否为「\(near)」？" }
        let labels = choices.map(\.label)
        // A short list is worth reading in full; a long one (units) is named by where to look.
        return labels.count <= 20 ? head + "；可选：\(labels.joined(separator: "、"))" : head
    }

    /// The label of the choice meant: the nearest name by edit distance when near enough, else the one
    /// choice whose name contains what was typed (逾期 → 逾期未完成), or is contained in it.
    static func suggestion<Value>(_ typed: String, among choices: [NameChoice<Value>]) -> String? {
        guard !typed.isEmpty else { return nil }
        var labelOf: [String: String] = [:]
        for choice in choices { for name in choice.names { labelOf[name] = labelOf[name] ?? choice.label } }
        if let near = OfficeText.nearest(typed, in: Array(labelOf.keys).sorted()) { return labelOf[near] }
        // Short names (约谈, 钉钉) are too short for the third-of-the-name rule: one character off
        // still means the one name it is off from, when only one is.
        if typed.count >= 2 {
            let oneOff = Set(
                labelOf.filter { $0.key.count == typed.count && OfficeText.editDistance(Array(typed), Array($0.key)) == 1 }.map(\.value))
            if oneOff.count == 1 { return oneOff.first }
        }
        let lowered = typed.lowercased()
        let containing = Set(
            choices.filter { choice in
                choice.names.contains { name in
                    let name = name.lowercased()
                    return name.contains(lowered) || (name.count >= 2 && lowered.contains(name))
                }
            }.map(\.label))
        return containing.count == 1 ? containing.first : nil
    }
}

/// An enumeration an option takes by its id or by its Chinese name.
protocol NamedOption: CaseIterable, RawRepresentable where RawValue == String {
    var label: String { get }
    /// What the value is, in the refusal: 状态, 类型, 来源 …
    static var noun: String { get }
    /// A value from any of the names the office writes for it (other than id and label).
    static func fromOtherName(_ text: String) -> Self?
}

extension NamedOption {
    static func fromOtherName(_ text: String) -> Self? { nil }

    static var choices: [NameChoice<Self>] { allCases.map { NameChoice(value: $0, label: $0.label, names: [$0.rawValue, $0.label]) } }

    /// The value `text` names, or a ValidationError naming `option` (and the name meant, when one is close).
    static func named(_ text: String, option: String) throws -> Self {
        if let value = fromOtherName(text.trimmingCharacters(in: .whitespaces)) { return value }
        return try OptionNames.resolve(text, option: option, noun: noun, among: choices)
    }

    static func resolve(_ text: String?, option: String) throws -> Self? {
        guard let text else { return nil }
        return try named(text, option: option)
    }

    static func resolve(_ texts: [String], option: String) throws -> [Self] { try texts.map { try named($0, option: option) } }

    /// The option's help: each id with its Chinese name.
    static var helpList: String { allCases.map { "\($0.label)（\($0.rawValue)）" }.joined(separator: "、") }
}

extension TaskStatus: NamedOption { static var noun: String { "状态" } }
extension CaseState: NamedOption { static var noun: String { "状态" } }
extension NoticeState: NamedOption { static var noun: String { "状态" } }
extension SupervisionItemState: NamedOption { static var noun: String { "状态" } }
extension ImplementationPlanState: NamedOption { static var noun: String { "状态" } }
extension CaseSource: NamedOption {
    static var noun: String { "来源" }
    static func fromOtherName(_ text: String) -> CaseSource? { CaseSource(text: text) }
}
extension NoticeKind: NamedOption {
    static var noun: String { "类型" }
    static func fromOtherName(_ text: String) -> NoticeKind? { NoticeKind(text: text) }
}
extension ReportKind: NamedOption {
    static var noun: String { "报告类型" }
    var label: String {
        switch self {
        case .monthly: return "月度"
        case .quarterly: return "季度"
        case .annual: return "年度"
        case .closing: return "收官"
        }
    }
    static func fromOtherName(_ text: String) -> ReportKind? {
        ["月报": .monthly, "月度报告": .monthly, "季报": .quarterly, "季度报告": .quarterly, "年报": .annual, "年度报告": .annual, "收官报告": .closing][
            text]
    }
}
extension ChannelKind: NamedOption {
    static var noun: String { "渠道类型" }
    var label: String {
        switch self {
        case .webhook: return "webhook"
        case .wecom: return "企业微信"
        case .dingtalk: return "钉钉"
        case .file: return "文件"
        }
    }
}
extension ServiceName: NamedOption {
    static var noun: String { "服务" }
    var label: String {
        switch self {
        case .registry: return "任务登记"
        case .ingest: return "指标采集"
        case .cases: return "问题整改"
        case .notify: return "通知提醒"
        }
    }
}

extension GlobalOptions {
    /// How long a name lookup waits: a service that does not answer soon delays the command no
    /// longer than this before the request goes as typed (and meets the same silence).
    var lookupTimeout: Duration { min(replyTimeout, .seconds(2)) }

    /// Checks every unit named in `named` against the registry's units before anything is sent, so
    /// that a mistyped unit (区农业局) is refused with the name meant (区农业农村局). When the
    /// registry cannot be asked (not reachable, not allowed), the service that receives the
    /// request judges the name itself.
    func checkUnits(_ named: [(option: String, name: String?)]) async throws {
        let given = named.compactMap { item in item.name.map { (item.option, $0) } }
        guard !given.isEmpty else { return }
        let units: [PlanUnit]
        do {
            units = try await withClient(for: .registry) { client in
                try await client.callAll(RegistryTypes.unitList, Empty(), timeout: lookupTimeout, retries: 0)
            }
        } catch {
            return
        }
        let choices = units.map { NameChoice(value: $0.name, label: $0.name, names: [$0.name]) }
        for (option, name) in given { _ = try OptionNames.resolve(name, option: option, noun: "单位", among: choices) }
    }

    /// A station's id from its id, its name (六一桥入湟断面) or the start of its name (六一桥).
    /// Unchanged when the ingest service cannot be asked: the service judges it.
    func stationID(_ text: String, option: String) async throws -> String {
        guard
            let stations = try? await withClient(
                for: .ingest,
                { client in
                    try await client.callAll(IngestTypes.stationList, Empty(), timeout: lookupTimeout, retries: 0)
                })
        else { return text }
        let typed = text.trimmingCharacters(in: .whitespaces)
        let choices = stations.map { NameChoice(value: $0.id, label: "\($0.name)（\($0.id)）", names: [$0.id, $0.name]) }
        if let hit = choices.first(where: { $0.names.contains(typed) }) { return hit.value }
        // A station is often called by the place alone: 六一桥 for 六一桥入湟断面.
        let starting = stations.filter { !typed.isEmpty && $0.name.hasPrefix(typed) }
        if starting.count == 1 { return starting[0].id }
        return try OptionNames.resolve(typed, option: option, noun: "站点", among: choices)
    }

    /// An indicator's id from its id or the plan's name for it (森林覆盖率).
    /// Unchanged when the ingest service cannot be asked: the service judges it.
    func indicatorID(_ text: String, option: String) async throws -> String {
        guard
            let indicators = try? await withClient(
                for: .ingest,
                { client in
                    try await client.callAll(IngestTypes.indicatorList, Empty(), timeout: lookupTimeout, retries: 0)
                })
        else { return text }
        let choices = indicators.map { NameChoice(value: $0.id, label: "\($0.name)（\($0.id)）", names: [$0.id, $0.name]) }
        return try OptionNames.resolve(text, option: option, noun: "指标", among: choices)
    }
}
