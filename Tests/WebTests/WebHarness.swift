import CaseTracking
import DubanConfig
import DubanTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IndicatorIngest
import Logging
import Messaging
import NIOCore
import Notifications
import Schema
import ServiceKit
import TaskRegistry
import WebConsole

/// The four services in this process on free ports, and a console pointed at them, with three
/// people: the office, 区生态环境局's clerk and a leader.
struct WebHarness {
    static let ecology = "区生态环境局"
    static let password = "correct-horse-battery"

    let directory: String
    let registry: InProcessService
    let ingest: InProcessService
    let cases: InProcessService
    let notify: InProcessService
    let deployment: DeploymentConfiguration
    let console: WebConsole
    /// With CURVE on: every service admits only the directory's certificates, and the console holds
    /// only its gateway's secret.
    let keys: TestKeys?

    static func start(
        port: Int = 0, keys: TestKeys? = nil,
        clock: ServiceClock = ServiceClock.starting(at: Timestamp.parse("2026-11-20T10:00:00+08:00")!),
        configure: (inout WebSettings) -> Void = { _ in }
    ) async throws -> WebHarness {
        let directory = try TestSupport.temporaryDirectory("duban-web")
        let registry = try await InProcessService.start(RegistryService.self, dataDirectory: directory, clock: clock, tickSeconds: 0.2) {
            $0.keysDirectory = keys?.path
        }
        let ingest = try await InProcessService.start(IngestService.self, dataDirectory: directory, clock: clock, tickSeconds: 0.2) {
            // Ingestion judges targets by the registry's plan, as deployed.
            $0.endpoints[.registry] = registry.endpoints
            $0.keysDirectory = keys?.path
        }
        let cases = try await InProcessService.start(CasesService.self, dataDirectory: directory, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.keysDirectory = keys?.path
        }
        let notify = try await InProcessService.start(NotifyService.self, dataDirectory: directory, clock: clock, tickSeconds: 0.2) {
            $0.endpoints[.registry] = registry.endpoints
            $0.endpoints[.ingest] = ingest.endpoints
            $0.endpoints[.cases] = cases.endpoints
            $0.keysDirectory = keys?.path
        }
        var deployment = DeploymentConfiguration(dataDirectory: directory, logLevel: .warning)
        TestSupport.isolate(&deployment)
        deployment.endpoints[.registry] = registry.endpoints
        deployment.endpoints[.ingest] = ingest.endpoints
        deployment.endpoints[.cases] = cases.endpoints
        deployment.endpoints[.notify] = notify.endpoints
        var settings = WebSettings(dataDirectory: (directory as NSString).appendingPathComponent("web"))
        settings.port = port
        settings.bcryptCost = 4
        settings.heartbeat = .milliseconds(300)
        settings.maxUploadBytes = 64 << 10
        settings.keysDirectory = try keys?.hostDirectory(holding: ["gateway"])
        configure(&settings)
        var logger = Logger(label: "test.web")
        logger.logLevel = .warning
        let console = try WebConsole(deployment: deployment, settings: settings, logger: logger)
        let passwords = Passwords(cost: 4)
        for (name, unit, role) in [("office1", officeUnit, WebRole.office), ("eco", ecology, .unit), ("leader", officeUnit, .leader)] {
            _ = try console.store.addUser(name: name, unit: unit, role: role, passwordHash: try await passwords.hash(password))
        }
        return WebHarness(
            directory: directory, registry: registry, ingest: ingest, cases: cases, notify: notify, deployment: deployment,
            console: console,
            keys: keys)
    }

    func stop() async throws {
        // The console's gateway loop runs from `WebConsole.init`; only `application()`'s services
        // close it, and a test that serves another console never runs this one's (idempotent).
        await console.gateway.close()
        try await notify.stop()
        try await cases.stop()
        try await ingest.stop()
        try await registry.stop()
    }

    /// A client of a service as the office (no keys: `from` says who; with keys, the office's certificate).
    func rpc(_ service: ServiceName, from: String = officeUnit) async throws -> RPCClient {
        if let keys { return try await keys.client("office", service, at: deployment[service].rpc) }
        return try await RPCClient.connect(to: deployment[service].rpc, from: from)
    }
}

/// A browser's cookies for one person, over HummingbirdTesting's client.
final class Browser: @unchecked Sendable {
    let client: any TestClientProtocol
    var cookies: [String: String] = [:]

    init(_ client: any TestClientProtocol) { self.client = client }

    var cookieHeader: String { cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, contentType: String? = nil, body: [UInt8]? = nil, headers extra: HTTPFields = [:]
    )
        async throws -> TestResponse
    {
        var headers = extra
        if !cookies.isEmpty { headers[.cookie] = cookieHeader }
        if let contentType { headers[.contentType] = contentType }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        for field in response.headers[values: .setCookie] {
            let pair = field.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            if pair[1].isEmpty { cookies.removeValue(forKey: String(pair[0])) } else { cookies[String(pair[0])] = String(pair[1]) }
        }
        return response
    }

    func get(_ uri: String) async throws -> TestResponse { try await request(.get, uri) }

    func post(_ uri: String, _ fields: [(String, String)]) async throws -> TestResponse {
        let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return try await request(.post, uri, contentType: "application/x-www-form-urlencoded", body: Array(body.utf8))
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// Logs in through the login page, as a browser would (its login cookie and hidden field).
    func login(_ name: String, password: String = WebHarness.password) async throws -> TestResponse {
        let page = try await get("/login")
        let token = try Self.hidden("_login", in: String(buffer: page.body))
        return try await post("/login", [("_login", token), ("next", "/"), ("name", name), ("password", password)])
    }

    /// A hidden field's value in a page.
    static func hidden(_ name: String, in html: String) throws -> String {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { throw TestFailure("no hidden field \(name) in the page") }
        let rest = html[range.upperBound...]
        return String(rest[..<rest.firstIndex(of: "\"")!])
    }

    /// The page's CSRF token.
    func csrf(_ page: String = "/") async throws -> String {
        try Self.hidden("_csrf", in: String(buffer: try await get(page).body))
    }

    /// A multipart/form-data body.
    static func multipart(_ fields: [(String, String)], file: (field: String, name: String, type: String, bytes: [UInt8])?) -> (
        String, [UInt8]
    ) {
        let boundary = "----duban\(UUID().uuidString.prefix(8))"
        var body: [UInt8] = []
        for (name, value) in fields {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        if let file {
            let head =
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\n"
                + "Content-Type: \(file.type)\r\n\r\n"
            body += Array(head.utf8)
            body += file.bytes + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return ("multipart/form-data; boundary=\(boundary)", body)
    }
}
