//! The self-service portal in a real browser (headless Chromium through chromedriver)
//! against a real server (REST RP API over HTTPS, a portal relying party with the `portal`
//! permission), a real `tandem web` and the simulated phone (`tandem device`):
//!
//! - notification login to the portal (PIN1 on the phone) → the overview: holder, both keys
//!   active, both certificates with the web process's own OCSP answer "good", a PEM download;
//! - the bank's login is separate (logged in to the portal ≠ logged in to the bank), and a
//!   Web2App login through the callback URL the phone opens reaches the bank's account;
//! - three wrong PIN2 on a signature session → after a reload the SIGN key is locked, with
//!   its until-time;
//! - a phone-sized window has no horizontal scroll;
//! - deletion: the page naming the account, checkbox, button, a fresh confirmation on the
//!   phone ("Delete account DOC") → the result page with the revoked serials; the operator
//!   lists the account as deleted and `openssl ocsp` says revoked.
//!
//! Screenshots for docs/WEB.md with `TANDEM_WEB_SCREENSHOTS=docs/web`.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem_tests::browser::{Browser, DESKTOP, PHONE};
use tandem_tests::web::{Phone, WebOptions, start_web};
use tandem_tests::*;

const PORTAL_UUID: &str = "00000000-0000-4000-8000-0000000000a1";
const PORTAL_NAME: &str = "Tandem Portal";
/// The first lock after three wrong PINs (seconds).
const LOCK_SECONDS: i64 = 600;
const WAIT: Duration = Duration::from_secs(20);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `tandem device ARGS` that may fail (a wrong PIN exits with status 3).
fn phone_try(server: &TestServer, phone: &Phone<'_>, args: &[&str], pin: &str) -> String {
    let ca = server.data_dir.join("tls/server.crt");
    let mut all = vec![
        "device",
        "--dir",
        phone.dir.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "--server",
        &server.url,
    ];
    all.extend_from_slice(args);
    match tandem_env(&all, &[("TANDEM_PIN", pin)]) {
        Ok(out) => out,
        Err(e) => e.to_string(),
    }
}

