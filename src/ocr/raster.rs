//! Getting page images: decoding image attachments (JPEG, PNG, TIFF with several pages and CCITT
//! G4) and the scanned pages of a PDF.
//!
//! For a PDF page we first take the page's own scanned image straight out of the file and fall
//! back to rasterising the page with poppler's `pdftoppm -r 300`. Measured on this machine
//! (2 cores, fixtures/scans): decoding the embedded 200 dpi JPEG of a scanned A4 page takes
//! 0.03–0.05 s and a G4 page 0.02 s, against 0.6–1.4 s for `pdftoppm -r 300` of the same page
//! (it decodes the image, scales it and paints the page). Extraction also gives the scanner's own
//! pixels, without a resampling step that blurs thin strokes. It is only right when the page *is*
//! one image, so it is used when the page shows exactly one image XObject in a filter we decode
//! (DCTDecode, CCITTFaxDecode, FlateDecode grey/RGB 1 or 8 bit); anything else (several strips,
//! masks, JBIG2, JPX, text drawn over the image, a failed decode) goes to `pdftoppm`, which is
//! slower but renders whatever poppler can render.

use std::io::Cursor;
use std::process::Command;
use std::time::Duration;

use super::child::ChildError;

use image::{GrayImage, Luma};

/// Bounds on decoding.
#[derive(Debug, Clone)]
pub struct RasterLimits {
    /// Pages of one attachment that are read; later pages are left out.
    pub max_pages: usize,
    /// An image with more pixels than this is not decoded at all.
    pub max_pixels: u64,
    /// Time for `pdftoppm` to render one page.
    pub render_timeout: Duration,
}

impl Default for RasterLimits {
    fn default() -> Self {
        RasterLimits {
            max_pages: 20,
            max_pixels: 60_000_000,
            render_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    #[error("the image is too large ({0} pixels)")]
    TooLarge(u64),
    #[error("the page could not be rendered: {0}")]
    Render(String),
}

/// A decoded page: grey pixels and the resolution they were made at, when known.
#[derive(Debug, Clone)]
pub struct PageImage {
    pub image: GrayImage,
    pub dpi: Option<f32>,
}

/// Decodes an image attachment into its pages (one for JPEG/PNG, one per directory for TIFF).
pub fn decode_image(data: &[u8], limits: &RasterLimits) -> Result<Vec<PageImage>, RasterError> {
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        return decode_tiff(data, limits);
    }
    let reader = image::ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|e| RasterError::Decode(e.to_string()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| RasterError::Decode(e.to_string()))?;
    check_pixels(w, h, limits)?;
    let mut reader = image::ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|e| RasterError::Decode(e.to_string()))?;
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    reader.limits(l);
    let img = reader
        .decode()
        .map_err(|e| RasterError::Decode(e.to_string()))?;
    Ok(vec![PageImage {
        image: img.to_luma8(),
        dpi: None,
    }])
}

/// An image's width and height (of its first page, for a TIFF) from its header alone, without
/// decoding it; `None` when the header cannot be read.
pub fn image_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        return tiff::decoder::Decoder::new(Cursor::new(data))
            .ok()?
            .dimensions()
            .ok();
    }
    image::ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

fn check_pixels(w: u32, h: u32, limits: &RasterLimits) -> Result<(), RasterError> {
    let px = w as u64 * h as u64;
    if px > limits.max_pixels {
        return Err(RasterError::TooLarge(px));
    }
    if w < 16 || h < 16 {
        return Err(RasterError::Decode(format!(
            "{w}x{h} pixels is too small to hold text"
        )));
    }
    Ok(())
}

