//! Tests of the PDF reader: documents built with lopdf, and sample files made
//! by another producer (reportlab) under `fixtures/pdf-samples/`.

use std::time::Instant;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

use super::*;

const PAGE_H: f32 = 842.0;

/// A small PDF builder on top of lopdf.
struct Builder {
    doc: Document,
    pages_id: ObjectId,
    kids: Vec<Object>,
}

impl Builder {
    fn new() -> Builder {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        Builder {
            doc,
            pages_id,
            kids: Vec::new(),
        }
    }

    fn helvetica(&mut self) -> ObjectId {
        self.doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        })
    }

    fn font_resources(&mut self, fonts: &[(&str, ObjectId)]) -> Dictionary {
        let mut f = Dictionary::new();
        for (name, id) in fonts {
            f.set(name.as_bytes().to_vec(), Object::Reference(*id));
        }
        dictionary! { "Font" => f }
    }

    fn page(&mut self, content: &[u8], resources: Dictionary, extra: Dictionary) -> ObjectId {
        let content_id = self
            .doc
            .add_object(Stream::new(Dictionary::new(), content.to_vec()));
        let mut page = dictionary! {
            "Type" => "Page",
            "Parent" => self.pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Contents" => content_id,
            "Resources" => resources,
        };
        for (k, v) in extra.iter() {
            page.set(k.clone(), v.clone());
        }
        let id = self.doc.add_object(page);
        self.kids.push(id.into());
        id
    }

    fn finish(mut self, catalog_extra: Dictionary) -> Vec<u8> {
        let count = self.kids.len() as i64;
        self.doc.objects.insert(
            self.pages_id,
            Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => self.kids.clone(), "Count" => count },
            ),
        );
        let mut catalog = dictionary! { "Type" => "Catalog", "Pages" => self.pages_id };
        for (k, v) in catalog_extra.iter() {
            catalog.set(k.clone(), v.clone());
        }
        let catalog_id = self.doc.add_object(catalog);
        self.doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        self.doc.save_to(&mut out).unwrap();
        out
    }
}

/// One page with Helvetica (WinAnsiEncoding) as /F1.
fn helvetica_page(content: &[u8]) -> Vec<u8> {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    b.page(content, res, Dictionary::new());
    b.finish(Dictionary::new())
}

fn read(bytes: &[u8]) -> PdfDocument {
    read_pdf(bytes, &PdfLimits::default()).expect("readable PDF")
}

fn texts(page: &Page) -> Vec<&str> {
    page.words.iter().map(|w| w.text.as_str()).collect()
}

fn approx(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol
}

fn utf16(s: &str) -> Object {
    let mut v = vec![0xFE, 0xFF];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_be_bytes());
    }
    Object::String(v, StringFormat::Hexadecimal)
}

// ---------------------------------------------------------------- text layer

#[test]
fn winansi_text_with_positions() {
    let pdf = helvetica_page(b"BT /F1 12 Tf 72 700 Td (F\xf6rnamn: \xc5sa) Tj ET");
    let doc = read(&pdf);
    assert_eq!(doc.pages.len(), 1);
    let page = &doc.pages[0];
    assert_eq!((page.number, page.width, page.height), (1, 595.0, 842.0));
    assert_eq!(texts(page), ["Förnamn:", "Åsa"]);
    let w = &page.words[0];
    // Helvetica AFM: F ö r n a m n : = 4279/1000 em.
    assert!(approx(w.x0, 72.0, 0.01), "{w:?}");
    assert!(approx(w.x1, 72.0 + 4.279 * 12.0, 0.05), "{w:?}");
    let baseline = PAGE_H - 700.0;
    assert!(
        approx(w.y0, baseline - 0.8 * 12.0, 0.01) && approx(w.y1, baseline + 0.2 * 12.0, 0.01),
        "{w:?}"
    );
    let asa = &page.words[1];
    assert!(
        approx(asa.x0, 72.0 + (4.279 + 0.278) * 12.0, 0.05),
        "{asa:?}"
    );
    assert_eq!(page.image_count, 0);
    assert!(doc.fields.is_empty());
}

#[test]
fn explicit_widths_are_used() {
    let mut b = Builder::new();
    let widths: Vec<Object> = (32..=255).map(|_| Object::Integer(1000)).collect();
    let f = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "TrueType", "BaseFont" => "ABCDEF+Arial",
        "FirstChar" => 32, "LastChar" => 255, "Widths" => widths, "Encoding" => "WinAnsiEncoding",
    });
    let res = b.font_resources(&[("F1", f)]);
    b.page(
        b"BT /F1 10 Tf 100 100 Td (abc) Tj ET",
        res,
        Dictionary::new(),
    );
    let doc = read(&b.finish(Dictionary::new()));
    let w = &doc.pages[0].words[0];
    assert_eq!(w.text, "abc");
    assert!(approx(w.x1 - w.x0, 30.0, 0.01), "{w:?}");
}

