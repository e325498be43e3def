//! The Demo Bank's login failures in a real browser (Chromium): each end result a person can
//! meet gets its own message and a way to try again — refused on the phone, no answer before
//! the transaction's time-out, three wrong PINs (the AUTH key locks), and a login with the
//! locked key afterwards. The page follows the session by itself (no reload by the test).

#![allow(clippy::unwrap_used)] // tests

use std::time::Duration;

use tandem_tests::browser::{Browser, DESKTOP};
use tandem_tests::web::{Phone, WebOptions, start_web};
use tandem_tests::*;

/// Starts a notification login for `id` on the login page; returns the verification code.
async fn start_notification(b: &Browser, url: &str, id: &str) -> String {
    b.goto(&format!("{url}/bank/")).await.unwrap();
    b.wait_for("#national_id", Duration::from_secs(10))
        .await
        .unwrap();
    b.fill("#national_id", id).await.unwrap();
    b.click("form button[type=submit]").await.unwrap();
    let vc = b.wait_for("#vc", Duration::from_secs(10)).await.unwrap();
    vc.text().await.unwrap()
}

/// Waits for the failure page and returns its `data-failure` and text; checks the retry.
async fn failure(b: &Browser, timeout: Duration) -> (String, String) {
    let el = b.wait_for("[data-failure]", timeout).await.unwrap();
    let kind = el.attr("data-failure").await.unwrap().unwrap_or_default();
    let retry = b.find("a.button[href='/bank/']").await.unwrap();
    assert!(
        !retry.text().await.unwrap().is_empty(),
        "a way to try again"
    );
    (kind, b.body_text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_login_failure_has_its_message_and_a_retry() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        // Short transactions for the time-out case.
        timeouts: Some(timeouts(600, 12)),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path();
    let phone = Phone::new(&server, tmp.join("phone"));
    phone.register(&MARY, "1234", "12345");
    let web = start_web(&server, tmp, &WebOptions::default());
    let b = Browser::start(DESKTOP).await.unwrap();

    // 1. Refused on the phone.
    let vc = start_notification(&b, &web.url, MARY.id).await;
    let pending = phone.pending_auth();
    assert!(pending.contains(&format!("code {vc}")), "{pending}");
    phone.run(&["refuse", pending.split_whitespace().next().unwrap()], &[]);
    let (kind, text) = failure(&b, Duration::from_secs(10)).await;
    assert_eq!(kind, "user-refused", "{text}");
    b.doc_screenshot("bank-failure-refused-desktop")
        .await
        .unwrap();

    // 2. Try again, and let the transaction time out (12 s here).
    b.click("a.button[href='/bank/']").await.unwrap();
    start_notification(&b, &web.url, MARY.id).await;
    let (kind, text) = failure(&b, Duration::from_secs(40)).await;
    assert_eq!(kind, "timeout", "{text}");

    // 3. Three wrong PINs on one login: the AUTH key locks; the page says so.
    start_notification(&b, &web.url, MARY.id).await;
    let pending = phone.pending_auth();
    let tx = pending.split_whitespace().next().unwrap().to_owned();
    for n in 1..=3 {
        let out = phone.try_run(&["confirm", &tx], &[("TANDEM_PIN", "9999")]);
        let out = out.expect_err("a wrong PIN is refused").to_string();
        assert!(
            out.contains("WRONG_PIN") || out.contains("LOCKED"),
            "attempt {n}: {out}"
        );
    }
    let (kind, text) = failure(&b, Duration::from_secs(20)).await;
    assert_eq!(kind, "account-unusable", "{text}");

    // 4. A new login with the locked key: the locked-key message at once.
    b.goto(&format!("{}/bank/", web.url)).await.unwrap();
    b.wait_for("#national_id", Duration::from_secs(10))
        .await
        .unwrap();
    b.fill("#national_id", MARY.id).await.unwrap();
    b.click("form button[type=submit]").await.unwrap();
    let (kind, text) = failure(&b, Duration::from_secs(10)).await;
    assert_eq!(kind, "account-unusable", "{text}");
    b.doc_screenshot("bank-failure-locked-desktop")
        .await
        .unwrap();
    assert!(!phone.has_pending(), "nothing reached the phone");
    b.quit().await.unwrap();
}
