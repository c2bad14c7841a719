//! Reading PDF attachments: AcroForm fields and positioned words of the text
//! layer, built on lopdf's object model with our own small text interpreter.
//!
//! Coordinates of [`Word`]s are in points with the origin at the top-left of
//! the page as displayed (after `/Rotate` and the crop box), y growing
//! downward.

mod acroform;
mod cmap;
mod content;
mod fonts;
mod lexer;
mod tables;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{DecompressError, Document, Error as LoError, LoadOptions, Object, ObjectId};

/// Resource bounds applied while reading one PDF.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PdfLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Most pages read; a document with more is rejected.
    pub max_pages: usize,
    /// Bound on the decompressed size of one stream (and of one page's content, Form XObjects
    /// included).
    pub max_decompressed_bytes: usize,
    /// Content-stream tokens interpreted per page (Form XObjects included): operators and
    /// operands alike, each item of an array operand counted.
    pub max_ops_per_page: usize,
    /// Entries of one array or dictionary in the file (nested ones included), checked on the
    /// raw bytes before lopdf parses anything: lopdf parses every object at load, and a 20 MB
    /// array of numbers takes it some 3 GB (about 100 bytes a number in memory).
    pub max_object_entries: usize,
    /// Nesting depth of Form XObjects.
    pub max_xobject_depth: usize,
    /// Objects kept while loading (page-tree nodes are objects too); a document with more is
    /// rejected.
    pub max_objects: usize,
    /// Bound on the decompressed size of one object stream or cross-reference stream, which
    /// are decoded and parsed whole while the PDF is loaded, before any object is counted:
    /// 1 MiB of tiny objects is some 50 000 of them (about 60 MB while parsed).
    pub max_object_stream_bytes: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        PdfLimits {
            max_bytes: 20 * 1024 * 1024,
            max_pages: 50,
            // A page of dense text is a few hundred KB of content; 16 MiB held per page at most.
            max_decompressed_bytes: 16 * 1024 * 1024,
            // A dense page with every glyph placed on its own is some 20 000 tokens. 1 000 000
            // operands held at once (one array) are about 32 MB.
            max_ops_per_page: 1_000_000,
            // A CID font's /W array for a CJK font has a few tens of thousands of entries.
            max_object_entries: 100_000,
            max_xobject_depth: 8,
            // A filled-in form has a few hundred objects, a 50-page report a few thousand.
            // 200 000 small objects took 343 MB; 20 000 stay under 40 MB.
            max_objects: 20_000,
            // Producers put 100–200 objects in one object stream (tens of KB).
            max_object_stream_bytes: 1 << 20,
        }
    }
}

/// What was read from a PDF.
#[derive(Debug, Clone)]
pub struct PdfDocument {
    pub pages: Vec<Page>,
    pub fields: Vec<AcroField>,
}

/// One page: its displayed size, its words in content-stream order, and how
/// many images it draws or lists (a page with images and no words is a scan).
#[derive(Debug, Clone)]
pub struct Page {
    /// 1-based page number.
    pub number: usize,
    pub width: f32,
    pub height: f32,
    pub words: Vec<Word>,
    pub image_count: usize,
    /// What the page paints besides text (paths and placed images), in the words' space, for
    /// deciding whether a signature box is signed (SPEC §2.2). At most `MAX_GRAPHICS`.
    pub graphics: Vec<Graphic>,
}

/// The most painted shapes kept per page.
pub const MAX_GRAPHICS: usize = 5_000;

/// One painted path or placed image: its box in points (origin top left), and whether it is
/// only straight horizontal and vertical segments (a frame, a rule, a table's lines).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Graphic {
    pub bbox: [f32; 4],
    pub straight: bool,
    pub image: bool,
}

/// A word and its box, in points, origin at the top-left of the displayed page.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

/// A terminal AcroForm field.
#[derive(Debug, Clone, PartialEq)]
pub struct AcroField {
    /// Full name: the `/T` parts joined with `.`.
    pub name: String,
    pub kind: FieldKind,
    /// Text value, chosen export value (buttons), or `None` when empty / off.
    pub value: Option<String>,
    /// 1-based page of the field's first widget, when known.
    pub page: Option<usize>,
    /// Buttons: the on-state names of the widgets; choices: the `/Opt` export values.
    pub export_values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Checkbox,
    Radio,
    Choice,
    Signature,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the PDF is encrypted")]
    Encrypted,
    #[error("the PDF cannot be parsed: {0}")]
    Malformed(String),
    #[error("the PDF has more than {0} pages")]
    TooManyPages(usize),
    #[error("the PDF has more than {0} objects")]
    TooManyObjects(usize),
    #[error("an array or dictionary of the PDF has more than {0} entries")]
    TooLargeObject(usize),
    #[error("reading the PDF failed unexpectedly")]
    Panicked,
}

