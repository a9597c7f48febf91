import Foundation
import Schema

/// Server-rendered HTML. Every text that comes from a person, a service or the plan goes
/// through `esc` (or `HTML.text`); only the console's own markup is written raw.
public struct HTML: Sendable, CustomStringConvertible {
    public var raw: String
    public init(raw: String) { self.raw = raw }
    public var description: String { raw }

    /// Text, escaped.
    public static func text(_ value: String) -> HTML { HTML(raw: esc(value)) }

    public static func + (a: HTML, b: HTML) -> HTML { HTML(raw: a.raw + b.raw) }
}

/// Escapes text for an HTML element's content or a quoted attribute value, without the controls
/// a person's text must not carry onto a page (C0 but newline and tab, DEL, C1, the bidirectional
/// overrides: `DisplayText`, as the CLI strips them).
public func esc(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in DisplayText.sanitized(text).unicodeScalars {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(character)
        }
    }
    return out
}

/// Percent-encodes a path segment (task ids like `7.1`, case numbers, hashes).
public func urlSegment(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

/// A page in the console's frame: navigation for the person's role, their unit, a logout form.
struct Page {
    var title: String
    var body: String
    var session: WebSession?
    /// Loads the live-update script (the dashboard).
    var live = false
    var bodyClass: String?

    func render() -> String {
        var nav = ""
        if let session {
            let links: [(String, String)] = [
                ("/", "总览"), ("/tasks", "任务"), ("/dispatch", "月调度"), ("/cases", "台账"), ("/monitoring", "监测"),
                ("/supervision", "督办单"), ("/plans", "实施方案"), ("/notices", "通报与提醒"), ("/reports", "报告"),
            ]
            nav = """
                <nav class="top"><a class="brand" href="/">生态环境督办</a>\
                \(links.map { "<a href=\"\($0.0)\">\($0.1)</a>" }.joined())\
                <span class="who">\(esc(session.user.name))（\(esc(session.user.unit))，\(esc(session.user.role.label))）</span>\
                <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="\(esc(session.csrf))">\
                <button type="submit" class="link">退出</button></form></nav>
                """
        }
        let script = live ? "<script src=\"/static/live.js\" defer></script>" : ""
        return """
            <!doctype html>
            <html lang="zh-CN"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(esc(title)) · 城中区生态环境保护督办</title>
            <link rel="stylesheet" href="/static/app.css">\(script)</head>
            <body\(bodyClass.map { " class=\"\(esc($0))\"" } ?? "")>\(nav)<main id="main">\(body)</main></body></html>
            """
    }
}

/// The hidden field every form carries.
func csrfField(_ session: WebSession) -> String {
    "<input type=\"hidden\" name=\"_csrf\" value=\"\(esc(session.csrf))\">"
}

/// Static assets: served by duban-web itself (no CDN: the district's intranet has no internet).
enum Assets {
    static let css = """
        *{box-sizing:border-box}
        body{margin:0;font-family:"Noto Sans CJK SC","WenQuanYi Zen Hei","Microsoft YaHei","PingFang SC",sans-serif;
        background:#f4f6f8;color:#1d2733;font-size:16px;line-height:1.5}
        main{max-width:1880px;margin:0 auto;padding:12px}
        nav.top{display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center;background:#114b3a;color:#fff;padding:8px 12px}
        nav.top a{color:#fff;text-decoration:none;padding:4px 2px}
        nav.top a.brand{font-weight:bold;margin-right:8px}
        nav.top .who{margin-left:auto;font-size:14px;opacity:.9}
        form.inline{display:inline}
        button.link{background:none;border:none;color:#fff;text-decoration:underline;cursor:pointer;font:inherit}
        h1{font-size:22px;margin:8px 0 12px}
        h2{font-size:18px;margin:16px 0 8px;border-left:4px solid #1f7a5c;padding-left:8px}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
        .card{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-x:auto}
        table{border-collapse:collapse;width:100%;font-size:14px}
        th,td{border-bottom:1px solid #e3e7eb;padding:6px 6px;text-align:left;vertical-align:top}
        th{background:#f0f3f5;white-space:nowrap}
        .num{font-size:28px;font-weight:bold}
        .counts{display:flex;flex-wrap:wrap;gap:8px}
        .count{background:#f0f3f5;border-radius:4px;padding:6px 10px;min-width:88px}
        .bad{color:#b3261e}.warn{color:#9a6700}.good{color:#1f7a5c}
        .tag{display:inline-block;border-radius:3px;padding:0 6px;font-size:13px;background:#e8eef2}
        .tag.lagging,.tag.overdue,.tag.critical{background:#fde2e0;color:#8c1d18}
        .tag.on_track,.tag.completed,.tag.met{background:#dff3e8;color:#135b40}
        .tag.awaiting_acceptance,.tag.warning{background:#fff1cc;color:#6b4d00}
        label{display:block;margin:8px 0 2px;font-weight:bold}
        input[type=text],input[type=password],input[type=number],input[type=search],select,textarea{width:100%;max-width:560px;padding:8px;
        font:inherit;border:1px solid #b8c2cc;border-radius:4px;background:#fff}
        textarea{min-height:80px}
        form.filters{display:flex;flex-wrap:wrap;gap:0 14px;align-items:flex-end}
        form.filters .field{flex:1 1 180px;max-width:320px}
        button,.button{background:#1f7a5c;color:#fff;border:none;border-radius:4px;padding:9px 16px;font:inherit;cursor:pointer;
        margin:8px 6px 0 0;text-decoration:none;display:inline-block}
        button.secondary{background:#5b6b7a}
        .error{background:#fde2e0;color:#8c1d18;padding:8px 12px;border-radius:4px;margin:8px 0}
        .ok{background:#dff3e8;color:#135b40;padding:8px 12px;border-radius:4px;margin:8px 0}
        .login{max-width:420px;margin:40px auto}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,560px));gap:10px}
        figure.chart{margin:0}figure.chart figcaption{font-size:14px;font-weight:bold}svg.chart{display:block;max-width:100%}
        table.months td,table.months th{text-align:center}
        .muted{color:#5b6b7a;font-size:14px}
        .live-status{font-size:13px;color:#5b6b7a}
        .report li.sub{margin-left:1.5em;list-style:circle}.scroll{overflow-x:auto}
        ul.feed{list-style:none;padding:0;margin:0}ul.feed li{border-bottom:1px solid #e3e7eb;padding:4px 0;font-size:14px}
        @media (max-width:600px){main{padding:6px}.num{font-size:22px}nav.top .who{margin-left:0;width:100%}
        th,td{padding:4px}table{font-size:13px}.hide-narrow{display:none}}
        """

    /// Live updates: the page listens to /events and, on each event, fetches the dashboard's body
    /// again as HTML rendered by the server for this person. The browser's EventSource sends
    /// Last-Event-ID by itself when it reconnects, so nothing is missed across a restart.
    static let liveJS = """
        (function () {
          "use strict";
          var target = document.getElementById("live");
          var status = document.getElementById("live-status");
          if (!target || !window.EventSource) { return; }
          var pending = false, again = false;
          function refresh() {
            if (pending) { again = true; return; }
            pending = true;
            fetch("/fragment/overview", {credentials: "same-origin", headers: {"Accept": "text/html"}})
              .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
              .then(function (html) { target.innerHTML = html; })
              .catch(function () {})
              .then(function () { pending = false; if (again) { again = false; refresh(); } });
          }
          var source = new EventSource("/events");
          source.onopen = function () { if (status) { status.textContent = "实时更新：已连接"; } };
          source.onerror = function () { if (status) { status.textContent = "实时更新：正在重新连接…"; } };
          source.onmessage = function (event) {
            if (status) { status.textContent = "实时更新：已连接（最新事件 " + event.lastEventId + "）"; }
            refresh();
          };
        })();
        """
}
