// TEMPORARY placeholder until the PDF reader lands (will be replaced).
#[derive(Debug, Clone, Default)] pub struct PdfLimits { pub max_bytes: usize, pub max_pages: usize, pub max_decompressed_bytes: usize, pub max_ops_per_page: usize, pub max_xobject_depth: usize }
#[derive(Debug, Clone)] pub struct PdfDocument { pub pages: Vec<Page>, pub fields: Vec<AcroField> }
#[derive(Debug, Clone)] pub struct Page { pub number: usize, pub width: f32, pub height: f32, pub words: Vec<Word>, pub image_count: usize }
#[derive(Debug, Clone, PartialEq)] pub struct Word { pub text: String, pub x0: f32, pub y0: f32, pub x1: f32, pub y1: f32 }
#[derive(Debug, Clone, PartialEq)] pub struct AcroField { pub name: String, pub kind: FieldKind, pub value: Option<String>, pub page: Option<usize>, pub export_values: Vec<String> }
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub enum FieldKind { Text, Checkbox, Radio, Choice, Signature, Other }
#[derive(Debug, thiserror::Error)] pub enum PdfError { #[error("x")] Malformed(String) }
pub fn read_pdf(_b: &[u8], _l: &PdfLimits) -> Result<PdfDocument, PdfError> { Err(PdfError::Malformed("stub".into())) }
