//! The report as a PDF file (A4): the same three parts, texts and labelled colours as the
//! HTML page ([`super::html`]), written without a PDF library.
//!
//! The standard fonts (Helvetica, Helvetica-Bold, Courier, ZapfDingbats) in
//! WinAnsiEncoding carry German umlauts, ß and „quotes“; characters outside Windows-1252
//! (e.g. Cyrillic names) are shown as `?` (JSON and HTML keep them). Text is wrapped by the
//! fonts' measured widths, long document lists continue on further pages under a repeated
//! table head, and every page shows "page n of m".

mod font;
mod layout;

use font::Font;
use layout::{Cell, Frame, MARGIN, PAGE_WIDTH, Pages, write_file};

use super::model::{
    Document, DocumentRole, ProofOfOrigin, SignatureResult, TransmissionPath, VerificationReport,
};
use super::texts::{self, Label, Lang};

/// Body text size in points.
const BODY: f32 = 9.5;
/// Small text size in points.
const SMALL: f32 = 8.0;

/// The width between the margins.
fn content_width() -> f32 {
    PAGE_WIDTH - 2.0 * MARGIN
}

/// The report as a PDF file in `lang`.
pub fn render(report: &VerificationReport, lang: Lang) -> Vec<u8> {
    let mut pages = Pages::new();
    pages.heading(Label::Title.text(lang), 18.0, false);
    pages.skip(4.0);
    header(&mut pages, report, lang);
    proof(&mut pages, &report.proof_of_origin, lang);
    documents(&mut pages, report, lang);
    pages.skip(8.0);
    pages.row(
        vec![(
            MARGIN,
            Cell::new(content_width()).text(Font::Regular, SMALL, Label::Legend.text(lang)),
        )],
        Frame::None,
    );
    let title = Label::Title.text(lang);
    let streams = pages.finish(|n, m| format!("{title} · {}", texts::page_of(n, m, lang)));
    let created = report
        .header
        .created_at
        .to_string()
        .replace(['-', ':', 'T'], "");
    write_file(&streams, title, &created)
}

/// A label and value row of a two-column table.
fn key_value(pages: &mut Pages, label: Label, value: Cell, lang: Lang) {
    let label_width = content_width() * 0.35;
    pages.row(
        vec![
            (
                MARGIN,
                Cell::new(label_width).text(Font::Bold, BODY, label.text(lang)),
            ),
            (MARGIN + label_width, value),
        ],
        Frame::Boxed,
    );
}

/// A value cell of a two-column table.
fn value_cell() -> Cell {
    Cell::new(content_width() * 0.65)
}

fn text_row(pages: &mut Pages, label: Label, value: &str, lang: Lang) {
    key_value(
        pages,
        label,
        value_cell().text(Font::Regular, BODY, value),
        lang,
    );
}

fn header(pages: &mut Pages, report: &VerificationReport, lang: Lang) {
    let h = &report.header;
    pages.heading(Label::HeaderSection.text(lang), 13.0, true);
    text_row(pages, Label::IssuingSystem, &h.issuing_system, lang);
    text_row(pages, Label::CreatedAt, &h.created_at.display(lang), lang);
    if let Some(m) = &h.message {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
        text_row(
            pages,
            Label::SenderReference,
            &or_dash(&m.sender_reference),
            lang,
        );
        text_row(
            pages,
            Label::RecipientReference,
            &or_dash(&m.recipient_reference),
            lang,
        );
        text_row(pages, Label::MessageId, &m.message_id, lang);
    }
    for (label, party) in [(Label::Sender, &h.sender), (Label::Recipient, &h.recipient)] {
        let text = match party {
            Some(p) => format!(
                "{} ({}: {})",
                p.name,
                Label::Identifier.text(lang),
                p.identifier
            ),
            None => Label::Unknown.text(lang).to_owned(),
        };
        text_row(pages, label, &text, lang);
    }
}

fn proof(pages: &mut Pages, proof: &ProofOfOrigin, lang: Lang) {
    pages.skip(10.0);
    pages.heading(Label::ProofSection.text(lang), 13.0, true);
    let ca = match proof {
        ProofOfOrigin::Checked { ca, .. } => ca.clone(),
        ProofOfOrigin::UnknownCa { ca: Some(ca) } => ca.clone(),
        _ => Label::Unknown.text(lang).to_owned(),
    };
    text_row(pages, Label::ProofCa, &ca, lang);
    let check = match proof.colour() {
        Some(c) => value_cell().badge(Some(c), texts::colour_label(c, lang)),
        None => value_cell().badge(None, Label::NoCheck.text(lang)),
    };
    key_value(pages, Label::ProofCheck, check, lang);
    let path = match proof.transmission_path() {
        TransmissionPath::Secure => Label::Yes,
        TransmissionPath::NotConfirmed => Label::NotConfirmed,
        TransmissionPath::NotSecure => Label::No,
    };
    text_row(pages, Label::SecurePath, path.text(lang), lang);
    pages.skip(6.0);
    let mut note =
        Cell::new(content_width()).text(Font::Bold, BODY, texts::proof_message(proof, lang));
    if let Some(detail) = texts::proof_detail(proof, lang) {
        note = note.text(Font::Regular, BODY, detail);
    }
    pages.row(vec![(MARGIN, note)], Frame::Boxed);
}

/// The documents table's columns: x and width of document, signature, properties, result.
fn columns() -> [(f32, f32); 4] {
    let w = content_width();
    let widths = [0.24 * w, 0.24 * w, 0.22 * w, 0.30 * w];
    let mut x = MARGIN;
    widths.map(|width| {
        let column = (x, width);
        x += width;
        column
    })
}

