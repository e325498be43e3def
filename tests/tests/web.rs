//! The web front end (`tandem web`) as a real process over HTTPS on 127.0.0.1, against a real
//! server with the REST RP API and the simulated phone (`tandem device`), checked with
//! reqwest (cookies handled by hand, redirects not followed): security headers and cookie
//! attributes, CSRF and Origin refusals that change nothing, the 413 page, the QR code that
//! changes every second and decodes to a device link the phone can scan, a QR login, a
//! notification login, a refused login, logout.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Client, StatusCode};
use tandem_tests::web::{COOKIE, CSP, Phone, WebOptions, start_web};
use tandem_tests::*;

/// A browser: HTTPS trusting the server's certificate, no redirects, one cookie by hand.
struct Browser {
    http: Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(server: &TestServer, web: &tandem_tests::web::Web) -> Self {
        let http = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&server.ca).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: web.url.clone(),
            cookie: None,
        }
    }

    fn take_cookie(&mut self, h: &HeaderMap) {
        for v in h.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            if let Some(rest) = v.strip_prefix(&format!("{COOKIE}=")) {
                let value = rest.split(';').next().unwrap();
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("accept-language", "en");
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("{COOKIE}={c}"));
        }
        r
    }

    async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        let (s, h) = (resp.status(), resp.headers().clone());
        self.take_cookie(&h);
        (s, h, resp.bytes().await.unwrap().to_vec())
    }

    async fn get_text(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let (s, h, b) = self.get(path).await;
        (s, h, String::from_utf8(b).unwrap())
    }

    /// A form POST from our own origin.
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let resp = self
            .request(reqwest::Method::POST, path)
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        let (s, h) = (resp.status(), resp.headers().clone());
        self.take_cookie(&h);
        (s, h, resp.text().await.unwrap())
    }
}

fn location(h: &HeaderMap) -> &str {
    h.get("location").unwrap().to_str().unwrap()
}

/// The value of the hidden CSRF field of a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("no CSRF field") + 19;
    page[at..at + 64].to_owned()
}

/// Decodes the one QR code of a PNG.
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut codes = tandem_tests::browser::decode_qr(png_bytes).unwrap();
    assert_eq!(codes.len(), 1, "one QR code in the image");
    codes.remove(0)
}

