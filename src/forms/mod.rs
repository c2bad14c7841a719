//! The two forms: their field tables and labels, the layout reader that finds them in a page's
//! words (`layout`, with check marks read from the ink in `ink`), and the PDFs the office hands out.

pub mod ink;
pub mod labels;
pub mod layout;
pub mod pdf_writer;
pub mod signature;
pub mod spec;

/// Where one field was read: a page of the form's attachment and a rectangle on it, in
/// fractions of the page's width and height (origin top left), so that any rendering of the
/// page can be cropped to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldBox {
    pub field: String,
    pub page: usize,
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}
