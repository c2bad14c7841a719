//! Pieces shared by the scan generator, the OCR benchmark and tests/daemon.rs: printing a PDF page as a scanner
//! sees it, and wrapping a page image into a scanned PDF (one DCTDecode image per page).

use image::GrayImage;
use lopdf::{dictionary, Document, Object, Stream};
use tjid_intake::ocr::raster::{render_page_at, RasterLimits};

/// Page `page` of `pdf` at `dpi` in grey (poppler's pdftoppm).
pub fn print(pdf: &[u8], page: usize, dpi: u32) -> GrayImage {
    render_page_at(pdf, page, dpi, &RasterLimits::default())
        .expect("pdftoppm (poppler-utils) renders the page")
        .image
}

pub fn jpeg(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

/// An A4 PDF whose one page is `img` as a JPEG of `quality`, as a scanner writes it.
pub fn scanned_pdf(img: &GrayImage, quality: u8) -> Vec<u8> {
    let (w, h) = img.dimensions();
    pdf_of_jpegs(&[(w, h, jpeg(img, quality))])
}

/// An A4 PDF with one page per grey JPEG `(width, height, bytes)`.
pub fn pdf_of_jpegs(pages: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut kids: Vec<Object> = Vec::new();
    for (w, h, jpeg) in pages {
        let image_id = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => *w as i64, "Height" => *h as i64,
                "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
            },
            jpeg.clone(),
        ));
        let content = doc.add_object(Stream::new(
            dictionary! {},
            b"q 595 0 0 842 0 0 cm /Im0 Do Q".to_vec(),
        ));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Contents" => content, "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image_id } },
        });
        kids.push(page.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
