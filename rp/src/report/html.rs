//! The report as one self-contained, printable HTML page: inline CSS, no script, no
//! external resource (a Content-Security-Policy forbids them too), every user-provided
//! string escaped, every colour icon paired with a word.

use std::fmt::Write as _;

use super::model::{
    Document, DocumentRole, ProofOfOrigin, SignatureResult, TransmissionPath, VerificationReport,
};
use super::status::Colour;
use super::texts::{self, Label, Lang};

const STYLE: &str = "\
body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:11pt;color:#111;margin:2em;}\
h1{font-size:18pt;margin:0 0 .6em}h2{font-size:13pt;margin:1.4em 0 .5em;border-bottom:1px solid #999}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.35em .5em;\
text-align:left;vertical-align:top}th{background:#eee}table.kv th{width:35%}\
.icon{display:inline-block;width:1.3em;height:1.3em;line-height:1.3em;border-radius:50%;\
text-align:center;font-weight:bold;color:#fff;margin-right:.35em}\
.green .icon{background:#1a7f37}.yellow .icon{background:#d4a000;color:#000}.red .icon{background:#c62828}\
.grey .icon{background:#777}.note{border:1px solid #999;padding:.5em .8em;margin:.5em 0 1em}\
.sub{font-family:monospace;font-size:9pt}.small{font-size:9pt;color:#444}\
@media print{body{margin:0}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The report as an HTML page in `lang`.
pub fn render(report: &VerificationReport, lang: Lang) -> String {
    let mut page = String::new();
    let title = Label::Title.text(lang);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>\n",
        lang.tag()
    );
    page.push_str(&render_sections(report, lang));
    page.push_str("</body></html>\n");
    page
}

/// The report's sections (header, proof of origin, documents, legend) without the page
/// around them and without style: for a page that embeds the report under its own
/// stylesheet (the classes are those of [`render`]'s style: `kv`, `note`, `icon`, `green`,
/// `yellow`, `red`, `grey`, `sub`, `small`).
pub fn render_sections(report: &VerificationReport, lang: Lang) -> String {
    let mut page = String::new();
    header(&mut page, report, lang);
    proof(&mut page, &report.proof_of_origin, lang);
    documents(&mut page, report, lang);
    let _ = writeln!(page, "<p class=\"small\">{}</p>", Label::Legend.text(lang));
    page
}

fn row(page: &mut String, label: Label, value: &str, lang: Lang) {
    let _ = write!(
        page,
        "<tr><th>{}</th><td>{}</td></tr>",
        label.text(lang),
        escape(value)
    );
}

fn header(page: &mut String, report: &VerificationReport, lang: Lang) {
    let h = &report.header;
    let unknown = Label::Unknown.text(lang);
    let _ = write!(
        page,
        "<h2>{}</h2><table class=\"kv\">",
        Label::HeaderSection.text(lang)
    );
    row(page, Label::IssuingSystem, &h.issuing_system, lang);
    row(page, Label::CreatedAt, &h.created_at.display(lang), lang);
    if let Some(m) = &h.message {
        row(
            page,
            Label::SenderReference,
            m.sender_reference.as_deref().unwrap_or("—"),
            lang,
        );
        row(
            page,
            Label::RecipientReference,
            m.recipient_reference.as_deref().unwrap_or("—"),
            lang,
        );
        row(page, Label::MessageId, &m.message_id, lang);
    }
    for (label, party) in [(Label::Sender, &h.sender), (Label::Recipient, &h.recipient)] {
        let text = match party {
            Some(p) => format!(
                "{} ({}: {})",
                p.name,
                Label::Identifier.text(lang),
                p.identifier
            ),
            None => unknown.to_owned(),
        };
        row(page, label, &text, lang);
    }
    page.push_str("</table>\n");
}

/// A coloured icon with its word; the symbol differs per colour as well.
fn badge(colour: Option<Colour>, word: &str) -> String {
    let (class, symbol) = match colour {
        Some(Colour::Green) => ("green", "✓"),
        Some(Colour::Yellow) => ("yellow", "?"),
        Some(Colour::Red) => ("red", "✗"),
        None => ("grey", "–"),
    };
    format!(
        "<span class=\"{class}\"><span class=\"icon\" aria-hidden=\"true\">{symbol}</span>\
         <strong>{}</strong></span>",
        escape(word)
    )
}

