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
//!
//! Bounded before anything is decoded or rendered: an image (an attachment, or any image XObject
//! or mask that drawing the PDF page may decode, JBIG2 included) with more than `max_pixels`
//! pixels as its header or dictionary declares them is refused, a PDF is loaded within its
//! object bound (crate::pdf::load), and `pdftoppm` renders at a resolution that keeps the page
//! within `max_pixels`, cropped to it whatever the page's size. One page's image is decoded at
//! a time per OCR worker (see `recognise_lazily`), so a 20-page fax holds one page, not 20.

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::process::Command;
use std::time::Duration;

use super::child::ChildError;
use crate::pdf::{PdfError, PdfLimits};

use image::{ColorType, GrayImage, ImageDecoder, ImageFormat, Luma};
use lopdf::{Document, Object, ObjectId};

/// Bounds on decoding.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RasterLimits {
    /// Pages of one attachment that are read; later pages are left out.
    pub max_pages: usize,
    /// An image with more pixels than this is not decoded at all.
    pub max_pixels: u64,
    /// Time for `pdftoppm` to render one page.
    pub render_timeout: Duration,
}

/// The default `max_pixels`: an A4 page scanned at 400 dpi is 3 307 × 4 677 = 15.5 M pixels
/// (US Letter 15.0 M). Recognition reads a page at 300 dpi at most (9.5 M pixels), so a larger
/// image only costs memory: decoding holds up to 4 bytes a pixel (RGBA), 64 MB at this bound
/// where a 60 M pixel limit let one grey image take over 500 MB. A scanner set to 600 dpi
/// (35 M pixels for A4) is refused as too large unless `[ocr] max_pixels` is raised.
pub const DEFAULT_MAX_PIXELS: u64 = 16_000_000;

impl Default for RasterLimits {
    fn default() -> Self {
        RasterLimits {
            max_pages: 20,
            max_pixels: DEFAULT_MAX_PIXELS,
            render_timeout: Duration::from_secs(30),
        }
    }
}

