//! The one page layout: skip link, header with the three areas and the language switch,
//! main content, footer. Markup is built with `maud`, which escapes every interpolated value.

use maud::{DOCTYPE, Markup, html};

use crate::i18n::{Lang, Msg};
use crate::security::csrf::FIELD as CSRF_FIELD;

/// The area a page belongs to (highlighted in the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Bank,
    Portal,
    Verify,
    None,
}

/// What the layout needs to know about a page.
#[derive(Debug, Clone)]
pub struct PageCtx<'a> {
    pub lang: Lang,
    pub area: Area,
    /// The page's own path (the language switch comes back to it).
    pub path: &'a str,
    /// Extra script (a path under `/static/`), if the page updates itself.
    pub script: Option<&'a str>,
}

/// A whole HTML page.
pub fn page(ctx: &PageCtx<'_>, title: &str, content: Markup) -> Markup {
    let l = ctx.lang;
    let areas = [
        (Area::Bank, "/bank/", Msg::AreaBank),
        (Area::Portal, "/portal/", Msg::AreaPortal),
        (Area::Verify, "/verify/", Msg::AreaVerify),
    ];
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Tandem" }
                link rel="stylesheet" href="/static/style.css";
                @if let Some(s) = ctx.script {
                    script src=(s) defer {}
                }
            }
            body {
                a class="skip" href="#main" { (Msg::SkipToContent.text(l)) }
                header class="top" {
                    nav aria-label="Tandem" {
                        ul class="areas" {
                            @for (area, href, name) in areas {
                                li {
                                    @if area == ctx.area {
                                        a href=(href) aria-current="page" { (name.text(l)) }
                                    } @else {
                                        a href=(href) { (name.text(l)) }
                                    }
                                }
                            }
                        }
                    }
                    nav class="lang" aria-label=(Msg::LanguageSwitch.text(l)) {
                        @for other in [Lang::De, Lang::En] {
                            @if other == l {
                                span aria-current="true" { (other.code().to_uppercase()) }
                            } @else {
                                a href={ "/lang/" (other.code()) "?back=" (ctx.path) } hreflang=(other.code()) lang=(other.code()) {
                                    (other.code().to_uppercase())
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (content) }
                footer { p { (Msg::Footer.text(l)) } }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_nothing_inline_is_emitted() {
        let ctx = PageCtx {
            lang: Lang::En,
            area: Area::Bank,
            path: "/bank/\"><script>",
            script: Some("/static/login.js"),
        };
        let s = page(&ctx, "<b>x</b>", html! { p { ("<img src=x>") } }).into_string();
        assert!(!s.contains("<script>"), "{s}");
        assert!(!s.contains("<img src=x"), "{s}");
        assert!(s.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!s.contains("style="), "no inline style: {s}");
        let handler = s.match_indices(" on").any(|(i, _)| {
            let rest = &s[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "no inline event handlers: {s}");
        assert!(s.contains("<script src=\"/static/login.js\" defer></script>"));
        assert!(s.contains("href=\"/lang/de?back=/bank/&quot;&gt;&lt;script&gt;\""));
    }
}
