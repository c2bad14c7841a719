//! The two forms: their field tables and labels, and the PDFs the office hands out.

pub mod labels;
pub mod pdf_writer;
pub mod spec;