/// Bytes per pixel that decoding an image may hold at most (RGBA 8-bit); a 16-bit colour image
/// may therefore have at most half or a quarter of `max_pixels`.
const MAX_DECODED_BYTES_PER_PIXEL: u64 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    #[error("the image is too large ({0} pixels)")]
    TooLarge(u64),
    #[error("the page could not be rendered: {0}")]
    Render(String),
    /// pdftoppm was stopped for time (see `child::ChildError::out_of_time`).
    #[error("the page could not be rendered: {0}")]
    OutOfTime(&'static str),
    #[error(transparent)]
    Pdf(#[from] PdfError),
}

/// A decoded page: grey pixels and the resolution they were made at, when known.
#[derive(Debug, Clone)]
pub struct PageImage {
    pub image: GrayImage,
    pub dpi: Option<f32>,
}

/// Decodes an image attachment into its pages (one for JPEG/PNG, one per directory for TIFF).
/// All pages are held at once: OCR uses [`image_page_count`] and [`decode_image_page`] instead.
pub fn decode_image(data: &[u8], limits: &RasterLimits) -> Result<Vec<PageImage>, RasterError> {
    (0..image_page_count(data, limits)?)
        .map(|i| decode_image_page(data, i, limits))
        .collect()
}

fn is_tiff(data: &[u8]) -> bool {
    data.starts_with(b"II*\0") || data.starts_with(b"MM\0*")
}

/// The number of pages of an image attachment that are read (a TIFF's directories, at most
/// `max_pages`), from the headers alone.
pub fn image_page_count(data: &[u8], limits: &RasterLimits) -> Result<usize, RasterError> {
    if !is_tiff(data) {
        return Ok(1);
    }
    let err = |e: tiff::TiffError| RasterError::Decode(e.to_string());
    let mut dec = tiff::decoder::Decoder::new(Cursor::new(data)).map_err(err)?;
    let mut n = 1;
    while n < limits.max_pages && dec.more_images() {
        dec.next_image().map_err(err)?;
        n += 1;
    }
    Ok(n)
}

/// Decodes page `index` (0-based) of an image attachment.
pub fn decode_image_page(
    data: &[u8],
    index: usize,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    if is_tiff(data) {
        return decode_tiff_page(data, index, limits);
    }
    let image = decode_grey(data, None, limits)?;
    // Only the ratio of the declared densities is used: their values are often a program's
    // default (72 or 96 dpi) rather than the scanner's, so the scale is still taken from the
    // page's size.
    Ok(match declared_density(data) {
        Some((x, y)) => PageImage {
            dpi: None,
            ..square_pixels(image, x, y, limits)
        },
        None => PageImage { image, dpi: None },
    })
}

/// The pixel density an image declares (PNG `pHYs` in pixels per metre, JPEG JFIF in dots per
/// inch or per cm), as (horizontal, vertical) in dots per inch; `None` when it declares none.
fn declared_density(data: &[u8]) -> Option<(f32, f32)> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let density = |x: f32, y: f32, per_inch: f32| {
        (x > 0.0 && y > 0.0).then_some((x * per_inch, y * per_inch))
    };
    if data.starts_with(PNG) {
        // Chunks before the image data only (pHYs must come before IDAT).
        let mut i = PNG.len();
        while i + 8 <= data.len() {
            let len = be32(&data[i..]) as usize;
            let kind = &data[i + 4..i + 8];
            if kind == b"IDAT" || kind == b"IEND" {
                return None;
            }
            let body = data.get(i + 8..(i + 8).saturating_add(len))?;
            if kind == b"pHYs" && body.len() == 9 && body[8] == 1 {
                return density(be32(body) as f32, be32(&body[4..]) as f32, 0.0254);
            }
            i = (i + 12).saturating_add(len);
        }
        return None;
    }
    // JPEG: the JFIF APP0 segment comes first, right after SOI.
    let app0 = data.strip_prefix(b"\xFF\xD8\xFF\xE0")?;
    let body = app0.get(2..16)?;
    if &body[..5] != b"JFIF\0" {
        return None;
    }
    let (x, y) = (
        u16::from_be_bytes([body[8], body[9]]) as f32,
        u16::from_be_bytes([body[10], body[11]]) as f32,
    );
    match body[7] {
        1 => density(x, y, 1.0),
        2 => density(x, y, 2.54),
        _ => None,
    }
}

/// A page whose pixels are not square (a fax in normal mode, 204 × 98 dpi) stretched so that
/// they are, at its horizontal density (within `max_pixels`): text read at half height is
/// not read. Square or nearly square pixels are left as they are.
fn square_pixels(image: GrayImage, x_dpi: f32, y_dpi: f32, limits: &RasterLimits) -> PageImage {
    let ratio = x_dpi / y_dpi;
    if !(1.1..=4.0).contains(&ratio) {
        return PageImage {
            image,
            dpi: (ratio > 0.9 && ratio < 1.1).then_some(x_dpi),
        };
    }
    let (w, h) = image.dimensions();
    let new_h = (h as f32 * ratio).round() as u32;
    if w as u64 * new_h as u64 > limits.max_pixels {
        return PageImage { image, dpi: None };
    }
    let image = image::imageops::resize(&image, w, new_h, image::imageops::FilterType::Triangle);
    PageImage {
        image,
        dpi: Some(x_dpi),
    }
}