fn notify_form(csrf: &str) -> [(&'static str, &str); 3] {
    [("country", "EE"), ("national_id", MARY.id), ("csrf", csrf)]
}

fn query_param<'a>(link: &'a str, name: &str) -> &'a str {
    link.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {link}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_bank_login_over_https() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path();
    let phone = Phone::new(&server, tmp.join("phone"));
    let doc = phone.register(&MARY, "1234", "12345");
    let limit = 1024 * 1024;
    let web = start_web(&server, tmp, &WebOptions::with_upload_limit(limit));

    // 1. The login page: security headers, the session cookie's attributes, no inline
    //    script or style, a QR image, a Web2App link and the notification form.
    let mut b = Browser::new(&server, &web);
    let (status, h, page) = b.get_text("/bank/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(h["content-security-policy"], CSP);
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let set_cookie = h[SET_COOKIE].to_str().unwrap();
    let id = b.cookie.clone().unwrap();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        set_cookie,
        format!("{COOKIE}={id}; Max-Age=900; Path=/; HttpOnly; SameSite=Strict; Secure")
    );
    assert!(!page.contains(&id), "the session id is never in a page");
    assert!(page.contains("<script src=\"/static/login.js\" defer></script>"));
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the one external script"
    );
    assert!(!page.contains("style="), "no inline style");
    assert!(page.contains("src=\"/bank/login/qr.png?n=0\""));
    let web2app = format!("href=\"{DEVICE_LINK_BASE}?deviceLinkType=Web2App");
    assert!(page.contains(&web2app), "{page}");
    let token = csrf(&page);
    assert!(!page.contains(&format!("?{token}")) && !page.contains(&format!("={token}&")));
    let (s, h, js) = b.get_text("/static/login.js").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-security-policy"], CSP);
    assert!(js.contains("/bank/login/status"));

    // 2. The QR code changes every second and decodes to a device link whose
    //    elapsedSeconds counts and whose authCode changes with it.
    let (s, h, png1) = b.get("/bank/login/qr.png?n=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["cache-control"], "no-store");
    let link1 = decode_qr(&png1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, _, png2) = b.get("/bank/login/qr.png?n=2").await;
    let link2 = decode_qr(&png2);
    assert_ne!(png1, png2);
    assert!(
        link1.starts_with(&format!("{DEVICE_LINK_BASE}?deviceLinkType=QR&")),
        "{link1}"
    );
    let (e1, e2): (u64, u64) = (
        query_param(&link1, "elapsedSeconds").parse().unwrap(),
        query_param(&link2, "elapsedSeconds").parse().unwrap(),
    );
    assert!(e2 > e1, "{link1}\n{link2}");
    assert_ne!(
        query_param(&link1, "authCode"),
        query_param(&link2, "authCode")
    );
    assert!(!link1.contains("sessionSecret"), "{link1}");

    // 3. POSTs without the token, with a wrong one, or from another origin: 403 with the
    //    message, and no notification reaches the phone.
    let (s, _, page) = b
        .post(
            "/bank/login/notify",
            &[("country", "EE"), ("national_id", MARY.id)],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("cross-site request forgery"), "{page}");
    let wrong = "00".repeat(32);
    let (s, _, _) = b.post("/bank/login/notify", &notify_form(&wrong)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let resp = b
        .request(reqwest::Method::POST, "/bank/login/notify")
        .header("origin", "https://evil.example")
        .form(&notify_form(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("did not come from this site")
    );
    // Another browser (no cookie) with a token it copied: still refused.
    let mut stranger = Browser::new(&server, &web);
    let (s, _, _) = stranger
        .post("/bank/login/notify", &notify_form(&token))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !phone.has_pending(),
        "a refused POST started a notification"
    );

    // 4. A body over the limit: the 413 page, before anything is read.
    let big = vec![b'a'; (limit + 1) as usize];
    let resp = b
        .request(reqwest::Method::POST, "/bank/login/notify")
        .header("origin", &web.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-security-policy"], CSP);
    let page = resp.text().await.unwrap();
    assert!(page.contains("exceeds the allowed size of 1 MiB"), "{page}");

    // 5. QR login: the phone scans the decoded link and confirms; the page's status poll,
    //    already waiting, answers within a second; /bank/login/done rotates the session.
    let status_poll = {
        let r = b.request(reqwest::Method::GET, "/bank/login/status");
        tokio::spawn(async move {
            let resp = r.send().await.unwrap();
            let at = Instant::now();
            (resp.json::<serde_json::Value>().await.unwrap(), at)
        })
    };
    let (_, _, png) = b.get("/bank/login/qr.png?n=3").await;
    let link = decode_qr(&png);
    let out = phone.run(&["scan", &link], &[("TANDEM_PIN", "1234")]);
    let confirmed = Instant::now();
    assert!(out.contains("ACCEPTED"), "{out}");
    let (answer, answered) = status_poll.await.unwrap();
    assert_eq!(answer["state"], "ok", "{answer}");
    assert_eq!(answer["next"], "/bank/login/done");
    let lag = answered.saturating_duration_since(confirmed);
    assert!(
        lag < Duration::from_secs(1),
        "the page continued after {lag:?}"
    );
    let old = b.cookie.clone().unwrap();
    let (s, h, _) = b.get("/bank/login/done").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(location(&h), "/bank/account");
    let new = b.cookie.clone().unwrap();
    assert_ne!(old, new, "the session id is rotated at login");
    let (s, h, page) = b.get_text("/bank/account").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        page.contains("Welcome, <span id=\"person-name\">MARY TESTNUMBER</span>"),
        "{page}"
    );
    assert!(page.contains("PNOEE-30303039914"));
    assert!(page.contains(&doc), "{page}");
    // The old id is dead.
    let mut fixated = Browser::new(&server, &web);
    fixated.cookie = Some(old);
    let (s, h, _) = fixated.get("/bank/account").await;
    assert_eq!((s, location(&h)), (StatusCode::SEE_OTHER, "/bank/"));

    // 6. Logout needs the token too; then the session is gone.
    let (s, _, _) = b.post("/bank/logout", &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = b.get_text("/bank/account").await;
    assert_eq!(s, StatusCode::OK, "a refused logout changes nothing");
    let token = csrf(&b.get_text("/bank/account").await.2);
    let logged_in = b.cookie.clone().unwrap();
    let (s, h, _) = b.post("/bank/logout", &[("csrf", &token)]).await;
    assert_eq!((s, location(&h)), (StatusCode::SEE_OTHER, "/bank/"));
    assert!(
        h[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with(&format!("{COOKIE}=; Max-Age=0;"))
    );
    b.cookie = Some(logged_in);
    let (s, h, _) = b.get("/bank/account").await;
    assert_eq!((s, location(&h)), (StatusCode::SEE_OTHER, "/bank/"));

    // 7. Notification login by national identity number: the page shows the code the phone
    //    shows; confirming reaches the account.
    let mut n = Browser::new(&server, &web);
    let token = csrf(&n.get_text("/bank/").await.2);
    let (s, h, _) = n
        .post(
            "/bank/login/notify",
            &[
                ("country", "ee"),
                ("national_id", MARY.id),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(
        (s, location(&h)),
        (StatusCode::SEE_OTHER, "/bank/login/wait")
    );
    let (_, _, page) = n.get_text("/bank/login/wait").await;
    let at = page.find("id=\"vc\">").unwrap() + 8;
    let vc = &page[at..at + 4];
    let pending = phone.pending_auth();
    assert!(pending.contains(&format!("code {vc}")), "{pending} vs {vc}");
    let tx = pending.split_whitespace().next().unwrap();
    let out = phone.run(&["confirm", tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    let (_, _, answer) = n.get_text("/bank/login/status").await;
    assert!(answer.contains("\"state\":\"ok\""), "{answer}");
    let (s, h, _) = n.get("/bank/login/done").await;
    assert_eq!((s, location(&h)), (StatusCode::SEE_OTHER, "/bank/account"));
    let (_, _, page) = n.get_text("/bank/account").await;
    assert!(page.contains("MARY TESTNUMBER"), "{page}");

    // 8. A refused login: its own message and a way to try again (in German too).
    let mut r = Browser::new(&server, &web);
    let token = csrf(&r.get_text("/bank/").await.2);
    r.post(
        "/bank/login/notify",
        &[
            ("country", "EE"),
            ("national_id", MARY.id),
            ("csrf", &token),
        ],
    )
    .await;
    let pending = phone.pending_auth();
    let tx = pending.split_whitespace().next().unwrap();
    phone.run(&["refuse", tx], &[]);
    let (_, _, answer) = r.get_text("/bank/login/status").await;
    assert!(answer.contains("\"state\":\"failed\""), "{answer}");
    assert!(answer.contains("declined on the phone"), "{answer}");
    let (s, _, page) = r.get_text("/bank/login/done").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-failure=\"user-refused\""), "{page}");
    assert!(
        page.contains("The login was declined on the phone."),
        "{page}"
    );
    assert!(page.contains("href=\"/bank/\">Try again</a>"), "{page}");
    let resp = r
        .request(reqwest::Method::GET, "/bank/login/done")
        .header(
            "cookie",
            format!("{COOKIE}={}; lang=de", r.cookie.as_deref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Die Anmeldung wurde auf dem Telefon abgelehnt."),
        "{page}"
    );
    assert!(page.contains("<html lang=\"de\">"));

    // 9. An unknown person: a clear message, no session on the phone.
    let (s, h, _) = r
        .post(
            "/bank/login/notify",
            &[
                ("country", "EE"),
                ("national_id", "49999999999"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(
        (s, location(&h)),
        (StatusCode::SEE_OTHER, "/bank/login/done")
    );
    let (_, _, page) = r.get_text("/bank/login/done").await;
    assert!(
        page.contains("no Tandem account for this national identity number"),
        "{page}"
    );

    // The language switch sets a cookie and returns to a local page only.
    let (s, h, _) = r.get("/lang/de?back=/bank/account").await;
    assert_eq!((s, location(&h)), (StatusCode::SEE_OTHER, "/bank/account"));
    assert!(h[SET_COOKIE].to_str().unwrap().starts_with("lang=de; "));
    let (_, h, _) = r.get("/lang/en?back=//evil.example/").await;
    assert_eq!(location(&h), "/bank/");

    // Nothing secret in the web process's log.
    let log = std::fs::read_to_string(tmp.join("web.log")).unwrap();
    assert!(!log.contains(&new) && !log.contains(&token), "{log}");
}
