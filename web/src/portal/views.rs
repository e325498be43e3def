//! The portal's pages (markup only). Times are shown in UTC on the server and turned into
//! the browser's local time by `/static/portal.js` (`<time datetime=… data-local>`).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse as _, Response};
use maud::{Markup, html};
use tandem_rp::api::portal::{
    AccountDeleted, AccountState, CertificateLevel, Holder, KeyPurpose, KeyStatus, PortalAccount,
    PortalOverview, PortalTransaction, TransactionKind,
};
use tandem_rp::report::{Lang as ReportLang, UtcTime};

use super::overview::OcspView;
use super::texts::T;
use crate::i18n::{Lang, Msg};
use crate::layout::{Area, PageCtx, csrf_field, page};

const SCRIPT: &str = "/static/portal.js";

fn ctx(lang: Lang, path: &str) -> PageCtx<'_> {
    PageCtx {
        lang,
        area: Area::Portal,
        path,
        script: Some(SCRIPT),
    }
}

fn report_lang(l: Lang) -> ReportLang {
    match l {
        Lang::De => ReportLang::De,
        Lang::En => ReportLang::En,
    }
}

/// A time: UTC text, local time by the script.
fn time(t: &UtcTime, lang: Lang) -> Markup {
    html! { time datetime=(t.to_string()) data-local { (t.display(report_lang(lang))) } }
}

/// The page saying the portal is not configured.
pub fn not_configured(lang: Lang) -> Response {
    let body = page(
        &ctx(lang, "/portal/"),
        T::Title.text(lang),
        html! {
            h1 { (T::Title.text(lang)) }
            p class="notice" id="not-configured" { (T::NotConfigured.text(lang)) }
        },
    );
    Html(body.into_string()).into_response()
}

/// An error page inside the portal.
pub fn error(lang: Lang, status: StatusCode, text: &str) -> Response {
    let body = page(
        &ctx(lang, "/portal/overview"),
        T::Title.text(lang),
        html! {
            h1 { (T::Title.text(lang)) }
            p class="error" role="alert" { (text) }
            a class="button" href="/portal/overview" { (Msg::TryAgain.text(lang)) }
        },
    );
    (status, Html(body.into_string())).into_response()
}

fn holder_id(h: &Holder) -> String {
    format!("PNO{}-{}", h.country, h.national_identity_number)
}

fn purpose(p: KeyPurpose, lang: Lang) -> &'static str {
    match p {
        KeyPurpose::Auth => T::KeyAuth.text(lang),
        KeyPurpose::Sign => T::KeySign.text(lang),
    }
}

fn purpose_code(p: KeyPurpose) -> &'static str {
    match p {
        KeyPurpose::Auth => "auth",
        KeyPurpose::Sign => "sign",
    }
}

fn ocsp_badge(s: &OcspView, lang: Lang) -> Markup {
    let t = |x: T| x.text(lang);
    html! {
        @match s {
            OcspView::Good => span class="badge ok" data-ocsp=(s.code()) { (t(T::OcspGood)) },
            OcspView::GoodByCrl => span class="badge warn" data-ocsp=(s.code()) { (t(T::OcspGoodCrl)) },
            OcspView::Revoked { at, reason } => span class="badge bad" data-ocsp=(s.code()) {
                (t(T::OcspRevoked)) " (" (at) @if let Some(r) = reason { ", " (r) } ")"
            },
            OcspView::Unknown => span class="badge warn" data-ocsp=(s.code()) { (t(T::OcspUnknown)) },
            OcspView::Unreachable => span class="badge warn" data-ocsp=(s.code()) { (t(T::OcspUnreachable)) },
        }
    }
}