/// Decodes a PNG or JPEG into grey. The size its header declares is checked against
/// `max_pixels` before anything is decoded, and the decoded samples are turned grey in place, so
/// at most one buffer of `MAX_DECODED_BYTES_PER_PIXEL` bytes a pixel is held.
fn decode_grey(
    data: &[u8],
    format: Option<ImageFormat>,
    limits: &RasterLimits,
) -> Result<GrayImage, RasterError> {
    let err = |e: image::ImageError| RasterError::Decode(e.to_string());
    let data = png_without_ancillary(data);
    let mut reader = image::ImageReader::new(Cursor::new(&data[..]));
    match format {
        Some(f) => reader.set_format(f),
        None => {
            reader = reader
                .with_guessed_format()
                .map_err(|e| RasterError::Decode(e.to_string()))?
        }
    }
    let max_bytes = limits
        .max_pixels
        .saturating_mul(MAX_DECODED_BYTES_PER_PIXEL);
    let mut l = image::Limits::default();
    // The decoders' own buffers (a JPEG's coefficients, a PNG's rows) count too.
    l.max_alloc = Some(max_bytes.saturating_add(max_bytes / 2));
    reader.limits(l);
    let decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, limits)?;
    let color = decoder.color_type();
    let total = decoder.total_bytes();
    if total > max_bytes {
        return Err(RasterError::Decode(format!(
            "{w}x{h} pixels of {} bytes each is more than a page may take",
            color.bytes_per_pixel()
        )));
    }
    let mut buf = vec![0u8; total as usize];
    decoder.read_image(&mut buf).map_err(err)?;
    grey_in_place(&mut buf, color)?;
    buf.truncate(w as usize * h as usize);
    GrayImage::from_raw(w, h, buf).ok_or_else(|| RasterError::Decode("short image".into()))
}

/// Turns decoded samples of `color` grey in place: pixel i's grey value goes to byte i, which no
/// later pixel's samples start before. 16-bit samples are in native byte order.
fn grey_in_place(buf: &mut [u8], color: ColorType) -> Result<(), RasterError> {
    let bpp = color.bytes_per_pixel() as usize;
    let wide = matches!(
        color,
        ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16
    );
    let colour = matches!(
        color,
        ColorType::Rgb8 | ColorType::Rgba8 | ColorType::Rgb16 | ColorType::Rgba16
    );
    if !matches!(color, ColorType::L8 | ColorType::La8) && !wide && !colour {
        return Err(RasterError::Decode(format!(
            "unsupported colour type {color:?}"
        )));
    }
    let sample = |b: &[u8], c: usize| -> u8 {
        if wide {
            (u16::from_ne_bytes([b[2 * c], b[2 * c + 1]]) >> 8) as u8
        } else {
            b[c]
        }
    };
    for i in 0..buf.len() / bpp {
        let px = &buf[i * bpp..(i + 1) * bpp];
        let v = if colour {
            luma(sample(px, 0), sample(px, 1), sample(px, 2))
        } else {
            sample(px, 0)
        };
        buf[i] = v;
    }
    Ok(())
}

/// An image's width and height (of its first page, for a TIFF) from its header alone, without
/// decoding it; `None` when the header cannot be read.
pub fn image_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if is_tiff(data) {
        return tiff::decoder::Decoder::new(Cursor::new(data))
            .ok()?
            .dimensions()
            .ok();
    }
    let data = png_without_ancillary(data);
    let mut reader = image::ImageReader::new(Cursor::new(&data[..]))
        .with_guessed_format()
        .ok()?;
    // Only the header is wanted: a decoder that asks for more than this is refused.
    let mut l = image::Limits::default();
    l.max_alloc = Some(16 << 20);
    reader.limits(l);
    reader.into_dimensions().ok()
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

/// Decodes directory `index` of a TIFF.
fn decode_tiff_page(
    data: &[u8],
    index: usize,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    use tiff::ColorType;
    let err = |e: tiff::TiffError| RasterError::Decode(e.to_string());
    let mut tl = tiff::decoder::Limits::default();
    let max_bytes = limits
        .max_pixels
        .saturating_mul(MAX_DECODED_BYTES_PER_PIXEL) as usize;
    tl.decoding_buffer_size = max_bytes;
    tl.intermediate_buffer_size = max_bytes;
    let mut dec = Decoder::new(Cursor::new(data))
        .map_err(err)?
        .with_limits(tl);
    if index > 0 {
        dec.seek_to_image(index).map_err(err)?;
    }
    {
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
        let mut resolution = |tag| {
            dec.find_tag(tag)
                .ok()
                .flatten()
                .and_then(|v| v.into_f32().ok())
                .filter(|d| *d >= 50.0)
        };
        let (dpi, y_dpi) = (resolution(Tag::XResolution), resolution(Tag::YResolution));
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
        Ok(match (dpi, y_dpi) {
            (Some(x), Some(y)) => square_pixels(img, x, y, limits),
            _ => PageImage { image: img, dpi },
        })
    }
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
/// we can decode, else the page rendered at 300 dpi (less for a page too large for
/// `max_pixels`). Loads the PDF for this one page: [`PdfPages`] loads it once for several.
pub fn pdf_page(
    pdf: &[u8],
    number: usize,
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    PdfPages::load(pdf, &PdfLimits::default())?.page(number, limits)
}

/// A PDF loaded once (within its object bound) to get images of its pages.
pub struct PdfPages<'a> {
    bytes: &'a [u8],
    doc: Document,
    pages: BTreeMap<u32, ObjectId>,
}

