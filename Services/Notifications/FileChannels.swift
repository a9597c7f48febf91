import Foundation
import Schema

#if canImport(Glibc)
    import Glibc
#endif

/// The one directory `file` channels write into (`notify.fileChannelDir`,
/// `DUBAN_NOTIFY_FILE_CHANNEL_DIR`; default `channels` in the data directory). A channel's target
/// is a relative path inside it: never absolute, never through `..`, never out of it through a
/// symbolic link, whether the link was there at `channel.set` or planted later.
///
/// At delivery, the target's parent is resolved (`realpath`) and must lie inside the directory;
/// then the path is opened one component at a time from the directory itself (`openat` with
/// `O_NOFOLLOW`, the last one too), so a link swapped in between the check and the open makes the
/// open fail instead of leading out. Missing subdirectories are created inside it, never outside.
struct FileChannelDirectory: Sendable {
    /// As configured.
    let path: String

    /// Why a target is refused or cannot be written.
    enum Refusal: Error, Equatable {
        /// Absolute, `..`, empty, or not naming a file.
        case notRelative
        /// Leads out of the directory (through a symbolic link).
        case escapes
        /// The target is a symbolic link, a directory or anything but a regular file.
        case notRegularFile
        /// The directory itself is missing or unreadable.
        case directoryUnavailable
        /// The system refused (permissions, disk full, …).
        case system(Int32)
    }

    /// The rule, for people: what every refusal of a `file` target says.
    static let rule = "file 渠道的 target 应为渠道目录（notify.fileChannelDir）内的相对路径：不能是绝对路径，不能含 ..，也不能经符号链接指向目录之外"

    /// Creates the directory if it is missing (the directory only: its parent must exist).
    func prepare() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o750])
    }

    /// A target's components, if it is a relative path that names a file.
    static func components(_ target: String) -> [String]? {
        guard !target.isEmpty, !target.hasPrefix("/"), !target.hasSuffix("/"), !target.contains("\0") else { return nil }
        let parts = target.split(separator: "/").map(String.init).filter { $0 != "." }
        guard let last = parts.last, last != "..", !parts.contains("..") else { return nil }
        return parts
    }

    /// The directory's real path.
    private func realBase() throws(Refusal) -> String {
        guard let real = Self.realpath(path) else { throw .directoryUnavailable }
        return real
    }

    static func realpath(_ path: String) -> String? {
        guard let resolved = Glibc.realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The components, from the directory, of the deepest existing ancestor of `parent` after
    /// resolving it, and the components below it that do not exist yet. Throws `escapes` when the
    /// existing part resolves outside the directory.
    private func resolveParent(_ parent: [String], base: String) throws(Refusal) -> [String] {
        var existing = parent.count
        while existing > 0 {
            let candidate = ([base] + parent.prefix(existing)).joined(separator: "/")
            var info = stat()
            if lstat(candidate, &info) == 0 { break }
            existing -= 1
        }
        let ancestor = ([base] + parent.prefix(existing)).joined(separator: "/")
        guard let real = Self.realpath(ancestor) else { throw .escapes }
        let inside: [String]
        if real == base {
            inside = []
        } else if real.hasPrefix(base == "/" ? "/" : base + "/") {
            inside = real.dropFirst(base == "/" ? 1 : base.count + 1).split(separator: "/").map(String.init)
        } else {
            throw .escapes
        }
        // What exists must be directories to go through (realpath succeeded on a file otherwise).
        if existing > 0 {
            var info = stat()
            guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw .notRegularFile }
        }
        return inside + parent.dropFirst(existing)
    }

    /// Checks a target at `channel.set`: relative, inside, and not a link or anything but a file.
    func validate(_ target: String) throws(Refusal) {
        guard let parts = Self.components(target) else { throw .notRelative }
        let base = try realBase()
        let parent = try resolveParent(Array(parts.dropLast()), base: base)
        var info = stat()
        let full = ([base] + parent + [parts.last!]).joined(separator: "/")
        if lstat(full, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            throw (info.st_mode & S_IFMT) == S_IFLNK ? .escapes : .notRegularFile
        }
    }

    /// Appends `data` to the target and flushes it to disk.
    func append(_ data: Data, to target: String) throws(Refusal) {
        guard let parts = Self.components(target) else { throw .notRelative }
        let base = try realBase()
        let parent = try resolveParent(Array(parts.dropLast()), base: base)
        var directory = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw .directoryUnavailable }
        defer { close(directory) }
        for component in parent {
            var next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT {
                guard mkdirat(directory, component, 0o750) == 0 || errno == EEXIST else { throw .system(errno) }
                next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            guard next >= 0 else { throw errno == ELOOP || errno == ENOTDIR ? .escapes : .system(errno) }
            close(directory)
            directory = next
        }
        // O_NONBLOCK: a FIFO planted in the directory must not hang delivery; only regular files are written.
        let fd = openat(directory, parts.last!, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw errno == ELOOP ? .escapes : .system(errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile }
        let failure: Int32 = data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return 0
        }
        guard failure == 0 else { throw .system(failure) }
        guard fsync(fd) == 0 else { throw .system(errno) }
    }
}

extension FileChannelDirectory.Refusal {
    /// For the delivery log: short, for people.
    var message: String {
        switch self {
        case .notRelative: return "目标不是渠道目录内的相对路径"
        case .escapes: return "目标经符号链接指向渠道目录之外，未写入"
        case .notRegularFile: return "目标不是普通文件，未写入"
        case .directoryUnavailable: return "渠道目录不可用"
        case .system: return "无法写入文件"
        }
    }
}
