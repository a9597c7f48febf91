import ArgumentParser
import DubanConfig
import Foundation

/// `duban backup DIR` and `duban restore DIR`: every service's data on this host, through each
/// service's own executable (`duban-registry --backup-to …`): the CLI links no storage driver, and
/// each executable knows its own database. The executables are found beside `duban` (or in
/// `DUBAN_BIN_DIR`); services on other hosts are backed up there with the same command.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "备份本机各服务的数据（服务运行中也可，取一致的快照）到目录 DIR 下的 registry、ingest、cases、notify 子目录。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "备份目录。") var directory: String
    @Option(help: "只备份这些服务（逗号分隔：registry,ingest,cases,notify）。") var services: String?

    func run() async throws {
        try DataCopy.each(try DataCopy.services(services), config: options.config) { service in
            let target = (directory as NSString).appendingPathComponent(service.rawValue)
            return (["--backup-to", target], "已备份到 \(target)", "备份失败")
        }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "从 duban backup 的目录恢复各服务的数据到新的数据目录（服务须已停止；已有数据文件时拒绝覆盖）。")

    @OptionGroup var options: GlobalOptions
    @Argument(help: "备份目录（duban backup 写出的）。") var directory: String
    @Option(help: "只恢复这些服务（逗号分隔）。") var services: String?

    func run() async throws {
        try DataCopy.each(try DataCopy.services(services), config: options.config) { service in
            let source = (directory as NSString).appendingPathComponent(service.rawValue)
            guard FileManager.default.fileExists(atPath: source) else {
                print("\(service.rawValue)：备份中没有该服务，跳过")
                return nil
            }
            return (["--restore-from", source], "已恢复", "恢复失败")
        }
    }
}

enum DataCopy {
    /// Runs each service's executable with the arguments `step` gives (nil: skip it), printing what
    /// became of each; exits 1 when any failed.
    static func each(
        _ services: [ServiceName], config: String?, _ step: (ServiceName) -> (arguments: [String], done: String, failed: String)?
    ) throws {
        var failed = false
        for service in services {
            guard let (arguments, done, failure) = step(service) else { continue }
            let (ok, output) = try run(service, arguments, config: config)
            if ok {
                print("\(service.rawValue)：\(done)　\(summary(output))")
            } else {
                failed = true
                print("\(service.rawValue)：\(failure)：\(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func services(_ list: String?) throws -> [ServiceName] {
        guard let list else { return ServiceName.allCases }
        return try list.split(separator: ",").map { name in
            guard let service = ServiceName(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--services：没有服务 \(name)（可选 registry、ingest、cases、notify）")
            }
            return service
        }
    }

    /// The directory the service executables are in: `DUBAN_BIN_DIR`, or beside this `duban`.
    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["DUBAN_BIN_DIR"], !dir.isEmpty { return dir }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// Runs `duban-<service>` with `arguments` (and the same configuration file); its exit and output.
    static func run(_ service: ServiceName, _ arguments: [String], config: String?) throws -> (Bool, String) {
        let path = (binDirectory as NSString).appendingPathComponent("duban-\(service.rawValue)")
        guard FileManager.default.isExecutableFile(atPath: path) else { return (false, "找不到 \(path)（可设 DUBAN_BIN_DIR）") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments + (config.map { ["--config", $0] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus == 0, text)
    }

    /// The manifest line's size and heads, for people.
    static func summary(_ output: String) -> String {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return "" }
        let bytes = object["bytes"] as? Int ?? 0
        let heads = (object["heads"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }
        return "\(object["file"] as? String ?? "")，\(bytes) 字节" + (heads.isEmpty ? "" : "，事件 " + heads.joined(separator: " "))
    }
}