/// Nodes visited when looking for the images a page may draw (each object once).
const MAX_WALK: usize = 100_000;

impl<'a> PdfPages<'a> {
    pub fn load(bytes: &'a [u8], limits: &PdfLimits) -> Result<PdfPages<'a>, RasterError> {
        let doc = std::panic::catch_unwind(|| crate::pdf::load(bytes, limits))
            .map_err(|_| RasterError::Pdf(PdfError::Panicked))??;
        let pages = doc
            .page_iter()
            .take(limits.max_pages)
            .enumerate()
            .map(|(i, id)| (i as u32 + 1, id))
            .collect();
        Ok(PdfPages { bytes, doc, pages })
    }

    fn page_id(&self, number: usize) -> Result<ObjectId, RasterError> {
        self.pages
            .get(&(number as u32))
            .copied()
            .ok_or_else(|| RasterError::Render(format!("the PDF has no page {number}")))
    }

    /// Page `number` (1-based) for OCR: its one embedded scan, or the page rendered at up to
    /// 300 dpi. Refused before anything is decoded when the page may draw an image larger than
    /// `max_pixels`.
    pub fn page(&self, number: usize, limits: &RasterLimits) -> Result<PageImage, RasterError> {
        let page_id = self.page_id(number)?;
        check_declared_images(&self.doc, page_id, limits)?;
        if let Some(img) = embedded_image(&self.doc, page_id, limits) {
            return Ok(img);
        }
        self.render_checked(page_id, number, 300.0, limits)
    }

    /// Page `number` rendered at `dpi` or less: as little less as keeps it within `max_pixels`.
    pub fn render(
        &self,
        number: usize,
        dpi: f32,
        limits: &RasterLimits,
    ) -> Result<PageImage, RasterError> {
        let page_id = self.page_id(number)?;
        check_declared_images(&self.doc, page_id, limits)?;
        self.render_checked(page_id, number, dpi, limits)
    }

    fn render_checked(
        &self,
        page_id: ObjectId,
        number: usize,
        dpi: f32,
        limits: &RasterLimits,
    ) -> Result<PageImage, RasterError> {
        let (w_pt, h_pt) = crate::pdf::page_size(&self.doc, page_id);
        let (dpi, w, h) = render_size(w_pt, h_pt, dpi, limits.max_pixels);
        render_cropped(self.bytes, number, dpi, (w, h), limits)
    }
}

/// The resolution (at most `dpi`) at which a page of `w_pt` × `h_pt` points stays within
/// `max_pixels`, and its size in pixels there.
fn render_size(w_pt: f32, h_pt: f32, dpi: f32, max_pixels: u64) -> (f32, u32, u32) {
    let (w_in, h_in) = (w_pt.max(1.0) / 72.0, h_pt.max(1.0) / 72.0);
    let fit = (max_pixels as f32 / (w_in * h_in)).sqrt();
    // Two decimals, rounded down, as pdftoppm is given it.
    let dpi = (dpi.min(fit) * 100.0).floor().max(1.0) / 100.0;
    let px = |inches: f32| ((inches * dpi).ceil() as u32).max(1);
    (dpi, px(w_in), px(h_in))
}

/// Checks the size, as declared in its dictionary, of every image that drawing the page may
/// decode: image XObjects and their masks reached from the page through its resources, Form
/// XObjects, patterns, Type 3 glyphs and annotation appearances (the links to other pages,
/// parents and actions are not followed). A JBIG2 image declaring 60 000 × 60 000 pixels is
/// refused here instead of costing `pdftoppm` 30 s and gigabytes.
fn check_declared_images(
    doc: &Document,
    page_id: ObjectId,
    limits: &RasterLimits,
) -> Result<(), RasterError> {
    const NOT_FOLLOWED: [&[u8]; 14] = [
        b"Parent",
        b"P",
        b"Dest",
        b"D",
        b"A",
        b"AA",
        b"Next",
        b"Prev",
        b"First",
        b"Last",
        b"Thumb",
        b"B",
        b"Pg",
        b"StructTreeRoot",
    ];
    fn follow(dict: &lopdf::Dictionary) -> impl Iterator<Item = &Object> {
        dict.iter()
            .filter(|(key, _)| !NOT_FOLLOWED.contains(&key.as_slice()))
            .map(|(_, value)| value)
    }
    let mut seen: HashSet<ObjectId> = HashSet::from([page_id]);
    let mut todo: Vec<&Object> = match doc.get_dictionary(page_id) {
        Ok(page) => follow(page).collect(),
        Err(_) => return Ok(()),
    };
    let mut visited = 0usize;
    while let Some(obj) = todo.pop() {
        visited += 1;
        if visited > MAX_WALK {
            return Err(RasterError::Render(
                "the page refers to too many objects".into(),
            ));
        }
        let dict = match obj {
            Object::Reference(id) => {
                if seen.insert(*id) {
                    if let Ok(o) = doc.get_object(*id) {
                        todo.push(o);
                    }
                }
                continue;
            }
            Object::Array(items) => {
                todo.extend(items.iter());
                continue;
            }
            Object::Dictionary(d) => d,
            Object::Stream(s) => {
                if s.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Image") {
                    let side = |key: &[u8]| {
                        s.dict
                            .get(key)
                            .and_then(|o| doc.dereference(o))
                            .and_then(|(_, o)| o.as_i64())
                            .unwrap_or(0)
                            .max(0) as u64
                    };
                    let px = side(b"Width").saturating_mul(side(b"Height"));
                    if px > limits.max_pixels {
                        return Err(RasterError::TooLarge(px));
                    }
                    // The decoder believes the image's own header, not the dictionary.
                    if let Some(px) = own_header_pixels(doc, s)? {
                        if px > limits.max_pixels {
                            return Err(RasterError::TooLarge(px));
                        }
                    }
                }
                &s.dict
            }
            _ => continue,
        };
        // Other pages are drawn on their own.
        if matches!(
            dict.get(b"Type").and_then(Object::as_name),
            Ok(b"Page" | b"Pages")
        ) {
            continue;
        }
        todo.extend(follow(dict));
    }
    Ok(())
}

