//! Optical character recognition of scanned forms (SPEC §2.1: a PDF that holds only images, an
//! image attachment): page images → cleaned, upright, straight → Tesseract (Swedish) word boxes
//! and confidences → [`layout::Word`]s in points, so the same label/value layout reader works
//! on scans as on a text layer. Check boxes are decided by the ink inside them (marks.rs).
//!
//! Bounded: pages per attachment, pixels per image, a time limit per Tesseract run, and a pool of
//! at most `workers` pages being recognised at once across the whole process (default: one per
//! core), so a 20-page fax cannot starve mail intake or replies. Callers are on blocking threads
//! (the intake runs analysis with `spawn_blocking`), never on the async runtime.

pub mod child;
mod config;
pub mod marks;
pub mod prep;
pub mod raster;
mod reread;
pub mod sheet;
pub mod tesseract;

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use image::GrayImage;

use crate::forms::layout::{read_forms, PageWords, Word};
pub use config::OcrConfig;
pub use raster::{PageImage, RasterLimits};
use tesseract::{Request, TsvWord};

/// How OCR runs.
#[derive(Debug, Clone)]
pub struct OcrSettings {
    /// Off: scans are not read (they count as unreadable attachments).
    pub enabled: bool,
    /// Tesseract language model.
    pub lang: String,
    /// Limit for one Tesseract run (one page, one pass).
    pub page_timeout: Duration,
    pub raster: RasterLimits,
}

impl Default for OcrSettings {
    fn default() -> Self {
        OcrSettings {
            enabled: true,
            lang: "swe".into(),
            page_timeout: Duration::from_secs(60),
            raster: RasterLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("text recognition (OCR) is not available: tesseract or its Swedish model is missing")]
    Unavailable,
    #[error("text recognition (OCR) of scans is turned off ([ocr] enabled = false)")]
    Disabled,
    /// The email's time limit passed, or the attachment's time for external programs (one page
    /// time limit) is spent.
    #[error("the time limit ran out before this page was read")]
    Stopped,
    #[error(transparent)]
    Raster(#[from] raster::RasterError),
    #[error(transparent)]
    Tesseract(#[from] tesseract::TesseractError),
}

impl OcrError {
    /// Whether the reading was stopped for time rather than failing on what it read.
    pub fn out_of_time(&self) -> bool {
        matches!(
            self,
            OcrError::Stopped
                | OcrError::Tesseract(
                    tesseract::TesseractError::Timeout(_) | tesseract::TesseractError::Starved
                )
                | OcrError::Raster(raster::RasterError::OutOfTime(_))
        )
    }
}

/// Whether tesseract with the model `lang` can be run (checked once per model and process).
pub fn available(lang: &str) -> bool {
    static AVAILABLE: OnceLock<Mutex<std::collections::HashMap<String, bool>>> = OnceLock::new();
    let mut known = AVAILABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *known
        .entry(lang.to_string())
        .or_insert_with(|| tesseract::available(lang))
}

// ---------------------------------------------------------------------------------------------
// The pool.

/// A counting semaphore: at most `size` pages are recognised at once in the process.
struct Pool {
    size: Mutex<(usize, usize)>, // (capacity, in use)
    freed: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Pool {
            size: Mutex::new((n, 0)),
            freed: Condvar::new(),
        }
    })
}

/// Sets the number of OCR workers (default: one per core). Takes effect for the next page.
pub fn set_workers(n: usize) {
    let p = pool();
    let mut s = p.size.lock().unwrap_or_else(|e| e.into_inner());
    s.0 = n.max(1);
    p.freed.notify_all();
}

/// The number of OCR workers.
pub fn workers() -> usize {
    pool().size.lock().unwrap_or_else(|e| e.into_inner()).0
}

struct Permit;

impl Permit {
    fn acquire() -> Permit {
        let p = pool();
        let mut s = p.size.lock().unwrap_or_else(|e| e.into_inner());
        while s.1 >= s.0 {
            s = p.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.1 += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let p = pool();
        let mut s = p.size.lock().unwrap_or_else(|e| e.into_inner());
        s.1 = s.1.saturating_sub(1);
        p.freed.notify_one();
    }
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// What OCR made of one page.
#[derive(Debug, Clone)]
pub struct OcrPage {
    pub words: PageWords,
    /// The page had (almost) no ink: a blank sheet.
    pub blank: bool,
    pub elapsed: Duration,
}

/// Recognises pages (numbered as given) on the pool, in parallel up to the pool's size; the
/// result is in input order. A page that fails makes the whole call fail.
pub fn recognise_pages(
    pages: Vec<(usize, PageImage)>,
    settings: &OcrSettings,
) -> Result<Vec<OcrPage>, OcrError> {
    let numbers: Vec<usize> = pages.iter().map(|(n, _)| *n).collect();
    let slots: Vec<Mutex<Option<PageImage>>> = pages
        .into_iter()
        .map(|(_, p)| Mutex::new(Some(p)))
        .collect();
    recognise_lazily(&numbers, settings, |i| {
        slots[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| raster::RasterError::Decode("page taken twice".into()))
    })
}

/// Recognises the pages `numbers`, getting each one's image from `load` (by its index in
/// `numbers`) only when a worker of the pool is free for it, and dropping the image once the
/// page is read: at most one page image per worker is held, however many pages there are. Stops
/// at the first page that fails, when the email's time is up, or when the attachment's budget
/// for external programs is spent (src/ocr/child.rs). The result is in input order.
pub fn recognise_lazily<F>(
    numbers: &[usize],
    settings: &OcrSettings,
    load: F,
) -> Result<Vec<OcrPage>, OcrError>
where
    F: Fn(usize) -> Result<PageImage, raster::RasterError> + Sync,
{
    if !settings.enabled {
        return Err(OcrError::Disabled);
    }
    if !available(&settings.lang) {
        return Err(OcrError::Unavailable);
    }
    let context = child::context();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<OcrPage, OcrError>>>> =
        Mutex::new((0..numbers.len()).map(|_| None).collect());
    let threads = workers().min(numbers.len());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= numbers.len() || failed.load(Ordering::Relaxed) {
            break;
        }
        let result = {
            let _permit = Permit::acquire();
            if child::stopped() {
                Err(OcrError::Stopped)
            } else {
                load(i)
                    .map_err(OcrError::from)
                    .and_then(|page| read_page(numbers[i], &page, settings))
            }
        };
        if result.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| child::inherit(&context, work)))
            .collect();
        for h in handles {
            if h.join().is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut pages = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(page)) => pages.push(page),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if pages.len() < numbers.len() => Err(OcrError::Raster(raster::RasterError::Decode(
            "panic".into(),
        ))),
        None => Ok(pages),
    }
}

