//! The Demo Bank's login in a real browser (issue 23's first acceptance item): headless
//! Chromium through chromedriver opens the login page of a real `tandem web` process; the QR
//! code is read from a screenshot, as a phone's camera would read it, and handed to the
//! simulated phone (`tandem device scan`); the page, which follows the session by itself,
//! reaches the logged-in state. A phone-sized window shows the same page without horizontal
//! scrolling, and a notification login shows the verification code the phone displays.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use tandem_tests::browser::{Browser, DESKTOP, PHONE, decode_qr};
use tandem_tests::web::{Phone, WebOptions, start_web};
use tandem_tests::*;

/// Decodes the one QR code of a screenshot.
async fn qr_of_page(b: &Browser) -> String {
    let shot = b.screenshot().await.unwrap();
    let mut codes = decode_qr(&shot).unwrap();
    assert_eq!(codes.len(), 1, "one QR code on the page: {codes:?}");
    codes.remove(0)
}

/// The value of `name` in a device link's query.
fn param<'a>(link: &'a str, name: &str) -> &'a str {
    link.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {link}"))
}

/// Whether the page is wider than the window (horizontal scrolling).
async fn scrolls_sideways(b: &Browser) -> bool {
    let r = b
        .client()
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    r.json().as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_login_from_a_screenshot_in_chromium() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path();
    let phone = Phone::new(&server, tmp.join("phone"));
    let doc = phone.register(&MARY, "1234", "12345");
    // With a TSA, so that the account page shows its signing form (the screenshots).
    let web = start_web(
        &server,
        tmp,
        &WebOptions {
            top_toml: format!("tsa_url = \"{}/tsa\"", server.http_url),
            ..WebOptions::default()
        },
    );

    // 1. Desktop: the login page with its QR code, rebuilt every second.
    let b = Browser::start(DESKTOP).await.unwrap();
    b.goto(&format!("{}/bank/", web.url)).await.unwrap();
    b.wait_for("img#qr", Duration::from_secs(10)).await.unwrap();
    // The script replaces the image every second; give it time to draw the first one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = qr_of_page(&b).await;
    assert!(first.contains("deviceLinkType=QR"), "{first}");
    b.doc_screenshot("bank-login-desktop").await.unwrap();
    // Keyboard: the first Tab reaches the skip link; every visible field has a label.
    b.find("body")
        .await
        .unwrap()
        .send_keys(thirtyfour::Key::Tab + "")
        .await
        .unwrap();
    let focused = b.client().active_element().await.unwrap();
    assert_eq!(focused.class_name().await.unwrap().as_deref(), Some("skip"));
    let unlabelled = b
        .client()
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
             .filter(e => e.labels.length === 0).map(e => e.id || e.name);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        unlabelled.json(),
        &serde_json::json!([]),
        "fields without a label"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let link = qr_of_page(&b).await;
    let (e1, e2): (u64, u64) = (
        param(&first, "elapsedSeconds").parse().unwrap(),
        param(&link, "elapsedSeconds").parse().unwrap(),
    );
    assert!(e2 > e1, "the QR code is rebuilt: {e1} then {e2}");
    assert_ne!(param(&first, "authCode"), param(&link, "authCode"));

    // 2. The phone scans what the screenshot showed and confirms with PIN1; the page moves
    //    on by itself (its status long-poll, then /bank/login/done).
    let out = phone.run(&["scan", &link], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    let confirmed = Instant::now();
    let name = b
        .wait_for("#person-name", Duration::from_secs(10))
        .await
        .unwrap();
    let lag = confirmed.elapsed();
    assert_eq!(name.text().await.unwrap(), "MARY TESTNUMBER");
    assert!(b.url().await.unwrap().ends_with("/bank/account"));
    assert!(b.body_text().await.unwrap().contains(&doc));
    // The issue asks for "within a second"; the status answer's own latency is measured in
    // tests/tests/web.rs and the benchmark. Here the browser also loads two pages.
    assert!(
        lag < Duration::from_secs(3),
        "logged in {lag:?} after the confirmation"
    );
    b.doc_screenshot("bank-account-desktop").await.unwrap();
    b.quit().await.unwrap();

    // 3. Phone-sized window: no sideways scrolling, the QR code still readable; a
    //    notification login shows the code that the phone shows.
    let p = Browser::start(PHONE).await.unwrap();
    p.goto(&format!("{}/bank/", web.url)).await.unwrap();
    p.wait_for("img#qr", Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !scrolls_sideways(&p).await,
        "the login page scrolls sideways at 390 px"
    );
    assert!(qr_of_page(&p).await.contains("deviceLinkType=QR"));
    p.doc_screenshot("bank-login-phone").await.unwrap();
    p.fill("#national_id", MARY.id).await.unwrap();
    p.click("form button[type=submit]").await.unwrap();
    let vc = match p.wait_for("#vc", Duration::from_secs(10)).await {
        Ok(vc) => vc,
        Err(e) => panic!("{e}: {}", p.client().source().await.unwrap_or_default()),
    };
    let vc = vc.text().await.unwrap();
    assert_eq!(vc.len(), 4, "{vc}");
    p.doc_screenshot("bank-vc-phone").await.unwrap();
    let pending = phone.pending_auth();
    assert!(pending.contains(&format!("code {vc}")), "{pending} vs {vc}");
    let tx = pending.split_whitespace().next().unwrap();
    let out = phone.run(&["confirm", tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    p.wait_for("#person-name", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        !scrolls_sideways(&p).await,
        "the account page scrolls sideways"
    );
    p.doc_screenshot("bank-account-phone").await.unwrap();
    p.quit().await.unwrap();
}