#[test]
fn tj_kerning_keeps_word_and_large_gap_splits() {
    let pdf = helvetica_page(
        b"BT /F1 10 Tf 50 500 Td [(Per) -20 (son) 30 (nummer) -3000 (19121212-1212)] TJ ET",
    );
    let doc = read(&pdf);
    assert_eq!(texts(&doc.pages[0]), ["Personnummer", "19121212-1212"]);
    let w = &doc.pages[0].words;
    assert!(w[1].x0 - w[0].x1 > 25.0, "{w:?}");
}

#[test]
fn two_operators_without_gap_make_one_word() {
    // "Person" in Helvetica is 3.168 em: 38.016 pt at 12 pt.
    let pdf = helvetica_page(
        b"BT /F1 12 Tf 72 700 Td (Person) Tj (nummer) Tj ET\n\
          BT /F1 12 Tf 72 600 Td (Person) Tj ET BT /F1 12 Tf 110.016 600 Td (nummer:) Tj ET\n\
          BT /F1 12 Tf 72 500 Td (Person) Tj ET BT /F1 12 Tf 140 500 Td (nummer) Tj ET",
    );
    let doc = read(&pdf);
    assert_eq!(
        texts(&doc.pages[0]),
        ["Personnummer", "Personnummer:", "Person", "nummer"]
    );
}

#[test]
fn text_state_operators() {
    // TL + T*, ' and " move to the next line; Tz scales; Ts raises; TD sets leading.
    let pdf = helvetica_page(
        b"BT /F1 10 Tf 14 TL 100 700 Td (Rad1) Tj T* (Rad2) Tj (Rad3) ' 0 0 (Rad4) \" 0 -20 TD (Rad5) Tj T* (Rad6) Tj ET\n\
          BT /F1 10 Tf 50 Tz 100 300 Td (Smal) Tj ET\n\
          BT /F1 10 Tf 2 0 0 2 100 200 Tm (Stor) Tj ET",
    );
    let doc = read(&pdf);
    let p = &doc.pages[0];
    assert_eq!(
        texts(p),
        ["Rad1", "Rad2", "Rad3", "Rad4", "Rad5", "Rad6", "Smal", "Stor"]
    );
    let y: Vec<f32> = p.words.iter().map(|w| w.y1 - 2.0).collect();
    for (i, expected) in [700.0, 686.0, 672.0, 658.0, 638.0, 618.0]
        .iter()
        .enumerate()
    {
        assert!(approx(y[i], PAGE_H - expected, 0.01), "line {i}: {y:?}");
    }
    let smal = &p.words[6];
    let full_width = (0.667 + 0.833 + 0.556 + 0.222) * 10.0;
    assert!(
        approx(smal.x1 - smal.x0, full_width / 2.0, 0.05),
        "{smal:?}"
    );
    let stor = &p.words[7];
    assert!(approx(stor.y1 - stor.y0, 20.0, 0.01), "{stor:?}");
}

#[test]
fn invisible_ocr_text_is_read() {
    let pdf = helvetica_page(b"BT 3 Tr /F1 10 Tf 10 10 Td (Dold) Tj ET");
    assert_eq!(texts(&read(&pdf).pages[0]), ["Dold"]);
}

#[test]
fn form_xobject_with_matrix_and_own_resources() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let form_res = b.font_resources(&[("FX", f)]);
    let form = b.doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 200.into(), 50.into()],
            "Matrix" => vec![1.into(), 0.into(), 0.into(), 1.into(), 100.into(), 100.into()],
            "Resources" => form_res,
        },
        b"BT /FX 10 Tf 0 0 Td (Inne) Tj ET /Self Do".to_vec(),
    ));
    // The form draws itself: recursion must stop.
    if let Ok(Object::Stream(s)) = b.doc.get_object_mut(form) {
        let mut xo = Dictionary::new();
        xo.set("Self", form);
        if let Ok(Object::Dictionary(r)) = s.dict.get_mut(b"Resources") {
            r.set("XObject", xo);
        }
    }
    let res = dictionary! { "XObject" => dictionary! { "Fm1" => form } };
    b.page(b"q 1 0 0 1 50 50 cm /Fm1 Do Q", res, Dictionary::new());
    let doc = read(&b.finish(Dictionary::new()));
    let p = &doc.pages[0];
    assert!(!p.words.is_empty());
    assert!(p.words.iter().all(|w| w.text == "Inne"));
    let w = &p.words[0];
    assert!(approx(w.x0, 150.0, 0.01), "{w:?}");
    assert!(approx(w.y1, PAGE_H - 150.0 + 2.0, 0.01), "{w:?}");
    assert_eq!(p.image_count, 0);
}

