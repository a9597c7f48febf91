import Foundation

/// The plan as its source text states it, read independently of the registry's loader: the
/// yardstick the registry's plan is compared with.
struct SeedPlan {
    struct Task {
        var id: String
        var heading: String
        var lead: [String] = []
        var cooperating: [String] = []
        var deadline: String?
        var ongoing = false
    }

    var tasks: [Task] = []
    var goals = ""

    /// The seed: the steering repository's copy beside the clone, or the fixture committed here.
    static func text() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let fixture = root.appendingPathComponent("Tests/Fixtures/chengzhong-eco-action-plan-2024-2026.txt")
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/seed/chengzhong-eco-action-plan-2024-2026.txt")
        let committed = try String(contentsOf: fixture, encoding: .utf8)
        if let original = try? String(contentsOf: shared, encoding: .utf8) {
            precondition(original == committed, "Tests/Fixtures holds a different seed than ../shared/seed: copy it again")
        }
        return committed
    }

    /// Paragraphs with the page layout's line breaks undone: a line that does not end a sentence
    /// or a field continues on the next non-empty line.
    static func paragraphs(_ text: String) -> [String] {
        let lines = text.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let starts = try! NSRegularExpression(pattern: #"^(\d+、|（[一二三四五六]）|（\d）|\([一二三四]\)|[一二三四]、|责任单位|配合单位|完成时限)"#)
        var out: [String] = []
        for line in lines {
            let structural = starts.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
            if let last = out.last, !structural, !"。：；）".contains(last.last!) {
                out[out.count - 1] += line
            } else {
                out.append(line)
            }
        }
        return out
    }

    static func parse() throws -> SeedPlan {
        var plan = SeedPlan()
        var parent: String?
        func units(_ text: String) -> [String] {
            text.split(whereSeparator: { $0 == "、" || $0 == "，" }).map(String.init)
        }
        for paragraph in paragraphs(try text()) {
            if paragraph.hasPrefix("二、工作目标") { plan.goals = String(paragraph.dropFirst("二、工作目标".count)) }
            if let match = paragraph.firstMatch(of: /^([0-9]+)、(.*)$/) {
                plan.tasks.append(Task(id: String(match.1), heading: String(match.2)))
                parent = paragraph.hasSuffix("。") && paragraph.filter({ $0 == "。" }).count == 1 ? String(match.1) : nil
            } else if let match = paragraph.firstMatch(of: /^（([0-9])）(.*)$/), let parent {
                plan.tasks.append(Task(id: "\(parent).\(match.1)", heading: String(match.2)))
            } else if paragraph.hasPrefix("责任单位：") {
                plan.tasks[plan.tasks.count - 1].lead = units(String(paragraph.dropFirst(5)))
            } else if paragraph.hasPrefix("配合单位：") {
                plan.tasks[plan.tasks.count - 1].cooperating = units(String(paragraph.dropFirst(5)))
            } else if paragraph.hasPrefix("完成时限：") {
                let value = paragraph.dropFirst(5).replacingOccurrences(of: " ", with: "")
                if value == "持续推进" {
                    plan.tasks[plan.tasks.count - 1].ongoing = true
                } else if let m = value.firstMatch(of: /^([0-9]{4})年([0-9]{1,2})月底$/) {
                    let year = Int(m.1)!
                    let month = Int(m.2)!
                    let days = [31, (year % 4 == 0 ? 29 : 28), 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
                    plan.tasks[plan.tasks.count - 1].deadline = String(format: "%04d-%02d-%02d", year, month, days)
                }
            } else if paragraph.hasPrefix("四、") {
                break
            }
        }
        return plan
    }
}