fn decode_tiff(data: &[u8], limits: &RasterLimits) -> Result<Vec<PageImage>, RasterError> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    use tiff::ColorType;
    let err = |e: tiff::TiffError| RasterError::Decode(e.to_string());
    let mut tl = tiff::decoder::Limits::default();
    tl.decoding_buffer_size = limits.max_pixels as usize * 4;
    tl.intermediate_buffer_size = limits.max_pixels as usize * 4;
    let mut dec = Decoder::new(Cursor::new(data))
        .map_err(err)?
        .with_limits(tl);
    let mut pages = Vec::new();
    loop {
        let (w, h) = dec.dimensions().map_err(err)?;
        check_pixels(w, h, limits)?;
        let color = dec.colortype().map_err(err)?;
        // 0 = WhiteIsZero, the usual way faxes are stored.
        let white_is_zero = matches!(
            dec.find_tag(Tag::PhotometricInterpretation)
                .ok()
                .flatten()
                .and_then(|v| v.into_u16().ok()),
            Some(0)
        );
        let dpi = dec
            .find_tag(Tag::XResolution)
            .ok()
            .flatten()
            .and_then(|v| v.into_f32().ok())
            .filter(|d| *d >= 50.0);
        let buf = match dec.read_image().map_err(err)? {
            DecodingResult::U8(b) => b,
            DecodingResult::U16(b) => b.iter().map(|v| (v >> 8) as u8).collect(),
            _ => return Err(RasterError::Decode("unsupported TIFF sample format".into())),
        };
        let mut img = GrayImage::new(w, h);
        match color {
            ColorType::Gray(1) => {
                let stride = (w as usize).div_ceil(8);
                for y in 0..h as usize {
                    for x in 0..w as usize {
                        let bit = buf
                            .get(y * stride + x / 8)
                            .map(|b| (b >> (7 - x % 8)) & 1)
                            .unwrap_or(0);
                        let white = (bit == 1) != white_is_zero;
                        img.put_pixel(x as u32, y as u32, Luma([if white { 255 } else { 0 }]));
                    }
                }
            }
            ColorType::Gray(8) | ColorType::Gray(16) => {
                for (i, p) in img.pixels_mut().enumerate() {
                    let v = buf.get(i).copied().unwrap_or(255);
                    p.0[0] = if white_is_zero { 255 - v } else { v };
                }
            }
            ColorType::RGB(8) | ColorType::RGBA(8) | ColorType::RGB(16) => {
                let n = if matches!(color, ColorType::RGBA(8)) {
                    4
                } else {
                    3
                };
                for (i, p) in img.pixels_mut().enumerate() {
                    let px = buf.get(i * n..i * n + 3).unwrap_or(&[255, 255, 255]);
                    p.0[0] = luma(px[0], px[1], px[2]);
                }
            }
            other => {
                return Err(RasterError::Decode(format!(
                    "unsupported TIFF colour type {other:?}"
                )))
            }
        }
        paper_white(&mut img);
        pages.push(PageImage { image: img, dpi });
        if pages.len() >= limits.max_pages || !dec.more_images() {
            break;
        }
        dec.next_image().map_err(err)?;
    }
    Ok(pages)
}

/// Paper is white: a page that comes out mostly black had its polarity read the other way
/// round (TIFF WhiteIsZero/BlackIsZero and PDF /Decode and /BlackIs1 are not always set as the
/// pixels are), so it is inverted.
fn paper_white(img: &mut GrayImage) {
    let dark = img.pixels().filter(|p| p.0[0] < 128).count();
    if dark * 2 > img.pixels().len() {
        image::imageops::invert(img);
    }
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

/// The image of page `number` (1-based) of a PDF: its embedded scan when the page is one image
/// we can decode, else the page rendered at 300 dpi.
pub fn pdf_page(
    pdf: &[u8],
    number: usize,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    match embedded_page_image(pdf, number, limits) {
        Some(img) => Ok(img),
        None => render_page(pdf, number, limits),
    }
}

/// The page's only image, decoded, with its resolution from the page size; `None` when the page
/// is not simply one image or the image is in a form we do not decode.
pub fn embedded_page_image(pdf: &[u8], number: usize, limits: &RasterLimits) -> Option<PageImage> {
    let opts = lopdf::LoadOptions {
        max_decompressed_size: Some(64 * 1024 * 1024),
        ..Default::default()
    };
    let doc = lopdf::Document::load_from_with_options(pdf, opts).ok()?;
    let page_id = *doc.get_pages().get(&(number as u32))?;
    let images = doc.get_page_images(page_id).ok()?;
    let [img] = images.as_slice() else {
        return None;
    };
    let (w, h) = (
        u32::try_from(img.width).ok()?,
        u32::try_from(img.height).ok()?,
    );
    check_pixels(w, h, limits).ok()?;
    if img.origin_dict.has(b"SMask") || img.origin_dict.has(b"Mask") {
        return None;
    }
    let filters = img.filters.clone().unwrap_or_default();
    let bpc = img.bits_per_component.unwrap_or(8);
    let cs = img.color_space.as_deref().unwrap_or("DeviceGray");
    let mut gray = match filters
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["DCTDecode"] => image::load_from_memory_with_format(img.content, image::ImageFormat::Jpeg)
            .ok()?
            .to_luma8(),
        ["CCITTFaxDecode"] => decode_ccitt(img.content, img.origin_dict, w, h)?,
        [] | ["FlateDecode"] => {
            let stream = doc.get_object(img.id).ok()?.as_stream().ok()?;
            let raw = if filters.is_empty() {
                stream.content.clone()
            } else {
                stream
                    .decompressed_content_with_limit(limits.max_pixels as usize * 3)
                    .ok()?
            };
            decode_raw(&raw, w, h, bpc, cs)?
        }
        _ => return None,
    };
    if gray.dimensions() != (w, h) {
        return None;
    }
    // Decode [1 0] inverts the samples.
    if let Ok(lopdf::Object::Array(d)) = img.origin_dict.get(b"Decode") {
        if d.first().and_then(|o| o.as_float().ok()) == Some(1.0) {
            image::imageops::invert(&mut gray);
        }
    }
    // The page's /Rotate, so the image is upright as the page is shown.
    let rotate = doc
        .get_object(page_id)
        .ok()
        .and_then(|o| o.as_dict().ok())
        .and_then(|d| d.get(b"Rotate").ok())
        .and_then(|r| r.as_i64().ok())
        .unwrap_or(0)
        .rem_euclid(360);
    paper_white(&mut gray);
    let gray = super::prep::rotate_quarters(&gray, (rotate / 90) as u32);
    // Resolution from the page's width (A4 pages and scans that fill the page).
    let media_w = doc
        .get_object(page_id)
        .ok()
        .and_then(|o| o.as_dict().ok())
        .and_then(|d| d.get(b"MediaBox").ok())
        .and_then(|m| m.as_array().ok())
        .and_then(|a| Some(a.get(2)?.as_float().ok()? - a.first()?.as_float().ok()?))
        .filter(|w| *w > 10.0);
    let dpi = media_w.map(|mw| {
        let side = if rotate % 180 == 0 {
            mw
        } else {
            mw * h as f32 / w as f32
        };
        gray.width() as f32 / side * 72.0
    });
    Some(PageImage { image: gray, dpi })
}

