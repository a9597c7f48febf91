/// One stored change, as the audit trail keeps it (PROTOCOL.md section 7: every stored change
/// records the principal and its public key beside the actor). Entries are chained: `hash` covers
/// the entry and `prev`, the hash of the entry before it, so an entry changed or taken out breaks
/// the chain from there on.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var seq: Int
    public var at: String
    /// The instance that stored the change (`registry`, `ingest-2`).
    public var stream: String
    /// The request type (`progress.report`).
    public var type: String
    public var requestID: String
    /// The certificate that made the request (nil on a service without keys).
    public var principal: String?
    public var principalKey: String?
    public var role: String
    /// The envelope's `from` after checking: the unit, the office, or the principal's name.
    public var actor: String?
    /// The unit it acted for.
    public var unit: String?
    /// The request as received, its first 600 bytes (for a person reading the trail).
    public var summary: String
    /// SHA-256 of the request type and canonical body (the idempotency fingerprint).
    public var digest: String
    public var prev: String
    public var hash: String

    public init(
        seq: Int, at: String, stream: String, type: String, requestID: String, principal: String?, principalKey: String?, role: String,
        actor: String?, unit: String?, summary: String, digest: String, prev: String, hash: String
    ) {
        self.seq = seq
        self.at = at
        self.stream = stream
        self.type = type
        self.requestID = requestID
        self.principal = principal
        self.principalKey = principalKey
        self.role = role
        self.actor = actor
        self.unit = unit
        self.summary = summary
        self.digest = digest
        self.prev = prev
        self.hash = hash
    }

    enum CodingKeys: String, CodingKey {
        case seq, at, stream, type, principal, role, actor, unit, summary, digest, prev, hash
        case requestID = "request_id"
        case principalKey = "principal_key"
    }

    /// The bytes its hash covers: every field but `hash`, each length-prefixed (unambiguous
    /// whatever the text holds), in a fixed order.
    public var chainedBytes: [UInt8] {
        var out: [UInt8] = []
        for field in [
            String(seq), at, stream, type, requestID, principal ?? "", principalKey ?? "", role, actor ?? "", unit ?? "", summary, digest,
            prev,
        ] {
            out.append(contentsOf: Array("\(field.utf8.count):".utf8))
            out.append(contentsOf: Array(field.utf8))
            out.append(0x0A)
        }
        return out
    }

    /// The `prev` of the first entry.
    public static let genesis = String(repeating: "0", count: 64)
}

/// `audit.list`: the trail, filtered; read on with `after` (the last `seq` received).
public struct AuditListRequest: Codable, Sendable, Equatable {
    public var unit: String?
    public var principal: String?
    public var type: String?
    /// From this instant (RFC 3339 or YYYY-MM-DD).
    public var since: String?
    /// Before this instant.
    public var until: String?
    public var after: Int?
    /// At most this many (1…5000, default 1000).
    public var limit: Int?

    public init(
        unit: String? = nil, principal: String? = nil, type: String? = nil, since: String? = nil, until: String? = nil, after: Int? = nil,
        limit: Int? = nil
    ) {
        self.unit = unit
        self.principal = principal
        self.type = type
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}

/// `audit.verify`: the chain recomputed from its first entry.
public struct AuditVerifyReply: Codable, Sendable, Equatable {
    public var stream: String
    public var entries: Int
    public var headSeq: Int
    public var headHash: String
    public var ok: Bool
    /// The first entry whose hash or link does not hold.
    public var firstBad: Int?
    public var problem: String?

    public init(stream: String, entries: Int, headSeq: Int, headHash: String, ok: Bool, firstBad: Int? = nil, problem: String? = nil) {
        self.stream = stream
        self.entries = entries
        self.headSeq = headSeq
        self.headHash = headHash
        self.ok = ok
        self.firstBad = firstBad
        self.problem = problem
    }

    enum CodingKeys: String, CodingKey {
        case stream, entries, ok, problem
        case headSeq = "head_seq"
        case headHash = "head_hash"
        case firstBad = "first_bad"
    }
}

extension Access {
    /// The audit trail: the office, the administrator and read-only principals (the discipline
    /// inspection's monitor).
    public static let auditors = Access([.admin, .office, .reader])
}