fn proof(page: &mut String, proof: &ProofOfOrigin, lang: Lang) {
    let _ = write!(
        page,
        "<h2>{}</h2><table class=\"kv\">",
        Label::ProofSection.text(lang)
    );
    let ca = match proof {
        ProofOfOrigin::Checked { ca, .. } => ca.clone(),
        ProofOfOrigin::UnknownCa { ca: Some(ca) } => ca.clone(),
        _ => Label::Unknown.text(lang).to_owned(),
    };
    row(page, Label::ProofCa, &ca, lang);
    let check = match proof.colour() {
        Some(c) => badge(Some(c), texts::colour_label(c, lang)),
        None => badge(None, Label::NoCheck.text(lang)),
    };
    let _ = write!(
        page,
        "<tr><th>{}</th><td>{check}</td></tr>",
        Label::ProofCheck.text(lang)
    );
    let path = match proof.transmission_path() {
        TransmissionPath::Secure => Label::Yes,
        TransmissionPath::NotConfirmed => Label::NotConfirmed,
        TransmissionPath::NotSecure => Label::No,
    };
    row(page, Label::SecurePath, path.text(lang), lang);
    page.push_str("</table>\n<div class=\"note\"><strong>");
    page.push_str(&escape(texts::proof_message(proof, lang)));
    page.push_str("</strong>");
    if let Some(detail) = texts::proof_detail(proof, lang) {
        let _ = write!(page, "<br>{}", escape(detail));
    }
    page.push_str("</div>\n");
}

fn documents(page: &mut String, report: &VerificationReport, lang: Lang) {
    let note = report.summary_note(lang);
    let worst = report.signature_colours().max();
    let summary_badge = match worst {
        Some(c) => badge(Some(c), texts::colour_label(c, lang)),
        None => badge(None, Label::NotSigned.text(lang)),
    };
    let _ = write!(
        page,
        "<h2>{}</h2><div class=\"note\"><p>{summary_badge}</p><p><strong>{}</strong></p><p>{}</p>",
        Label::DocumentsSection.text(lang),
        escape(&note.signatures),
        escape(&note.submission)
    );
    if let Some(remark) = &note.remark {
        let _ = write!(page, "<p>{}</p>", escape(remark));
    }
    let _ = write!(
        page,
        "</div>\n<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        Label::ColDocument.text(lang),
        Label::ColSignature.text(lang),
        Label::ColProperties.text(lang),
        Label::ColResult.text(lang)
    );
    for doc in &report.documents {
        document(page, doc, lang);
    }
    page.push_str("</tbody></table>\n");
}

fn document(page: &mut String, doc: &Document, lang: Lang) {
    let role = match doc.role {
        DocumentRole::MainDocument => Label::MainDocument,
        DocumentRole::Attachment => Label::Attachment,
    };
    let name_cell = format!(
        "<strong>{}</strong><br><span class=\"small\">{}</span>",
        escape(&doc.name),
        role.text(lang)
    );
    if doc.signatures.is_empty() {
        let _ = write!(
            page,
            "<tr><td>{name_cell}</td><td colspan=\"2\">—</td><td>{}</td></tr>",
            badge(None, Label::NotSigned.text(lang))
        );
        return;
    }
    let rows = doc.signatures.len();
    for (i, sig) in doc.signatures.iter().enumerate() {
        page.push_str("<tr>");
        if i == 0 {
            let _ = write!(page, "<td rowspan=\"{rows}\">{name_cell}</td>");
        }
        signature(page, sig, lang);
        page.push_str("</tr>");
    }
}

fn signature(page: &mut String, sig: &SignatureResult, lang: Lang) {
    let signer = sig
        .signer_name
        .as_deref()
        .unwrap_or(Label::Unknown.text(lang));
    let time = texts::signing_time_text(sig.signing_time.as_ref(), lang);
    let _ = write!(
        page,
        "<td>{}<br><span class=\"small\">{}</span></td><td>{}<br>{}</td>",
        escape(signer),
        escape(&time),
        texts::level_name(sig.level, lang),
        sig.format
    );
    let colour = sig.status.colour();
    let _ = write!(
        page,
        "<td>{}<br><span class=\"sub\">{}",
        badge(Some(colour), texts::colour_label(colour, lang)),
        sig.status.indication().etsi_name()
    );
    if let Some(sub) = sig.status.sub_indication() {
        let _ = write!(
            page,
            " / {}</span><br>{}",
            sub.etsi_name(),
            escape(texts::explain(sub, lang))
        );
    } else {
        page.push_str("</span>");
    }
    let _ = write!(
        page,
        "<br><span class=\"small\">{}: {}</span></td>",
        Label::CheckedAt.text(lang),
        sig.checked_at.display(lang)
    );
}
