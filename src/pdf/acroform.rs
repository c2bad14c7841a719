//! AcroForm field reading: walks `/AcroForm /Fields` and `/Kids`, joins the
//! partial names and resolves inherited `/FT`, `/V` and `/Ff`.

use std::collections::{HashMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::fonts::deref;
use super::{tables, AcroField, FieldKind};

const MAX_DEPTH: usize = 32;
const MAX_FIELDS: usize = 5_000;
const MAX_KIDS: usize = 10_000;

const FF_RADIO: i64 = 1 << 15;
const FF_PUSHBUTTON: i64 = 1 << 16;

/// The value given to a signature field that holds a signature.
pub const SIGNED: &str = "signed";

#[derive(Clone, Copy)]
struct Inherited<'a> {
    ft: Option<&'a [u8]>,
    v: Option<&'a Object>,
    ff: i64,
}

struct Walker<'a> {
    doc: &'a Document,
    page_numbers: HashMap<ObjectId, usize>,
    annot_pages: Option<HashMap<ObjectId, usize>>,
    page_ids: &'a [ObjectId],
    visited: HashSet<ObjectId>,
    fields: Vec<AcroField>,
    visits: usize,
}

/// Read all terminal fields of the document's AcroForm (empty when there is none).
pub(super) fn read_fields(doc: &Document, page_ids: &[ObjectId]) -> Vec<AcroField> {
    let Ok(catalog) = doc.catalog() else {
        return Vec::new();
    };
    let Ok(acroform) = catalog.get(b"AcroForm").map(|o| deref(doc, o)) else {
        return Vec::new();
    };
    let Ok(acroform) = acroform.as_dict() else {
        return Vec::new();
    };
    let Ok(Object::Array(fields)) = acroform.get(b"Fields").map(|o| deref(doc, o)) else {
        return Vec::new();
    };
    let mut w = Walker {
        doc,
        page_numbers: page_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i + 1))
            .collect(),
        annot_pages: None,
        page_ids,
        visited: HashSet::new(),
        fields: Vec::new(),
        visits: 0,
    };
    let root = Inherited {
        ft: None,
        v: None,
        ff: 0,
    };
    for f in fields.iter().take(MAX_KIDS) {
        w.walk(f, "", root, 0);
    }
    w.fields
}

impl<'a> Walker<'a> {
    fn resolve(&mut self, obj: &'a Object) -> Option<(Option<ObjectId>, &'a Dictionary)> {
        match obj {
            Object::Reference(id) => {
                if !self.visited.insert(*id) {
                    return None;
                }
                match deref(self.doc, obj) {
                    Object::Dictionary(d) => Some((Some(*id), d)),
                    _ => None,
                }
            }
            Object::Dictionary(d) => Some((None, d)),
            _ => None,
        }
    }

