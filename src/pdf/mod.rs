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

use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{DecompressError, Document, Error as LoError, LoadOptions};

/// Resource bounds applied while reading one PDF.
#[derive(Debug, Clone)]
pub struct PdfLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Most pages read; a document with more is rejected.
    pub max_pages: usize,
    /// Bound on the decompressed size of one stream (and of one page's content).
    pub max_decompressed_bytes: usize,
    /// Content-stream operations interpreted per page (Form XObjects included).
    pub max_ops_per_page: usize,
    /// Nesting depth of Form XObjects.
    pub max_xobject_depth: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        PdfLimits {
            max_bytes: 20 * 1024 * 1024,
            max_pages: 50,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_ops_per_page: 200_000,
            max_xobject_depth: 8,
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
    #[error("reading the PDF failed unexpectedly")]
    Panicked,
}

/// Read the pages (positioned words, image counts) and the AcroForm fields of a PDF.
pub fn read_pdf(bytes: &[u8], limits: &PdfLimits) -> Result<PdfDocument, PdfError> {
    if bytes.len() > limits.max_bytes {
        return Err(PdfError::TooLarge(limits.max_bytes));
    }
    match catch_unwind(AssertUnwindSafe(|| read_inner(bytes, limits))) {
        Ok(result) => result,
        Err(_) => Err(PdfError::Panicked),
    }
}

fn read_inner(bytes: &[u8], limits: &PdfLimits) -> Result<PdfDocument, PdfError> {
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_decompressed_bytes),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(load_error)?;
    // lopdf tries the empty user password itself; still encrypted means it failed.
    if doc.is_encrypted() {
        return Err(PdfError::Encrypted);
    }
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
