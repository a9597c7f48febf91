import Crypto
import DubanConfig
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Schema
import ServiceLifecycle

extension WebConsole {
    func addRoutes(to router: Router<WebContext>) {
        router.get("/static/app.css") { _, _ in Self.asset(Assets.css, type: "text/css; charset=utf-8") }
        router.get("/static/live.js") { _, _ in Self.asset(Assets.liveJS, type: "text/javascript; charset=utf-8") }
        router.get("/healthz") { _, _ in "ok" }
        router.get("/login") { request, context in self.loginPage(request, context) }
        router.post("/login") { request, context in try await self.login(request, context) }
        router.post("/logout") { request, context in try await self.logout(request, context) }
        router.get("/events") { request, context in try await self.events(request, context) }
        router.get("/kiosk/:token") { request, context in try await self.kiosk(request, context) }
        router.get("/files/:sha") { request, context in try await self.download(request, context) }
        addPages(to: router)
        addPublicRoutes(to: router)
        addComplaintOfficeRoutes(to: router)
        addMonitoringRoutes(to: router)
        addSupervisionRoutes(to: router)
        addCaseFollowThroughRoutes(to: router)
        addReportRoutes(to: router)
        addLedgerTransferRoutes(to: router)
        addImplementationPlanRoutes(to: router)
    }

    static func asset(_ text: String, type: String) -> Response {
        // Assets are public and never change within a version: cacheable for a day.
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=86400"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The login page for a request that needs a session.
    func loginRedirect(_ request: Request) -> Response {
        let next = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
        return redirect("/login?next=\(urlSegment(next))")
    }

    /// Where to go after logging in: a path of this site only (never `//host` or a URL).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), next.count < 500 else { return "/" }
        return next
    }