/// Pixels above which a page is scaled down before recognition (A4 at 300 dpi is 8.7 M).
const MAX_OCR_PIXELS: u64 = 9_500_000;

/// Recognises one page: clean, turn upright, straighten, read words, decide check boxes. Waits
/// for a free worker of the pool.
pub fn recognise_page(
    number: usize,
    page: &PageImage,
    settings: &OcrSettings,
) -> Result<OcrPage, OcrError> {
    let _permit = Permit::acquire();
    read_page(number, page, settings)
}

/// [`recognise_page`] for a caller that holds a permit of the pool.
fn read_page(number: usize, page: &PageImage, settings: &OcrSettings) -> Result<OcrPage, OcrError> {
    if child::stopped() {
        return Err(OcrError::Stopped);
    }
    let started = Instant::now();
    let mut dpi = page.dpi.unwrap_or_else(|| estimate_dpi(&page.image));
    let (pw, ph) = page.image.dimensions();
    let px = pw as u64 * ph as u64;
    let shrunk;
    let gray = if px > MAX_OCR_PIXELS || dpi > 420.0 {
        let f = ((MAX_OCR_PIXELS as f32 / px as f32).sqrt())
            .min(300.0 / dpi)
            .min(1.0);
        let (w, h) = ((pw as f32 * f) as u32, (ph as f32 * f) as u32);
        shrunk = prep::shrink(&page.image, w.max(1), h.max(1));
        dpi *= f;
        &shrunk
    } else {
        &page.image
    };
    // A phone photo: the sheet warped flat first; its resolution is then that of an A4 sheet.
    let sheet = sheet::flatten_sheet(gray);
    let gray = match &sheet {
        Some(s) => {
            dpi = estimate_dpi(s);
            s
        }
        None => gray,
    };
    let flat = prep::flatten_light(gray);
    let mut bin = prep::binarise(&flat);
    // Specks below an i-dot or a full stop (about 9 px at 200 dpi, 16 px at 300 dpi): up to
    // 4 px at 200 dpi, 10 px at 300 dpi.
    prep::despeckle(&mut bin, ((dpi / 300.0).powi(2) * 10.0).max(2.0) as usize);
    if prep::ink_share(&bin) < 0.0008 {
        let size = size_pt(&bin, dpi);
        let elapsed = count_page(started);
        return Ok(OcrPage {
            words: PageWords {
                number,
                width: size.0,
                height: size.1,
                words: Vec::new(),
                ink: None,
                graphics: Vec::new(),
            },
            blank: true,
            elapsed,
        });
    }

    // A page lying sideways is known from its shape; ask the orientation detector first.
    let mut osd_done = false;
    if bin.width() > bin.height() {
        bin = upright(&bin, settings, dpi)?;
        osd_done = true;
    }
    let (mut straight, mut words) = read_upright(&bin, settings, dpi)?;
    if !osd_done && !looks_upright(&words, dpi) {
        let turned = upright(&bin, settings, dpi)?;
        if turned.dimensions() != bin.dimensions() || turned.as_raw() != bin.as_raw() {
            (straight, words) = read_upright(&turned, settings, dpi)?;
        }
    }
    marks::read_boxes(&straight, &mut words);
    reread::addresses(&straight, &mut words, settings, dpi);

    let (width, height) = size_pt(&straight, dpi);
    let words = to_points(words, dpi);
    let elapsed = count_page(started);
    tracing::debug!(
        page = number,
        ms = elapsed.as_millis() as u64,
        "page recognised"
    );
    Ok(OcrPage {
        words: PageWords {
            number,
            width,
            height,
            words,
            ink: Some(ink_image(&straight, dpi)),
            graphics: Vec::new(),
        },
        blank: false,
        elapsed,
    })
}

