import Foundation
import GRDB
import Schema
import ServiceKit

/// Notifications: notices for the right units, the supervision rhythm, reliable delivery.
/// This stage keeps the delivery channels (`channel.set`, `channel.list`); notices follow.
public struct NotifyService: DubanService {
    public static let name = ServiceName.notify
    public static let topics = [NotifyTypes.noticeIssued, NotifyTypes.channelUpdated]

    let store: ServiceStore

    public static func migrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("notify-v1-channels") { db in
            try db.execute(
                sql: """
                    CREATE TABLE channels (
                        name TEXT PRIMARY KEY NOT NULL,
                        definition BLOB NOT NULL,
                        updated_at TEXT NOT NULL
                    )
                    """)
        }
    }

    public init(context: ServiceContext) async throws {
        store = try context.store
    }

    public func register(_ handlers: inout HandlerTable) {
        handlers.on(NotifyTypes.channelList, Empty.self) { _, context in
            ListReply(items: try ChannelStore.all(try context.store))
        }
        handlers.on(NotifyTypes.channelSet, ChannelSetRequest.self, mutating: true) { request, context in
            try ChannelStore.validate(request.channel)
            return try await context.write { db, events in
                let removed = request.remove ?? false
                if removed {
                    try db.execute(sql: "DELETE FROM channels WHERE name = ?", arguments: [request.channel.name])
                    guard db.changesCount > 0 else { throw ErrorBody.notFound("no channel \(request.channel.name)", field: "body.channel.name") }
                } else {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO channels (name, definition, updated_at) VALUES (?, ?, ?)",
                        arguments: [request.channel.name, try WireCoding.canonical(request.channel), Timestamp.now()])
                }
                try events.emit(NotifyTypes.channelUpdated, ChannelUpdated(channel: request.channel, removed: removed, by: context.from))
                return ListReply(items: try ChannelStore.all(db))
            }
        }
    }
}

/// The channels table.
enum ChannelStore {
    static func all(_ store: ServiceStore) throws -> [Channel] {
        try store.pool.read { try all($0) }
    }

    static func all(_ db: Database) throws -> [Channel] {
        try Data.fetchAll(db, sql: "SELECT definition FROM channels ORDER BY name").map { try WireCoding.decoder().decode(Channel.self, from: $0) }
    }

    /// Refuses a channel that could never deliver.
    static func validate(_ channel: Channel) throws {
        guard !channel.name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ErrorBody.invalidArgument("a channel needs a name", field: "body.channel.name")
        }
        switch channel.kind {
        case .webhook, .wecom, .dingtalk:
            guard let url = URL(string: channel.target), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ErrorBody.invalidArgument("target must be an http(s) URL for a \(channel.kind.rawValue) channel", field: "body.channel.target")
            }
        case .file:
            guard channel.target.hasPrefix("/") else {
                throw ErrorBody.invalidArgument("target must be an absolute file path for a file channel", field: "body.channel.target")
            }
        }
        if let rate = channel.ratePerMinute, rate < 1 {
            throw ErrorBody.invalidArgument("rate_per_minute must be at least 1", field: "body.channel.rate_per_minute")
        }
    }
}