    /// Reads a form body (bounded) and checks its CSRF token against the session's.
    func form(_ request: Request, session: WebSession?, limit: Int = 64 << 10) async throws -> FormData {
        var request = request
        let buffer = try await request.collectBody(upTo: limit)
        let form = try FormData.parse(contentType: request.headers[.contentType], body: Array(buffer.readableBytesView))
        if let session {
            guard let token = form["_csrf"], Self.constantTimeEqual(token, session.csrf) else {
                throw WebError.forbidden("表单校验失败（CSRF），请刷新页面后重试")
            }
        }
        return form
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    // MARK: Login

    func loginPage(_ request: Request, _ context: WebContext, error: String? = nil, name: String = "", status: HTTPResponse.Status = .ok)
        -> Response
    {
        if context.session != nil, error == nil { return redirect(Self.safeNext(request.uri.queryParameters["next"].map(String.init))) }
        // Login CSRF: a random value in a cookie and the form (double submit), since there is no session yet.
        let token = AccountStore.randomToken()
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        let body = """
            <div class="login card"><h1>城中区生态环境保护督办系统</h1>
            <p class="muted">请使用办公室分配的账号登录。</p>
            \(error.map { "<div class=\"error\" id=\"login-error\">\(esc($0))</div>" } ?? "")
            <form method="post" action="/login">
            <input type="hidden" name="_login" value="\(esc(token))"><input type="hidden" name="next" value="\(esc(next))">
            <label for="name">用户名</label><input type="text" id="name" name="name" value="\(esc(name))" autocomplete="username" required>
            <label for="password">密码</label><input type="password" id="password" name="password" autocomplete="current-password" required>
            <button type="submit" id="login-submit">登录</button></form>
            <p class="muted"><a href="/report">群众举报生态环境问题</a>（无需登录）</p></div>
            """
        var response = htmlResponse(Page(title: "登录", body: body, session: nil).render(), status: status)
        response.setCookie(cookie(Self.loginCookie, token, maxAge: 3600))
        return response
    }

    func login(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = try await form(request, session: nil, limit: 8 << 10)
        guard let cookieToken = request.cookies[Self.loginCookie]?.value, let formToken = form["_login"],
            Self.constantTimeEqual(cookieToken, formToken)
        else {
            return loginPage(request, context, error: "登录表单已过期，请重新输入", status: .forbidden)
        }
        let name = form.text("name") ?? ""
        let password = form["password"] ?? ""
        let address = context.address
        guard !name.isEmpty, name.count <= 64, !password.isEmpty else {
            return loginPage(request, context, error: "请输入用户名和密码", name: name, status: .badRequest)
        }
        if let until = try store.lockedUntil(name: name) {
            try store.recordLogin(name: name, address: address, outcome: "locked")
            logger.warning("web: login while locked", metadata: ["name": "\(name)", "address": "\(address ?? "")"])
            let minutes = max(1, Int((until.timeIntervalSinceNow / 60).rounded(.up)))
            return loginPage(request, context, error: "连续 5 次登录失败，账号已锁定，请 \(minutes) 分钟后再试", name: name, status: .tooManyRequests)
        }
        let credentials = try store.credentials(name: name)
        // An unknown name is checked against a decoy hash: it takes as long as a wrong password.
        let hash: String
        if let credentials { hash = credentials.hash } else { hash = try await passwords.decoyHash() }
        let matches = try await passwords.verify(password, hash: hash)
        guard let credentials, matches else {
            try store.recordLogin(name: name, address: address, outcome: "failed")
            logger.notice("web: login failed", metadata: ["name": "\(name)", "address": "\(address ?? "")"])
            return loginPage(request, context, error: "用户名或密码不正确", name: name, status: .unauthorized)
        }
        guard !credentials.user.disabled else {
            try store.recordLogin(name: name, address: address, outcome: "disabled")
            return loginPage(request, context, error: "该账号已停用，请联系办公室", name: name, status: .forbidden)
        }
        try store.recordLogin(name: name, address: address, outcome: "ok")
        // Sessions idle past their time are removed here, when someone logs in, rather than by a timer.
        try store.purgeSessions(idleTimeout: Double(settings.idleTimeout.components.seconds))
        logger.info(
            "web: login", metadata: ["name": "\(name)", "role": "\(credentials.user.role.rawValue)", "address": "\(address ?? "")"])
        let (token, _) = try store.createSession(user: credentials.user, address: address)
        var response = redirect(Self.safeNext(form["next"]))
        response.setCookie(cookie(Self.sessionCookie, token))
        response.setCookie(cookie(Self.loginCookie, "", maxAge: 0))
        return response
    }

    func logout(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return redirect("/login") }
        _ = try await form(request, session: session)
        try store.endSession(key: session.key)
        var response = redirect("/login")
        response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0))
        return response
    }

    /// A kiosk link: no login; the screen gets a session as its own read-only `screen` person and
    /// goes to the dashboard. A revoked or unknown token gets 404 and no session.
    func kiosk(_ request: Request, _ context: WebContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        guard token.count >= 20, token.count < 100, let user = try store.kioskUser(token: token) else {
            throw WebError.notFound("大屏链接无效或已撤销")
        }
        try store.recordLogin(name: user.name, address: context.address, outcome: "ok")
        let (session, _) = try store.createSession(user: user, address: context.address)
        var response = redirect("/")
        response.setCookie(cookie(Self.sessionCookie, session))
        return response
    }

    // MARK: Live events (Server-Sent Events, by hand)

    /// `text/event-stream`: first what the page missed since its Last-Event-ID, then each new
    /// event; `id:` carries every stream's position so a reconnecting page resumes where it was;
    /// a comment every heartbeat keeps proxies from closing an idle stream. The stream ends on
    /// graceful shutdown, so the server can drain.
    func events(_ request: Request, _ context: WebContext) async throws -> Response {
        guard context.session != nil else { throw WebError(status: 401, "请先登录") }
        let cursor = (request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters["after"].map(String.init))
            .flatMap { StreamCursor(text: $0) }
        let subscription = await hub.subscribe(after: cursor)
        let heartbeat = settings.heartbeat
        let hub = hub
        let body = ResponseBody { writer in
            defer { hub.unsubscribe(subscription.id) }
            var position = subscription.start
            func encode(_ event: LiveEvent) -> ByteBuffer {
                position.positions[event.stream] = max(position.positions[event.stream] ?? 0, event.seq)
                let data =
                    "{\"stream\":\(json(event.stream)),\"seq\":\(event.seq),\"type\":\(json(event.type)),\"text\":\(json(event.text))}"
                return ByteBuffer(string: "id: \(position.text)\ndata: \(data)\n\n")
            }
            // The reconnection delay, and the starting position even before any event.
            try await writer.write(ByteBuffer(string: "retry: 2000\nid: \(position.text)\n\n"))
            var sent = position.positions
            for event in subscription.missed where event.seq > (sent[event.stream] ?? 0) {
                try await writer.write(encode(event))
                sent[event.stream] = event.seq
            }
            let (ticks, tick) = AsyncStream.makeStream(of: LiveItem.self)
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: heartbeat)
                            tick.yield(.heartbeat)
                        }
                    }
                    group.addTask {
                        for await item in subscription.stream { tick.yield(item) }
                        tick.finish()
                    }
                    for await item in ticks {
                        switch item {
                        case .heartbeat:
                            try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                        case .event(let event):
                            guard event.seq > (sent[event.stream] ?? 0) else { continue }
                            try await writer.write(encode(event))
                            sent[event.stream] = event.seq
                        }
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                tick.finish()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ], body: body)
    }

    // MARK: Evidence files

    /// An uploaded file, only ever as a download: attachment, nosniff, and a policy that sandboxes
    /// it should a browser render it anyway.
    func download(_ request: Request, _ context: WebContext) async throws -> Response {
        guard context.session != nil else { return loginRedirect(request) }
        let sha = context.parameters.get("sha") ?? ""
        guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase }), let upload = try store.upload(sha256: sha) else {
            throw WebError.notFound("没有这个佐证材料")
        }
        let path = (uploadsDirectory as NSString).appendingPathComponent(sha)
        guard let data = FileManager.default.contents(atPath: path) else { throw WebError.notFound("佐证材料文件已不在") }
        let ascii = upload.name.unicodeScalars.map { $0.isASCII && $0 != "\"" && $0 != "\\" && $0.value >= 0x20 ? String($0) : "_" }
            .joined()
        return Self.attachment(data, type: "application/octet-stream", name: upload.name, asciiName: ascii)
    }

    /// A file sent only as a download, whatever it holds: attachment under its (Chinese) name with
    /// an ASCII fallback, nosniff, and a policy that sandboxes it should a browser render it anyway.
    static func attachment(_ data: Data, type: String, name: String, asciiName: String) -> Response {
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? asciiName
        return Response(
            status: .ok,
            headers: [
                .contentType: type,
                .contentDisposition: "attachment; filename=\"\(asciiName)\"; filename*=UTF-8''\(encoded)",
                .xContentTypeOptions: "nosniff",
                .contentSecurityPolicy: "default-src 'none'; sandbox",
                .cacheControl: "private, no-store",
            ], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The form's optional `evidence` file, stored: none when the form has none. A file refused for
    /// its type or size throws a `WebError` whose message the form shows again.
    func formEvidence(_ form: FormData, session: WebSession) throws -> [EvidenceRef] {
        try form.files["evidence"].map { [try storeEvidence($0, session: session)] } ?? []
    }

    /// Stores an uploaded evidence file under its SHA-256 and returns the reference to send.
    func storeEvidence(_ file: UploadedFile, session: WebSession) throws -> EvidenceRef {
        let type: String
        switch EvidenceTypes.check(file, maxBytes: settings.maxUploadBytes) {
        case .success(let checked): type = checked
        case .failure(let error): throw error
        }
        let sha = Hex.lowercase(SHA256.hash(data: file.bytes))
        let name = EvidenceTypes.cleanName(file.filename)
        let path = (uploadsDirectory as NSString).appendingPathComponent(sha)
        if !FileManager.default.fileExists(atPath: path) {
            let temporary = path + ".part-\(AccountStore.randomToken().prefix(8))"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(file.bytes), attributes: [.posixPermissions: 0o640])
            else { throw WebError(status: 500, "无法保存佐证材料") }
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        }
        try store.recordUpload(
            AccountStore.Upload(
                sha256: sha, name: name, contentType: type, size: file.bytes.count, uploadedBy: session.user.name, unit: session.user.unit,
                at: Timestamp.now()))
        let uri = (settings.baseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "") + "/files/\(sha)"
        return EvidenceRef(name: name, uri: uri, sha256: sha)
    }
}

/// A JSON string literal.
func json(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar == "\u{2028}" || scalar == "\u{2029}" {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
