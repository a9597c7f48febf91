import DubanConfig
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Schema
import ServiceLifecycle
import Synchronization

/// Each request's context: who is logged in (after `SessionMiddleware`) and from where.
public struct WebContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: WebSession?
    public var address: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        address = source.channel.remoteAddress?.ipAddress
    }

    /// The client's address: the peer's, or behind a trusted proxy the last `X-Forwarded-For`
    /// entry (the one the proxy appended; earlier ones are whatever the client claimed).
    public static func clientAddress(peer: String?, forwardedFor: String?, trusted: Bool) -> String? {
        guard trusted, let forwardedFor,
            let last = forwardedFor.split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
            !last.isEmpty, last.count <= 64, last.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" })
        else { return peer }
        return last
    }

    /// Forms and uploads are read by the handlers with their own limits.
    public var maxUploadSize: Int { 16 << 20 }
}

/// The web console: its accounts, its way to the services and the live events, and the routes.
public final class WebConsole: Sendable {
    public let settings: WebSettings
    public let store: AccountStore
    public let gateway: Gateway
    public let hub: LiveHub
    public let passwords: Passwords
    public let logger: Logger
    /// Each indicator's sparkline and until when it holds.
    let trendCache = Mutex<[String: (svg: String, expires: ContinuousClock.Instant)]>([:])
    /// 群众举报's submissions and look-ups per client address.
    let publicSubmissions: RateLimiter
    let publicLookups: RateLimiter
    /// The ledger's lead units, for the case page's follow-through forms.
    let leads = LedgerLeads()
    /// Ledger uploads previewed and waiting for the office's confirmation.
    public let pendingImports = PendingImports()
    /// The dashboard's answers, shared while the streams behind them stand still.
    let shared = SharedFetch()
    static let sessionCookie = "duban_session"
    static let loginCookie = "duban_login"

    public init(deployment: DeploymentConfiguration, settings: WebSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        store = try AccountStore(directory: settings.dataDirectory)
        gateway = try Gateway(deployment: deployment, keysDirectory: settings.keysDirectory, logger: logger)
        hub = LiveHub(gateway: gateway, logger: logger)
        passwords = Passwords(cost: settings.bcryptCost)
        publicSubmissions = RateLimiter(limit: settings.publicSubmissions, window: settings.publicWindow)
        publicLookups = RateLimiter(limit: settings.publicLookups, window: settings.publicWindow)
        try FileManager.default.createDirectory(atPath: uploadsDirectory, withIntermediateDirectories: true)
    }

    var uploadsDirectory: String { (settings.dataDirectory as NSString).appendingPathComponent("uploads") }

    /// The HTTP application, with the live hub and the gateway's shutdown as its services.
    public func application() -> some ApplicationProtocol {
        let router = Router(context: WebContext.self)
        router.add(middleware: SecurityHeadersMiddleware(behindTLS: settings.behindTLS))
        router.add(middleware: ErrorPageMiddleware(logger: logger))
        router.add(middleware: SessionMiddleware(console: self))
        addRoutes(to: router)
        var app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "duban-web"),
            logger: logger)
        app.addServices(hub, GatewayCloser(gateway: gateway))
        return app
    }

    // MARK: Who the person is on the wire

    /// The `from` the services see for this person: the office for office staff and the
    /// console admin, the unit for a unit clerk, nothing (a reader) for leaders and screens.
    func wireFrom(_ user: WebUser) -> String? {
        switch user.role {
        case .office, .admin: return officeUnit
        case .unit: return user.unit
        case .leader, .screen: return nil
        }
    }

    // MARK: Cookies

    func cookie(_ name: String, _ value: String, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: settings.behindTLS, httpOnly: true, sameSite: .lax)
    }
}

/// Closes the gateway's sockets when the application stops.
struct GatewayCloser: Service {
    let gateway: Gateway
    func run() async throws {
        try? await gracefulShutdown()
        await gateway.close()
    }
}

/// A strict Content-Security-Policy on every page (no inline script or style, nothing from
/// elsewhere), no framing, no sniffing; HSTS behind TLS. Downloads set their own sandboxing policy.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let behindTLS: Bool
    static let policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if response.headers[.contentSecurityPolicy] == nil { response.headers[.contentSecurityPolicy] = Self.policy }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        if behindTLS { response.headers[.strictTransportSecurity] = "max-age=31536000" }
        return response
    }
}

/// Turns refusals into a Chinese page with the right status: the console's own (`WebError`) and
/// the services' (`ErrorBody`: permission_denied → 403, not_found → 404, invalid → 400).
struct ErrorPageMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let logger: Logger

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as WebError {
            return Self.page(status: error.status, message: error.message, session: context.session)
        } catch let error as ErrorBody {
            return Self.page(status: Self.status(for: error), message: error.message, session: context.session)
        } catch let error as HTTPError {
            if error.status == .notFound { return Self.page(status: 404, message: "页面不存在", session: context.session) }
            if error.status == .contentTooLarge { return Self.page(status: 413, message: "提交的内容过大", session: context.session) }
            throw error
        } catch {
            logger.error("web: request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Self.page(status: 502, message: "暂时无法连接督办服务，请稍后再试", session: context.session)
        }
    }

    static func status(for error: ErrorBody) -> Int {
        switch error.code {
        case .permissionDenied, .unauthenticated: return 403
        case .notFound: return 404
        case .invalidArgument, .conflict, .tooLarge: return 400
        default: return 502
        }
    }

    static func page(status: Int, message: String, session: WebSession?) -> Response {
        let title = status == 403 ? "无权操作" : status == 404 ? "未找到" : "无法完成"
        let body = "<h1>\(esc(title))</h1><div class=\"error\">\(esc(message))</div><p><a href=\"/\">返回总览</a></p>"
        return htmlResponse(Page(title: title, body: body, session: session).render(), status: HTTPResponse.Status(code: status))
    }
}

/// Finds the session a cookie names; pages that need one redirect to the login page.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let console: WebConsole

    func handle(_ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response) async throws -> Response {
        var context = context
        context.address = WebContext.clientAddress(
            peer: context.address, forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!],
            trusted: console.settings.trustForwardedFor)
        if let token = request.cookies[WebConsole.sessionCookie]?.value, !token.isEmpty, token.count < 200 {
            let idle = Double(console.settings.idleTimeout.components.seconds)
            // One small SQLite read: brief enough to run here.
            context.session = try console.store.session(token: token, idleTimeout: idle)
        }
        return try await next(request, context)
    }
}

func htmlResponse(_ html: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "text/html; charset=utf-8"
    return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
}

func redirect(_ location: String, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.location] = location
    return Response(status: .seeOther, headers: fields)
}