fn decode_ccitt(data: &[u8], dict: &lopdf::Dictionary, w: u32, h: u32) -> Option<GrayImage> {
    let params = dict.get(b"DecodeParms").ok().and_then(|p| p.as_dict().ok());
    let k = params
        .and_then(|p| p.get(b"K").ok())
        .and_then(|k| k.as_i64().ok())
        .unwrap_or(0);
    let black_is_1 = params
        .and_then(|p| p.get(b"BlackIs1").ok())
        .and_then(|b| b.as_bool().ok())
        .unwrap_or(false);
    if k >= 0 || w > u16::MAX as u32 || h > u16::MAX as u32 {
        // Only G4 (K < 0) is what scanners and fax gateways write into PDFs.
        return None;
    }
    let mut img = GrayImage::from_pixel(w, h, Luma([255]));
    let mut y = 0u32;
    fax::decoder::decode_g4(
        data.iter().copied(),
        w as u16,
        Some(h as u16),
        |transitions| {
            if y < h {
                for (x, c) in fax::decoder::pels(transitions, w as u16).enumerate() {
                    let black = (c == fax::Color::Black) != black_is_1;
                    if black {
                        img.put_pixel(x as u32, y, Luma([0]));
                    }
                }
            }
            y += 1;
        },
    )?;
    Some(img)
}

/// Raw samples (after Flate) of a grey or RGB image, 1 or 8 bits.
fn decode_raw(raw: &[u8], w: u32, h: u32, bpc: i64, cs: &str) -> Option<GrayImage> {
    let mut img = GrayImage::new(w, h);
    match (cs, bpc) {
        ("DeviceGray", 8) | ("CalGray", 8) => {
            if raw.len() < (w * h) as usize {
                return None;
            }
            img.copy_from_slice(&raw[..(w * h) as usize]);
        }
        ("DeviceGray", 1) | ("CalGray", 1) => {
            let stride = (w as usize).div_ceil(8);
            if raw.len() < stride * h as usize {
                return None;
            }
            for (x, y, p) in img.enumerate_pixels_mut() {
                let b = raw[y as usize * stride + x as usize / 8];
                p.0[0] = if (b >> (7 - x % 8)) & 1 == 1 { 255 } else { 0 };
            }
        }
        ("DeviceRGB", 8) | ("CalRGB", 8) => {
            if raw.len() < (w * h * 3) as usize {
                return None;
            }
            for (i, p) in img.pixels_mut().enumerate() {
                p.0[0] = luma(raw[i * 3], raw[i * 3 + 1], raw[i * 3 + 2]);
            }
        }
        _ => return None,
    }
    Some(img)
}