    fn walk(&mut self, obj: &'a Object, parent_name: &str, inh: Inherited<'a>, depth: usize) {
        self.visits += 1;
        if depth > MAX_DEPTH || self.fields.len() >= MAX_FIELDS || self.visits > MAX_KIDS * 4 {
            return;
        }
        let Some((id, dict)) = self.resolve(obj) else {
            return;
        };
        let doc = self.doc;
        let partial = dict.get(b"T").ok().map(|o| text_string(deref(doc, o)));
        let name = match (parent_name.is_empty(), partial) {
            (_, None) => parent_name.to_string(),
            (true, Some(p)) => p,
            (false, Some(p)) => format!("{parent_name}.{p}"),
        };
        let here = Inherited {
            ft: match dict.get(b"FT").map(|o| deref(doc, o)) {
                Ok(Object::Name(n)) => Some(n.as_slice()),
                _ => inh.ft,
            },
            v: match dict.get(b"V") {
                Ok(v) => Some(deref(doc, v)),
                Err(_) => inh.v,
            },
            ff: match dict.get(b"Ff").map(|o| deref(doc, o)) {
                Ok(Object::Integer(i)) => *i,
                _ => inh.ff,
            },
        };

        let mut field_kids: Vec<&'a Object> = Vec::new();
        let mut widgets: Vec<(Option<ObjectId>, &'a Dictionary)> = Vec::new();
        if let Ok(Object::Array(kids)) = dict.get(b"Kids").map(|o| deref(doc, o)) {
            for kid in kids.iter().take(MAX_KIDS) {
                let kd = match deref(doc, kid) {
                    Object::Dictionary(d) => d,
                    _ => continue,
                };
                if kd.has(b"T") {
                    field_kids.push(kid);
                } else if let Some(w) = self.resolve(kid) {
                    widgets.push(w);
                }
            }
        }
        for kid in &field_kids {
            self.walk(kid, &name, here, depth + 1);
        }
        if !field_kids.is_empty() && widgets.is_empty() {
            return;
        }
        if widgets.is_empty() {
            widgets.push((id, dict));
        }
        if self.fields.len() >= MAX_FIELDS {
            return;
        }
        let field = self.make_field(name, dict, here, &widgets);
        self.fields.push(field);
    }

    fn make_field(
        &mut self,
        name: String,
        dict: &'a Dictionary,
        inh: Inherited<'a>,
        widgets: &[(Option<ObjectId>, &'a Dictionary)],
    ) -> AcroField {
        let doc = self.doc;
        let kind = match inh.ft {
            Some(b"Tx") => FieldKind::Text,
            Some(b"Btn") if inh.ff & FF_PUSHBUTTON != 0 => FieldKind::Other,
            Some(b"Btn") if inh.ff & FF_RADIO != 0 => FieldKind::Radio,
            Some(b"Btn") => FieldKind::Checkbox,
            Some(b"Ch") => FieldKind::Choice,
            Some(b"Sig") => FieldKind::Signature,
            _ => FieldKind::Other,
        };
        let opt: Vec<String> = match dict.get(b"Opt").map(|o| deref(doc, o)) {
            Ok(Object::Array(a)) => a
                .iter()
                .take(MAX_KIDS)
                .map(|o| match deref(doc, o) {
                    // [export display] pairs: the export value counts.
                    Object::Array(pair) => pair
                        .first()
                        .map(|e| text_string(deref(doc, e)))
                        .unwrap_or_default(),
                    other => text_string(other),
                })
                .collect(),
            _ => Vec::new(),
        };
        // Button states may be indexes into /Opt ("0", "1", ...).
        let map_opt = |s: String| -> String {
            if !opt.is_empty() {
                if let Ok(i) = s.parse::<usize>() {
                    if let Some(o) = opt.get(i) {
                        return o.clone();
                    }
                }
            }
            s
        };

        let mut export_values = Vec::new();
        let value = match kind {
            FieldKind::Checkbox | FieldKind::Radio => {
                for (_, w) in widgets {
                    if let Some(Object::Dictionary(n)) = w
                        .get(b"AP")
                        .ok()
                        .map(|o| deref(doc, o))
                        .and_then(|ap| ap.as_dict().ok())
                        .and_then(|ap| ap.get(b"N").ok())
                        .map(|o| deref(doc, o))
                    {
                        for (k, _) in n.iter() {
                            if k.as_slice() != b"Off" {
                                let v = map_opt(name_text(k));
                                if !v.is_empty() && !export_values.contains(&v) {
                                    export_values.push(v);
                                }
                            }
                        }
                    }
                }
                let v = match inh.v {
                    Some(Object::Name(n)) => Some(name_text(n)),
                    Some(o @ Object::String(..)) => Some(text_string(o)),
                    _ => None,
                };
                let v = match v {
                    Some(v) => Some(v),
                    None => widgets.iter().find_map(|(_, w)| {
                        match w.get(b"AS").map(|o| deref(doc, o)) {
                            Ok(Object::Name(n)) if n.as_slice() != b"Off" && !n.is_empty() => {
                                Some(name_text(n))
                            }
                            _ => None,
                        }
                    }),
                };
                v.filter(|v| v != "Off" && !v.is_empty()).map(map_opt)
            }
            FieldKind::Text | FieldKind::Choice | FieldKind::Other => {
                if kind == FieldKind::Choice {
                    export_values = opt.clone();
                }
                match inh.v {
                    Some(o @ Object::String(..)) => Some(text_string(o)),
                    Some(Object::Array(a)) => {
                        let parts: Vec<String> = a
                            .iter()
                            .map(|o| text_string(deref(doc, o)))
                            .filter(|s| !s.trim().is_empty())
                            .collect();
                        Some(parts.join(", "))
                    }
                    Some(Object::Name(n)) if kind != FieldKind::Other => Some(name_text(n)),
                    _ => None,
                }
                .filter(|s| !s.trim().is_empty())
            }
            // A filled signature field's value is a signature dictionary (SPEC §2.2): its
            // contents are not checked here, only that the field was signed.
            FieldKind::Signature => match inh.v.map(|o| deref(doc, o)) {
                Some(Object::Dictionary(d)) if !d.is_empty() => Some(SIGNED.to_string()),
                _ => None,
            },
        };

        let page = self.page_of(widgets);
        AcroField {
            name,
            kind,
            value,
            page,
            export_values,
        }
    }

    fn page_of(&mut self, widgets: &[(Option<ObjectId>, &'a Dictionary)]) -> Option<usize> {
        for (_, w) in widgets {
            if let Ok(Object::Reference(p)) = w.get(b"P") {
                if let Some(n) = self.page_numbers.get(p) {
                    return Some(*n);
                }
            }
        }
        if self.annot_pages.is_none() {
            let mut map = HashMap::new();
            for (i, pid) in self.page_ids.iter().enumerate() {
                let Ok(page) = self.doc.get_dictionary(*pid) else {
                    continue;
                };
                if let Ok(Object::Array(annots)) = page.get(b"Annots").map(|o| deref(self.doc, o)) {
                    for a in annots.iter().take(MAX_KIDS) {
                        if let Object::Reference(id) = a {
                            map.entry(*id).or_insert(i + 1);
                        }
                    }
                }
            }
            self.annot_pages = Some(map);
        }
        let map = self.annot_pages.as_ref()?;
        widgets
            .iter()
            .find_map(|(id, _)| id.and_then(|id| map.get(&id).copied()))
    }
}

/// A PDF text string: UTF-16BE with BOM, UTF-8 with BOM, or PDFDocEncoding.
pub(super) fn text_string(obj: &Object) -> String {
    match obj {
        Object::String(bytes, _) => match lopdf::decode_text_string(obj) {
            Ok(s) => s,
            Err(_) if bytes.starts_with(b"\xFE\xFF") => {
                let units: Vec<u16> = bytes[2..]
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            }
            Err(_) => pdfdoc(bytes),
        },
        Object::Name(n) => name_text(n),
        _ => String::new(),
    }
}

/// A name's text (escapes are already decoded by the parser): UTF-8 when
/// valid, else PDFDocEncoding.
fn name_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => pdfdoc(bytes),
    }
}

fn pdfdoc(bytes: &[u8]) -> String {
    bytes
        .iter()
        .filter_map(|&b| match tables::PDF_DOC[b as usize] {
            0 if b >= 0x20 => Some(b as char),
            0 => None,
            u => char::from_u32(u as u32),
        })
        .collect()
}