/// An image's size in points at `dpi`.
fn size_pt(img: &GrayImage, dpi: f32) -> (f32, f32) {
    (
        img.width() as f32 * 72.0 / dpi,
        img.height() as f32 * 72.0 / dpi,
    )
}

/// The straightened page kept for reading check marks drawn around options, at 150 dpi or a
/// little more (2 MB for an A4 page, where the recognised image takes 9). The page is binarised,
/// so each pixel is the darkest of its block: no stroke is lost, and it costs a few ms where a
/// filtered resize cost ~0.1 s a page.
fn ink_image(straight: &GrayImage, dpi: f32) -> crate::forms::ink::InkImage {
    let f = ((dpi / 150.0).floor() as u32).max(1);
    let (w, h) = (straight.width() / f, straight.height() / f);
    let image = if f == 1 || w == 0 || h == 0 {
        straight.clone()
    } else {
        GrayImage::from_fn(w, h, |x, y| {
            let mut darkest = 255u8;
            for dy in 0..f {
                for dx in 0..f {
                    darkest = darkest.min(straight.get_pixel(x * f + dx, y * f + dy).0[0]);
                }
            }
            image::Luma([darkest])
        })
    };
    crate::forms::ink::InkImage {
        image: std::sync::Arc::new(image),
        px_per_pt: dpi / f as f32 / 72.0,
    }
}

/// Records a recognised page's time in the metrics; returns it.
fn count_page(started: Instant) -> Duration {
    let elapsed = started.elapsed();
    metrics::histogram!(crate::telemetry::OCR_PAGE_SECONDS).record(elapsed.as_secs_f64());
    elapsed
}

/// Resolution of a page image of unknown resolution, taking it for A4 (the forms are A4).
fn estimate_dpi(img: &GrayImage) -> f32 {
    let long = img.width().max(img.height()) as f32;
    (long / 11.69).clamp(50.0, 1200.0)
}

/// Turns the page as the orientation detector says (no turn when it is unsure).
fn upright(bin: &GrayImage, settings: &OcrSettings, dpi: f32) -> Result<GrayImage, OcrError> {
    let (rotate, conf) = tesseract::orientation(bin, settings.page_timeout, dpi as u32)?;
    if rotate == 0 || conf < 1.0 {
        return Ok(bin.clone());
    }
    // "Rotate: N" is the clockwise turn that makes the page upright.
    Ok(prep::rotate_quarters(bin, rotate / 90))
}