#[test]
fn rotated_page() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    // Text drawn so that it reads horizontally once the page is turned.
    b.page(
        b"q 0 1 -1 0 595 0 cm BT /F1 12 Tf 72 100 Td (Roterad) Tj ET Q BT /F1 12 Tf 100 100 Td (Upp) Tj ET",
        res,
        dictionary! { "Rotate" => 90 },
    );
    let doc = read(&b.finish(Dictionary::new()));
    let p = &doc.pages[0];
    assert_eq!((p.width, p.height), (842.0, 595.0));
    assert_eq!(texts(p), ["Roterad", "Upp"]);
    let w = &p.words[0];
    assert!(
        approx(w.x0, 72.0, 0.01) && approx(w.y0, 495.0 - 9.6, 0.01) && approx(w.y1, 497.4, 0.01),
        "{w:?}"
    );
    // Unrotated user-space text runs downward on the displayed page.
    let up = &p.words[1];
    assert!(up.y1 - up.y0 > up.x1 - up.x0, "{up:?}");
    assert!(
        approx(up.x0, 100.0 - 2.4, 0.01) && approx(up.y0, 100.0, 0.01),
        "{up:?}"
    );
}

#[test]
fn crop_box_offset_and_rotate_180() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    b.page(
        b"BT /F1 10 Tf 100 200 Td (Text) Tj ET",
        res.clone(),
        dictionary! { "CropBox" => vec![50.into(), 100.into(), 545.into(), 742.into()] },
    );
    b.page(
        b"BT /F1 10 Tf 100 200 Td (Text) Tj ET",
        res,
        dictionary! { "Rotate" => 180 },
    );
    let doc = read(&b.finish(Dictionary::new()));
    let (p1, p2) = (&doc.pages[0], &doc.pages[1]);
    assert_eq!((p1.width, p1.height), (495.0, 642.0));
    let w = &p1.words[0];
    assert!(
        approx(w.x0, 50.0, 0.01) && approx(w.y1, 742.0 - 200.0 + 2.0, 0.01),
        "{w:?}"
    );
    let w = &p2.words[0];
    assert!(
        approx(w.x1, 495.0, 0.01) && approx(w.y0, 200.0 - 2.0, 0.01),
        "{w:?}"
    );
}

fn to_unicode_stream(b: &mut Builder, body: &str) -> ObjectId {
    let cmap = format!(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
         /CMapName /Test def /CMapType 2 def\n{body}\nendcmap CMapName currentdict /CMap defineresource pop end end"
    );
    b.doc
        .add_object(Stream::new(Dictionary::new(), cmap.into_bytes()))
}

#[test]
fn type0_identity_h_with_to_unicode() {
    let mut b = Builder::new();
    let tu = to_unicode_stream(
        &mut b,
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n\
         3 beginbfchar <0001> <00C5> <0002> <0073> <0007> <0020> endbfchar\n\
         2 beginbfrange <0003> <0004> <00E5> <0005> <0006> [<0061> <00F6>] endbfrange",
    );
    let cid = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "CIDFontType2", "BaseFont" => "ABCDEF+DejaVuSans",
        "CIDSystemInfo" => dictionary! { "Registry" => Object::string_literal("Adobe"), "Ordering" => Object::string_literal("Identity"), "Supplement" => 0 },
        "DW" => 500,
        "W" => vec![1.into(), vec![600.into(), 700.into()].into(), 5.into(), 6.into(), 800.into()],
    });
    let f = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type0", "BaseFont" => "ABCDEF+DejaVuSans",
        "Encoding" => "Identity-H", "DescendantFonts" => vec![cid.into()], "ToUnicode" => tu,
    });
    let res = b.font_resources(&[("F1", f)]);
    b.page(
        b"BT /F1 10 Tf 100 100 Td <0001000200050006000700030004> Tj ET",
        res,
        Dictionary::new(),
    );
    let doc = read(&b.finish(Dictionary::new()));
    let p = &doc.pages[0];
    assert_eq!(texts(p), ["Åsaö", "åæ"]);
    let w = &p.words[0];
    // 600 + 700 + 800 + 800 (W ranges) per mille at 10 pt.
    assert!(approx(w.x1 - w.x0, 29.0, 0.01), "{w:?}");
}

#[test]
fn differences_and_glyph_names() {
    let mut b = Builder::new();
    let f = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => dictionary! {
            "Type" => "Encoding", "BaseEncoding" => "WinAnsiEncoding",
            "Differences" => vec![
                128.into(), "aring".into(), "adieresis".into(), "odieresis".into(), "Aring".into(),
                "Adieresis".into(), "Odieresis".into(), 140.into(), "uni00E9".into(), "g00F6".into(), "u00C4".into(),
            ],
        },
    });
    let res = b.font_resources(&[("F1", f)]);
    b.page(
        b"BT /F1 10 Tf 100 100 Td <808182838485> Tj ( ) Tj <8C8D8E> Tj (\xe5) Tj ET",
        res,
        Dictionary::new(),
    );
    let doc = read(&b.finish(Dictionary::new()));
    assert_eq!(texts(&doc.pages[0]), ["åäöÅÄÖ", "éöÄå"]);
}

