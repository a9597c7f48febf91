/// Accountability records (the plan: 对工作落实不到位、进度明显滞后的予以通报、约谈，对敷衍应付、履责不力的
/// 依照干部管理权限严肃追责问责; 主要负责人要担负起第一责任人的职责): what a 约谈 or a 问责 decided, and
/// each unit's first responsible person on record (docs/registry.md, "Escalations").
public enum AccountabilityTypes {
    public static let responsibleSet = RPC<ResponsibleSetRequest, ResponsiblePerson>("responsible.set", .write, allow: .office)
    public static let responsibleList = RPC<Empty, ListReply<ResponsiblePerson>>("responsible.list", .read, allow: .readers)

    /// `{id, unit, level, reason, follow_up, commitments, responsible_person}`: a 约谈's follow-up day has come.
    public static let followUpDue = "registry.escalation.follow_up_due"
}

/// A person held to account (问责对象).
public struct AccountablePerson: Codable, Sendable, Equatable {
    public var name: String
    public var position: String
    public init(name: String, position: String) {
        self.name = name
        self.position = position
    }
}

/// What a 约谈 or 问责 recorded besides its reason.
public struct AccountabilityDetails: Codable, Sendable, Equatable {
    /// What every reader may see: the 约谈's participants and minutes stay with the office, the unit
    /// concerned and the services (the 通报's own content — the day, the commitments, the follow-up
    /// day, the persons held to account, the authority and its document — is announced anyway).
    public var forReaders: AccountabilityDetails {
        var shown = self
        shown.participants = nil
        shown.minutes = nil
        return shown
    }

    /// The day it took place, `YYYY-MM-DD`.
    public var date: String?
    /// 约谈: who took part.
    public var participants: [String]?
    public var minutes: String?
    /// 约谈: what the unit committed to.
    public var commitments: [String]?
    /// 约谈: the day the commitments are checked (reminded to the unit and the office).
    public var followUp: String?
    /// 问责: the persons held to account, the authority that decided (干部管理权限) and its decision document.
    public var persons: [AccountablePerson]?
    public var authority: String?
    public var decisionDocument: String?

    enum CodingKeys: String, CodingKey {
        case date, participants, minutes, commitments, persons, authority
        case followUp = "follow_up"
        case decisionDocument = "decision_document"
    }

    public init(
        date: String? = nil, participants: [String]? = nil, minutes: String? = nil, commitments: [String]? = nil, followUp: String? = nil,
        persons: [AccountablePerson]? = nil, authority: String? = nil, decisionDocument: String? = nil
    ) {
        self.date = date
        self.participants = participants
        self.minutes = minutes
        self.commitments = commitments
        self.followUp = followUp
        self.persons = persons
        self.authority = authority
        self.decisionDocument = decisionDocument
    }
}

/// A unit's first responsible person (第一责任人): its principal leader.
public struct ResponsiblePerson: Codable, Sendable, Equatable {
    public var unit: String
    public var name: String
    public var position: String
    public var since: String
    public init(unit: String, name: String, position: String, since: String) {
        self.unit = unit
        self.name = name
        self.position = position
        self.since = since
    }
}

/// `responsible.set {unit, name, position}`.
public struct ResponsibleSetRequest: Codable, Sendable, Equatable {
    public var unit: String
    public var name: String
    public var position: String
    public init(unit: String, name: String, position: String) {
        self.unit = unit
        self.name = name
        self.position = position
    }
}

/// `registry.escalation.follow_up_due` body.
public struct EscalationFollowUp: Codable, Sendable, Equatable {
    public var id: Int
    public var unit: String
    public var level: EscalationLevel
    public var reason: String
    public var followUp: String
    public var commitments: [String]
    public var responsiblePerson: ResponsiblePerson?

    enum CodingKeys: String, CodingKey {
        case id, unit, level, reason, commitments
        case followUp = "follow_up"
        case responsiblePerson = "responsible_person"
    }

    public init(
        id: Int, unit: String, level: EscalationLevel, reason: String, followUp: String, commitments: [String],
        responsiblePerson: ResponsiblePerson?
    ) {
        self.id = id
        self.unit = unit
        self.level = level
        self.reason = reason
        self.followUp = followUp
        self.commitments = commitments
        self.responsiblePerson = responsiblePerson
    }
}
