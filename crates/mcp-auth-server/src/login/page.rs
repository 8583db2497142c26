//! The server-rendered pages: the login and consent page, and the error page.
//!
//! Plain HTML5 with one inline stylesheet: no script, no external resource (the handler's
//! `Content-Security-Policy` is `default-src 'none'; style-src 'unsafe-inline'`). Every
//! interpolated value goes through [`escape`].
//!
//! The consent form's element ids and names are a contract with the `/authorize` handler and
//! the browser tests: one `<form method="post">` with hidden `transaction` and `csrf`, then
//! (only when a login is needed) `#username` / `#password`, then `#approve` / `#deny`, both
//! `name="decision"`.

use std::fmt::Write as _;

/// What the login and consent page shows.
#[derive(Debug)]
pub(crate) struct ConsentPage<'a> {
    /// The form posts here (the authorization endpoint's path).
    pub(crate) action: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) client_id: &'a str,
    /// Host of the redirect URI (AS-41: shown prominently).
    pub(crate) redirect_host: &'a str,
    pub(crate) redirect_uri: &'a str,
    /// The redirect goes to a loopback host (AS-41: warn).
    pub(crate) loopback_redirect: bool,
    /// Host of a metadata-document `client_id`, if it is one.
    pub(crate) client_id_host: Option<&'a str>,
    pub(crate) scopes: &'a [&'a str],
    pub(crate) resource: &'a str,
    /// Show the username/password fields.
    pub(crate) needs_login: bool,
    /// Already signed in as (when `needs_login` is false).
    pub(crate) signed_in_as: Option<&'a str>,
    /// An error to show above the form ("Wrong username or password").
    pub(crate) error: Option<&'a str>,
    /// The upstream provider the user will sign in with after approving (redirect logins,
    /// AS-49), and the scopes asked of it.
    pub(crate) provider: Option<(&'a str, &'a str)>,
    /// Hidden fields.
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
}

