import Foundation
import GRDB
import Schema

/// An error that knows its answer on the wire: the protocol's code and a message for people
/// (Chinese, short, never a program dump). Our own errors conform, and so, by the extensions
/// below and beside each store, do the storage drivers' (GRDB here, PostgresNIO in ingest), so a
/// storage outage reaches a client as the retryable `unavailable` whichever database is behind it.
/// Anything that does not conform is a bug and answers `internal`, its details kept in the log.
public protocol WireError: Error {
    /// The error as the reply carries it.
    var wireError: ErrorBody { get }
}

extension ErrorBody: WireError {
    public var wireError: ErrorBody { self }
}

extension DatabaseError: WireError {
    public var wireError: ErrorBody {
        switch resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_NOMEM:
            return .unavailable("存储暂时不可用（SQLite \(resultCode.rawValue)），请稍后重试")
        case .SQLITE_CONSTRAINT
        where extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE || extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY:
            return .conflict("与已有记录冲突")
        default:
            return .internal("存储出错（SQLite \(resultCode.rawValue)）")
        }
    }
}

extension ErrorBody {
    /// The reply for any error a handler threw.
    public static func from(_ error: any Error, type: String) -> ErrorBody {
        switch error {
        case let error as any WireError: return error.wireError
        case let error as DecodingError: return WireCoding.describe(error)
        case is CancellationError: return .unavailable("服务正在停止，请稍后重试")
        default: return .internal("处理请求 \(quote(type)) 时出错，详情见服务日志")
        }
    }
}

/// How large a reply may grow: lists and `events.since` stop there and say how to read on.
public enum ReplyLimits {
    /// Bytes of a list's items or a page of events (one item always goes, whatever its size).
    public static let bytes = 4 << 20
    /// Items of a list reply.
    public static let items = 1_000
}