#[test]
fn symbol_fonts_marks() {
    let mut b = Builder::new();
    let z = b.doc.add_object(
        dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "ZapfDingbats" },
    );
    let w = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "TrueType", "BaseFont" => "Wingdings-Regular",
        "FirstChar" => 32, "LastChar" => 255, "Widths" => (32..=255).map(|_| Object::Integer(900)).collect::<Vec<_>>(),
    });
    let h = b.helvetica();
    let res = b.font_resources(&[("Z", z), ("W", w), ("H", h)]);
    b.page(
        b"BT /Z 10 Tf 100 700 Td (4) Tj /H 10 Tf ( Nytt) Tj ET\n\
          BT /Z 10 Tf 100 680 Td (3 8 7 n o) Tj ET\n\
          BT /W 10 Tf 100 660 Td <FD20A820FE20FC> Tj ET",
        res,
        Dictionary::new(),
    );
    let doc = read(&b.finish(Dictionary::new()));
    assert_eq!(
        texts(&doc.pages[0]),
        ["✔", "Nytt", "✓", "✘", "✗", "■", "❏", "☒", "☐", "☑", "✓"]
    );
}

#[test]
fn images_are_counted() {
    let mut b = Builder::new();
    let img = b.doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Image", "Width" => 1, "Height" => 1, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8 },
        vec![0],
    ));
    let unused = b.doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Image", "Width" => 1, "Height" => 1, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8 },
        vec![0],
    ));
    let form_res = dictionary! { "XObject" => dictionary! { "Im9" => img } };
    let form = b.doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 1.into(), 1.into()], "Resources" => form_res },
        b"q 10 0 0 10 0 0 cm /Im9 Do Q".to_vec(),
    ));
    let res =
        dictionary! { "XObject" => dictionary! { "Im1" => img, "Im2" => unused, "Fm" => form } };
    b.page(
        b"q 595 0 0 842 0 0 cm /Im1 Do Q /Fm Do BI /W 1 /H 1 /CS /G /BPC 8 ID \x00 EI",
        res,
        Dictionary::new(),
    );
    // A page that only draws an image through a form.
    let form_res2 = dictionary! { "XObject" => dictionary! { "Scan" => img } };
    let form2 = b.doc.add_object(Stream::new(
        dictionary! { "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 1.into(), 1.into()], "Resources" => form_res2 },
        b"/Scan Do".to_vec(),
    ));
    b.page(
        b"/F Do",
        dictionary! { "XObject" => dictionary! { "F" => form2 } },
        Dictionary::new(),
    );
    let doc = read(&b.finish(Dictionary::new()));
    // Im1 (= Im9) and Im2 are two distinct image objects, plus one inline image.
    assert_eq!(doc.pages[0].image_count, 3);
    assert_eq!(doc.pages[1].image_count, 1);
    assert!(doc.pages[0].words.is_empty());
}

#[test]
fn missing_font_and_odd_operands_do_not_break() {
    let pdf = helvetica_page(
        b"BT /Nope 10 Tf 10 10 Td (abc) Tj ET BT (noTf) Tj ET BT /F1 Tf 1 2 Td ET Q Q Q cm Tm [(x) /N] TJ\n\
          BT /F1 10 Tf 1e30 0 0 1e30 0 0 Tm (huge) Tj ET BT /F1 0 Tf (zero) Tj ET",
    );
    let doc = read(&pdf);
    let t = texts(&doc.pages[0]);
    assert!(t.contains(&"abc") && t.contains(&"noTf"), "{t:?}");
}

// ---------------------------------------------------------------- AcroForm

