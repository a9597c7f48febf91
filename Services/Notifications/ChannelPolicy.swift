import Foundation
import Schema
import ServiceKit

/// What a channel may reach: files inside one directory. Checked at `channel.set` and again at
/// every delivery (configuration and the file system change).
struct ChannelPolicy: Sendable {
    let files: FileChannelDirectory

    init(files: FileChannelDirectory) {
        self.files = files
    }

    /// From the deployment: `notify.fileChannelDir` (default `channels` in the data directory).
    init(deployment: DeploymentConfiguration) throws {
        let directory =
            deployment.notifyFileChannelDir.flatMap { $0.isEmpty ? nil : $0 }
            ?? (deployment.dataDirectory as NSString).appendingPathComponent("channels")
        files = FileChannelDirectory(path: (directory as NSString).standardizingPath)
    }

    /// Refuses a channel that could never deliver, or could deliver where it must not.
    func validate(_ channel: Channel) async throws {
        guard !channel.name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ErrorBody.invalidArgument("渠道须有名称（name）", field: "body.channel.name")
        }
        if let rate = channel.ratePerMinute, rate < 1 {
            throw ErrorBody.invalidArgument("rate_per_minute 至少为 1", field: "body.channel.rate_per_minute")
        }
        let field = "body.channel.target"
        switch channel.kind {
        case .webhook, .wecom, .dingtalk:
            guard let url = URL(string: channel.target), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ErrorBody.invalidArgument("\(channel.kind.rawValue) 渠道的 target 应为 http(s) 地址", field: field)
            }
        case .file:
            do throws(FileChannelDirectory.Refusal) {
                try files.validate(channel.target)
            } catch {
                switch error {
                case .directoryUnavailable: throw ErrorBody.unavailable("文件渠道目录（notify.fileChannelDir）不可用，请管理员检查")
                case .notRegularFile:
                    throw ErrorBody.invalidArgument("file 渠道的 target 应指向普通文件（不能是目录或设备）", field: field)
                default: throw ErrorBody.invalidArgument(FileChannelDirectory.rule, field: field)
                }
            }
        }
    }
}