/// The displayed size of a page in points (its crop box within its media box, turned by its
/// `/Rotate`), as [`Page`] gives it; US Letter when the page has no readable box.
pub fn page_size(doc: &Document, page_id: ObjectId) -> (f32, f32) {
    match doc.get_dictionary(page_id) {
        Ok(page) => {
            let (b, rotate) = content::page_geometry(doc, page);
            let (_, width, height) = content::display_matrix(b, rotate);
            (width, height)
        }
        Err(_) => (612.0, 792.0),
    }
}

/// Read the pages (positioned words, image counts) and the AcroForm fields of a PDF.
pub fn read_pdf(bytes: &[u8], limits: &PdfLimits) -> Result<PdfDocument, PdfError> {
    match catch_unwind(AssertUnwindSafe(|| read_inner(bytes, limits))) {
        Ok(result) => result,
        Err(_) => Err(PdfError::Panicked),
    }
}

fn read_inner(bytes: &[u8], limits: &PdfLimits) -> Result<PdfDocument, PdfError> {
    let doc = load(bytes, limits)?;
    let page_ids: Vec<_> = doc
        .page_iter()
        .take(limits.max_pages.saturating_add(1))
        .collect();
    if page_ids.len() > limits.max_pages {
        return Err(PdfError::TooManyPages(limits.max_pages));
    }
    if page_ids.is_empty() {
        return Err(PdfError::Malformed("the document has no pages".into()));
    }
    let mut fonts = content::FontCache::default();
    let mut pages = Vec::with_capacity(page_ids.len());
    let mut any_read = false;
    for (i, id) in page_ids.iter().enumerate() {
        let (page, ok) = content::read_page(&doc, *id, i + 1, limits, &mut fonts);
        any_read |= ok;
        pages.push(page);
    }
    if !any_read {
        return Err(PdfError::Malformed("no page content could be read".into()));
    }
    let fields = acroform::read_fields(&doc, &page_ids);
    Ok(PdfDocument { pages, fields })
}

thread_local! {
    /// Objects kept so far by the load on this thread, and how many it may keep.
    static KEPT: Cell<(usize, usize)> = const { Cell::new((0, usize::MAX)) };
}

/// lopdf's filter, called for each object as it is parsed (those in object streams included):
/// counts it and drops it once `max_objects` are kept, so a file of 200 000 tiny objects or
/// page-tree nodes never holds them all. lopdf keeps the object it passed in for an object read
/// from the file, and the one returned for an object from an object stream (never a stream), so
/// a stream is answered with a placeholder rather than a copy.
fn keep_counted(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    let (kept, max) = KEPT.with(Cell::get);
    KEPT.with(|k| k.set((kept + 1, max)));
    if kept >= max {
        return None;
    }
    match object {
        Object::Stream(_) => Some((id, Object::Null)),
        other => Some((id, other.clone())),
    }
}

/// Whether the catalog leads to a page tree (what lopdf checks before it rebuilds a damaged
/// cross-reference table, which it does only for a load without a filter).
fn has_page_tree(doc: &Document) -> bool {
    doc.catalog()
        .and_then(|c| c.get(b"Pages"))
        .and_then(Object::as_reference)
        .and_then(|id| doc.get_dictionary(id))
        .is_ok_and(|root| root.has(b"Kids"))
}