fn account_card(
    lang: Lang,
    a: &PortalAccount,
    ai: usize,
    status: &dyn Fn(usize, usize) -> OcspView,
) -> Markup {
    let t = |x: T| x.text(lang);
    html! {
        section class="card account" aria-labelledby={ "acc-" (ai) } data-account=(a.document_number) {
            h2 id={ "acc-" (ai) } class="doc" { (a.document_number) }
            dl class="person" {
                dt { (t(T::AccountState)) }
                dd { @match a.state { AccountState::Active => span class="badge ok" { (t(T::StateActive)) } } }
                dt { (t(T::Created)) } dd { (time(&a.created, lang)) }
                dt { (t(T::Expires)) } dd { (time(&a.expires, lang)) }
                dt { (t(T::Device)) }
                dd {
                    (t(T::Registered)) " " (time(&a.device.registered, lang)) "; "
                    (t(T::LastUsed)) " "
                    @if let Some(u) = &a.device.last_used { (time(u, lang)) } @else { (t(T::Never)) }
                }
            }
            h3 { (t(T::Keys)) }
            ul class="keys" {
                @for k in &a.keys {
                    li data-key=(purpose_code(k.purpose)) data-status=(match k.status {
                        KeyStatus::Active => "active", KeyStatus::Locked => "locked", KeyStatus::Disabled => "disabled" }) {
                        span class="key-name" { (purpose(k.purpose, lang)) } " "
                        @match k.status {
                            KeyStatus::Active => span class="badge ok" { (t(T::KeyActive)) },
                            KeyStatus::Locked => span class="badge warn" {
                                (t(T::KeyLockedUntil)) " "
                                @if let Some(u) = &k.locked_until { (time(u, lang)) }
                            },
                            KeyStatus::Disabled => span class="badge bad" { (t(T::KeyDisabled)) },
                        }
                        " " span class="hint" { (t(T::WrongPinsLeft)) ": " span class="left" { (k.attempts_left) } }
                    }
                }
            }
            h3 { (t(T::Certificates)) }
            @for (ci, c) in a.certificates.iter().enumerate() {
                @let s = status(ai, ci);
                dl class="cert" data-serial=(c.serial) data-purpose=(purpose_code(c.purpose)) {
                    dt { (t(T::Purpose)) } dd { (purpose(c.purpose, lang)) }
                    dt { (t(T::Level)) } dd { (match c.level { CertificateLevel::Qualified => "QUALIFIED", CertificateLevel::Advanced => "ADVANCED" }) }
                    dt { (t(T::Subject)) } dd class="wrap" { (c.subject) }
                    dt { (t(T::Validity)) } dd { (time(&c.not_before, lang)) " – " (time(&c.not_after, lang)) }
                    dt { (t(T::Serial)) } dd class="wrap mono" { (c.serial) }
                    dt { (t(T::OcspStatus)) } dd { (ocsp_badge(&s, lang)) }
                    dd class="download" {
                        a href={ "/portal/certificate/" (c.serial) } download { (t(T::Download)) }
                    }
                }
            }
            p {
                a class="button danger" href={ "/portal/delete?account=" (a.document_number) } { (t(T::DeleteAccount)) }
            }
        }
    }
}

fn kind(k: TransactionKind, lang: Lang) -> &'static str {
    match k {
        TransactionKind::Authentication => T::KindAuth.text(lang),
        TransactionKind::Signature => T::KindSign.text(lang),
        TransactionKind::CertificateChoice => T::KindCertChoice.text(lang),
    }
}

