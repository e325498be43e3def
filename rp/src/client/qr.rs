//! QR codes for device links: terminal text (Unicode half blocks) and PNG.
//!
//! device_link_flows.txt: error correction LOW or MEDIUM (HIGH does not fit the link
//! length), a sufficient margin, and 6-10 pixels per module on a PC screen. We use MEDIUM,
//! the standard 4-module quiet zone, and draw the PNG from the module matrix ourselves (the
//! `qrcode` crate's image renderer would pull in the `image` crate).

use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode};

use super::Error;

/// Quiet zone around the code, in modules (ISO/IEC 18004).
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Default PNG module size: inside the spec's 6-10 pixel recommendation.
pub const DEFAULT_MODULE_PIXELS: u32 = 8;

fn encode(link: &str) -> Result<QrCode, Error> {
    QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)
        .map_err(|e| Error::Qr(format!("cannot encode the link: {e}")))
}

/// One of the eight mask patterns of a QR code (ISO/IEC 18004 §7.8.2).
///
/// An encoder picks the mask with the lowest penalty (no large same-coloured blocks, no
/// finder-like runs); the penalty of all eight costs most of the drawing time (about 85%).
/// A page that redraws a session's QR code every second picks the mask once, with
/// [`best_mask`] on the first link, and draws the following links of the session with it
/// ([`DeviceLinkSession::qr_png`](super::link::DeviceLinkSession::qr_png)): they differ only
/// in `elapsedSeconds` and `authCode` (the same length, or a digit more), so the mask stays
/// a good one. Any mask decodes: the format information names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QrMask(u8);

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The modules of `link` with `mask`, and the width.
fn colors_with_mask(link: &str, mask: QrMask) -> Result<(Vec<Color>, usize), Error> {
    let err = |e: qrcode::types::QrError| Error::Qr(format!("cannot encode the link: {e}"));
    let bits = qrcode::bits::encode_auto(link.as_bytes(), EcLevel::M).map_err(err)?;
    let version = bits.version();
    let (data, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).map_err(err)?;
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    canvas.apply_mask(MASKS[usize::from(mask.0 & 7)]);
    let width = usize::try_from(version.width()).map_err(|_| Error::Qr("bad version".into()))?;
    Ok((canvas.into_colors(), width))
}

/// The mask the full penalty evaluation picks for `link` (the one [`png`] draws with).
pub fn best_mask(link: &str) -> Result<QrMask, Error> {
    let best = encode(link)?.into_colors();
    for m in 0..8u8 {
        if colors_with_mask(link, QrMask(m))?.0 == best {
            return Ok(QrMask(m));
        }
    }
    Err(Error::Qr(
        "no mask pattern reproduces the encoder's code".into(),
    ))
}

/// The QR code as lines of Unicode half blocks (two modules per character cell), with quiet
/// zone. Drawn light-on-dark: the blocks are the *light* modules, so on a terminal with light
/// text on a dark background the code appears dark-on-light as scanners expect.
pub fn terminal(link: &str) -> Result<String, Error> {
    let code = encode(link)?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// A QR image: dark modules as `true`, row by row, with the quiet zone included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleMatrix {
    /// Modules per side, quiet zone included.
    pub size: u32,
    pub dark: Vec<bool>,
}

/// The module matrix of `link` with a `quiet`-module margin on every side.
pub fn modules(link: &str, quiet: u32) -> Result<ModuleMatrix, Error> {
    modules_with(link, quiet, None)
}

/// [`modules`] with a given mask, or the best one for `None`.
fn modules_with(link: &str, quiet: u32, mask: Option<QrMask>) -> Result<ModuleMatrix, Error> {
    let (colors, width) = match mask {
        Some(m) => colors_with_mask(link, m)?,
        None => {
            let code = encode(link)?;
            let width = code.width();
            (code.into_colors(), width)
        }
    };
    let w = u32::try_from(width).map_err(|_| Error::Qr("code too wide".into()))?;
    let size = w + 2 * quiet;
    let mut dark = vec![false; (size * size) as usize];
    for y in 0..w {
        for x in 0..w {
            if colors[(y * w + x) as usize] == Color::Dark {
                dark[((y + quiet) * size + x + quiet) as usize] = true;
            }
        }
    }
    Ok(ModuleMatrix { size, dark })
}

/// A PNG (1-bit grayscale, black on white) of the QR code of `link`: quiet zone of
/// [`QUIET_ZONE_MODULES`], `module_pixels` pixels per module (at least 1).
///
/// One bit per pixel, the "Up" filter and fdeflate: a web page redraws its QR code every
/// second per waiting login, and the 8-bit image with the default (adaptive) compression
/// cost about 2.5 ms per 520-pixel code (docs/BENCHMARKS.md, issue 23).
pub fn png(link: &str, module_pixels: u32) -> Result<Vec<u8>, Error> {
    png_with(link, module_pixels, None)
}

