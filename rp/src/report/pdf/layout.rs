//! Pages of boxed text rows on A4, and the PDF file around them.
//!
//! Everything on a page is a row of cells: a cell is a list of lines (wrapped text or a
//! colour badge); a row that does not fit the rest of the page moves to the next one, a row
//! taller than a whole page is split between lines. The file is PDF 1.4 with uncompressed
//! content streams and the standard fonts, its cross-reference table built from the byte
//! offsets actually written.

use std::fmt::Write as _;

use super::font::{Font, encode};
use crate::report::status::Colour;

/// A4 width in points.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
/// A4 height in points.
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
/// The left and right margin.
pub(crate) const MARGIN: f32 = 50.0;
/// The space kept free at the foot of a page for the page number.
const FOOT: f32 = 70.0;
/// The padding inside a cell.
const PAD: f32 = 4.0;

/// One line of a cell.
#[derive(Clone, Debug)]
pub(crate) enum Line {
    /// Encoded text in a font and size.
    Text {
        font: Font,
        size: f32,
        text: Vec<u8>,
    },
    /// A filled circle in the result's colour (grey for none) with its word in bold.
    Badge {
        colour: Option<Colour>,
        word: Vec<u8>,
    },
    /// Vertical space between paragraphs.
    Gap,
}

impl Line {
    fn height(&self) -> f32 {
        match self {
            Self::Text { size, .. } => size * 1.3,
            Self::Badge { .. } => 15.0,
            Self::Gap => 4.0,
        }
    }
}

/// A cell's lines, built from text wrapped to the cell's width.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cell {
    lines: Vec<Line>,
    width: f32,
}

impl Cell {
    /// An empty cell `width` points wide (padding included).
    pub(crate) fn new(width: f32) -> Self {
        Self {
            lines: Vec::new(),
            width: width - 2.0 * PAD,
        }
    }

    /// Adds `text`, wrapped at spaces by measured width (a word longer than the cell is
    /// broken between characters).
    pub(crate) fn text(mut self, font: Font, size: f32, text: &str) -> Self {
        for line in wrap(&encode(text), font, size, self.width) {
            self.lines.push(Line::Text {
                font,
                size,
                text: line,
            });
        }
        self
    }

    /// Adds `text` on one line, made smaller (down to 5 points) until it fits.
    pub(crate) fn fitted(self, font: Font, size: f32, text: &str) -> Self {
        let bytes = encode(text);
        let natural = font.width(&bytes, size);
        let size = if natural > self.width {
            (size * self.width / natural).max(5.0)
        } else {
            size
        };
        self.text(font, size, text)
    }

    /// Adds a colour badge with its word.
    pub(crate) fn badge(mut self, colour: Option<Colour>, word: &str) -> Self {
        self.lines.push(Line::Badge {
            colour,
            word: encode(word),
        });
        self
    }

    /// Adds a paragraph gap.
    pub(crate) fn gap(mut self) -> Self {
        self.lines.push(Line::Gap);
        self
    }
}