fn result_name(tx: &PortalTransaction) -> String {
    serde_json::to_value(tx.result)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn transactions(lang: Lang, txs: &[PortalTransaction]) -> Markup {
    let t = |x: T| x.text(lang);
    html! {
        section class="card" aria-labelledby="tx-h" {
            h2 id="tx-h" { (t(T::Transactions)) }
            @if txs.is_empty() {
                p { (t(T::NoTransactions)) }
            } @else {
                table class="stack" id="transactions" {
                    thead { tr {
                        th scope="col" { (t(T::Time)) }
                        th scope="col" { (t(T::RelyingParty)) }
                        th scope="col" { (t(T::Kind)) }
                        th scope="col" { (t(T::Result)) }
                    } }
                    tbody {
                        @for tx in txs {
                            tr {
                                td data-label=(t(T::Time)) { (time(&tx.time, lang)) }
                                td data-label=(t(T::RelyingParty)) { (tx.relying_party_name) }
                                td data-label=(t(T::Kind)) { (kind(tx.kind, lang)) }
                                td data-label=(t(T::Result)) class="mono" { (result_name(tx)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/portal/overview`.
pub fn overview(
    lang: Lang,
    csrf: &str,
    o: &PortalOverview,
    status: &dyn Fn(usize, usize) -> OcspView,
) -> Markup {
    let t = |x: T| x.text(lang);
    let name = format!("{} {}", o.holder.given_name, o.holder.surname);
    page(
        &ctx(lang, "/portal/overview"),
        t(T::OverviewHeading),
        html! {
            h1 { (t(T::OverviewHeading)) }
            section class="card" aria-labelledby="holder-h" {
                h2 id="holder-h" { (t(T::Holder)) }
                dl class="person" {
                    dt { (t(T::Name)) } dd id="holder-name" { (name) }
                    dt { (t(T::Identity)) } dd id="holder-id" { (holder_id(&o.holder)) }
                }
                form method="post" action="/portal/logout" {
                    (csrf_field(csrf))
                    button type="submit" class="secondary" { (t(T::Logout)) }
                }
            }
            nav class="portal-nav" aria-label=(t(T::Title)) {
                a id="nav-rp-certs" href="/portal/certificates" {
                    (super::rp_cert_texts::C::NavLink.text(lang))
                }
            }
            h2 { (t(T::Accounts)) }
            @if o.accounts.is_empty() { p id="no-accounts" { (t(T::NoAccounts)) } }
            @for (ai, a) in o.accounts.iter().enumerate() {
                (account_card(lang, a, ai, status))
            }
            (transactions(lang, &o.transactions))
        },
    )
}

/// `/portal/delete?account=…`: what happens, the checkbox and the button.
pub fn delete_confirm(
    lang: Lang,
    csrf: &str,
    h: &Holder,
    a: &PortalAccount,
    missing_checkbox: bool,
) -> Markup {
    let t = |x: T| x.text(lang);
    page(
        &ctx(lang, "/portal/overview"),
        t(T::DeleteHeading),
        html! {
            h1 { (t(T::DeleteHeading)) }
            section class="card danger-zone" {
                p { (t(T::DeleteWhat)) " " strong id="delete-account" { (a.document_number) }
                    " (" (h.given_name) " " (h.surname) ", " (holder_id(h)) ")." }
                p { (t(T::DeleteEffects)) }
                @if missing_checkbox {
                    p class="error" role="alert" id="delete-error" { (t(T::DeleteNeedsCheckbox)) }
                }
                form method="post" action="/portal/delete" {
                    (csrf_field(csrf))
                    input type="hidden" name="account" value=(a.document_number);
                    p class="check" {
                        input type="checkbox" id="understand" name="understand" value="yes" required
                            aria-describedby=[missing_checkbox.then_some("delete-error")];
                        " "
                        label for="understand" { (t(T::DeleteUnderstand)) }
                    }
                    button type="submit" class="danger" id="delete-button" { (t(T::DeleteButton)) }
                    " "
                    a class="button secondary" href="/portal/overview" { (Msg::Cancel.text(lang)) }
                }
            }
        },
    )
}

/// The deletion's result.
pub fn deleted(lang: Lang, d: &AccountDeleted) -> Markup {
    let t = |x: T| x.text(lang);
    page(
        &ctx(lang, "/portal/overview"),
        t(T::DeletedHeading),
        html! {
            h1 { (t(T::DeletedHeading)) }
            section class="card" {
                p { (t(T::Deleted)) " " strong id="deleted-account" { (d.deleted) } }
                p { (t(T::RevokedSerials)) }
                ul id="revoked-serials" class="mono" {
                    @for s in &d.revoked_certificates { li { (s) } }
                }
                a class="button" href="/portal/overview" { (t(T::BackToOverview)) }
            }
        },
    )
}

/// A deletion that did not happen.
pub fn delete_failed(lang: Lang, message: &str, code: &str) -> Markup {
    let t = |x: T| x.text(lang);
    page(
        &ctx(lang, "/portal/overview"),
        t(T::DeleteFailedHeading),
        html! {
            h1 { (t(T::DeleteFailedHeading)) }
            p class="error" role="alert" data-failure=(code) { (message) }
            a class="button" href="/portal/overview" { (t(T::BackToOverview)) }
        },
    )
}