/// The pending line containing `needle`, waiting up to 10 s.
fn pending_line(phone: &Phone<'_>, needle: &str) -> String {
    for _ in 0..100 {
        let out = phone.run(&["pending"], &[]);
        if let Some(l) = out.lines().find(|l| l.contains(needle)) {
            return l.to_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no pending transaction with {needle:?} within 10 s");
}

/// Whether the page scrolls sideways.
async fn scrolls_sideways(b: &Browser) -> bool {
    let v = b
        .client()
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    v.json().as_bool().unwrap()
}

/// Waits for `css`; on failure the message shows the page's text.
async fn wait(b: &Browser, css: &str) -> thirtyfour::WebElement {
    match b.wait_for(css, WAIT).await {
        Ok(e) => e,
        Err(e) => panic!("{e}\npage:\n{}", b.body_text().await.unwrap_or_default()),
    }
}

async fn resize(b: &Browser, size: (u32, u32)) {
    b.client()
        .set_window_rect(0, 0, size.0, size.1)
        .await
        .unwrap();
}

/// Screenshots at the desktop size and at the phone size (then back to the desktop) when
/// `name` is given, and the phone-sized page must not scroll sideways.
async fn shots(b: &Browser, name: Option<&str>) {
    if let Some(n) = name {
        b.doc_screenshot(&format!("{n}-desktop")).await.unwrap();
    }
    resize(b, PHONE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = b.url().await.unwrap();
    assert!(
        !scrolls_sideways(b).await,
        "{url}: horizontal scroll at phone size"
    );
    if let Some(n) = name {
        b.doc_screenshot(&format!("{n}-phone")).await.unwrap();
    }
    resize(b, DESKTOP).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_overview_lock_and_deletion_in_a_browser() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        lockout: Some(short_lockout(LOCK_SECONDS, 2 * LOCK_SECONDS)),
        ..Default::default()
    })
    .unwrap();
    let out = server
        .operator(&[
            "rp-add",
            "--uuid",
            PORTAL_UUID,
            "--name",
            PORTAL_NAME,
            "--portal",
        ])
        .unwrap();
    assert!(out.contains("may use the portal endpoints"), "{out}");
    let tmp = server.tmp.path();
    let phone = Phone::new(&server, tmp.join("phone"));
    let doc = phone.register(&MARY, "1234", "12345");
    let web = start_web(
        &server,
        tmp,
        &WebOptions {
            extra_toml: format!(
                "[portal]\nrelying_party_uuid = \"{PORTAL_UUID}\"\nrelying_party_name = \"{PORTAL_NAME}\"\n"
            ),
            ..Default::default()
        },
    );
    let b = Browser::start(DESKTOP).await.unwrap();

    // 1. The portal's login page: QR code and notification form; notification login.
    b.goto(&format!("{}/portal/", web.url)).await.unwrap();
    wait(&b, "#qr").await;
    let text = b.body_text().await.unwrap();
    assert!(text.contains("Log in to the Tandem portal"), "{text}");
    shots(&b, Some("portal-login")).await;
    b.fill("#national_id", MARY.id).await.unwrap();
    b.click("form[action=\"/portal/login/notify\"] button[type=submit]")
        .await
        .unwrap();
    let vc = wait(&b, "#vc").await.text().await.unwrap();
    let pending = pending_line(&phone, "  Auth  ");
    assert!(pending.contains(PORTAL_NAME), "{pending}");
    assert!(pending.contains(&format!("code {vc}")), "{pending} vs {vc}");
    let tx = pending.split_whitespace().next().unwrap().to_owned();
    let out = phone.run(&["confirm", &tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");

    // 2. The overview (the page moved on by itself): holder, keys, certificates with OCSP.
    let name = wait(&b, "#holder-name").await;
    assert_eq!(name.text().await.unwrap(), "MARY TESTNUMBER");
    let id = b.find("#holder-id").await.unwrap().text().await.unwrap();
    assert_eq!(id, format!("PNOEE-{}", MARY.id));
    for key in ["auth", "sign"] {
        b.find(&format!("li[data-key=\"{key}\"][data-status=\"active\"]"))
            .await
            .unwrap();
    }
    let good = b
        .client()
        .find_all(thirtyfour::By::Css("dl.cert [data-ocsp=\"good\"]"))
        .await
        .unwrap();
    assert_eq!(good.len(), 2, "both certificates good by OCSP");
    let text = b.body_text().await.unwrap();
    assert!(text.contains(&doc), "{text}");
    assert!(
        text.contains("Recent transactions") && text.contains(PORTAL_NAME),
        "{text}"
    );
    shots(&b, None).await;
    // The certificates as PEM downloads (kept for the OCSP check at the end).
    let serials: Vec<String> = {
        let mut v = Vec::new();
        for dl in b
            .client()
            .find_all(thirtyfour::By::Css("dl.cert"))
            .await
            .unwrap()
        {
            v.push(dl.attr("data-serial").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(serials.len(), 2);
    b.click("dl.cert[data-purpose=\"sign\"] dd.download a")
        .await
        .unwrap();
    let pem_file = b.wait_for_download("-sign.pem", WAIT).await.unwrap();
    assert_eq!(
        pem_file.file_name().unwrap().to_str().unwrap(),
        format!("{doc}-sign.pem")
    );
    let pem = std::fs::read_to_string(&pem_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");

    // 3. The bank is a separate login: its page shows the login, not the account.
    b.goto(&format!("{}/bank/", web.url)).await.unwrap();
    wait(&b, "#qr").await;
    assert!(b.url().await.unwrap().ends_with("/bank/"));
    //    A Web2App login: the phone opens the link, confirms, and the browser comes back
    //    through the callback URL the app gives: logged in to the bank.
    let link = b
        .find("#web2app")
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let out = phone.run(&["scan", &link], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    let callback = field(&out, "callback:").to_owned();
    assert!(
        callback.starts_with(&format!("{}/bank/login/callback?value=", web.url)),
        "{callback}"
    );
    b.goto(&callback).await.unwrap();
    let who = wait(&b, "#person-name").await;
    assert_eq!(who.text().await.unwrap(), "MARY TESTNUMBER");
    //    The same callback URL a second time is not checked again (accepted once): the
    //    logged-in person just sees the account.
    b.goto(&callback).await.unwrap();
    wait(&b, "#person-name").await;
    assert!(b.url().await.unwrap().ends_with("/bank/account"));

    // 4. Three wrong PIN2 on a signature session lock the SIGN key.
    let file = tmp.join("contract.txt");
    std::fs::write(&file, "contract").unwrap();
    let signer = {
        let server_doc = doc.clone();
        let file = file.clone();
        let api = format!("{}/v3", server.rest_url);
        let trust = server.data_dir.clone();
        std::thread::spawn(move || {
            tandem_env(
                &[
                    "rp-api",
                    "--api",
                    &api,
                    "--trust",
                    trust.to_str().unwrap(),
                    "--tls-ca",
                    trust.join("tls/server.crt").to_str().unwrap(),
                    "sign",
                    "--document",
                    &server_doc,
                    "--file",
                    file.to_str().unwrap(),
                    "--hash",
                    "SHA-256",
                ],
                &[("TANDEM_RP_UUID", RP_UUID), ("TANDEM_RP_NAME", RP_NAME)],
            )
        })
    };
    let mut pending = None;
    for _ in 0..100 {
        let out = phone.run(&["pending"], &[]);
        pending = out
            .lines()
            .find(|l| l.contains("  Sign  "))
            .map(str::to_owned);
        if pending.is_some() || signer.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(pending) = pending else {
        panic!(
            "no pending signature; rp-api sign: {:?}",
            signer.join().unwrap()
        );
    };
    let tx = pending.split_whitespace().next().unwrap().to_owned();
    for n in 1..=3 {
        let out = phone_try(&server, &phone, &["confirm", &tx], "99999");
        assert!(!out.contains("ACCEPTED"), "attempt {n}: {out}");
    }
    let locked_at = unix_now();
    assert!(signer.join().unwrap().is_err(), "the signature failed");
    b.goto(&format!("{}/portal/overview", web.url))
        .await
        .unwrap();
    let sign = wait(&b, "li[data-key=\"sign\"][data-status=\"locked\"]").await;
    assert!(sign.text().await.unwrap().contains("locked until"));
    let until = b
        .find("li[data-key=\"sign\"] time")
        .await
        .unwrap()
        .attr("datetime")
        .await
        .unwrap()
        .unwrap();
    let until = until
        .parse::<tandem_rp::report::UtcTime>()
        .unwrap()
        .unix_secs();
    let expected = locked_at + LOCK_SECONDS as u64;
    assert!(
        until + 30 >= expected && until <= expected + 1,
        "locked until {until}, expected about {expected}"
    );
    b.find("li[data-key=\"auth\"][data-status=\"active\"]")
        .await
        .unwrap();
    shots(&b, Some("portal-overview-locked")).await;

    // 5. Deletion: the page naming the account, the checkbox, the button, the phone.
    b.click(&format!("a[href=\"/portal/delete?account={doc}\"]"))
        .await
        .unwrap();
    let named = wait(&b, "#delete-account").await;
    assert_eq!(named.text().await.unwrap(), doc);
    assert!(b.body_text().await.unwrap().contains("cannot be undone"));
    shots(&b, Some("portal-delete")).await;
    b.click("#understand").await.unwrap();
    b.click("#delete-button").await.unwrap();
    let vc = wait(&b, "#vc").await.text().await.unwrap();
    let pending = pending_line(&phone, "Delete account");
    assert!(
        pending.contains(&format!("Delete account {doc}")),
        "{pending}"
    );
    assert!(pending.contains(&format!("code {vc}")), "{pending} vs {vc}");
    let tx = pending.split_whitespace().next().unwrap().to_owned();
    let out = phone.run(&["confirm", &tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    let deleted = wait(&b, "#deleted-account").await;
    assert_eq!(deleted.text().await.unwrap(), doc);
    let mut revoked: Vec<String> = Vec::new();
    for li in b
        .client()
        .find_all(thirtyfour::By::Css("#revoked-serials li"))
        .await
        .unwrap()
    {
        revoked.push(li.text().await.unwrap());
    }
    let mut listed = serials.clone();
    listed.sort();
    revoked.sort();
    assert_eq!(revoked, listed);
    shots(&b, Some("portal-deleted")).await;

    // 6. The operator sees it deleted; OCSP (asked by openssl) says revoked.
    let accounts = server.operator(&["accounts"]).unwrap();
    let line = accounts.lines().find(|l| l.starts_with(&doc)).unwrap();
    assert!(line.contains("Deleted"), "{accounts}");
    let dir = tmp.join("ca");
    server
        .operator(&["export-ca", "--out", dir.to_str().unwrap()])
        .unwrap();
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let issuing = std::fs::read_to_string(dir.join("issuing.pem")).unwrap();
    std::fs::write(dir.join("chain.pem"), format!("{issuing}{root}")).unwrap();
    std::fs::write(dir.join("sign.pem"), &pem).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            "sign.pem",
            "-url",
            &format!("{}/ocsp", server.http_url),
            "-CAfile",
            "chain.pem",
            "-nonce",
        ],
    );
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": revoked"), "{out}");

    // 7. Logout leaves the portal (after the deletion the holder may have no portal
    //    session left: then the overview already says so); either way the login page.
    b.goto(&format!("{}/portal/overview", web.url))
        .await
        .unwrap();
    if let Ok(button) = b.find("form[action=\"/portal/logout\"] button").await {
        button.click().await.unwrap();
        let notice = wait(&b, "#notice").await;
        assert_eq!(notice.text().await.unwrap(), "You are logged out.");
        b.goto(&format!("{}/portal/overview", web.url))
            .await
            .unwrap();
    }
    wait(&b, "form[action=\"/portal/login/notify\"]").await;

    // 8. A session that is no longer valid (expired after 15 min, or a restart): the
    //    portal's page goes back to the login page and says so.
    let mut stale = thirtyfour::Cookie::new(tandem_tests::web::COOKIE, "ab".repeat(32));
    stale.set_path("/");
    stale.set_secure(true);
    b.client().add_cookie(stale).await.unwrap();
    b.goto(&format!("{}/portal/overview", web.url))
        .await
        .unwrap();
    let notice = wait(&b, "#notice").await;
    assert_eq!(
        notice.text().await.unwrap(),
        "Your session has expired. Please log in again."
    );
    assert!(b.url().await.unwrap().ends_with("/portal/"));
    b.quit().await.unwrap();
}
