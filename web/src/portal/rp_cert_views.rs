//! The markup of `/portal/certificates`. The dialogs (`<dialog>`) are driven by
//! `/static/rpcerts.js`; without JavaScript, revoke, cancel and redeem are plain forms.

use maud::{Markup, html};
use tandem_rp::api::rp_certs::{
    AdministeredRp, FORBIDDEN_LABEL_CHARS, MAX_LABEL_CHARS, RpCert, RpCertOverview, RpCertState,
};
use tandem_rp::report::{Lang as ReportLang, UtcTime};

use super::rp_cert_texts::C;
use super::rp_certs::{RpCertNote, pending, signature};
use crate::i18n::Lang;
use crate::layout::{Area, PageCtx, csrf_field, page as layout};

/// The state's code (`data-state`, tests) and text.
pub fn state_code(s: RpCertState) -> &'static str {
    match s {
        RpCertState::Queued => "queued",
        RpCertState::Creating => "creating",
        RpCertState::Ready => "ready",
        RpCertState::Revoked => "revoked",
        RpCertState::Expired => "expired",
        RpCertState::Cancelled => "cancelled",
    }
}

fn state_badge(s: RpCertState, lang: Lang) -> Markup {
    let (class, text) = match s {
        RpCertState::Queued => ("badge warn", C::Queued),
        RpCertState::Creating => ("badge warn", C::Creating),
        RpCertState::Ready => ("badge ok", C::Ready),
        RpCertState::Revoked => ("badge bad", C::Revoked),
        RpCertState::Expired => ("badge bad", C::Expired),
        RpCertState::Cancelled => ("badge", C::Cancelled),
    };
    html! {
        span class=(class) {
            @if matches!(s, RpCertState::Queued | RpCertState::Creating) {
                // Drawn, not a glyph: not every system font has U+23F3.
                svg class="hourglass" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" {
                    path fill="currentColor" d="M3 1h10v1.5h-1v2c0 1.7-1.2 2.8-2.6 3.5 1.4.7 2.6 1.8 2.6 3.5v2h1V15H3v-1.5h1v-2c0-1.7 1.2-2.8 2.6-3.5C5.2 7.3 4 6.2 4 4.5v-2H3zm2.5 1.5v2c0 1 .9 1.8 2.5 2.6 1.6-.8 2.5-1.6 2.5-2.6v-2zM8 9.4c-1.6.8-2.5 1.6-2.5 2.1h5c0-.5-.9-1.3-2.5-2.1z" {}
                }
                " "
            }
            (text.text(lang))
        }
    }
}

fn time(t: &UtcTime, lang: Lang) -> Markup {
    let l = match lang {
        Lang::De => ReportLang::De,
        Lang::En => ReportLang::En,
    };
    html! { time datetime=(t.to_string()) data-local { (t.display(l)) } }
}

