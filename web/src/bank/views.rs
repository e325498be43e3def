//! The Demo Bank's pages (markup only; handlers in `login.rs` and `account.rs`).

use maud::{Markup, html};

use super::login_state::{Failure, Person};
use crate::i18n::Msg;
use crate::layout::{Area, PageCtx, csrf_field, page};

/// What the login page shows.
#[derive(Debug)]
pub struct LoginView<'a> {
    /// The QR code is available (a device-link login is running).
    pub qr: bool,
    /// The Web2App link, if any.
    pub web2app: Option<&'a str>,
    /// The device-link login could not start.
    pub qr_failure: Option<Failure>,
    /// The notification form's values and whether they were invalid.
    pub country: &'a str,
    pub national_id: &'a str,
    pub form_invalid: bool,
}

fn ctx<'a>(lang: crate::i18n::Lang, path: &'a str, script: bool) -> PageCtx<'a> {
    PageCtx {
        lang,
        area: Area::Bank,
        path,
        script: script.then_some("/static/login.js"),
    }
}

/// `/bank/`: QR code, Web2App link, notification form.
pub fn login(lang: crate::i18n::Lang, csrf: &str, v: &LoginView<'_>) -> Markup {
    let l = lang;
    let t = |m: Msg| m.text(l);
    page(
        &ctx(lang, "/bank/", v.qr),
        t(Msg::BankTitle),
        html! {
            h1 { (t(Msg::LoginHeading)) }
            div class="cards" id=[v.qr.then_some("login")] {
                section class="card" aria-labelledby="qr-h" {
                    h2 id="qr-h" { (t(Msg::QrHeading)) }
                    @if let Some(f) = v.qr_failure {
                        p class="error" role="alert" { (f.message().text(l)) }
                        a class="button" href="/bank/" { (t(Msg::TryAgain)) }
                    } @else if v.qr {
                        p { (t(Msg::QrHelp)) }
                        img id="qr" class="qr" src="/bank/login/qr.png?n=0" alt=(t(Msg::QrAlt)) width="296" height="296";
                        p id="status" class="status" role="status" aria-live="polite" {}
                        noscript { p class="hint" { (t(Msg::QrNoScript)) } }
                        a class="button secondary" href="/bank/" { (t(Msg::QrReload)) }
                        " "
                        a class="button secondary" href="/bank/login/done" { (t(Msg::Continue)) }
                        @if let Some(link) = v.web2app {
                            p {
                                a class="button" id="web2app" href=(link) { (t(Msg::Web2AppButton)) }
                            }
                            p class="hint" { (t(Msg::Web2AppHelp)) }
                        }
                    }
                }
                section class="card" aria-labelledby="notify-h" {
                    h2 id="notify-h" { (t(Msg::NotifyHeading)) }
                    p { (t(Msg::NotifyHelp)) }
                    @if v.form_invalid {
                        p class="error" role="alert" id="notify-error" { (t(Msg::InvalidNationalId)) }
                    }
                    form method="post" action="/bank/login/notify" {
                        (csrf_field(csrf))
                        label for="country" { (t(Msg::Country)) }
                        input type="text" id="country" name="country" value=(v.country)
                            maxlength="2" autocomplete="country" required;
                        label for="national_id" { (t(Msg::NationalId)) }
                        input type="text" id="national_id" name="national_id" value=(v.national_id)
                            maxlength="32" inputmode="numeric" autocomplete="off" required
                            aria-describedby=[v.form_invalid.then_some("notify-error")];
                        div { button type="submit" { (t(Msg::NotifyButton)) } }
                    }
                }
            }
        },
    )
}

/// `/bank/login/wait`: the verification code while the phone confirms.
pub fn wait(lang: crate::i18n::Lang, vc: &str) -> Markup {
    let t = |m: Msg| m.text(lang);
    page(
        &ctx(lang, "/bank/login/wait", true),
        t(Msg::WaitHeading),
        html! {
            h1 { (t(Msg::WaitHeading)) }
            section class="card" id="login" {
                p { (t(Msg::WaitVcLabel)) ":" }
                p class="vc" id="vc" { (vc) }
                p { (t(Msg::WaitHelp)) }
                p id="status" class="status" role="status" aria-live="polite" { (t(Msg::Waiting)) }
                a class="button secondary" href="/bank/login/done" { (t(Msg::Continue)) }
                " "
                a class="button secondary" href="/bank/" { (t(Msg::Cancel)) }
            }
        },
    )
}

/// A failed login, with a way to try again.
pub fn failed(lang: crate::i18n::Lang, f: Failure) -> Markup {
    let t = |m: Msg| m.text(lang);
    page(
        &ctx(lang, "/bank/", false),
        t(Msg::FailedHeading),
        html! {
            h1 { (t(Msg::FailedHeading)) }
            p class="error" role="alert" data-failure=(f.code()) { (f.message().text(lang)) }
            a class="button" href="/bank/" { (t(Msg::TryAgain)) }
        },
    )
}

/// `/bank/account`.
pub fn account(lang: crate::i18n::Lang, csrf: &str, p: &Person) -> Markup {
    let t = |m: Msg| m.text(lang);
    page(
        &ctx(lang, "/bank/account", false),
        t(Msg::AccountHeading),
        html! {
            h1 { (t(Msg::Welcome)) ", " span id="person-name" { (p.name) } }
            section class="card" aria-label=(t(Msg::AccountHeading)) {
                dl class="person" {
                    dt { (t(Msg::Identifier)) }
                    dd id="person-id" { (p.semantics_identifier) }
                    @if let Some(d) = &p.document_number {
                        dt { (t(Msg::DocumentNumber)) }
                        dd id="person-doc" { (d) }
                    }
                }
                form method="post" action="/bank/logout" {
                    (csrf_field(csrf))
                    button type="submit" { (t(Msg::Logout)) }
                }
            }
        },
    )
}
