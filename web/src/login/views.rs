//! The login's pages in every area (markup only; handlers in `handlers.rs`). The script
//! (`/static/login.js`) reads its URLs from the page's `data-*` attributes.

use axum::response::Response;
use maud::{Markup, html};

use super::LoginArea;
use super::state::Failure;
use crate::i18n::{Lang, Msg};
use crate::layout::{PageCtx, csrf_field, page};

/// What the login page shows.
#[derive(Debug)]
pub struct LoginView<'a> {
    /// Whose login.
    pub area: LoginArea,
    /// A note above the page (e.g. the session expired).
    pub notice: Option<&'a str>,
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

fn ctx(area: LoginArea, lang: Lang, path: &str, script: bool) -> PageCtx<'_> {
    PageCtx {
        lang,
        area: area.layout_area(),
        path,
        script: script.then_some("/static/login.js"),
    }
}

fn title(area: LoginArea, lang: Lang) -> &'static str {
    match area {
        LoginArea::Bank => Msg::BankTitle.text(lang),
        LoginArea::Portal => crate::portal::texts::T::Title.text(lang),
    }
}

fn heading(area: LoginArea, lang: Lang) -> &'static str {
    match area {
        LoginArea::Bank => Msg::LoginHeading.text(lang),
        LoginArea::Portal => crate::portal::texts::T::LoginHeading.text(lang),
    }
}

/// `/{area}/`: QR code, Web2App link, notification form.
pub fn login(lang: Lang, csrf: &str, v: &LoginView<'_>) -> Markup {
    let l = lang;
    let t = |m: Msg| m.text(l);
    let area = v.area;
    let status_url = area.path("status");
    let qr_url = area.path("qr.png");
    let done = area.done_path();
    page(
        &ctx(area, lang, area.home(), v.qr),
        title(area, l),
        html! {
            h1 { (heading(area, l)) }
            @if let Some(n) = v.notice {
                p class="notice" role="status" id="notice" { (n) }
            }
            div class="cards" id=[v.qr.then_some("login")] data-status=(status_url) data-qr=(qr_url) {
                section class="card" aria-labelledby="qr-h" {
                    h2 id="qr-h" { (t(Msg::QrHeading)) }
                    @if let Some(f) = v.qr_failure {
                        p class="error" role="alert" { (f.message().text(l)) }
                        a class="button" href=(area.home()) { (t(Msg::TryAgain)) }
                    } @else if v.qr {
                        p { (t(Msg::QrHelp)) }
                        img id="qr" class="qr" src={ (qr_url) "?n=0" } alt=(t(Msg::QrAlt)) width="366" height="366";
                        p id="status" class="status" role="status" aria-live="polite" {}
                        noscript { p class="hint" { (t(Msg::QrNoScript)) } }
                        a class="button secondary" href=(area.home()) { (t(Msg::QrReload)) }
                        " "
                        a class="button secondary" href=(done) { (t(Msg::Continue)) }
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
                    form method="post" action=(area.path("notify")) {
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

/// `/{area}/login/wait`: the verification code while the phone confirms.
pub fn wait(area: LoginArea, lang: Lang, vc: &str) -> Markup {
    let path = area.path("wait");
    let status = area.path("status");
    wait_page(
        lang,
        &WaitView {
            area,
            path: &path,
            status: &status,
            vc,
            done: area.done_path(),
            cancel: area.home(),
            lead: None,
        },
    )
}

/// A page showing a verification code while it follows a session (`login.js`).
#[derive(Debug)]
pub struct WaitView<'a> {
    /// The area.
    pub area: LoginArea,
    /// The page's path.
    pub path: &'a str,
    /// The long-poll status URL.
    pub status: &'a str,
    /// The verification code.
    pub vc: &'a str,
    /// Where "Continue" goes.
    pub done: &'a str,
    /// Where "Cancel" goes.
    pub cancel: &'a str,
    /// A line above the code, if any.
    pub lead: Option<&'a str>,
}

/// The login's wait page, and the portal's confirmation of a deletion.
pub fn wait_page(lang: Lang, v: &WaitView<'_>) -> Markup {
    let t = |m: Msg| m.text(lang);
    let (vc, done, cancel) = (v.vc, v.done, v.cancel);
    page(
        &ctx(v.area, lang, v.path, true),
        t(Msg::WaitHeading),
        html! {
            h1 { (t(Msg::WaitHeading)) }
            section class="card" id="login" data-status=(v.status) {
                @if let Some(lead) = v.lead {
                    p id="wait-lead" { (lead) }
                }
                p { (t(Msg::WaitVcLabel)) ":" }
                p class="vc" id="vc" { (vc) }
                p { (t(Msg::WaitHelp)) }
                p id="status" class="status" role="status" aria-live="polite" { (t(Msg::Waiting)) }
                a class="button secondary" href=(done) { (t(Msg::Continue)) }
                " "
                a class="button secondary" href=(cancel) { (t(Msg::Cancel)) }
            }
        },
    )
}

/// A failed login, with a way to try again.
pub fn failed(area: LoginArea, lang: Lang, f: Failure) -> Markup {
    let t = |m: Msg| m.text(lang);
    page(
        &ctx(area, lang, area.home(), false),
        t(Msg::FailedHeading),
        html! {
            h1 { (t(Msg::FailedHeading)) }
            p class="error" role="alert" data-failure=(f.code()) { (f.message().text(lang)) }
            a class="button" href=(area.home()) { (t(Msg::TryAgain)) }
        },
    )
}

/// The area has no relying party configured.
pub fn not_configured(area: LoginArea, lang: Lang) -> Response {
    match area {
        LoginArea::Portal => crate::portal::views::not_configured(lang),
        LoginArea::Bank => crate::pages::not_found(lang),
    }
}
