/// Request types and topics every service serves (PROTOCOL.md section 6, "Every service").
public enum SystemTypes {
    public static let ping = RPC<Empty, PingReply>("sys.ping", .read, allow: .everyone)
    public static let types = RPC<Empty, TypesReply>("sys.types", .read, allow: .everyone)
    public static let eventsSince = RPC<EventsSinceRequest, EventsSinceReply<AnyEvent>>("events.since", .read, allow: .readers)
    /// The service's audit trail (PROTOCOL.md section 7), and its chain checked.
    public static let auditList = RPC<AuditListRequest, ListReply<AuditEntry>>("audit.list", .read, allow: .auditors)
    public static let auditVerify = RPC<Empty, AuditVerifyReply>("audit.verify", .read, allow: .auditors)
}

/// `sys.ping` reply.
public struct PingReply: Codable, Sendable, Equatable {
    public var service: String
    public var instance: String
    public var version: String
    public var `protocol`: Int
    /// When this process started (RFC 3339).
    public var started: String
    /// Head `seq` of each event stream this service keeps.
    public var streams: [String: Int]
    /// `curve` when every peer is authenticated (a key directory), `none` otherwise (PROTOCOL.md section 7).
    public var security: String?

    public init(
        service: String, instance: String, version: String, protocol: Int = protocolVersion, started: String, streams: [String: Int],
        security: String? = nil
    ) {
        self.service = service
        self.instance = instance
        self.version = version
        self.protocol = `protocol`
        self.started = started
        self.streams = streams
        self.security = security
    }
}

extension PingReply: TreeReadable {
    init(tree: FastJSON) throws {
        let members = try TreeMembers(tree)
        service = try members.required(CodingKeys.service)
        instance = try members.required(CodingKeys.instance)
        version = try members.required(CodingKeys.version)
        `protocol` = try members.required(CodingKeys.protocol)
        started = try members.required(CodingKeys.started)
        streams = try members.required(CodingKeys.streams)
        security = try members.optional(CodingKeys.security)
    }
}

/// `sys.types` reply.
public struct TypesReply: Codable, Sendable, Equatable {
    /// Request types this service answers.
    public var requests: [String]
    /// Event topics it publishes.
    public var topics: [String]
    /// Of `requests`, those that change state: give them an idempotency key (`key`).
    public var writes: [String]?
    /// The roles that may call each request type (PROTOCOL.md section 7).
    public var access: [String: [Role]]?

    public init(requests: [String], topics: [String], writes: [String]? = nil, access: [String: [Role]]? = nil) {
        self.requests = requests
        self.topics = topics
        self.writes = writes
        self.access = access
    }
}

/// `events.since {stream, after, limit}`.
public struct EventsSinceRequest: Codable, Sendable, Equatable {
    public var stream: String
    /// Return events with `seq > after`.
    public var after: Int
    /// At most this many (default 1000, at most 10000).
    public var limit: Int?

    public init(stream: String, after: Int, limit: Int? = nil) {
        self.stream = stream
        self.after = after
        self.limit = limit
    }
}

/// `events.since` reply: events in `seq` order, and the stream's head.
public struct EventsSinceReply<Event: Codable & Sendable>: Codable, Sendable {
    public var events: [Event]
    public var head: Int
}