fn acroform_pdf() -> Vec<u8> {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    let page = b.page(
        b"BT /F1 10 Tf 50 800 Td (Best\xe4llning av eTj\xe4nstekort) Tj ET",
        res,
        Dictionary::new(),
    );

    let on_off = |on: &str| -> Dictionary {
        let mut n = Dictionary::new();
        n.set(on.as_bytes().to_vec(), Object::Null);
        n.set("Off", Object::Null);
        dictionary! { "N" => n }
    };
    let rect = || -> Object { vec![0.into(), 0.into(), 10.into(), 10.into()].into() };

    let text = b.doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "FT" => "Tx", "T" => Object::string_literal("fornamn"),
        "V" => utf16("Åsa Öberg"), "P" => page, "Rect" => rect(),
    });
    let empty = b.doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "FT" => "Tx", "T" => Object::string_literal("mobil"),
        "V" => Object::string_literal("  "), "P" => page, "Rect" => rect(),
    });

    let radio_id = b.doc.new_object_id();
    let mut kids = Vec::new();
    let mut annots: Vec<Object> = vec![text.into(), empty.into()];
    for (i, v) in ["Nytt", "Ersattning", "Fornyelse"].iter().enumerate() {
        let as_state = if i == 0 { *v } else { "Off" };
        let k = b.doc.add_object(dictionary! {
            "Type" => "Annot", "Subtype" => "Widget", "Parent" => radio_id, "AP" => on_off(v), "AS" => as_state, "Rect" => rect(),
        });
        kids.push(Object::from(k));
        annots.push(k.into());
    }
    b.doc.objects.insert(
        radio_id,
        Object::Dictionary(dictionary! {
            "FT" => "Btn", "Ff" => 1 << 15, "T" => Object::string_literal("bestallningstyp"), "V" => "Nytt", "Kids" => kids,
        }),
    );

    // A radio group with no /V: the kid whose /AS is on gives the value.
    let radio2 = b.doc.new_object_id();
    let mut kids2 = Vec::new();
    for v in ["Utlamningsstalle", "Utkorning"] {
        let as_state = if v == "Utkorning" { v } else { "Off" };
        let k = b.doc.add_object(dictionary! {
            "Type" => "Annot", "Subtype" => "Widget", "Parent" => radio2, "AP" => on_off(v), "AS" => as_state, "Rect" => rect(),
        });
        kids2.push(Object::from(k));
    }
    b.doc.objects.insert(
        radio2,
        Object::Dictionary(dictionary! { "FT" => "Btn", "Ff" => 1 << 15, "T" => Object::string_literal("utlamning"), "Kids" => kids2 }),
    );

    let checkbox = b.doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "FT" => "Btn", "T" => Object::string_literal("klippt_kort"),
        "AS" => "Ja", "AP" => on_off("Ja"), "Rect" => rect(),
    });
    annots.push(checkbox.into());
    let checkbox_off = b.doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "FT" => "Btn", "T" => Object::string_literal("av"),
        "V" => "Off", "AS" => "Off", "AP" => on_off("Ja"), "Rect" => rect(),
    });
    // Name with #xx escapes in the file (lopdf writes non-ASCII name bytes escaped).
    let escaped = b.doc.add_object(dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "FT" => "Btn", "Ff" => 1 << 15, "T" => Object::string_literal("esc"),
        "V" => Object::Name("F\u{f6}rnyelse".as_bytes().to_vec()), "AP" => on_off("F\u{f6}rnyelse"), "Rect" => rect(),
    });

    // Nested names, inherited /FT, PDFDocEncoding value.
    let parent = b.doc.new_object_id();
    let child = b.doc.add_object(dictionary! {
        "Parent" => parent, "T" => Object::string_literal("namn"), "V" => Object::String(b"V\xe5rdcentralen".to_vec(), StringFormat::Literal),
        "Subtype" => "Widget", "Rect" => rect(),
    });
    b.doc.objects.insert(
        parent,
        Object::Dictionary(dictionary! { "T" => Object::string_literal("vardenhet"), "FT" => "Tx", "Kids" => vec![child.into()] }),
    );

    // A cycle through /Kids.
    let loop_a = b.doc.new_object_id();
    let loop_b = b.doc.new_object_id();
    b.doc.objects.insert(
        loop_a,
        Object::Dictionary(dictionary! { "T" => Object::string_literal("loop"), "FT" => "Tx", "Kids" => vec![loop_b.into()] }),
    );
    b.doc.objects.insert(
        loop_b,
        Object::Dictionary(dictionary! { "T" => Object::string_literal("b"), "Kids" => vec![loop_a.into(), loop_b.into()] }),
    );

    let choice = b.doc.add_object(dictionary! {
        "FT" => "Ch", "T" => Object::string_literal("val"), "Opt" => vec![Object::string_literal("A"), Object::string_literal("B")],
        "V" => vec![Object::string_literal("A"), Object::string_literal("B")], "Subtype" => "Widget", "Rect" => rect(),
    });
    let sig = b.doc.add_object(dictionary! { "FT" => "Sig", "T" => Object::string_literal("underskrift"), "Subtype" => "Widget" });
    let push = b.doc.add_object(dictionary! { "FT" => "Btn", "Ff" => 1 << 16, "T" => Object::string_literal("skicka"), "Subtype" => "Widget" });

    if let Ok(Object::Dictionary(p)) = b.doc.get_object_mut(page) {
        p.set("Annots", annots);
    }
    let fields: Vec<Object> = [
        text,
        empty,
        radio_id,
        radio2,
        checkbox,
        checkbox_off,
        escaped,
        parent,
        loop_a,
        choice,
        sig,
        push,
    ]
    .iter()
    .map(|id| Object::Reference(*id))
    .collect();
    b.finish(dictionary! { "AcroForm" => dictionary! { "Fields" => fields } })
}

#[test]
fn acroform_fields() {
    let doc = read(&acroform_pdf());
    let get = |name: &str| {
        doc.fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} in {:#?}", doc.fields))
    };

    let f = get("fornamn");
    assert_eq!(
        (f.kind, f.value.as_deref(), f.page),
        (FieldKind::Text, Some("Åsa Öberg"), Some(1))
    );
    assert_eq!(get("mobil").value, None);

    let r = get("bestallningstyp");
    assert_eq!(
        (r.kind, r.value.as_deref(), r.page),
        (FieldKind::Radio, Some("Nytt"), Some(1))
    );
    assert_eq!(r.export_values, ["Nytt", "Ersattning", "Fornyelse"]);

    let u = get("utlamning");
    assert_eq!(
        (u.kind, u.value.as_deref(), u.page),
        (FieldKind::Radio, Some("Utkorning"), None)
    );

    let c = get("klippt_kort");
    assert_eq!(
        (c.kind, c.value.as_deref(), c.page),
        (FieldKind::Checkbox, Some("Ja"), Some(1))
    );
    assert_eq!(c.export_values, ["Ja"]);
    assert_eq!(get("av").value, None);
    assert_eq!(get("esc").value.as_deref(), Some("Förnyelse"));

    let n = get("vardenhet.namn");
    assert_eq!(
        (n.kind, n.value.as_deref()),
        (FieldKind::Text, Some("Vårdcentralen"))
    );

    let ch = get("val");
    assert_eq!(
        (ch.kind, ch.value.as_deref()),
        (FieldKind::Choice, Some("A, B"))
    );
    assert_eq!(ch.export_values, ["A", "B"]);
    assert_eq!(get("underskrift").kind, FieldKind::Signature);
    assert_eq!(get("skicka").kind, FieldKind::Other);
    assert!(doc
        .fields
        .iter()
        .all(|f| !f.name.starts_with("loop.b.loop")));
    assert_eq!(texts(&doc.pages[0]), ["Beställning", "av", "eTjänstekort"]);
}