/// Renders one page with `pdftoppm -r 300 -gray` (PDF on stdin, PGM on stdout).
pub fn render_page(
    pdf: &[u8],
    number: usize,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    render_page_at(pdf, number, 300, limits)
}

/// Renders one page at `dpi` in grey with `pdftoppm`, bounded in time and output size.
pub fn render_page_at(
    pdf: &[u8],
    number: usize,
    dpi: u32,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    let [n, r] = [number as u32, dpi].map(|v| v.to_string());
    let out = run_pdftoppm(
        pdf,
        &["-f", &n, "-l", &n, "-r", &r, "-gray", "-"],
        limits.max_pixels + 1024,
        limits.render_timeout,
    )?;
    let img =
        parse_pgm(&out).ok_or_else(|| RasterError::Render("pdftoppm gave no image".into()))?;
    Ok(PageImage {
        image: img,
        dpi: Some(dpi as f32),
    })
}

/// Renders page `number` as PNG at `dpi` for a person to look at (`pdftoppm -png`), cropped to
/// `max_width` × `max_height` pixels so that an absurd page size cannot take the memory, and
/// refused when the PNG is larger than `max_bytes`.
pub fn render_page_png(
    pdf: &[u8],
    number: usize,
    dpi: u32,
    (max_width, max_height): (u32, u32),
    max_bytes: u64,
    timeout: Duration,
) -> Result<Vec<u8>, RasterError> {
    let [n, r, w, h] = [number as u32, dpi, max_width, max_height].map(|v| v.to_string());
    let args = [
        "-f", &n, "-l", &n, "-r", &r, "-x", "0", "-y", "0", "-W", &w, "-H", &h, "-png", "-",
    ];
    let out = run_pdftoppm(pdf, &args, max_bytes + 1, timeout)?;
    if out.len() as u64 > max_bytes {
        return Err(RasterError::TooLarge(out.len() as u64));
    }
    if !out.starts_with(b"\x89PNG") {
        return Err(RasterError::Render("pdftoppm gave no image".into()));
    }
    Ok(out)
}

/// Runs `pdftoppm` with the PDF on stdin (never through a shell) and returns at most `cap`
/// bytes of its standard output; kills it when `timeout` passes.
fn run_pdftoppm(
    pdf: &[u8],
    args: &[&str],
    cap: u64,
    timeout: Duration,
) -> Result<Vec<u8>, RasterError> {
    let mut cmd = Command::new("pdftoppm");
    cmd.args(args);
    match super::child::run(cmd, pdf.to_vec(), cap, timeout) {
        Ok(done) => Ok(done.stdout),
        Err(ChildError::Start(e)) => Err(RasterError::Render(format!(
            "pdftoppm could not be started: {e}"
        ))),
        Err(ChildError::Timeout) => Err(RasterError::Render("pdftoppm took too long".into())),
        Err(ChildError::Wait(e)) => Err(RasterError::Render(e.to_string())),
    }
}

fn parse_pgm(data: &[u8]) -> Option<GrayImage> {
    // "P5\n<w> <h>\n255\n" then the samples.
    let mut fields = Vec::new();
    let mut pos = 2;
    if !data.starts_with(b"P5") {
        return None;
    }
    while fields.len() < 3 {
        while pos < data.len() && data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < data.len() && data[pos].is_ascii_digit() {
            pos += 1;
        }
        fields.push(
            std::str::from_utf8(&data[start..pos])
                .ok()?
                .parse::<u32>()
                .ok()?,
        );
    }
    pos += 1;
    let (w, h) = (fields[0], fields[1]);
    let body = data.get(pos..pos + (w as usize * h as usize))?;
    GrayImage::from_raw(w, h, body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_is_parsed() {
        let mut data = b"P5\n3 2\n255\n".to_vec();
        data.extend_from_slice(&[0, 1, 2, 3, 4, 5]);
        let img = parse_pgm(&data).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(2, 1).0[0], 5);
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(decode_image(b"\xFF\xD8\xFFnot really a jpeg", &RasterLimits::default()).is_err());
        assert!(decode_image(b"II*\0garbage", &RasterLimits::default()).is_err());
    }
}