fn documents(pages: &mut Pages, report: &VerificationReport, lang: Lang) {
    pages.skip(10.0);
    pages.heading(Label::DocumentsSection.text(lang), 13.0, true);
    let note = report.summary_note(lang);
    let mut cell = Cell::new(content_width());
    cell = match report.signature_colours().max() {
        Some(c) => cell.badge(Some(c), texts::colour_label(c, lang)),
        None => cell.badge(None, Label::NotSigned.text(lang)),
    };
    cell = cell
        .gap()
        .text(Font::Bold, BODY, &note.signatures)
        .gap()
        .text(Font::Regular, BODY, &note.submission);
    if let Some(remark) = &note.remark {
        cell = cell.gap().text(Font::Regular, BODY, remark);
    }
    pages.row(vec![(MARGIN, cell)], Frame::Boxed);
    pages.skip(8.0);
    let head: Vec<(f32, Cell)> = columns()
        .iter()
        .zip([
            Label::ColDocument,
            Label::ColSignature,
            Label::ColProperties,
            Label::ColResult,
        ])
        .map(|(&(x, w), label)| (x, Cell::new(w).text(Font::Bold, BODY, label.text(lang))))
        .collect();
    pages.start_table(head, Frame::Shaded, 120.0);
    for doc in &report.documents {
        document(pages, doc, lang);
    }
    pages.end_table();
}

fn document(pages: &mut Pages, doc: &Document, lang: Lang) {
    let [c_doc, c_sig, c_prop, c_res] = columns();
    let role = match doc.role {
        DocumentRole::MainDocument => Label::MainDocument,
        DocumentRole::Attachment => Label::Attachment,
    };
    let name = Cell::new(c_doc.1).text(Font::Bold, BODY, &doc.name).text(
        Font::Regular,
        SMALL,
        role.text(lang),
    );
    if doc.signatures.is_empty() {
        pages.row(
            vec![
                (c_doc.0, name),
                (c_sig.0, Cell::new(c_sig.1).text(Font::Regular, BODY, "—")),
                (c_prop.0, Cell::new(c_prop.1).text(Font::Regular, BODY, "—")),
                (
                    c_res.0,
                    Cell::new(c_res.1).badge(None, Label::NotSigned.text(lang)),
                ),
            ],
            Frame::Boxed,
        );
        return;
    }
    for (i, sig) in doc.signatures.iter().enumerate() {
        let first = if i == 0 {
            name.clone()
        } else {
            Cell::new(c_doc.1)
        };
        let [s, p, r] = signature(sig, [c_sig.1, c_prop.1, c_res.1], lang);
        pages.row(
            vec![(c_doc.0, first), (c_sig.0, s), (c_prop.0, p), (c_res.0, r)],
            Frame::Boxed,
        );
    }
}

/// The signature, properties and result cells of one signature.
fn signature(sig: &SignatureResult, widths: [f32; 3], lang: Lang) -> [Cell; 3] {
    let signer = sig
        .signer_name
        .as_deref()
        .unwrap_or(Label::Unknown.text(lang));
    let time = texts::signing_time_text(sig.signing_time.as_ref(), lang);
    let who =
        Cell::new(widths[0])
            .text(Font::Regular, BODY, signer)
            .text(Font::Regular, SMALL, &time);
    let properties = Cell::new(widths[1])
        .text(Font::Regular, BODY, texts::level_name(sig.level, lang))
        .text(Font::Regular, BODY, &sig.format.to_string());
    let colour = sig.status.colour();
    let mut result = Cell::new(widths[2])
        .badge(Some(colour), texts::colour_label(colour, lang))
        .fitted(Font::Mono, SMALL, sig.status.indication().etsi_name());
    if let Some(sub) = sig.status.sub_indication() {
        result = result.fitted(Font::Mono, SMALL, sub.etsi_name()).text(
            Font::Regular,
            SMALL,
            texts::explain(sub, lang),
        );
    }
    result = result.text(
        Font::Regular,
        SMALL,
        &format!(
            "{}: {}",
            Label::CheckedAt.text(lang),
            sig.checked_at.display(lang)
        ),
    );
    [who, properties, result]
}

#[cfg(test)]
mod tests {
    use super::font::{Font, encode};
    use super::layout::{escape, wrap};

    #[test]
    fn winansi_and_escapes() {
        assert_eq!(encode("Äöüß„“–—€"), b"\xC4\xF6\xFC\xDF\x84\x93\x96\x97\x80");
        assert_eq!(encode("a\nб\u{7}"), b"a ? ");
        assert_eq!(escape(b"(a)\\\xFC"), "\\(a\\)\\\\\\374");
    }

    #[test]
    fn wrap_keeps_every_character_and_the_width() {
        let text = encode(&format!(
            "Prüfprotokoll {} mit Umlauten äöü",
            "W".repeat(80)
        ));
        for width in [40.0, 100.0, 300.0] {
            let lines = wrap(&text, Font::Bold, 9.5, width);
            assert!(lines.len() > 1);
            for line in &lines {
                assert!(Font::Bold.width(line, 9.5) <= width, "{line:?}");
            }
            let joined: Vec<u8> = lines.concat();
            let plain: Vec<u8> = text.iter().copied().filter(|&b| b != b' ').collect();
            assert_eq!(joined.iter().filter(|&&b| b != b' ').count(), plain.len());
        }
        assert_eq!(wrap(b"", Font::Regular, 9.5, 50.0), vec![Vec::<u8>::new()]);
    }
}