/// The pixels an image XObject's own data declares, where its filter has a header that says so
/// (JBIG2: the page-information and region segments; DCT: the JPEG frame header). A JBIG2 image
/// behind another filter is refused: its header cannot be checked without decoding.
fn own_header_pixels(doc: &Document, s: &lopdf::Stream) -> Result<Option<u64>, RasterError> {
    let filters: Vec<&[u8]> = match s.dict.get(b"Filter").map(|o| doc.dereference(o)) {
        Ok(Ok((_, Object::Name(n)))) => vec![n.as_slice()],
        Ok(Ok((_, Object::Array(a)))) => a.iter().filter_map(|o| o.as_name().ok()).collect(),
        _ => Vec::new(),
    };
    match filters.as_slice() {
        [b"JBIG2Decode"] => {
            let mut px = jbig2_pixels(&s.content);
            if let Ok(globals) = s
                .dict
                .get(b"DecodeParms")
                .and_then(|o| doc.dereference(o))
                .and_then(|(_, o)| o.as_dict())
                .and_then(|d| d.get(b"JBIG2Globals"))
                .and_then(|o| doc.dereference(o))
                .and_then(|(_, o)| o.as_stream())
            {
                px = px.max(jbig2_pixels(&globals.content));
            }
            Ok(Some(px))
        }
        [b"DCTDecode"] => Ok(jpeg_pixels(&s.content)),
        f if f.contains(&&b"JBIG2Decode"[..]) => Err(RasterError::Decode(
            "a JBIG2 image behind another filter is not read".into(),
        )),
        _ => Ok(None),
    }
}