/// Loads a PDF within `limits` (size, decompressed streams, number of objects), decrypted with
/// the empty password where it is encrypted. Every reader of attachments loads through here.
pub fn load(bytes: &[u8], limits: &PdfLimits) -> Result<Document, PdfError> {
    if bytes.len() > limits.max_bytes {
        return Err(PdfError::TooLarge(limits.max_bytes));
    }
    // The objects that start in the file itself are counted before anything is parsed: an
    // encrypted file is decrypted without passing through the filter.
    if count_object_headers(bytes) > limits.max_objects {
        return Err(PdfError::TooManyObjects(limits.max_objects));
    }
    if largest_composite(bytes, limits.max_object_entries) > limits.max_object_entries {
        return Err(PdfError::TooLargeObject(limits.max_object_entries));
    }
    let load_with = |force_reconstruct: bool| {
        KEPT.with(|k| k.set((0, limits.max_objects)));
        let options = LoadOptions {
            // Only object and cross-reference streams are decoded while loading; content
            // streams are decoded later, each within `max_decompressed_bytes`.
            max_decompressed_size: Some(limits.max_object_stream_bytes),
            filter: Some(keep_counted),
            force_reconstruct,
            ..LoadOptions::default()
        };
        let doc = Document::load_mem_with_options(bytes, options);
        let (kept, _) = KEPT.with(|k| k.replace((0, usize::MAX)));
        match doc {
            _ if kept > limits.max_objects => Err(PdfError::TooManyObjects(limits.max_objects)),
            Ok(doc) if doc.objects.len() > limits.max_objects => {
                Err(PdfError::TooManyObjects(limits.max_objects))
            }
            Ok(doc) => Ok(doc),
            Err(e) => Err(load_error(e)),
        }
    };
    let mut doc = load_with(false)?;
    if !has_page_tree(&doc) {
        // What lopdf does itself without a filter: the cross-reference table may point beside
        // the objects of a file that lost or gained bytes, so it is rebuilt by scanning.
        if let Ok(rebuilt) = load_with(true) {
            if has_page_tree(&rebuilt) {
                doc = rebuilt;
            }
        }
    }
    // lopdf tries the empty user password itself; still encrypted means it failed.
    if doc.is_encrypted() {
        return Err(PdfError::Encrypted);
    }
    Ok(doc)
}

/// The number of `N G obj` headers in the file: the objects lopdf can find in it, outside
/// object streams.
fn count_object_headers(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], b"obj") {
        let i = from + at;
        from = i + 3;
        let after = bytes.get(i + 3).copied().unwrap_or(b' ');
        if after.is_ascii_alphanumeric() || after == b'_' {
            continue;
        }
        // Back over white space to a digit: the generation number.
        let mut j = i;
        while j > 0 && bytes[j - 1].is_ascii_whitespace() {
            j -= 1;
        }
        if j < i && j > 0 && bytes[j - 1].is_ascii_digit() {
            count += 1;
        }
    }
    count
}

/// The most entries (tokens, nested ones included) of one top-level array or dictionary in the
/// file outside streams, counted until it passes `stop_after`. Streams (`stream` … `endstream`),
/// strings and comments are skipped; it reads the bytes once and allocates nothing.
fn largest_composite(bytes: &[u8], stop_after: usize) -> usize {
    let (mut i, n) = (0usize, bytes.len());
    let mut depth = 0usize;
    let mut count = 0usize;
    let mut largest = 0usize;
    let delim = |b: u8| b"()<>[]{}/%".contains(&b) || b.is_ascii_whitespace() || b == 0;
    while i < n {
        let b = bytes[i];
        match b {
            b'%' => {
                while i < n && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'(' => {
                count += usize::from(depth > 0);
                let mut nest = 0usize;
                while i < n {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'(' => nest += 1,
                        b')' => {
                            nest -= 1;
                            if nest == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'[' => {
                count += usize::from(depth > 0);
                depth += 1;
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                count += usize::from(depth > 0);
                depth += 1;
                i += 1;
            }
            b'<' => {
                count += usize::from(depth > 0);
                while i < n && bytes[i] != b'>' {
                    i += 1;
                }
            }
            b'/' => {
                // A name (`/stream` is not the keyword).
                count += usize::from(depth > 0);
                i += 1;
                while i < n && !delim(bytes[i]) {
                    i += 1;
                }
                continue;
            }
            b']' => depth = depth.saturating_sub(1),
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ if delim(b) => {}
            _ => {
                let start = i;
                while i < n && !delim(bytes[i]) {
                    i += 1;
                }
                if &bytes[start..i] == b"stream" {
                    // The data up to `endstream` is not PDF syntax.
                    match find(&bytes[i..], b"endstream") {
                        Some(at) => i += at + b"endstream".len(),
                        None => i = n,
                    }
                    depth = 0;
                    count = 0;
                } else if depth > 0 {
                    count += 1;
                }
                continue;
            }
        }
        if depth == 0 {
            largest = largest.max(count);
            count = 0;
        } else if count > stop_after {
            return count;
        }
        i += 1;
    }
    largest.max(count)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn load_error(e: LoError) -> PdfError {
    match e {
        LoError::InvalidPassword
        | LoError::Decryption(_)
        | LoError::UnsupportedSecurityHandler(_) => PdfError::Encrypted,
        LoError::Decompress(DecompressError::MemoryLimitExceeded { limit }) => {
            PdfError::Malformed(format!("a stream decompresses to more than {limit} bytes"))
        }
        other => PdfError::Malformed(other.to_string()),
    }
}
