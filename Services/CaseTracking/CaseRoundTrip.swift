import Foundation
import GRDB
import Schema
import ServiceKit

/// `case.import` rows that name a case by its 编号: the office's own ledger coming back after an
/// export, edited. Fields change; the state never does (it moves only by `case.transition`), and
/// nothing is opened. Kept apart from the handler so the import's other path stays as it was.
enum CaseRoundTrip {
    /// The fields an edit may carry, with the Chinese column a message names.
    static let editable: [(key: String, label: String)] = [
        ("title", "问题标题"), ("description", "问题描述"), ("unit", "责任单位"), ("supervising_unit", "监管单位"), ("acceptance_unit", "验收单位"),
        ("deadline", "完成时限"), ("measures", "整改措施"), ("task", "所属任务"), ("batch", "批次"), ("location", "位置"), ("coordinates", "经度/纬度"),
        ("external_ref", "外部编号"),
    ]

    struct Edit: Sendable {
        var index: Int
        var id: String
        var object: [String: JSONValue]
    }

    struct Outcome {
        var updated: [CaseImportChange] = []
        var unchanged: [String] = []
        var notes: [CaseImportNote] = []
        var rejected: [RejectedItem] = []
    }

    /// Splits the rows that are edits (they carry `id`) from those that open cases.
    static func edits(_ cases: [JSONValue]) -> (edits: [Edit], rest: [(Int, JSONValue)], rejected: [RejectedItem]) {
        var edits: [Edit] = []
        var rest: [(Int, JSONValue)] = []
        var rejected: [RejectedItem] = []
        for (index, raw) in cases.enumerated() {
            guard case .object(let object) = raw, let idValue = object["id"] else {
                rest.append((index, raw))
                continue
            }
            guard case .string(let id) = idValue, !id.isEmpty, id.count <= 64 else {
                rejected.append(RejectedItem(index: index, code: .invalidArgument, message: "编号（id）应为文本", field: "body.cases[\(index)].id"))
                continue
            }
            edits.append(Edit(index: index, id: id, object: object))
        }
        return (edits, rest, rejected)
    }