/// The largest size in pixels that a JBIG2 stream's page-information segment (type 48) or any
/// region segment declares, walking the segment headers of an embedded stream (no file header,
/// as PDF stores it). An unknown page height (striped pages) counts as one row per stripe.
pub(crate) fn jbig2_pixels(data: &[u8]) -> u64 {
    const REGIONS: [u8; 12] = [4, 6, 7, 20, 22, 23, 36, 38, 39, 40, 42, 43];
    let be32 = |at: usize| -> Option<u32> {
        data.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut largest = 0u64;
    let mut i = 0usize;
    for _ in 0..100_000 {
        let Some(number) = be32(i) else { break };
        let Some(&flags) = data.get(i + 4) else { break };
        let kind = flags & 0x3F;
        let long_page = flags & 0x40 != 0;
        let Some(&refs) = data.get(i + 5) else { break };
        let mut at = i + 6;
        let count = match refs >> 5 {
            7 => {
                let Some(n) = be32(i + 5) else { break };
                let n = (n & 0x1FFF_FFFF) as usize;
                at = i + 9 + (n + 1).div_ceil(8);
                n
            }
            n => n as usize,
        };
        let ref_size = match number {
            0..=256 => 1,
            257..=65_536 => 2,
            _ => 4,
        };
        at += count * ref_size + if long_page { 4 } else { 1 };
        let Some(len) = be32(at) else { break };
        let start = at + 4;
        if kind == 48 || REGIONS.contains(&kind) {
            if let (Some(w), Some(h)) = (be32(start), be32(start + 4)) {
                let h = if h == u32::MAX { 1 } else { h };
                largest = largest.max(w as u64 * h as u64);
            }
        }
        if len == u32::MAX {
            // An immediate generic region of unknown length: the rest cannot be walked.
            break;
        }
        i = start.saturating_add(len as usize);
    }
    largest
}

/// The size in pixels a JPEG's frame header (SOFn) declares, `None` when none is found.
pub(crate) fn jpeg_pixels(data: &[u8]) -> Option<u64> {
    let mut i = 2usize;
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let h = u16::from_be_bytes([*data.get(i + 5)?, *data.get(i + 6)?]) as u64;
            let w = u16::from_be_bytes([*data.get(i + 7)?, *data.get(i + 8)?]) as u64;
            return Some(w * h);
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// A PNG with only the chunks that decoding it to grey needs (IHDR, PLTE, tRNS, IDAT, IEND):
/// ancillary chunks such as an iCCP colour profile or a zTXt text that inflates to gigabytes
/// are dropped before a decoder sees them. Other data is returned as it is.
pub(crate) fn png_without_ancillary(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !data.starts_with(SIGNATURE) {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = SIGNATURE.to_vec();
    let mut i = SIGNATURE.len();
    while i + 8 <= data.len() {
        let len = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
        let end = (i + 12).saturating_add(len).min(data.len());
        let kind = &data[i + 4..i + 8];
        if matches!(kind, b"IHDR" | b"PLTE" | b"tRNS" | b"IDAT" | b"IEND") {
            out.extend_from_slice(&data[i..end]);
        }
        if kind == b"IEND" {
            break;
        }
        i = end;
    }
    std::borrow::Cow::Owned(out)
}

/// The page's only image, decoded, with its resolution from the page size; `None` when the page
/// is not simply one image or the image is in a form we do not decode.
pub fn embedded_page_image(pdf: &[u8], number: usize, limits: &RasterLimits) -> Option<PageImage> {
    let pages = PdfPages::load(pdf, &PdfLimits::default()).ok()?;
    let page_id = pages.page_id(number).ok()?;
    check_declared_images(&pages.doc, page_id, limits).ok()?;
    embedded_image(&pages.doc, page_id, limits)
}

fn embedded_image(doc: &Document, page_id: ObjectId, limits: &RasterLimits) -> Option<PageImage> {
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
        ["DCTDecode"] => decode_grey(img.content, Some(ImageFormat::Jpeg), limits).ok()?,
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

/// Renders one page at `dpi` in grey with `pdftoppm`, bounded in time and output size (a page
/// larger than `max_pixels` at `dpi` gives no image). For the PDFs of this program's own tools;
/// attachments go through [`PdfPages`], which checks the page first.
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
    let img = parse_pgm(out).ok_or_else(|| RasterError::Render("pdftoppm gave no image".into()))?;
    Ok(PageImage {
        image: img,
        dpi: Some(dpi as f32),
    })
}

/// Renders one page's crop box (the page as a viewer shows it, and as [`crate::pdf::page_size`]
/// measures it) at `dpi` in grey, cut to `w` × `h` pixels from its top left corner (poppler then
/// allocates only that much), so no page size can make more than that.
fn render_cropped(
    pdf: &[u8],
    number: usize,
    dpi: f32,
    (w, h): (u32, u32),
    limits: &RasterLimits,
) -> Result<PageImage, RasterError> {
    let cap = w as u64 * h as u64 + 1024;
    let [n, w, h] = [number as u32, w, h].map(|v| v.to_string());
    let r = format!("{dpi:.2}");
    let args = [
        "-f", &n, "-l", &n, "-r", &r, "-cropbox", "-x", "0", "-y", "0", "-W", &w, "-H", &h,
        "-gray", "-",
    ];
    let out = run_pdftoppm(pdf, &args, cap, limits.render_timeout)?;
    let img = parse_pgm(out).ok_or_else(|| RasterError::Render("pdftoppm gave no image".into()))?;
    Ok(PageImage {
        image: img,
        dpi: Some(dpi),
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
    limits: &RasterLimits,
) -> Result<Vec<u8>, RasterError> {
    // As for reading: a page that may draw an image larger than `max_pixels` is refused before
    // pdftoppm decodes it (the window below bounds the output, not what is decoded).
    let pages = PdfPages::load(pdf, &PdfLimits::default())?;
    check_declared_images(&pages.doc, pages.page_id(number)?, limits)?;
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
        Err(ChildError::Timeout) => Err(RasterError::OutOfTime("pdftoppm took too long")),
        Err(ChildError::Starved) => Err(RasterError::OutOfTime(
            "pdftoppm waited for a processor far longer than it worked",
        )),
        Err(ChildError::Wait(e)) => Err(RasterError::Render(e.to_string())),
    }
}

/// A binary PGM's samples, taken over from the program's output without a copy.
fn parse_pgm(mut data: Vec<u8>) -> Option<GrayImage> {
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
    let len = (w as usize).checked_mul(h as usize)?;
    if data.len() < pos.checked_add(len)? {
        return None;
    }
    data.drain(..pos);
    data.truncate(len);
    GrayImage::from_raw(w, h, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedded JBIG2 stream: one page-information segment of `w` × `h`, then end of page.
    pub(crate) fn jbig2_page(w: u32, h: u32) -> Vec<u8> {
        let mut d = Vec::new();
        // Segment 0, type 48, no referred segments, page 1, 19 bytes of data.
        d.extend_from_slice(&[0, 0, 0, 0, 48, 0, 1, 0, 0, 0, 19]);
        d.extend_from_slice(&w.to_be_bytes());
        d.extend_from_slice(&h.to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Segment 1, type 49 (end of page), 0 bytes.
        d.extend_from_slice(&[0, 0, 0, 1, 49, 0, 1, 0, 0, 0, 0]);
        d
    }

    #[test]
    fn a_jbig2_page_segment_and_a_jpeg_frame_declare_their_size() {
        assert_eq!(jbig2_pixels(&jbig2_page(2480, 3508)), 2480 * 3508);
        assert_eq!(jbig2_pixels(&jbig2_page(60_000, 60_000)), 3_600_000_000);
        assert_eq!(jbig2_pixels(b"garbage"), 0);
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0xEA, 0x60, 0xEA, 0x60, 1, 1]);
        assert_eq!(jpeg_pixels(&jpeg), Some(60_000 * 60_000));
        assert_eq!(jpeg_pixels(b"not a jpeg"), None);
    }

    #[test]
    fn a_fax_in_normal_mode_is_stretched_to_square_pixels() {
        // 200 × 100 pixels at 204 × 98 dpi: a page twice as tall as its pixels say.
        let img = GrayImage::from_fn(200, 100, |_, y| Luma([if y % 10 == 0 { 0 } else { 255 }]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let mut chunk = 9u32.to_be_bytes().to_vec();
        chunk.extend_from_slice(b"pHYs");
        chunk.extend_from_slice(&8031u32.to_be_bytes()); // 204 dpi in pixels per metre
        chunk.extend_from_slice(&3858u32.to_be_bytes()); // 98 dpi
        chunk.extend_from_slice(&[1, 0, 0, 0, 0]); // unit: metre; CRC (not checked)
        let ihdr_end = 8 + 8 + 13 + 4;
        png.splice(ihdr_end..ihdr_end, chunk);
        assert_eq!(
            declared_density(&png).map(|(x, y)| (x.round(), y.round())),
            Some((204.0, 98.0))
        );
        let page = decode_image_page(&png, 0, &RasterLimits::default()).unwrap();
        assert_eq!(page.image.dimensions(), (200, 208));
        // The scale comes from the page's size, not from what a PNG declares.
        assert_eq!(page.dpi, None);
        // Square pixels stay as they are.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\x01\0\xC8\0\xC8\0\0");
        assert_eq!(declared_density(&jpeg), Some((200.0, 200.0)));
        let page = square_pixels(img, 200.0, 200.0, &RasterLimits::default());
        assert_eq!((page.image.height(), page.dpi), (100, Some(200.0)));
    }

    #[test]
    fn a_png_profile_that_inflates_to_gigabytes_is_not_read() {
        use std::io::Write;
        let img = GrayImage::from_pixel(700, 700, Luma([200]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        // An iCCP chunk of 1 GiB of zeros, deflated, put after IHDR.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            z.write_all(&zeros).unwrap();
        }
        let mut body = b"iCCPbomb\0\0".to_vec();
        body.extend_from_slice(&z.finish().unwrap());
        let mut chunk = ((body.len() - 4) as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(&body);
        chunk.extend_from_slice(&crc32(&body).to_be_bytes());
        let at = 8 + 25;
        let mut bomb = png[..at].to_vec();
        bomb.extend_from_slice(&chunk);
        bomb.extend_from_slice(&png[at..]);
        let stripped = png_without_ancillary(&bomb);
        assert_eq!(&stripped[..], &png[..]);
        assert_eq!(image_dimensions(&bomb), Some((700, 700)));
        let page = decode_image_page(&bomb, 0, &RasterLimits::default()).unwrap();
        assert_eq!(page.image.dimensions(), (700, 700));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn pgm_is_parsed() {
        let mut data = b"P5\n3 2\n255\n".to_vec();
        data.extend_from_slice(&[0, 1, 2, 3, 4, 5]);
        let img = parse_pgm(data).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(2, 1).0[0], 5);
    }

    #[test]
    fn a_page_is_rendered_within_max_pixels() {
        // A4 at 300 dpi fits.
        assert_eq!(
            render_size(595.0, 842.0, 300.0, 16_000_000),
            (300.0, 2480, 3509)
        );
        // A 200-inch square page: 20 dpi, 4000 x 4000.
        let (dpi, w, h) = render_size(14_400.0, 14_400.0, 300.0, 16_000_000);
        assert_eq!((dpi, w, h), (20.0, 4000, 4000));
        let (_, w, h) = render_size(3_000.0, 40_000.0, 300.0, 16_000_000);
        assert!((w as u64 * h as u64) < 16_000_000 + 40_000, "{w} x {h}");
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(decode_image(b"\xFF\xD8\xFFnot really a jpeg", &RasterLimits::default()).is_err());
        assert!(decode_image(b"II*\0garbage", &RasterLimits::default()).is_err());
    }
}