// ---------------------------------------------------------------- robustness

#[test]
fn garbage_is_malformed() {
    for bytes in [
        &b""[..],
        b"hello world",
        b"%PDF-1.4\n garbage \x00\xff",
        &[0xffu8; 4096],
    ] {
        assert!(
            matches!(
                read_pdf(bytes, &PdfLimits::default()),
                Err(PdfError::Malformed(_))
            ),
            "{bytes:?}"
        );
    }
}

#[test]
fn truncated_files_never_panic() {
    let pdf = acroform_pdf();
    for cut in (0..pdf.len()).step_by(97) {
        match read_pdf(&pdf[..cut], &PdfLimits::default()) {
            Ok(_) | Err(PdfError::Malformed(_)) => {}
            Err(e) => panic!("cut at {cut}: {e:?}"),
        }
    }
    // Cut before the page tree and catalog (written last by lopdf): nothing to read.
    assert!(matches!(
        read_pdf(&pdf[..40], &PdfLimits::default()),
        Err(PdfError::Malformed(_))
    ));
}

#[test]
fn mutated_files_never_panic() {
    let pdf = acroform_pdf();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300 {
        let mut m = pdf.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % m.len();
            m[i] = (seed >> 32) as u8;
        }
        let r = read_pdf(&m, &PdfLimits::default());
        assert!(!matches!(r, Err(PdfError::Panicked)));
    }
}

/// A zlib stream of `n` zero bytes built by hand (fixed Huffman codes:
/// one literal, then length-258 distance-1 matches), about 13 bits per 258 bytes.
fn zlib_zeros(n: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, n: u32) {
            self.acc |= (value as u64) << self.len;
            self.len += n;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u32, n: u32) {
            let rev = code.reverse_bits() >> (32 - n);
            self.put(rev, n);
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        len: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    b.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        b.code(0xC5, 8); // length code 285 = 258
        b.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    if b.len > 0 {
        b.put(0, 8 - b.len);
    }
    let (a, s) = (1u32, (n % 65521) as u32);
    b.out.extend_from_slice(&((s << 16) | a).to_be_bytes());
    b.out
}

#[test]
fn flate_bomb_in_page_content_is_an_error() {
    let bomb = zlib_zeros(200 * 1024 * 1024);
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    let content = b.doc.add_object(
        Stream::new(dictionary! { "Filter" => "FlateDecode" }, bomb).with_compression(false),
    );
    let page = b.page(b"", res, Dictionary::new());
    if let Ok(Object::Dictionary(p)) = b.doc.get_object_mut(page) {
        p.set("Contents", content);
    }
    let pdf = b.finish(Dictionary::new());
    let start = Instant::now();
    let r = read_pdf(
        &pdf,
        &PdfLimits {
            max_decompressed_bytes: 16 * 1024 * 1024,
            ..PdfLimits::default()
        },
    );
    assert!(matches!(r, Err(PdfError::Malformed(_))), "{r:?}");
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn flate_bomb_in_object_stream_is_an_error() {
    let bomb = zlib_zeros(100 * 1024 * 1024);
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let obj1 = pdf.len();
    pdf.extend_from_slice(b"1 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length ");
    pdf.extend_from_slice(bomb.len().to_string().as_bytes());
    pdf.extend_from_slice(b" >>\nstream\n");
    pdf.extend_from_slice(&bomb);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 3\n0000000000 65535 f \n{obj1:010} 00000 n \n0000000000 00000 f \ntrailer\n<< /Size 3 /Root 2 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes());
    // Object 2 (the catalog) lives only in the object stream, as an xref stream would say.
    let start = Instant::now();
    let r = read_pdf(
        &pdf,
        &PdfLimits {
            max_object_stream_bytes: 8 * 1024 * 1024,
            ..PdfLimits::default()
        },
    );
    assert!(matches!(r, Err(PdfError::Malformed(_))), "{r:?}");
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn limits_pages_size_and_ops() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    for _ in 0..60 {
        b.page(
            b"BT /F1 10 Tf 10 10 Td (x) Tj ET",
            res.clone(),
            Dictionary::new(),
        );
    }
    let pdf = b.finish(Dictionary::new());
    assert!(matches!(
        read_pdf(&pdf, &PdfLimits::default()),
        Err(PdfError::TooManyPages(50))
    ));
    assert_eq!(
        read_pdf(
            &pdf,
            &PdfLimits {
                max_pages: 60,
                ..PdfLimits::default()
            }
        )
        .unwrap()
        .pages
        .len(),
        60
    );
    assert!(matches!(
        read_pdf(
            &pdf,
            &PdfLimits {
                max_bytes: 100,
                ..PdfLimits::default()
            }
        ),
        Err(PdfError::TooLarge(100))
    ));

    let mut content = b"BT /F1 10 Tf 10 10 Td".to_vec();
    for _ in 0..300_000 {
        content.extend_from_slice(b" (a) Tj");
    }
    content.extend_from_slice(b" ET");
    let pdf = helvetica_page(&content);
    let start = Instant::now();
    let doc = read_pdf(
        &pdf,
        &PdfLimits {
            max_ops_per_page: 1000,
            ..PdfLimits::default()
        },
    )
    .unwrap();
    assert!(start.elapsed().as_secs() < 5);
    // Operands count too: `BT /F1 10 Tf 10 10 Td` is 7 tokens, each `(a) Tj` two.
    assert_eq!(doc.pages[0].words[0].text.len(), (1000 - 7) / 2);
}