/// The one stylesheet: readable from a 320 px window up, no external fonts.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;padding:1rem;background:#f4f5f7;color:#1d2330;\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border:1px solid #d8dce3;\
border-radius:8px}\
h1{font-size:1.3rem;margin:0 0 1rem;overflow-wrap:anywhere}\
h2{font-size:1rem;margin:1.25rem 0 .25rem}\
.client,.host{font-weight:700}\
.resource,code,.uri{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}\
.uri{display:block;font-size:.85rem;color:#555d6b}\
.redirect{padding:.75rem;background:#eef3fb;border-radius:6px}\
.host{font-size:1.15rem;overflow-wrap:anywhere}\
.warning{padding:.75rem;background:#fff6db;border:1px solid #e8c34a;border-radius:6px}\
.error{padding:.75rem;background:#fdecec;border:1px solid #e08080;border-radius:6px;color:#8a1c1c}\
.meta{font-size:.9rem;color:#555d6b;overflow-wrap:anywhere}\
ul{margin:.25rem 0;padding-left:1.25rem}\
label{display:block;margin-top:.75rem;font-weight:600}\
input{width:100%;padding:.5rem;font:inherit;border:1px solid #b5bcc8;border-radius:4px}\
.buttons{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}\
button{flex:1 1 8rem;padding:.6rem 1rem;font:inherit;font-weight:600;border-radius:6px;\
border:1px solid #b5bcc8;background:#fff;cursor:pointer}\
#approve{background:#1f5fd1;border-color:#1f5fd1;color:#fff}\
@media(max-width:30rem){body{padding:.5rem}main{margin:0;padding:1rem}}";

/// Escape text for an HTML element body or a double- or single-quoted attribute value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// The document head and the opening `<main>`; `title` is escaped here.
fn open(out: &mut String, title: &str) {
    out.push_str(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>",
    );
    push_escaped(out, title);
    out.push_str("</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<main>\n");
}

fn close(out: &mut String) {
    out.push_str("</main>\n</body>\n</html>\n");
}

/// Render the login and consent page. Every value is HTML-escaped.
pub(crate) fn render_consent(page: &ConsentPage<'_>) -> String {
    let e = escape;
    let mut out = String::with_capacity(4096);
    open(&mut out, &format!("Authorize {}", page.client_name));

    // `write!` into a String cannot fail.
    let _ = writeln!(
        out,
        "<h1><span class=\"client\">{}</span> wants to access <span class=\"resource\">{}</span></h1>",
        e(page.client_name),
        e(page.resource),
    );
    if let Some(error) = page.error {
        let _ = writeln!(out, "<p class=\"error\" role=\"alert\">{}</p>", e(error));
    }
    let _ = writeln!(
        out,
        "<p class=\"redirect\">After you approve, you will be sent to <span class=\"host\">{}</span>\
         <span class=\"uri\">{}</span></p>",
        e(page.redirect_host),
        e(page.redirect_uri),
    );
    if page.loopback_redirect {
        out.push_str(
            "<p class=\"warning\" role=\"alert\">This app receives the response on your own computer \
             (localhost). Only approve if you just started signing in from an app on this device.</p>\n",
        );
    }
    match page.client_id_host {
        Some(host) => {
            let _ = writeln!(
                out,
                "<p class=\"meta\">App identity published by <strong>{}</strong>\
                 <span class=\"uri\">{}</span></p>",
                e(host),
                e(page.client_id),
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"meta\">Client ID: <code>{}</code></p>",
                e(page.client_id)
            );
        }
    }

    out.push_str("<h2>Permissions requested</h2>\n<ul class=\"scopes\">\n");
    if page.scopes.is_empty() {
        out.push_str("<li>Basic access (no specific permission)</li>\n");
    }
    for scope in page.scopes {
        let _ = writeln!(out, "<li><code>{}</code></li>", e(scope));
    }
    out.push_str("</ul>\n");

    if let Some((provider, scope)) = page.provider.filter(|_| page.signed_in_as.is_none()) {
        let _ = writeln!(
            out,
            "<p class=\"redirect\">To approve, you will sign in with <span class=\"host provider\">{}</span>\
             <span class=\"uri\">{} will be asked for: {}</span></p>",
            e(provider),
            e(provider),
            e(if scope.is_empty() {
                "your basic profile"
            } else {
                scope
            }),
        );
    }
    if let Some(who) = page.signed_in_as {
        let _ = writeln!(
            out,
            "<p class=\"meta\">Signed in as <strong>{}</strong></p>",
            e(who)
        );
    }

    let _ = writeln!(
        out,
        "<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"transaction\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        e(page.action),
        e(page.transaction),
        e(page.csrf),
    );
    if page.needs_login {
        out.push_str(
            "<h2>Sign in to approve</h2>\n\
             <label for=\"username\">Username</label>\n\
             <input id=\"username\" name=\"username\" autocomplete=\"username\">\n\
             <label for=\"password\">Password</label>\n\
             <input id=\"password\" name=\"password\" type=\"password\">\n",
        );
    }
    out.push_str(
        "<div class=\"buttons\">\n\
         <button id=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\n\
         <button id=\"deny\" name=\"decision\" value=\"deny\">Deny</button>\n\
         </div>\n</form>\n",
    );
    close(&mut out);
    out
}

/// Render an error page shown to the user instead of redirecting (AS-13).
pub(crate) fn render_error(title: &str, message: &str) -> String {
    let mut out = String::with_capacity(2048);
    open(&mut out, title);
    out.push_str("<h1>");
    push_escaped(&mut out, title);
    out.push_str("</h1>\n<p class=\"error\" role=\"alert\">");
    push_escaped(&mut out, message);
    out.push_str("</p>\n<p class=\"meta\">You can close this window.</p>\n");
    close(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "<script>alert(\"x\")</script>";

    fn page() -> ConsentPage<'static> {
        ConsentPage {
            action: "/authorize",
            client_name: "Notes App",
            client_id: "abc123",
            redirect_host: "app.example.com",
            redirect_uri: "https://app.example.com/callback",
            loopback_redirect: false,
            client_id_host: None,
            scopes: &["mcp:tools", "notes:read"],
            resource: "https://mcp.example.com/mcp",
            needs_login: true,
            signed_in_as: None,
            error: None,
            provider: None,
            transaction: "tx-1",
            csrf: "csrf-1",
        }
    }

    #[test]
    fn escape_neutralises_markup_quotes_and_ampersands() {
        assert_eq!(
            escape(SCRIPT),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("it's \"quoted\""), "it&#x27;s &quot;quoted&quot;");
        assert_eq!(escape("\" onmouseover=\"x"), "&quot; onmouseover=&quot;x");
        assert_eq!(escape("plain ünïcode ✓"), "plain ünïcode ✓");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn consent_page_has_every_element_of_the_contract() {
        let html = render_consent(&page());
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("<span class=\"client\">Notes App</span> wants to access"));
        assert!(html.contains("https://mcp.example.com/mcp"));
        assert!(html.contains(
            "After you approve, you will be sent to <span class=\"host\">app.example.com</span>"
        ));
        assert!(html.contains("https://app.example.com/callback"));
        assert!(html.contains("<code>mcp:tools</code>"));
        assert!(html.contains("<code>notes:read</code>"));
        assert!(html.contains("abc123"));
        assert_eq!(html.matches("<form ").count(), 1);
        assert!(html.contains("<form method=\"post\" action=\"/authorize\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"transaction\" value=\"tx-1\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-1\">"));
        assert!(
            html.contains("<input id=\"username\" name=\"username\" autocomplete=\"username\">")
        );
        assert!(html.contains("<input id=\"password\" name=\"password\" type=\"password\">"));
        assert!(html.contains(
            "<button id=\"approve\" name=\"decision\" value=\"approve\">Approve</button>"
        ));
        assert!(
            html.contains("<button id=\"deny\" name=\"decision\" value=\"deny\">Deny</button>")
        );
        // The fields sit inside the form, the approve button first (Enter approves).
        let form = html.find("<form").unwrap();
        let end = html.find("</form>").unwrap();
        for needle in [
            "name=\"transaction\"",
            "name=\"csrf\"",
            "id=\"username\"",
            "id=\"password\"",
            "id=\"approve\"",
            "id=\"deny\"",
        ] {
            let at = html.find(needle).unwrap();
            assert!(form < at && at < end, "{needle} outside the form");
        }
        assert!(html.find("id=\"approve\"") < html.find("id=\"deny\""));
        // Nothing optional when not asked for, and never a script or an external resource.
        assert!(!html.contains("class=\"warning\""));
        assert!(!html.contains("class=\"error\""));
        assert!(!html.contains("Signed in as"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<link"));
        assert!(!html.contains("src="));
    }

    #[test]
    fn signed_in_page_has_no_password_form() {
        let html = render_consent(&ConsentPage {
            needs_login: false,
            signed_in_as: Some("Alice A."),
            ..page()
        });
        assert!(html.contains("Signed in as <strong>Alice A.</strong>"));
        assert!(!html.contains("id=\"username\""));
        assert!(!html.contains("id=\"password\""));
        assert!(html.contains("id=\"approve\""));
        assert!(html.contains("id=\"deny\""));
    }

    #[test]
    fn redirect_login_names_the_provider_before_the_browser_goes_there() {
        let html = render_consent(&ConsentPage {
            needs_login: false,
            provider: Some(("Keycloak", "openid email")),
            ..page()
        });
        assert!(html.contains(
            "To approve, you will sign in with <span class=\"host provider\">Keycloak</span>"
        ));
        assert!(html.contains("Keycloak will be asked for: openid email"));
        assert!(html.contains("<span class=\"client\">Notes App</span>"));
        assert!(html.contains("sent to <span class=\"host\">app.example.com</span>"));
        assert!(!html.contains("id=\"password\""));
        // Already signed in: no provider line.
        let html = render_consent(&ConsentPage {
            needs_login: false,
            signed_in_as: Some("Alice"),
            provider: Some(("Keycloak", "openid")),
            ..page()
        });
        assert!(!html.contains("you will sign in with"));
    }

    #[test]
    fn loopback_redirect_shows_the_warning() {
        let html = render_consent(&ConsentPage {
            redirect_host: "127.0.0.1",
            redirect_uri: "http://127.0.0.1:33418/callback",
            loopback_redirect: true,
            ..page()
        });
        assert!(html.contains("sent to <span class=\"host\">127.0.0.1</span>"));
        assert!(html.contains(
            "This app receives the response on your own computer (localhost). Only approve if you just \
             started signing in from an app on this device."
        ));
    }

    #[test]
    fn metadata_document_client_shows_its_host() {
        let html = render_consent(&ConsentPage {
            client_id: "https://client.example.org/oauth/metadata.json",
            client_id_host: Some("client.example.org"),
            ..page()
        });
        assert!(html.contains("App identity published by <strong>client.example.org</strong>"));
        assert!(html.contains("https://client.example.org/oauth/metadata.json"));
    }

    #[test]
    fn error_banner_and_empty_scopes() {
        let html = render_consent(&ConsentPage {
            error: Some("Wrong username or password"),
            scopes: &[],
            ..page()
        });
        assert!(html.contains("<p class=\"error\" role=\"alert\">Wrong username or password</p>"));
        assert!(html.contains("Basic access"));
        // The banner comes before the form.
        assert!(html.find("class=\"error\"") < html.find("<form"));
    }

    #[test]
    fn every_interpolated_value_is_escaped() {
        let html = render_consent(&ConsentPage {
            action: "/authorize\"><script>",
            client_name: SCRIPT,
            client_id: SCRIPT,
            redirect_host: SCRIPT,
            redirect_uri: SCRIPT,
            loopback_redirect: true,
            client_id_host: Some(SCRIPT),
            scopes: &[SCRIPT, "a&b"],
            resource: SCRIPT,
            needs_login: false,
            signed_in_as: Some(SCRIPT),
            error: Some(SCRIPT),
            provider: Some((SCRIPT, SCRIPT)),
            transaction: "\"><script>",
            csrf: "'><script>",
        });
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(\"x\")"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("<code>a&amp;b</code>"));
        assert!(html.contains("action=\"/authorize&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("name=\"transaction\" value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("name=\"csrf\" value=\"&#x27;&gt;&lt;script&gt;\""));
        assert!(html.contains("<title>Authorize &lt;script&gt;"));
    }

    #[test]
    fn error_page_escapes_and_has_no_form() {
        let html = render_error("Bad <request>", SCRIPT);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>Bad &lt;request&gt;</title>"));
        assert!(html.contains("<h1>Bad &lt;request&gt;</h1>"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<form"));
    }
}