/// Straightens a small skew, erases ruled lines and recognises the words. Returns the straight
/// image with its lines (for reading check boxes) and the words in its pixels.
fn read_upright(
    bin: &GrayImage,
    settings: &OcrSettings,
    dpi: f32,
) -> Result<(GrayImage, Vec<TsvWord>), OcrError> {
    let skew = prep::estimate_skew(bin);
    let straight = if skew.abs() >= 0.2 {
        prep::rotate_small(bin, skew)
    } else {
        bin.clone()
    };
    // Rules and box borders longer than 0.2 in. The tallest letters of an 11 pt value are
    // 0.14 in, and the check boxes (12 pt, 0.17 in) stay for marks.rs and Tesseract.
    let clean = prep::erase_rules(&straight, (dpi * 0.2) as u32);
    let req = Request {
        lang: &settings.lang,
        psm: 11,
        whitelist: None,
        timeout: settings.page_timeout,
        dpi: dpi as u32,
    };
    let words = tesseract::recognise(&clean, &req)?;
    Ok((straight, words))
}

/// Pixels → points (the unit of the text path), origin top left as in the image.
///
/// Tesseract's boxes hug the ink, while a text layer's boxes span the font's full height; the
/// layout reader measures gaps in line heights, so each box is grown to about a font's height:
/// the page's typical word height (most words have capitals or ascenders) times 1.25, centred.
/// Check-box tokens keep the box's own size.
/// What Tesseract makes of a dotted or dashed leader line: "words" (`ere`, `sern`, `-`) a third
/// of the height of the page's text or less, read with letters or without confidence. Not text.
fn is_leader_junk(w: &TsvWord, typical: f32) -> bool {
    let flat = !w.mark && (w.height as f32) * 3.0 <= typical;
    let letters = w.text.chars().filter(|c| c.is_alphabetic()).count();
    flat && (letters >= 2 || w.confidence < 50.0)
}

/// A word read with no confidence at all that lies mostly on a word read with confidence: the
/// same ink read twice, the second time with the leader line under it (`förrredrernsarste`
/// over `Psykiatriska`).
fn is_ghost(w: &TsvWord, words: &[TsvWord]) -> bool {
    if w.mark || w.confidence >= 10.0 {
        return false;
    }
    let area = (w.width * w.height).max(1) as f32;
    words.iter().any(|o| {
        let across = (w.left + w.width).min(o.left + o.width) as i64 - w.left.max(o.left) as i64;
        let down = (w.top + w.height).min(o.top + o.height) as i64 - w.top.max(o.top) as i64;
        o.confidence >= 60.0 && across > 0 && down > 0 && (across * down) as f32 >= 0.4 * area
    })
}

fn to_points(words: Vec<TsvWord>, dpi: f32) -> Vec<Word> {
    let scale = 72.0 / dpi;
    let mut heights: Vec<u32> = words
        .iter()
        .filter(|w| w.text.chars().count() >= 3)
        .map(|w| w.height)
        .collect();
    heights.sort_unstable();
    let typical = heights.get(heights.len() / 2).copied().unwrap_or(0) as f32;
    let ghosts: Vec<bool> = words.iter().map(|w| is_ghost(w, &words)).collect();
    words
        .into_iter()
        .zip(ghosts)
        .filter(|(w, ghost)| !ghost && !is_leader_junk(w, typical))
        .map(|(w, _)| {
            let h = w.height as f32;
            let full = if w.mark {
                h
            } else {
                h.max(typical.min(h * 2.0)) * 1.25
            };
            let mid = w.top as f32 + h / 2.0;
            Word {
                text: w.text,
                x0: w.left as f32 * scale,
                y0: (mid - full / 2.0).max(0.0) * scale,
                x1: (w.left + w.width) as f32 * scale,
                y1: (mid + full / 2.0) * scale,
                confidence: w.confidence,
            }
        })
        .collect()
}

/// Whether recognition found readable text: a form, or mostly confident words.
fn looks_upright(words: &[TsvWord], dpi: f32) -> bool {
    let page = PageWords {
        number: 1,
        width: 0.0,
        height: 0.0,
        words: to_points(words.to_vec(), dpi),
        ink: None,
        graphics: Vec::new(),
    };
    if !read_forms(&[page]).is_empty() {
        return true;
    }
    let real: Vec<&TsvWord> = words
        .iter()
        .filter(|w| w.text.chars().filter(|c| c.is_alphabetic()).count() >= 3)
        .collect();
    let confident = real.iter().filter(|w| w.confidence >= 80.0).count();
    real.len() >= 5 && confident * 10 >= real.len() * 6
}
