/// A principal's role, from its certificate's metadata (PROTOCOL.md section 7).
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case admin, office, unit, station, reader, service, gateway

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The role's name as the plan's readers call it.
    public var chineseName: String {
        switch self {
        case .admin: return "系统管理员"
        case .office: return "专项工作组办公室"
        case .unit: return "责任单位"
        case .station: return "监测站点"
        case .reader: return "只读用户"
        case .service: return "服务"
        case .gateway: return "网关"
        }
    }
}

/// Who may call a request type: the roles allowed, after a gateway's request has taken the role
/// of the unit it acts for. Unit rules (a unit acts on its own tasks and cases) are the handlers'.
public struct Access: Sendable, Equatable {
    public let roles: Set<Role>

    public init(_ roles: Set<Role>) {
        self.roles = roles
    }

    /// Reads: tools, big screens, leaders, units, the office, peer services.
    public static let readers = Access([.admin, .office, .unit, .reader, .service])
    /// What a station may ask besides its submissions: ping and the request types.
    public static let everyone = Access([.admin, .office, .unit, .reader, .service, .station])
    /// The working group's office (and the administrator).
    public static let office = Access([.admin, .office])
    /// The office and the units the plan names (unit rules in the handler).
    public static let units = Access([.admin, .office, .unit])
    /// Monitoring stations, each for its own stations (checked by the handler).
    public static let stations = Access([.admin, .station])
    /// The administrator alone: plan loads, keys.
    public static let admin = Access([.admin])

    public func allows(_ role: Role) -> Bool { roles.contains(role) }
}

/// An authenticated peer: the certificate whose public key CURVE proved, and its metadata.
public struct Principal: Codable, Sendable, Hashable {
    /// The certificate's file stem (`eco`, `ingest-2`), ASCII.
    public var name: String
    public var role: Role
    /// For `unit`: the unit as the plan writes it.
    public var unit: String?
    /// For `station`: the stations it may submit for.
    public var stations: [String]
    /// For `service`: which service (`registry`, `ingest`, …).
    public var service: String?
    /// For an ingest instance behind the broker: its instance name (`ingest-2`).
    public var instance: String?
    /// The Z85 public key.
    public var publicKey: String

    public init(
        name: String, role: Role, unit: String? = nil, stations: [String] = [], service: String? = nil, instance: String? = nil,
        publicKey: String
    ) {
        self.name = name
        self.role = role
        self.unit = unit
        self.stations = stations
        self.service = service
        self.instance = instance
        self.publicKey = publicKey
    }

    enum CodingKeys: String, CodingKey {
        case name, role, unit, stations, service, instance
        case publicKey = "public_key"
    }

    /// The `from` this principal sends as: its unit, the office, or its name.
    public var sender: String {
        switch role {
        case .unit: return unit ?? name
        case .office: return officeUnit
        default: return name
        }
    }
}

/// The caller of one request as the handlers see it: the authenticated principal (nil when the
/// service runs without keys) and the role and unit it acts with. A gateway acts for the unit it
/// names in `from`, never with more than the office's rights.
public struct Caller: Sendable, Hashable {
    public var principal: Principal?
    public var role: Role
    /// The unit it acts for (`unit`), the office for `office`.
    public var unit: String?
    /// The envelope's `from` after checking: the principal's sender when it wrote none.
    public var from: String?

    public init(principal: Principal?, role: Role, unit: String?, from: String?) {
        self.principal = principal
        self.role = role
        self.unit = unit
        self.from = from
    }

    /// A caller on a service without keys: whoever `from` says, with every right (loopback only).
    public static func unauthenticated(from: String?) -> Caller {
        Caller(principal: nil, role: .admin, unit: from, from: from)
    }

    /// Whether the caller acts as the working group's office (the office, the administrator, or a
    /// gateway acting for the office).
    public var isOffice: Bool {
        guard principal != nil else { return from == officeUnit }
        return role == .office || role == .admin
    }

    /// Resolves who is asking from the principal and the envelope's `from` (PROTOCOL.md section 7).
    /// Throws `permission_denied` when `from` names someone the principal may not speak for.
    public static func resolve(principal: Principal, from: String?) throws(ErrorBody) -> Caller {
        if principal.role == .gateway {
            // A gateway names the unit of the person it authenticated; never more than the office.
            guard let from, !from.isEmpty else { return Caller(principal: principal, role: .reader, unit: nil, from: principal.name) }
            if from == officeUnit { return Caller(principal: principal, role: .office, unit: officeUnit, from: from) }
            return Caller(principal: principal, role: .unit, unit: from, from: from)
        }
        let sender = principal.sender
        if let from, from != sender {
            throw ErrorBody(
                code: .permissionDenied,
                message: "from 为 \(ErrorBody.quote(from))，而证书 \(principal.name) 只能以 \(ErrorBody.quote(sender)) 的名义发送", field: "from")
        }
        let unit: String? =
            switch principal.role {
            case .unit: principal.unit
            case .office: officeUnit
            default: nil
            }
        return Caller(principal: principal, role: principal.role, unit: unit, from: sender)
    }
}
