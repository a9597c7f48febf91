import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How an executable writes its log lines: `text` for people at a terminal or journald, `json` for
/// log shippers (one object per line, the request's envelope id under `metadata["msg.id"]` in every
/// line a request causes).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// Sets the process's log handler once, at an executable's start.
public func bootstrapLogging(level: Logger.Level, format: LogFormat) {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// One JSON object per line on standard error:
/// `{"ts":"2026-11-30T08:00:00.123Z","level":"info","label":"duban.registry","msg":"…","source":"ServiceKit",
/// "metadata":{"msg.id":"…"}}`. Each line is written in one call.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        var out = "{\"ts\":" + Self.quoted(Self.timestamp()) + ",\"level\":" + Self.quoted(level.rawValue)
        out += ",\"label\":" + Self.quoted(label) + ",\"msg\":" + Self.quoted(message.description)
        out += ",\"source\":" + Self.quoted(source)
        if !merged.isEmpty {
            out += ",\"metadata\":{"
            out += merged.sorted { $0.key < $1.key }.map { Self.quoted($0.key) + ":" + Self.quoted("\($0.value)") }.joined(separator: ",")
            out += "}"
        }
        out += "}\n"
        // One write(2) per line: no stdio buffer shared between threads, and a line up to the
        // pipe's atomic size never interleaves with another's.
        let bytes = Array(out.utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(now.tv_nsec / 1_000_000))
    }

    /// A JSON string: quotes, backslashes and every control character escaped, the rest as UTF-8.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