#[test]
fn broken_page_content_gives_no_words_but_other_pages_read() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    let bad = b.doc.add_object(
        Stream::new(
            dictionary! { "Filter" => "FlateDecode" },
            b"not zlib at all".to_vec(),
        )
        .with_compression(false),
    );
    let page = b.page(b"", res.clone(), Dictionary::new());
    if let Ok(Object::Dictionary(p)) = b.doc.get_object_mut(page) {
        p.set("Contents", bad);
    }
    b.page(b"BT /F1 10 Tf 10 10 Td (ok) Tj ET", res, Dictionary::new());
    let doc = read(&b.finish(Dictionary::new()));
    assert!(doc.pages[0].words.is_empty());
    assert_eq!(texts(&doc.pages[1]), ["ok"]);
}

fn encrypted_pdf(user_password: &str) -> Vec<u8> {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    b.page(
        b"BT /F1 10 Tf 10 10 Td (Hemlig) Tj ET",
        res,
        Dictionary::new(),
    );
    let bytes = b.finish(Dictionary::new());
    let mut doc = Document::load_mem(&bytes).unwrap();
    doc.trailer.set(
        "ID",
        vec![
            Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal),
            Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal),
        ],
    );
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: lopdf::Permissions::default(),
    };
    let state = lopdf::EncryptionState::try_from(version).unwrap();
    doc.encrypt(&state).unwrap();
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn encrypted_with_empty_user_password_is_read() {
    let doc = read(&encrypted_pdf(""));
    assert_eq!(texts(&doc.pages[0]), ["Hemlig"]);
}

#[test]
fn encrypted_with_password_is_rejected() {
    assert!(matches!(
        read_pdf(&encrypted_pdf("hemligt"), &PdfLimits::default()),
        Err(PdfError::Encrypted)
    ));
}

// ---------------------------------------------------------------- samples from reportlab

fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/{}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pdf-samples"),
        name
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn find<'a>(page: &'a Page, text: &str) -> &'a Word {
    page.words
        .iter()
        .find(|w| w.text == text)
        .unwrap_or_else(|| panic!("{text} not in {:?}", texts(page)))
}

#[test]
fn sample_truetype_table_layout() {
    let doc = read(&sample("table_dejavu.pdf"));
    let p = &doc.pages[0];
    let all = texts(p).join(" ");
    for s in [
        "Beställning av eTjänstekort TJID-101",
        "Vårdgivare Vårdbolaget Väst AB Organisationsnummer 556016-0680",
        "Förnamn Åsa Efternamn Öberg",
        "Vårdenhetens HSA-id SE5560160680-E000000000101",
        "Beställningen avser: ☒ Nytt kort ☐ Ersättningskort ☐ Förnyelse",
    ] {
        assert!(all.contains(s), "{s:?} not in {all:?}");
    }
    // The value sits below its label in the same cell.
    let (label, value) = (find(p, "Förnamn"), find(p, "Åsa"));
    assert!(
        approx(label.x0, value.x0, 0.5) && value.y0 > label.y1 && value.y0 - label.y1 < 20.0,
        "{label:?} {value:?}"
    );
    let (label, value) = (find(p, "Efternamn"), find(p, "Öberg"));
    assert!(
        approx(label.x0, value.x0, 0.5) && value.y0 > label.y1,
        "{label:?} {value:?}"
    );
    // TJID-101 is right-aligned at x = 595.27 - 50.
    let id = find(p, "TJID-101");
    assert!(approx(id.x1, 545.28, 0.5), "{id:?}");
}