    /// Judges each edit against the stored case and, unless `write` is false, stores the changed
    /// fields with a history step (a deadline change as `extend`, the others as `edit`).
    static func apply(
        _ edits: [Edit], db: Database, events: inout EventBuffer, write: Bool, registry: RegistryDirectory.Snapshot, actor: String,
        principal: Principal?, now: Date
    ) throws -> Outcome {
        var outcome = Outcome()
        let at = Timestamp.format(now)
        for edit in edits {
            let field = "body.cases[\(edit.index)]"
            func reject(_ code: ErrorCode, _ message: String, _ key: String) {
                outcome.rejected.append(RejectedItem(index: edit.index, code: code, message: message, field: "\(field).\(key)"))
            }
            guard let item = try CasesStore.fetch(db, id: edit.id, now: now) else {
                reject(.notFound, "整改台账中没有问题 \(ErrorBody.quote(edit.id))", "id")
                continue
            }
            guard item.state != .voided else {
                reject(.conflict, "问题 \(item.id) 已作废，不随导入更改", "id")
                continue
            }
            var merged = CaseOpenRequest(
                source: item.source, title: item.title, unit: item.unit, deadline: item.deadline, description: item.description,
                task: item.task, batch: item.batch, location: item.location, coordinates: item.coordinates, externalRef: item.externalRef,
                supervisingUnit: item.supervisingUnit, acceptanceUnit: item.acceptanceUnit, measures: item.measures)
            var problem = false
            for (key, value) in edit.object where !["id", "state", "source"].contains(key) {
                var text: String?
                switch value {
                case .null: text = nil
                case .string(let string):
                    // Kept as sent: a title's own leading tab or space is data (the export wrote it so).
                    text = string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : string
                case .object where key == "coordinates": text = nil
                default:
                    reject(.invalidArgument, "\(key) 应为文本", key)
                    problem = true
                }
                if problem { break }
                switch key {
                case "title", "unit":
                    guard let text else {
                        reject(.invalidArgument, "\(key == "title" ? "问题标题" : "责任单位")不能为空", key)
                        problem = true
                        break
                    }
                    if key == "title" { merged.title = text } else { merged.unit = text }
                case "description": merged.description = text
                case "supervising_unit": merged.supervisingUnit = text
                case "acceptance_unit": merged.acceptanceUnit = text
                case "deadline": merged.deadline = text
                case "measures": merged.measures = text
                case "task": merged.task = text
                case "batch": merged.batch = text
                case "location": merged.location = text
                case "external_ref": merged.externalRef = text
                case "coordinates":
                    if case .object = value {
                        guard let coordinates = try? value.decode(as: Coordinates.self) else {
                            reject(.invalidArgument, "坐标应为 {lat, lon}", key)
                            problem = true
                            break
                        }
                        merged.coordinates = coordinates
                    } else {
                        merged.coordinates = nil
                    }
                default:
                    reject(.invalidArgument, "台账导入不能修改 \(key)", key)
                    problem = true
                }
                if problem { break }
            }
            if problem { continue }
            do {
                try CasesService.validate(merged, registry: registry, field: field)
            } catch let error as ErrorBody {
                outcome.rejected.append(RejectedItem(index: edit.index, code: error.code, message: error.message, field: error.field))
                continue
            }
            if let ref = merged.externalRef, ref != item.externalRef,
                let other = try String.fetchOne(
                    db, sql: "SELECT id FROM cases WHERE source = ? AND external_ref = ? AND id <> ?",
                    arguments: [item.source.rawValue, ref, item.id])
            {
                reject(.conflict, "外部编号 \(ErrorBody.quote(ref)) 已属于问题 \(other)", "external_ref")
                continue
            }
            // What the file says of things an import does not change: said on the line, not applied.
            if case .string(let stated) = edit.object["state"], !stated.isEmpty {
                let state = CaseState(rawValue: stated) ?? CaseState.allCases.first { $0.label == stated }
                if state != item.state {
                    outcome.notes.append(
                        CaseImportNote(
                            index: edit.index, id: item.id,
                            message: "状态为「\(item.state.label)」，文件中为「\(stated)」；状态不随导入更改，须按办理流程（duban cases move）变更"))
                }
            }
            if case .string(let stated) = edit.object["source"], !stated.isEmpty, stated != item.source.rawValue,
                stated != item.source.label
            {
                outcome.notes.append(
                    CaseImportNote(
                        index: edit.index, id: item.id, message: "来源为「\(item.source.label)」，文件中为「\(stated)」；来源决定编号，不随导入更改"))
            }
            let before = values(of: item)
            let after = values(of: merged)
            let changes = editable.compactMap { key, label in
                before[key] == after[key] ? nil : CaseFieldChange(field: key, from: before[key] ?? nil, to: after[key] ?? nil)
            }
            if changes.isEmpty {
                outcome.unchanged.append(item.id)
                continue
            }
            outcome.updated.append(CaseImportChange(index: edit.index, id: item.id, changes: changes))
            guard write else { continue }
            let deadlineMoved = merged.deadline != item.deadline
            try db.execute(
                sql: """
                    UPDATE cases SET title = ?, description = ?, unit = ?, supervising_unit = ?, acceptance_unit = ?, deadline = ?,
                    measures = ?, task = ?, batch = ?, location = ?, lat = ?, lon = ?, external_ref = ?, updated_at = ? WHERE id = ?
                    """,
                arguments: [
                    merged.title, merged.description, merged.unit, merged.supervisingUnit, merged.acceptanceUnit, merged.deadline,
                    merged.measures, merged.task, merged.batch, merged.location, merged.coordinates?.lat, merged.coordinates?.lon,
                    merged.externalRef, at, item.id,
                ])
            func step(_ action: String, _ comment: String, change: DeadlineChange? = nil) throws {
                try CasesStore.appendHistory(
                    db, id: item.id,
                    CaseTransition(
                        action: action, from: item.state, to: item.state, actor: actor, at: at, comment: comment, evidence: [],
                        principal: principal?.name, principalKey: principal?.publicKey, deadlineChange: change))
            }
            // A deadline moved by the ledger is kept as an extension is: the first deadline as
            // original_deadline, `cases.case.deadline_changed`, an `extend_grant` step with both dates.
            if deadlineMoved {
                if let to = merged.deadline {
                    try CasesService.changeDeadline(
                        db, events: &events, item: item, from: item.deadline, to: to, reason: "台账导入", by: "import",
                        today: Timestamp.districtDate(now))
                }
                try step(
                    "extend_grant", "台账导入：完成时限 \(item.deadline ?? "（无）") → \(merged.deadline ?? "（无）")",
                    change: DeadlineChange(from: item.deadline, to: merged.deadline))
            }
            let others = changes.filter { $0.field != "deadline" }
            if !others.isEmpty {
                let label = Dictionary(uniqueKeysWithValues: editable.map { ($0.key, $0.label) })
                try step(
                    "edit",
                    "台账导入修改：" + others.map { "\(label[$0.field]!) \($0.from ?? "（空）") → \($0.to ?? "（空）")" }.joined(separator: "；"))
            }
            // The case as it now is: followers that keep a copy (the registry's ledger figures) see
            // a task, batch or deadline the ledger changed.
            if var edited = try CasesStore.fetch(db, id: item.id, now: now) {
                edited.history = nil
                try events.emit(CaseTypes.edited, edited)
            }
        }
        return outcome
    }

    /// A case's editable fields as text, for comparing and for the reply.
    static func values(of item: CaseOpenRequest) -> [String: String?] {
        [
            "title": item.title, "description": item.description, "unit": item.unit, "supervising_unit": item.supervisingUnit,
            "acceptance_unit": item.acceptanceUnit, "deadline": item.deadline, "measures": item.measures, "task": item.task,
            "batch": item.batch, "location": item.location, "coordinates": item.coordinates.map { "\($0.lon),\($0.lat)" },
            "external_ref": item.externalRef,
        ]
    }

    static func values(of item: Case) -> [String: String?] {
        values(
            of: CaseOpenRequest(
                source: item.source, title: item.title, unit: item.unit, deadline: item.deadline, description: item.description,
                task: item.task, batch: item.batch, location: item.location, coordinates: item.coordinates, externalRef: item.externalRef,
                supervisingUnit: item.supervisingUnit, acceptanceUnit: item.acceptanceUnit, measures: item.measures))
    }
}
