//! The Demo Bank's pages (markup only; the login's pages are [`crate::login::views`]).

use maud::{Markup, html};

use crate::i18n::Msg;
use crate::layout::{Area, PageCtx, csrf_field, page};
use crate::login::state::Person;

fn ctx<'a>(lang: crate::i18n::Lang, path: &'a str) -> PageCtx<'a> {
    PageCtx {
        lang,
        area: Area::Bank,
        path,
        script: None,
    }
}

/// `/bank/account`.
pub fn account(lang: crate::i18n::Lang, csrf: &str, p: &Person) -> Markup {
    let t = |m: Msg| m.text(lang);
    page(
        &ctx(lang, "/bank/account"),
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
