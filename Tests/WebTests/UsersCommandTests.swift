import DubanTesting
import Foundation
import Testing
import WebConsole

/// `duban-web users …`: the console's own executable manages its SQLite file.
@Suite struct UsersCommandTests {
    static var executable: String { (TestSupport.binDirectory as NSString).appendingPathComponent("duban-web") }

    /// Runs duban-web; returns (succeeded, output).
    static func run(_ arguments: [String]) -> (Bool, String) {
        do {
            return (true, try TestSupport.run(executable, arguments))
        } catch {
            return (false, "\(error)")
        }
    }

    @Test func addListPasswdAndDisableWithOneChineseErrorEach() async throws {
        let data = try TestSupport.temporaryDirectory("duban-web-users")
        let password = (data as NSString).appendingPathComponent("pw.txt")
        try "first-password-1\n".write(toFile: password, atomically: true, encoding: .utf8)
        let common = ["--data-dir", data, "--bcrypt-cost", "4"]
        let added = Self.run(["users", "add", "wang", "--unit", "区生态环境局", "--role", "unit", "--password-file", password] + common)
        #expect(added.0 && added.1.contains("已添加账号 wang"))
        let again = Self.run(["users", "add", "wang", "--unit", "区生态环境局", "--role", "unit", "--password-file", password] + common)
        #expect(!again.0 && again.1.contains("用户 wang 已存在"))
        let badRole = Self.run(["users", "add", "li", "--unit", "区生态环境局", "--role", "boss", "--password-file", password] + common)
        #expect(!badRole.0 && badRole.1.contains("--role"))
        let noUnit = Self.run(["users", "add", "li", "--role", "unit", "--password-file", password] + common)
        #expect(!noUnit.0 && noUnit.1.contains("--unit"))
        let short = (data as NSString).appendingPathComponent("short.txt")
        try "abc".write(toFile: short, atomically: true, encoding: .utf8)
        let weak = Self.run(["users", "add", "li", "--unit", "区生态环境局", "--role", "unit", "--password-file", short] + common)
        #expect(!weak.0 && weak.1.contains("至少 10 个字符"))
        let office = Self.run(["users", "add", "zhang", "--role", "office", "--password-file", password] + common)
        #expect(office.0 && office.1.contains("专项工作组办公室"))
        let list = Self.run(["users", "list", "--data-dir", data])
        #expect(list.0 && list.1.contains("wang\t区生态环境局\tunit") && list.1.contains("zhang\t专项工作组办公室\toffice"))

        let store = try AccountStore(directory: (data as NSString).appendingPathComponent("web"))
        let user = try #require(try store.user(named: "wang"))
        let session = try store.createSession(user: user, address: nil)
        try "second-password-2".write(toFile: password, atomically: true, encoding: .utf8)
        #expect(Self.run(["users", "passwd", "wang", "--password-file", password] + common).0)
        // A new password ends the person's sessions.
        #expect(try store.session(token: session.token, idleTimeout: 3600) == nil)
        #expect(Self.run(["users", "disable", "wang", "--data-dir", data]).0)
        #expect(try store.user(named: "wang")?.disabled == true)
        try store.recordLogin(name: "wang", address: "10.0.0.8", outcome: "failed")
        let logins = Self.run(["users", "logins", "--data-dir", data])
        #expect(logins.0 && logins.1.contains("wang\t失败\t10.0.0.8"))
        let unknown = Self.run(["users", "disable", "nobody", "--data-dir", data])
        #expect(!unknown.0 && unknown.1.contains("没有用户 nobody"))
    }
}