fn row(lang: Lang, csrf: &str, rp: &AdministeredRp, c: &RpCert) -> Markup {
    let t = |x: C| x.text(lang);
    html! {
        tr data-cert=(c.id) data-state=(state_code(c.state)) {
            td data-th=(t(C::Label)) class="label" { (c.label) }
            td data-th=(t(C::State)) { (state_badge(c.state, lang)) }
            td data-th=(t(C::Serial)) class="serial" { @if let Some(s) = &c.serial_number { (s) } }
            td data-th=(t(C::NotAfter)) { @if let Some(n) = &c.not_after { (time(n, lang)) } }
            td data-th=(t(C::Actions)) class="actions" {
                @match c.state {
                    RpCertState::Ready => {
                        button type="button" class="download" data-rp=(rp.relying_party_uuid) data-id=(c.id) data-label=(c.label) {
                            (t(C::Download))
                        }
                        form method="post" action="/portal/certificates/revoke" class="revoke" {
                            (csrf_field(csrf))
                            input type="hidden" name="rp" value=(rp.relying_party_uuid);
                            input type="hidden" name="id" value=(c.id);
                            button type="submit" class="danger" { (t(C::Revoke)) }
                        }
                    }
                    RpCertState::Queued | RpCertState::Creating => {
                        form method="post" action="/portal/certificates/cancel" class="cancel" {
                            (csrf_field(csrf))
                            input type="hidden" name="rp" value=(rp.relying_party_uuid);
                            input type="hidden" name="id" value=(c.id);
                            button type="submit" class="secondary cancel-x" aria-label=(t(C::Cancel)) title=(t(C::Cancel)) { "✕" }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn rp_card(lang: Lang, csrf: &str, rp: &AdministeredRp) -> Markup {
    let t = |x: C| x.text(lang);
    let id = format!("rp-{}", rp.relying_party_uuid);
    html! {
        section class="card rpc" data-rp=(rp.relying_party_uuid) aria-labelledby=(id) {
            h2 id=(id) { (rp.relying_party_name) }
            p { (t(C::Credits)) ": " strong class="credits" data-credits=(rp.credits) { (rp.credits) } }
            @if rp.certificates.is_empty() {
                p class="none" { (t(C::NoCertificates)) }
            } @else {
                table class="rpc-table" {
                    thead { tr {
                        th scope="col" { (t(C::Label)) } th scope="col" { (t(C::State)) }
                        th scope="col" { (t(C::Serial)) } th scope="col" { (t(C::NotAfter)) }
                        th scope="col" { (t(C::Actions)) }
                    } }
                    tbody { @for c in &rp.certificates { (row(lang, csrf, rp, c)) } }
                }
            }
            button type="button" class="create-open" data-rp=(rp.relying_party_uuid) data-credits=(rp.credits) disabled[rp.credits == 0] {
                (t(C::CreateN)) " (" (rp.credits) " "
                (t(if rp.credits == 1 { C::CreditInButton } else { C::CreditsInButton })) ")"
            }
            h3 { (t(C::Vouchers)) }
            @if !rp.vouchers.is_empty() {
                ul class="vouchers" {
                    @for v in &rp.vouchers {
                        li data-voucher=(v.code) {
                            code { (v.code) } " "
                            form method="post" action="/portal/certificates/redeem" class="inline" {
                                (csrf_field(csrf))
                                input type="hidden" name="rp" value=(rp.relying_party_uuid);
                                input type="hidden" name="code" value=(v.code);
                                button type="submit" class="secondary redeem" { (t(C::Redeem)) }
                            }
                        }
                    }
                }
            }
            form method="post" action="/portal/certificates/redeem" class="redeem-code" {
                (csrf_field(csrf))
                input type="hidden" name="rp" value=(rp.relying_party_uuid);
                label { (t(C::VoucherCode)) " " input type="text" name="code" autocomplete="off" required; }
                " " button type="submit" class="secondary" { (t(C::Redeem)) }
            }
        }
    }
}

/// The messages the script shows, in the page's language (`{c}`: the character, `{n}`: the
/// number of characters).
fn script_texts(lang: Lang) -> Markup {
    use tandem_rp::api::rp_certs::LabelError;
    let e = |x: LabelError| super::rp_cert_texts::label_error(&x, lang);
    let forbidden: String = FORBIDDEN_LABEL_CHARS.iter().collect();
    html! {
        div id="rpc-texts" hidden
            data-forbidden=(forbidden) data-max=(MAX_LABEL_CHARS)
            data-empty=(e(LabelError::Empty))
            data-long=(e(LabelError::TooLong(999_999)).replace("999999", "{n}"))
            data-char=(e(LabelError::Forbidden('$')).replace('$', "{c}"))
            data-tab=(if lang == Lang::De { "Tabulator" } else { "TAB" })
            data-control=(e(LabelError::Control))
            data-pw-short=(C::PasswordShort.text(lang))
            data-pw-mismatch=(C::PasswordMismatch.text(lang))
            data-building=(C::Building.text(lang))
            data-saved=(C::Saved.text(lang))
            data-no-key=(C::NoKey.text(lang))
            data-working=(C::Working.text(lang))
            data-voucher=(C::VoucherShown.text(lang))
            data-failed=(C::Failed.text(lang))
            data-label=(C::Label.text(lang)) {}
    }
}

fn dialogs(lang: Lang) -> Markup {
    let t = |x: C| x.text(lang);
    html! {
        dialog id="create-dialog" aria-labelledby="create-h" {
            h2 id="create-h" { (t(C::CreateN)) }
            form id="create-form" novalidate {
                div id="create-rows" {}
                button type="button" id="add-row" class="secondary" aria-label=(t(C::AddRow)) title=(t(C::AddRow)) { "+" }
                p id="create-error" class="error" role="alert" {}
                p id="create-progress" role="status" {}
                div class="buttons" {
                    button type="submit" id="create-all" { (t(C::CreateAll)) }
                    " " button type="button" class="secondary close" { (t(C::Close)) }
                }
            }
        }
        dialog id="cancel-dialog" aria-labelledby="cancel-q" {
            p id="cancel-q" { (t(C::CancelConfirm)) }
            p id="cancel-result" role="status" hidden { (t(C::VoucherShown)) " " code id="voucher-code" {} }
            p id="cancel-error" class="error" role="alert" {}
            div class="buttons" {
                button type="button" id="cancel-yes" class="danger" { (t(C::CancelYes)) }
                " " button type="button" class="secondary close" { (t(C::Close)) }
            }
        }
        dialog id="revoke-dialog" aria-labelledby="revoke-q" {
            p id="revoke-q" { (t(C::RevokeConfirm)) }
            div class="buttons" {
                button type="button" id="revoke-yes" class="danger" { (t(C::RevokeYes)) }
                " " button type="button" class="secondary close" { (t(C::Close)) }
            }
        }
        dialog id="download-dialog" aria-labelledby="download-h" {
            h2 id="download-h" { (t(C::Download)) " " span id="download-label" {} }
            form id="download-form" novalidate {
                label { (t(C::Password)) input type="password" id="pw1" autocomplete="new-password"; }
                label { (t(C::PasswordAgain)) input type="password" id="pw2" autocomplete="new-password"; }
                p id="download-error" class="error" role="alert" {}
                p id="download-progress" role="status" {}
                div class="buttons" {
                    button type="submit" id="download-go" { (t(C::Download)) }
                    " " button type="button" class="secondary close" { (t(C::Close)) }
                }
            }
        }
    }
}

/// The part the script replaces when the data changes.
pub fn content(lang: Lang, csrf: &str, o: &RpCertOverview) -> Markup {
    html! {
        div id="rp-certs" data-sig=(signature(o)) data-pending=(if pending(o) { "1" } else { "0" }) {
            @if o.relying_parties.is_empty() {
                p id="no-rp" class="notice" { (C::NoRp.text(lang)) }
            }
            @for rp in &o.relying_parties { (rp_card(lang, csrf, rp)) }
        }
    }
}

/// The whole page.
pub fn page(lang: Lang, csrf: &str, o: &RpCertOverview, note: Option<&RpCertNote>) -> Markup {
    let ctx = PageCtx {
        lang,
        area: Area::Portal,
        path: "/portal/certificates",
        script: Some("/static/rpcerts.js"),
    };
    layout(
        &ctx,
        C::Title.text(lang),
        html! {
            script src="/static/rpcert-pki.js" defer {}
            p { a href="/portal/overview" { "← " (super::texts::T::OverviewHeading.text(lang)) } }
            h1 { (C::Title.text(lang)) }
            p class="notice" id="rpc-hint" { (C::Hint.text(lang)) }
            noscript { p class="notice" { (C::NeedsJs.text(lang)) } }
            @if let Some(n) = note {
                @if n.error {
                    p id="rpc-note" class="error" role="alert" { (n.text) }
                } @else {
                    p id="rpc-note" class="notice" role="status" { (n.text) }
                }
            }
            (content(lang, csrf, o))
            (script_texts(lang))
            (dialogs(lang))
        },
    )
}

#[cfg(test)]
mod tests {
    use tandem_rp::api::rp_certs::Voucher;

    use super::*;

    fn cert(id: &str, label: &str, state: RpCertState) -> RpCert {
        let issued = !matches!(state, RpCertState::Queued | RpCertState::Creating);
        RpCert {
            id: id.into(),
            label: label.into(),
            state,
            queued: UtcTime::from_unix_secs(1_800_000_000).unwrap(),
            serial_number: issued.then(|| "0a1b".into()),
            not_after: issued.then(|| UtcTime::from_unix_secs(1_900_000_000).unwrap()),
            revoked: None,
        }
    }

    fn overview(certs: Vec<RpCert>) -> RpCertOverview {
        RpCertOverview {
            relying_parties: vec![AdministeredRp {
                relying_party_uuid: "22222222-2222-4222-8222-222222222222".into(),
                relying_party_name: "Kanzlei <Müller>".into(),
                credits: 2,
                mtls_required: false,
                vouchers: vec![Voucher {
                    code: "TV-7KQ2-M9XD-4HPA".into(),
                    issued: UtcTime::from_unix_secs(1_800_000_000).unwrap(),
                }],
                certificates: certs,
            }],
        }
    }

    #[test]
    fn states_actions_and_no_inline_code() {
        let o = overview(vec![
            cert("c1", "eins", RpCertState::Creating),
            cert("c2", "zwei\"><b>", RpCertState::Ready),
            cert("c3", "drei", RpCertState::Revoked),
        ]);
        let s = page(Lang::De, "tok", &o, None).into_string();
        assert!(s.contains("data-pending=\"1\""), "{s}");
        assert!(
            s.contains("class=\"hourglass\""),
            "hourglass while creating"
        );
        assert_eq!(
            s.matches("action=\"/portal/certificates/cancel\"").count(),
            1
        );
        assert_eq!(
            s.matches("action=\"/portal/certificates/revoke\"").count(),
            1
        );
        assert_eq!(s.matches("class=\"download\"").count(), 1);
        assert!(s.contains("Kanzlei &lt;Müller&gt;"), "escaped");
        assert!(!s.contains("<b>"), "labels are escaped");
        assert!(
            !s.contains("maxlength"),
            "no maxlength: the message refuses long labels"
        );
        assert!(s.contains("<dialog id=\"cancel-dialog\""));
        assert!(s.contains("TV-7KQ2-M9XD-4HPA"));
        assert!(s.contains("Zertifikate erstellen (2 Guthaben)"), "{s}");
        assert!(!s.contains("style="), "no inline style");
        assert!(!s.contains("<script>"), "no inline script");
        assert!(s.contains("data-tab=\"Tabulator\""));
        assert!(s.contains("data-char=\"Das Zeichen {c} ist"), "{s}");
        // Nothing pending: the page does not poll.
        let done = overview(vec![cert("c2", "zwei", RpCertState::Ready)]);
        let s = page(Lang::En, "tok", &done, None).into_string();
        assert!(s.contains("data-pending=\"0\""));
        assert_ne!(signature(&o), signature(&done));
        let empty = RpCertOverview {
            relying_parties: vec![],
        };
        let s = page(Lang::En, "tok", &empty, None).into_string();
        assert!(s.contains("You administer no relying party."));
    }
}
