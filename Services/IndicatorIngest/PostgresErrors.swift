import PostgresNIO
import Schema
import ServiceKit

/// PostgreSQL's errors on the wire: a lost or refused connection, a server shutting down, a
/// serialization failure or a full disk is `unavailable` (retry with the same key: the change was
/// not made, or was made once with its reply remembered); anything else is a bug.
extension PSQLError: WireError {
    public var wireError: ErrorBody {
        switch code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown, .queryCancelled:
            return .unavailable("数据库暂时无法连接，请稍后用同一 key 重试")
        case .server:
            let state = serverInfo?[.sqlState] ?? ""
            // Classes 08 (connection), 53 (resources), 57 (operator intervention), 40 (rollback).
            if ["08", "53", "57", "40"].contains(where: { state.hasPrefix($0) }) {
                return .unavailable("数据库暂时不可用（\(state)），请稍后用同一 key 重试")
            }
            if state == "23505" { return .conflict("与已有记录冲突（\(state)）") }
            // Class 22: data the request carried that PostgreSQL cannot take (a NUL in text, a number out of range).
            if state.hasPrefix("22") { return .invalidArgument("请求中的数据无法保存（\(state)）", field: "body") }
            return .internal("数据库出错（\(state)）")
        default:
            return .internal("数据库出错")
        }
    }
}