/// [`png`] drawn with `mask` (see [`QrMask`]): about an eighth of the encoding work.
pub fn png_with_mask(link: &str, module_pixels: u32, mask: QrMask) -> Result<Vec<u8>, Error> {
    png_with(link, module_pixels, Some(mask))
}

fn png_with(link: &str, module_pixels: u32, mask: Option<QrMask>) -> Result<Vec<u8>, Error> {
    let scale = module_pixels.max(1);
    let m = modules_with(link, QUIET_ZONE_MODULES, mask)?;
    let side = m
        .size
        .checked_mul(scale)
        .filter(|s| *s <= 16_384)
        .ok_or_else(|| Error::Qr("image too large".into()))?;
    let stride = side.div_ceil(8) as usize;
    let mut pixels = Vec::with_capacity(stride * side as usize);
    for row in m.dark.chunks(m.size as usize) {
        // Bit 1 is white; the most significant bit is the leftmost pixel.
        let mut line = vec![0u8; stride];
        for (x, &d) in row
            .iter()
            .flat_map(|d| std::iter::repeat_n(d, scale as usize))
            .enumerate()
        {
            if !d {
                line[x / 8] |= 0x80 >> (x % 8);
            }
        }
        for _ in 0..scale {
            pixels.extend_from_slice(&line);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        // Rows repeat `scale` times: "Up" turns the repeats into zeros.
        enc.set_filter(png::Filter::Up);
        let perr = |e: png::EncodingError| Error::Qr(format!("PNG encoding: {e}"));
        let mut w = enc.write_header().map_err(perr)?;
        w.write_image_data(&pixels).map_err(perr)?;
        w.finish().map_err(perr)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0";

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        // 1-bit pixels expanded to 8-bit 0 / 255.
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    /// The best mask found by comparison draws exactly the encoder's code; another mask
    /// draws another code of the same size.
    #[test]
    fn the_best_mask_reproduces_the_encoder() {
        let mask = best_mask(LINK).unwrap();
        assert_eq!(png_with_mask(LINK, 3, mask).unwrap(), png(LINK, 3).unwrap());
        let other = QrMask((mask.0 + 1) % 8);
        let (a, b) = (
            modules(LINK, 4).unwrap(),
            modules_with(LINK, 4, Some(other)).unwrap(),
        );
        assert_eq!(a.size, b.size);
        assert_ne!(a.dark, b.dark);
    }

    #[test]
    fn png_decodes_with_quiet_zone_and_module_size() {
        let m = modules(LINK, 0).unwrap();
        // Version 9-M for this 191-byte link: 53 modules a side; the spec calls the
        // device-link QR code at M fine to scan.
        assert!(
            m.size >= 21 && (m.size - 17).is_multiple_of(4),
            "{}",
            m.size
        );
        let bytes = png(LINK, 6).unwrap();
        let header = png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .unwrap();
        assert_eq!(header.info().bit_depth, png::BitDepth::One);
        let (info, px) = decode(&bytes);
        let side = (m.size + 2 * QUIET_ZONE_MODULES) * 6;
        assert_eq!((info.width, info.height), (side, side));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        // Quiet zone white; top-left finder pattern corner black at the right offset.
        let at = |x: u32, y: u32| px[(y * side + x) as usize];
        assert_eq!(at(0, 0), 255);
        assert_eq!(
            at(QUIET_ZONE_MODULES * 6 - 1, QUIET_ZONE_MODULES * 6 - 1),
            255
        );
        assert_eq!(at(QUIET_ZONE_MODULES * 6, QUIET_ZONE_MODULES * 6), 0);
        assert_eq!(
            at(QUIET_ZONE_MODULES * 6 + 5, QUIET_ZONE_MODULES * 6 + 5),
            0
        );
        // Each module is a solid 6x6 block matching the matrix.
        for (i, &d) in m.dark.iter().enumerate() {
            let (mx, my) = (i as u32 % m.size, i as u32 / m.size);
            let (x0, y0) = ((mx + QUIET_ZONE_MODULES) * 6, (my + QUIET_ZONE_MODULES) * 6);
            let want = if d { 0 } else { 255 };
            assert_eq!(at(x0, y0), want);
            assert_eq!(at(x0 + 5, y0 + 5), want);
        }
        // Larger modules: larger image, same code.
        let (info10, _) = decode(&png(LINK, 10).unwrap());
        assert_eq!(info10.width, (m.size + 2 * QUIET_ZONE_MODULES) * 10);
    }

    #[test]
    fn terminal_rendering_has_two_modules_per_line() {
        let m = modules(LINK, QUIET_ZONE_MODULES).unwrap();
        let t = terminal(LINK).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len() as u32, m.size.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() as u32 == m.size));
        assert!(t.contains('\u{2588}') && t.contains('\u{2580}'));
        // Different links, different codes.
        assert_ne!(t, terminal(&LINK.replace("=22&", "=23&")).unwrap());
    }
}