/// Splits encoded text into lines no wider than `width`.
pub(crate) fn wrap(text: &[u8], font: Font, size: f32, width: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for word in text.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        let mut candidate = line.clone();
        if !candidate.is_empty() {
            candidate.push(b' ');
        }
        candidate.extend_from_slice(word);
        if font.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word alone: break it between characters while it is too wide.
        for &b in word {
            line.push(b);
            if font.width(&line, size) > width && line.len() > 1 {
                line.pop();
                lines.push(std::mem::replace(&mut line, vec![b]));
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// How a row's cells are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A border around every cell.
    Boxed,
    /// A border and a grey background (table heads).
    Shaded,
    /// No border (free text).
    None,
}

/// The pages being laid out.
#[derive(Debug)]
pub(crate) struct Pages {
    done: Vec<String>,
    page: String,
    y: f32,
    /// A table head to repeat at the top of a new page, while a table runs.
    repeat: Option<(Vec<(f32, Cell)>, Frame)>,
    /// Where the table head on this page ends: a row right under it is split, not moved,
    /// so no head stands alone at the foot of a page.
    head_end: Option<f32>,
}

impl Pages {
    /// One empty page.
    pub(crate) fn new() -> Self {
        Self {
            done: Vec::new(),
            page: String::new(),
            y: PAGE_HEIGHT - MARGIN,
            repeat: None,
            head_end: None,
        }
    }

    fn room(&self) -> f32 {
        self.y - FOOT
    }

    fn at_top(&self) -> bool {
        self.y >= PAGE_HEIGHT - MARGIN || self.head_end == Some(self.y)
    }

    /// Starts a table: draws its head (moved to a new page when less than `min` points
    /// would remain under it) and repeats it on every page until [`Self::end_table`].
    pub(crate) fn start_table(&mut self, head: Vec<(f32, Cell)>, frame: Frame, min: f32) {
        if self.room() < min && !self.at_top() {
            self.break_page();
        }
        self.row(head.clone(), frame);
        self.head_end = Some(self.y);
        self.repeat = Some((head, frame));
    }

    /// Ends the table started by [`Self::start_table`].
    pub(crate) fn end_table(&mut self) {
        self.repeat = None;
        self.head_end = None;
    }

    /// Starts a new page (and repeats the table head, if any).
    pub(crate) fn break_page(&mut self) {
        self.done.push(std::mem::take(&mut self.page));
        self.y = PAGE_HEIGHT - MARGIN;
        self.head_end = None;
        if let Some((cells, frame)) = self.repeat.clone() {
            self.row(cells, frame);
            self.head_end = Some(self.y);
        }
    }

    /// Moves down by `dy` points.
    pub(crate) fn skip(&mut self, dy: f32) {
        self.y -= dy;
    }

    /// A heading: bold text with a rule under it, kept on a page with room below it.
    pub(crate) fn heading(&mut self, text: &str, size: f32, rule: bool) {
        if self.room() < size * 1.3 + 60.0 && !self.at_top() {
            self.break_page();
        }
        self.y -= size;
        self.put_text(MARGIN, self.y, Font::Bold, size, &encode(text));
        self.y -= size * 0.4;
        if rule {
            let _ = writeln!(
                self.page,
                "0.6 G 0.8 w {MARGIN:.2} {y:.2} m {x:.2} {y:.2} l S 0 G",
                y = self.y,
                x = PAGE_WIDTH - MARGIN
            );
        }
        self.y -= 6.0;
    }

    /// A row of cells at the given x positions; moved to the next page when it does not
    /// fit here but would on an empty page, split between lines when it is taller.
    pub(crate) fn row(&mut self, cells: Vec<(f32, Cell)>, frame: Frame) {
        let height = |cell: &Cell| cell.lines.iter().map(Line::height).sum::<f32>();
        let total = cells.iter().map(|(_, c)| height(c)).fold(0.0, f32::max) + 2.0 * PAD;
        let full_page = PAGE_HEIGHT - MARGIN - FOOT - self.repeat_height();
        if total > self.room() && total <= full_page && !self.at_top() {
            self.break_page();
        }
        let mut rest: Vec<(f32, Cell)> = cells;
        loop {
            let avail = self.room() - 2.0 * PAD;
            let mut chunk = Vec::new();
            let mut left = Vec::new();
            for (x, cell) in &rest {
                let mut used = 0.0;
                let mut take = 0;
                for line in &cell.lines {
                    if used + line.height() > avail {
                        break;
                    }
                    used += line.height();
                    take += 1;
                }
                let (now, later) = cell.lines.split_at(take);
                chunk.push((*x, cell.width, now.to_vec()));
                left.push((
                    *x,
                    Cell {
                        lines: later.to_vec(),
                        width: cell.width,
                    },
                ));
            }
            let drew = chunk.iter().any(|(_, _, lines)| !lines.is_empty());
            if drew || rest.iter().all(|(_, c)| c.lines.is_empty()) {
                self.draw_chunk(&chunk, frame);
            }
            if left.iter().all(|(_, c)| c.lines.is_empty()) {
                return;
            }
            if !drew && self.at_top() {
                // Cannot happen with lines shorter than a page; never loop forever.
                return;
            }
            rest = left;
            self.break_page();
        }
    }

    fn repeat_height(&self) -> f32 {
        self.repeat.as_ref().map_or(0.0, |(cells, _)| {
            cells
                .iter()
                .map(|(_, c)| c.lines.iter().map(Line::height).sum::<f32>())
                .fold(0.0, f32::max)
                + 2.0 * PAD
        })
    }

    fn draw_chunk(&mut self, chunk: &[(f32, f32, Vec<Line>)], frame: Frame) {
        let content = chunk
            .iter()
            .map(|(_, _, lines)| lines.iter().map(Line::height).sum::<f32>())
            .fold(0.0, f32::max);
        let h = content + 2.0 * PAD;
        let bottom = self.y - h;
        for (x, width, _) in chunk {
            let w = width + 2.0 * PAD;
            match frame {
                Frame::Boxed => {
                    let _ = writeln!(
                        self.page,
                        "0.6 G 0.5 w {x:.2} {bottom:.2} {w:.2} {h:.2} re S"
                    );
                }
                Frame::Shaded => {
                    let _ = writeln!(
                        self.page,
                        "0.93 g 0.6 G 0.5 w {x:.2} {bottom:.2} {w:.2} {h:.2} re B 0 g"
                    );
                }
                Frame::None => {}
            }
        }
        let _ = writeln!(self.page, "0 G 0 g");
        for (x, _, lines) in chunk {
            let mut top = self.y - PAD;
            for line in lines {
                let lh = line.height();
                match line {
                    Line::Text { font, size, text } => {
                        self.put_text(x + PAD, top - size * 1.0, *font, *size, text);
                    }
                    Line::Badge { colour, word } => self.badge(x + PAD, top - 11.5, *colour, word),
                    Line::Gap => {}
                }
                top -= lh;
            }
        }
        self.y = bottom;
    }

    fn put_text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &[u8]) {
        let _ = writeln!(
            self.page,
            "BT /{} {size:.2} Tf {x:.2} {y:.2} Td ({}) Tj ET",
            font.resource(),
            escape(text)
        );
    }

    /// A filled circle with a symbol (✔, ?, ✘, –) and the word next to it.
    fn badge(&mut self, x: f32, baseline: f32, colour: Option<Colour>, word: &[u8]) {
        let (rgb, symbol_colour, font, symbol): (&str, &str, Font, u8) = match colour {
            Some(Colour::Green) => ("0.102 0.498 0.216", "1 g", Font::Dingbats, b'4'),
            Some(Colour::Yellow) => ("0.831 0.627 0", "0 g", Font::Bold, b'?'),
            Some(Colour::Red) => ("0.776 0.157 0.157", "1 g", Font::Dingbats, b'8'),
            None => ("0.467 0.467 0.467", "1 g", Font::Bold, 0x96),
        };
        let r = 5.5;
        let (cx, cy) = (x + r, baseline + 3.0);
        let k = r * 0.5523;
        let _ = writeln!(
            self.page,
            "{rgb} rg {a:.2} {cy:.2} m {a:.2} {b:.2} {c:.2} {t:.2} {cx:.2} {t:.2} c \
             {d:.2} {t:.2} {e:.2} {b:.2} {e:.2} {cy:.2} c {e:.2} {f:.2} {d:.2} {u:.2} {cx:.2} {u:.2} c \
             {c:.2} {u:.2} {a:.2} {f:.2} {a:.2} {cy:.2} c f {symbol_colour}",
            a = cx - r,
            e = cx + r,
            t = cy + r,
            u = cy - r,
            b = cy + k,
            f = cy - k,
            c = cx - k,
            d = cx + k,
        );
        let size = 7.0;
        let w = font.width(&[symbol], size);
        self.put_text(cx - w / 2.0, cy - 2.5, font, size, &[symbol]);
        let _ = writeln!(self.page, "0 g");
        self.put_text(x + 2.0 * r + 4.0, baseline, Font::Bold, 9.5, word);
    }

    /// The finished pages' content streams, each with its footer (from page number and
    /// page count) at the foot.
    pub(crate) fn finish(mut self, footer: impl Fn(usize, usize) -> String) -> Vec<String> {
        self.done.push(std::mem::take(&mut self.page));
        let count = self.done.len();
        let mut pages = Vec::with_capacity(count);
        for (i, page) in std::mem::take(&mut self.done).into_iter().enumerate() {
            self.page = page;
            let text = encode(&footer(i + 1, count));
            let x = PAGE_WIDTH - MARGIN - Font::Regular.width(&text, 8.0);
            self.put_text(x, FOOT - 30.0, Font::Regular, 8.0, &text);
            pages.push(std::mem::take(&mut self.page));
        }
        pages
    }
}

/// Text for a PDF literal string: `(`, `)` and `\` escaped, bytes outside printable ASCII
/// as octal escapes, so the content stream stays ASCII.
pub(crate) fn escape(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        match b {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// The PDF file: catalog, page tree, fonts, info, the pages and the cross-reference table.
pub(crate) fn write_file(pages: &[String], title: &str, created: &str) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let first_page = 3 + Font::ALL.len() + 1;
    let page_ids: Vec<usize> = (0..pages.len()).map(|i| first_page + 2 * i).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = page_ids.iter().map(|id| format!("{id} 0 R")).collect();
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    for font in Font::ALL {
        let encoding = if font == Font::Dingbats {
            ""
        } else {
            " /Encoding /WinAnsiEncoding"
        };
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{}{encoding} >>",
                font.base_font()
            )
            .into_bytes(),
        );
    }
    objects.push(
        format!(
            "<< /Title ({}) /Producer (Tandem) /CreationDate (D:{created}) >>",
            escape(&encode(title))
        )
        .into_bytes(),
    );
    let fonts: Vec<String> = Font::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| format!("/{} {} 0 R", f.resource(), 3 + i))
        .collect();
    for (i, content) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << {} >> >> /Contents {} 0 R >>",
                fonts.join(" "),
                page_ids[i] + 1
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content.as_bytes());
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }
    let mut file = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(file.len());
        file.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        file.extend_from_slice(body);
        file.extend_from_slice(b"\nendobj\n");
    }
    let xref = file.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        let _ = writeln!(table, "{offset:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R /Info {} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1,
        3 + Font::ALL.len()
    );
    file.extend_from_slice(table.as_bytes());
    file
}
