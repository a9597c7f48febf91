import Crypto
import Foundation
import GRDB
import Schema

/// A person who may log in.
public struct WebUser: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var unit: String
    public var role: WebRole
    public var disabled: Bool
    public var createdAt: String
}

/// A logged-in session as a request sees it.
public struct WebSession: Sendable {
    public var user: WebUser
    /// The token's hash: the row's key (the token itself is only in the cookie).
    public var key: String
    /// Every form carries it back.
    public var csrf: String
}

/// Why a login was refused.
public enum LoginRefusal: Error, Equatable, Sendable {
    case wrongCredentials
    case locked(until: Date)
    case disabled
}

/// The console's own SQLite file (`web.sqlite`): people, sessions, the login journal and the
/// uploaded evidence's metadata. Only duban-web opens it; `duban-web users …` manages it.
public final class AccountStore: Sendable {
    let queue: DatabaseQueue
    /// Failures in a row that lock an account, and for how long.
    public static let lockAfterFailures = 5
    public static let lockDuration: TimeInterval = 15 * 60

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        queue = try DatabaseQueue(path: (directory as NSString).appendingPathComponent("web.sqlite"), configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, unit TEXT NOT NULL, role TEXT NOT NULL,
                        password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
                    CREATE TABLE sessions (
                        key TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, csrf TEXT NOT NULL,
                        created_at REAL NOT NULL, last_seen REAL NOT NULL, address TEXT);
                    CREATE TABLE logins (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, address TEXT, outcome TEXT NOT NULL, at REAL NOT NULL);
                    CREATE INDEX logins_by_name ON logins(name, id);
                    CREATE TABLE uploads (
                        sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL,
                        uploaded_by TEXT NOT NULL, unit TEXT NOT NULL, at TEXT NOT NULL);
                    """)
        }
        migrator.registerMigration("v2-kiosk") { db in
            // A kiosk link: a revocable token in the URL for the meeting-room screen. Each has a
            // `screen` person of its own, so revoking it also ends the screen's session.
            try db.execute(
                sql: """
                    CREATE TABLE kiosks (
                        token_hash TEXT PRIMARY KEY, label TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL REFERENCES users(id),
                        created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
                    """)
        }
        return migrator
    }

    // MARK: Kiosk links

    /// Makes a kiosk link for `label`; returns its token (only its hash is kept).
    public func addKiosk(label: String, passwordHash: String) throws -> String {
        let token = Self.randomToken()
        try queue.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM kiosks WHERE label = ?", arguments: [label]) != nil {
                throw WebError.invalid("大屏链接 \(label) 已存在")
            }
            let now = Timestamp.now()
            try db.execute(
                sql: "INSERT INTO users (name, unit, role, password_hash, created_at) VALUES (?, ?, 'screen', ?, ?)",
                arguments: ["kiosk:\(label)", officeUnit, passwordHash, now])
            try db.execute(
                sql: "INSERT INTO kiosks (token_hash, label, user_id, created_at) VALUES (?, ?, ?, ?)",
                arguments: [Self.hash(token), label, db.lastInsertedRowID, now])
        }
        return token
    }

    /// The screen person a live kiosk token stands for; nil when unknown or revoked.
    public func kioskUser(token: String) throws -> WebUser? {
        try queue.read { db in
            try Row.fetchOne(
                db,
                sql:
                    "SELECT u.* FROM kiosks k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ? AND k.revoked = 0 AND u.disabled = 0",
                arguments: [Self.hash(token)]
            ).map(Self.user)
        }
    }

    /// Revokes a kiosk link and ends its screen's sessions.
    public func revokeKiosk(label: String) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE kiosks SET revoked = 1 WHERE label = ?", arguments: [label])
            guard db.changesCount == 1 else { throw WebError.invalid("没有大屏链接 \(label)") }
            try db.execute(sql: "UPDATE users SET disabled = 1 WHERE name = ?", arguments: ["kiosk:\(label)"])
            try db.execute(sql: "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", arguments: ["kiosk:\(label)"])
        }
    }

    public func kiosks() throws -> [(label: String, createdAt: String, revoked: Bool)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT label, created_at, revoked FROM kiosks ORDER BY label").map {
                ($0["label"], $0["created_at"], ($0["revoked"] as Int64) != 0)
            }
        }
    }

    // MARK: People

    public func addUser(name: String, unit: String, role: WebRole, passwordHash: String) throws -> WebUser {
        try queue.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) != nil {
                throw WebError.invalid("用户 \(name) 已存在")
            }
            let now = Timestamp.now()
            try db.execute(
                sql: "INSERT INTO users (name, unit, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [name, unit, role.rawValue, passwordHash, now])
            return WebUser(id: db.lastInsertedRowID, name: name, unit: unit, role: role, disabled: false, createdAt: now)
        }
    }

    public func users() throws -> [WebUser] {
        try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map(Self.user) }
    }

    public func user(named name: String) throws -> WebUser? {
        try queue.read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map(Self.user) }
    }

    /// Disables a person and ends their sessions.
    public func disable(name: String) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE users SET disabled = 1 WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw WebError.invalid("没有用户 \(name)") }
            try db.execute(sql: "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", arguments: [name])
        }
    }

    /// Sets a new password and ends the person's sessions (whoever knew the old one is logged out).
    public func setPassword(name: String, hash: String) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE users SET password_hash = ? WHERE name = ?", arguments: [hash, name])
            guard db.changesCount == 1 else { throw WebError.invalid("没有用户 \(name)") }
            try db.execute(sql: "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", arguments: [name])
        }
    }

    /// The stored hash of an enabled person, for checking a password (nil: no such person).
    func credentials(name: String) throws -> (user: WebUser, hash: String)? {
        try queue.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]) else { return nil }
            return (Self.user(row), row["password_hash"])
        }
    }

    static func user(_ row: Row) -> WebUser {
        WebUser(
            id: row["id"], name: row["name"], unit: row["unit"], role: WebRole(rawValue: row["role"]) ?? .screen,
            disabled: (row["disabled"] as Int64) != 0, createdAt: row["created_at"])
    }

    // MARK: The login journal and lock-out

    /// Records one attempt: `ok`, `failed` (wrong name or password), `locked`, `disabled`.
    public func recordLogin(name: String, address: String?, outcome: String, at: Date = Date()) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO logins (name, address, outcome, at) VALUES (?, ?, ?, ?)",
                arguments: [name, address, outcome, at.timeIntervalSince1970])
        }
    }

    /// Until when `name` is locked: five failures in a row, the last less than 15 minutes ago.
    /// Attempts while locked are journaled as `locked` and do not extend it.
    public func lockedUntil(name: String, now: Date = Date()) throws -> Date? {
        try queue.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT outcome, at FROM logins WHERE name = ? AND outcome IN ('ok', 'failed') ORDER BY id DESC LIMIT ?",
                arguments: [name, Self.lockAfterFailures])
            guard rows.count == Self.lockAfterFailures, rows.allSatisfy({ ($0["outcome"] as String) == "failed" }) else { return nil }
            let until = Date(timeIntervalSince1970: rows[0]["at"] as Double).addingTimeInterval(Self.lockDuration)
            return until > now ? until : nil
        }
    }

    public struct LoginRecord: Sendable {
        public var name: String
        public var address: String?
        public var outcome: String
        public var at: Date
    }

    public func logins(limit: Int = 100) throws -> [LoginRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM logins ORDER BY id DESC LIMIT ?", arguments: [limit]).map {
                LoginRecord(name: $0["name"], address: $0["address"], outcome: $0["outcome"], at: Date(timeIntervalSince1970: $0["at"]))
            }
        }
    }

    // MARK: Sessions

    /// Starts a session; returns the cookie's token (only its hash is stored).
    public func createSession(user: WebUser, address: String?, now: Date = Date()) throws -> (token: String, session: WebSession) {
        let token = Self.randomToken()
        let csrf = Self.randomToken()
        let key = Self.hash(token)
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (key, user_id, csrf, created_at, last_seen, address) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [key, user.id, csrf, now.timeIntervalSince1970, now.timeIntervalSince1970, address])
        }
        return (token, WebSession(user: user, key: key, csrf: csrf))
    }

    /// The live session a cookie's token names, its idle time renewed; nil when unknown, idle too
    /// long (then removed) or its person disabled.
    public func session(token: String, idleTimeout: TimeInterval, now: Date = Date()) throws -> WebSession? {
        let key = Self.hash(token)
        return try queue.write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT s.csrf, s.last_seen, u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.key = ?",
                    arguments: [key])
            else { return nil }
            let user = Self.user(row)
            if user.disabled || now.timeIntervalSince1970 - (row["last_seen"] as Double) > idleTimeout {
                try db.execute(sql: "DELETE FROM sessions WHERE key = ?", arguments: [key])
                return nil
            }
            // Renewed at most every 10 s: a page's several requests need not each write.
            if now.timeIntervalSince1970 - (row["last_seen"] as Double) > 10 {
                try db.execute(sql: "UPDATE sessions SET last_seen = ? WHERE key = ?", arguments: [now.timeIntervalSince1970, key])
            }
            return WebSession(user: user, key: key, csrf: row["csrf"])
        }
    }

    public func endSession(key: String) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM sessions WHERE key = ?", arguments: [key]) }
    }

    /// Removes sessions idle longer than `idleTimeout`.
    public func purgeSessions(idleTimeout: TimeInterval, now: Date = Date()) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE last_seen < ?", arguments: [now.timeIntervalSince1970 - idleTimeout])
        }
    }

    // MARK: Uploaded evidence

    public struct Upload: Sendable, Equatable {
        public var sha256: String
        public var name: String
        public var contentType: String
        public var size: Int
        public var uploadedBy: String
        public var unit: String
        public var at: String
    }

    public func recordUpload(_ upload: Upload) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO uploads (sha256, name, content_type, size, uploaded_by, unit, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [upload.sha256, upload.name, upload.contentType, upload.size, upload.uploadedBy, upload.unit, upload.at])
        }
    }

    public func upload(sha256: String) throws -> Upload? {
        try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM uploads WHERE sha256 = ?", arguments: [sha256]).map {
                Upload(
                    sha256: $0["sha256"], name: $0["name"], contentType: $0["content_type"], size: $0["size"],
                    uploadedBy: $0["uploaded_by"], unit: $0["unit"], at: $0["at"])
            }
        }
    }

    // MARK: Helpers

    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> String {
        Hex.lowercase(SHA256.hash(data: Data(token.utf8)))
    }
}

/// A refusal the console explains to the person (Chinese), with its HTTP status.
public struct WebError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String
    public var description: String { message }

    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func invalid(_ message: String) -> WebError { WebError(status: 400, message) }
    public static func forbidden(_ message: String) -> WebError { WebError(status: 403, message) }
    public static func notFound(_ message: String) -> WebError { WebError(status: 404, message) }
}