#[test]
fn sample_helvetica_same_line_and_rotated_page() {
    let doc = read(&sample("labels_helvetica.pdf"));
    assert_eq!(doc.pages.len(), 2);
    let p = &doc.pages[0];
    let all = texts(p).join(" ");
    assert!(
        all.contains("Kortinnehavarens namn: Åsa Öberg Personnummer: 19121212-1212"),
        "{all}"
    );
    assert!(
        all.contains("Vårdenhet: Vårdcentralen Älvängen Klippt kort mottaget: Ja"),
        "{all}"
    );
    let (label, value) = (find(p, "Personnummer:"), find(p, "19121212-1212"));
    assert!(
        approx(label.y0, value.y0, 0.01) && approx(value.x0, 220.0, 0.01),
        "{label:?} {value:?}"
    );
    // reportlab turns the page with a landscape MediaBox and /Rotate 90: it displays as
    // portrait, and the text (horizontal in user space) runs down the page.
    let r = &doc.pages[1];
    assert_eq!((r.width.round(), r.height.round()), (595.0, 842.0));
    assert_eq!(texts(r), ["Roterad", "sida"]);
    let w = &r.words[0];
    assert!(
        w.y1 - w.y0 > w.x1 - w.x0 && approx(w.y0, 50.0, 0.01),
        "{w:?}"
    );
}

#[test]
fn sample_reportlab_acroform() {
    let doc = read(&sample("acroform_reportlab.pdf"));
    let get = |name: &str| {
        doc.fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} in {:#?}", doc.fields))
    };
    assert_eq!(get("fornamn").value.as_deref(), Some("Åsa"));
    assert_eq!(get("efternamn").value.as_deref(), Some("Öberg"));
    assert_eq!(get("mobil").value, None);
    let r = get("bestallningstyp");
    assert_eq!(
        (r.kind, r.value.as_deref(), r.page),
        (FieldKind::Radio, Some("Nytt"), Some(1))
    );
    assert_eq!(r.export_values, ["Nytt", "Ersattning", "Fornyelse"]);
    let c = get("klippt_kort");
    assert_eq!(c.kind, FieldKind::Checkbox);
    assert!(c.value.is_some(), "{c:?}");
    assert!(texts(&doc.pages[0]).contains(&"Förnamn"));
}

#[test]
fn embedded_type1_builtin_encoding() {
    let mut b = Builder::new();
    let program = b"%!PS-AdobeFont-1.0: CMMI10\n/Encoding 256 array\n0 1 255 {1 index exch /.notdef put} for\n\
        dup 58 /period put\ndup 59 /comma put\ndup 65 /A put\nreadonly def\ncurrentfile eexec\n\x01\x02\x03"
        .to_vec();
    let len1 = program.len() - 3;
    let file = b.doc.add_object(Stream::new(
        dictionary! { "Length1" => len1 as i64, "Length2" => 3, "Length3" => 0 },
        program,
    ));
    let desc = b.doc.add_object(dictionary! { "Type" => "FontDescriptor", "FontName" => "ABCDEF+CMMI10", "Flags" => 4, "FontFile" => file });
    let f = b.doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "ABCDEF+CMMI10", "FontDescriptor" => desc,
        "FirstChar" => 58, "LastChar" => 65, "Widths" => vec![Object::Integer(278); 8],
    });
    let res = b.font_resources(&[("F1", f)]);
    b.page(b"BT /F1 10 Tf 10 10 Td (A:;) Tj ET", res, Dictionary::new());
    let doc = read(&b.finish(Dictionary::new()));
    assert_eq!(texts(&doc.pages[0]), ["A.,"]);
}

/// The counting load keeps every object as lopdf's own load does, streams and objects from
/// object streams included, and refuses a document with more objects than the bound.
#[test]
fn the_bounded_load_keeps_every_object_and_counts_them() {
    let mut b = Builder::new();
    let f = b.helvetica();
    let res = b.font_resources(&[("F1", f)]);
    for _ in 0..3 {
        b.page(
            b"BT /F1 12 Tf 72 720 Td (Hej) Tj ET",
            res.clone(),
            Dictionary::new(),
        );
    }
    let plain = b.finish(Dictionary::new());
    let mut doc = Document::load_mem(&plain).unwrap();
    let mut compressed = Vec::new();
    let options = lopdf::SaveOptions::builder()
        .use_object_streams(true)
        .use_xref_streams(true)
        .build();
    doc.save_with_options(&mut compressed, options).unwrap();
    let samples = [
        "acroform_reportlab.pdf",
        "labels_helvetica.pdf",
        "table_dejavu.pdf",
    ];
    let mut inputs = vec![plain, compressed];
    inputs.extend(samples.iter().map(|n| sample(n)));
    for bytes in &inputs {
        let ours = load(bytes, &PdfLimits::default()).unwrap();
        let theirs = Document::load_mem(bytes).unwrap();
        assert!(!ours.objects.is_empty());
        assert_eq!(ours.objects.len(), theirs.objects.len());
        for (id, object) in &theirs.objects {
            assert!(
                ours.objects.get(id) == Some(object),
                "object {id:?} differs"
            );
        }
        let n = theirs.objects.len();
        let tight = PdfLimits {
            max_objects: n - 1,
            ..PdfLimits::default()
        };
        assert!(
            matches!(load(bytes, &tight), Err(PdfError::TooManyObjects(_))),
            "{n} objects over a bound of {}",
            n - 1
        );
    }
}
