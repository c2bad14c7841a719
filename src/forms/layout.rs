//! Reads form fields out of positioned words (a PDF text layer, later OCR): words → lines →
//! segments; titles split pages into forms; a label's value is the rest of its segment, the
//! next segment on the same line, or the words directly below it in its column.

use std::collections::BTreeMap;

use crate::forms::ink::{read_marks, InkImage, Rect};
use crate::forms::labels::{fold, near_option, title_kind, LabelSet, LabelTarget};
use crate::forms::signature::{read_signature, SignatureReading};
use crate::forms::spec::SIGNATURE_KEY;
use crate::forms::spec::{FieldSpec, FieldType, FormKind, NO, YES};
use crate::forms::FieldBox;

/// A word with its box in points, origin top-left.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    /// 0–100; 100 for a text layer.
    pub confidence: f32,
}

/// The words of one page, and the page's size in points (for the crops staff see).
#[derive(Debug, Clone)]
pub struct PageWords {
    pub number: usize,
    pub width: f32,
    pub height: f32,
    pub words: Vec<Word>,
    /// The page's image, where it is at hand, for check marks drawn rather than written.
    pub ink: Option<InkImage>,
    /// A text PDF page's painted shapes (empty for a scan), for the signature box.
    pub graphics: Vec<crate::pdf::Graphic>,
}

/// Field values read from one form, before validation. Text as read; choices as the
/// comma-separated export values marked (`""` when none); `klippt_kort` as `Ja`/`Nej`.
/// A field whose label was not found is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct RawForm {
    pub kind: FormKind,
    pub values: BTreeMap<&'static str, String>,
    /// 1-based page numbers the form covers.
    pub pages: Vec<usize>,
    /// Fields whose words were read with low OCR confidence.
    pub low_confidence: Vec<&'static str>,
    /// Pages of this form that were read by OCR (empty for a text layer or AcroForm). The check
    /// stage then tries the usual OCR confusions in numeric fields (check.rs).
    pub ocr_pages: Vec<usize>,
    /// Where each field was read (its label and value), for the crops staff see.
    pub boxes: Vec<FieldBox>,
    /// A choice had no mark in its text and its page image was not at hand: the caller renders
    /// the page and reads the form again (marks drawn as graphics on a text PDF).
    pub needs_ink: bool,
    /// An order's signature box (SPEC §2.2); `None` for a deregistration or a notice in a body.
    pub signature: Option<SignatureReading>,
}

impl PageWords {
    /// Whether the words come from a PDF's text layer: all of them at confidence 100, which OCR
    /// never gives a whole page.
    fn is_text_layer(&self) -> bool {
        self.words.iter().all(|w| w.confidence >= 100.0)
    }
}

impl RawForm {
    pub fn new(kind: FormKind) -> RawForm {
        RawForm {
            kind,
            values: BTreeMap::new(),
            pages: Vec::new(),
            low_confidence: Vec::new(),
            ocr_pages: Vec::new(),
            boxes: Vec::new(),
            needs_ink: false,
            signature: None,
        }
    }

    /// Whether any of the form's pages was read by OCR.
    pub fn from_ocr(&self) -> bool {
        !self.ocr_pages.is_empty()
    }
}

/// Below this confidence a field's words give `low_ocr_confidence`.
pub const LOW_CONFIDENCE: f32 = 60.0;

#[derive(Debug, Clone)]
struct Line {
    words: Vec<Word>,
    y0: f32,
    y1: f32,
}

impl Line {
    fn text(&self) -> String {
        join(&self.words)
    }
    fn height(&self) -> f32 {
        (self.y1 - self.y0).max(1.0)
    }
}

fn join(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// Groups words into lines (by vertical overlap) in reading order, each sorted left to right.
fn lines_of(words: &[Word]) -> Vec<Line> {
    let mut sorted: Vec<&Word> = words.iter().filter(|w| !w.text.trim().is_empty()).collect();
    sorted.sort_by(|a, b| mid(a).total_cmp(&mid(b)));
    let mut lines: Vec<Line> = Vec::new();
    for w in sorted {
        let m = mid(w);
        match lines.last_mut() {
            Some(line) if m >= line.y0 && m <= line.y1 => {
                line.y0 = line.y0.min(w.y0);
                line.y1 = line.y1.max(w.y1);
                line.words.push(w.clone());
            }
            _ => lines.push(Line {
                words: vec![w.clone()],
                y0: w.y0,
                y1: w.y1,
            }),
        }
    }
    for line in &mut lines {
        line.words.sort_by(|a, b| a.x0.total_cmp(&b.x0));
        split_glued_labels(&mut line.words);
    }
    lines
}

fn mid(w: &Word) -> f32 {
    (w.y0 + w.y1) / 2.0
}

/// `Personnummer:19121212-1212` → `Personnummer:` + `19121212-1212`.
fn split_glued_labels(words: &mut Vec<Word>) {
    let mut i = 0;
    while i < words.len() {
        let text = words[i].text.clone();
        if let Some(pos) = text.find(':') {
            let (head, tail) = text.split_at(pos + 1);
            if !tail.is_empty() && head.chars().any(|c| c.is_alphabetic()) && !tail.starts_with(':')
            {
                let w = words[i].clone();
                let share = head.chars().count() as f32 / text.chars().count().max(1) as f32;
                let split_x = w.x0 + (w.x1 - w.x0) * share;
                words[i] = Word {
                    text: head.to_string(),
                    x1: split_x,
                    ..w.clone()
                };
                words.insert(
                    i + 1,
                    Word {
                        text: tail.to_string(),
                        x0: split_x,
                        ..w
                    },
                );
            }
        }
        i += 1;
    }
}

/// Splits a line into segments where the gap between words is wider than a few spaces.
fn segments(line: &Line) -> Vec<Vec<Word>> {
    let gap = line.height() * 1.4;
    let mut out: Vec<Vec<Word>> = Vec::new();
    for w in &line.words {
        match out.last_mut() {
            Some(seg) if seg.last().is_some_and(|p| w.x0 - p.x1 <= gap) => seg.push(w.clone()),
            _ => out.push(vec![w.clone()]),
        }
    }
    out
}

const MARKS: &[&str] = &[
    "x", "[x]", "(x)", "☒", "☑", "✓", "✔", "✗", "✘", "[✓]", "[✔]", "⊠", "■",
];
const EMPTY_BOXES: &[&str] = &["[]", "[ ]", "☐", "□", "❑", "( )", "()", "○"];

fn is_mark(t: &str) -> bool {
    let t = t.trim().to_lowercase();
    MARKS.contains(&t.as_str()) || bracketed(&t) == Some("x")
}

fn is_empty_box(t: &str) -> bool {
    EMPTY_BOXES.contains(&t.trim())
}

/// What a bracket pair holds as OCR reads it (`[XI`, `[X`, `X]`): `x`, a closing
/// bracket read as `I`, `l`, `1`, `|` or `!` taken off. `None` unless there is a bracket (a
/// lone `X` is a word) and it holds an `X` (a `[I` may be the edge of a ring drawn round an
/// option, not an empty box).
fn bracketed(t: &str) -> Option<&str> {
    let opening = t.starts_with(['[', '(']);
    let closing = t.ends_with([']', ')']);
    if !(opening || closing) || t.chars().count() > 4 {
        return None;
    }
    let inner = t
        .trim_start_matches(['[', '(', '|'])
        .trim_end_matches([']', ')', '|', 'i', 'I', 'l', '1', '!', 'j']);
    match inner {
        "x" | "X" | "×" => Some("x"),
        _ => None,
    }
}

/// A label found at the start of a segment: the field (or a stop label), how many words it
/// takes, and a box mark written before it (`X Klippt kort mottaget`).
struct LabelHit {
    target: LabelTarget,
    words: usize,
    lead_mark: Option<bool>,
}

/// The labels of a form as looked for on one part of a page, with the fields whose label is
/// not found there as printed (`LabelSet::lookup_lost`).
struct PageLabels {
    set: &'static LabelSet,
    lost: Vec<&'static str>,
}

impl PageLabels {
    fn strict(kind: FormKind) -> PageLabels {
        PageLabels {
            set: LabelSet::of(kind),
            lost: Vec::new(),
        }
    }

    /// The labels of `lines`: the fields of the form that have no value yet and whose label
    /// is not among them as printed (one character off at most) are `lost`.
    fn of(lines: &[Vec<Vec<Word>>], form: &RawForm) -> PageLabels {
        let strict = PageLabels::strict(form.kind);
        let found: Vec<&'static str> = lines
            .iter()
            .flatten()
            .filter_map(|seg| match label_at(&strict, seg)?.target {
                LabelTarget::Field(f) => Some(f.key),
                LabelTarget::Stop => None,
            })
            .collect();
        let lost = form
            .kind
            .fields()
            .iter()
            .map(|f| f.key)
            .filter(|k| !found.contains(k) && form.values.get(k).is_none_or(|v| v.is_empty()))
            .collect();
        PageLabels { lost, ..strict }
    }
}

fn label_at(labels: &PageLabels, seg: &[Word]) -> Option<LabelHit> {
    let mut start = 0;
    let mut lead_mark = None;
    // `[ ]` may come as two words `[` `]`.
    if seg.len() > 1 && seg[0].text == "[" && seg[1].text == "]" {
        start = 2;
        lead_mark = Some(false);
    } else if let Some(first) = seg.first() {
        if seg.len() > 1 && is_mark(&first.text) {
            start = 1;
            lead_mark = Some(true);
        } else if seg.len() > 1 && is_empty_box(&first.text) {
            start = 1;
            lead_mark = Some(false);
        }
    }
    // A label never takes in a box or a mark, so stop before the first one.
    let words = &seg[start..];
    let max = words
        .iter()
        .skip(1)
        .position(|w| is_box_token(&w.text))
        .map(|p| p + 1)
        .unwrap_or(words.len())
        .min(5);
    // The exact match with the most words; else the closest near match (then the most words).
    let mut best: Option<(usize, usize, LabelTarget)> = None;
    for n in 1..=max {
        let text: String = words[..n].iter().map(|w| w.text.as_str()).collect();
        if let Some((label, distance)) = labels.set.lookup_lost(&fold(&text), &labels.lost) {
            let better = match best {
                None => true,
                Some((d, _, _)) => distance <= d,
            };
            if better {
                best = Some((distance, n, label.target));
            }
        }
    }
    best.map(|(_, n, target)| LabelHit {
        target,
        words: start + n,
        lead_mark,
    })
}

/// A field whose options (or Ja/Nej answers) may spread over several segments of its line.
fn is_choice(field: &FieldSpec) -> bool {
    matches!(field.field_type, FieldType::Choice(_) | FieldType::YesNo)
}

/// Whether the segment after a label on its line is the label's value. A segment that is no
/// label is; one that reads as a label (`Befattning:  Verksamhetschef`, a title that is also
/// a label of the form) is the value when the label before it ends in a colon and it does not:
/// a form that writes its labels with colons writes them all so.
fn is_value_after(set: &PageLabels, label: &[Word], next: &[Word]) -> bool {
    if is_other_label(next) {
        return false;
    }
    let colon = |w: Option<&Word>| w.is_some_and(|w| w.text.ends_with(':'));
    match label_at(set, next) {
        None => true,
        Some(hit) => {
            colon(label.last()) && hit.lead_mark.is_none() && !colon(next.get(hit.words - 1))
        }
    }
}

/// A segment that begins with a word ending in a colon (`Underskrift:`, `Ort:`) is a label,
/// known or not, and never a value.
fn is_other_label(seg: &[Word]) -> bool {
    seg.first().is_some_and(|w| {
        w.text.ends_with(':') && w.text.chars().filter(|c| c.is_alphabetic()).count() >= 2
    })
}

/// A word with no letter or digit that is no box or mark: a speck of dust or a stray stroke
/// OCR read as `.`, `,`, `'` or `-`.
fn is_speck(w: &Word) -> bool {
    !w.text.chars().any(char::is_alphanumeric) && !is_box_token(&w.text)
}

fn is_box_token(t: &str) -> bool {
    is_mark(t) || is_empty_box(t) || t == "[" || t == "]"
}

/// SPEC §2.1: a section heading is never a label nor a value. A line is a heading when it
/// begins with a section number or letter (`1.`, `2)`, `A.`, `C Underskrift …`).
fn is_heading(words: &[Word]) -> bool {
    let [first, second, ..] = words else {
        return false;
    };
    let starts_word = second.text.chars().next().is_some_and(char::is_alphabetic);
    let t = first.text.as_str();
    // `1.`, `12)`, `A.`, `B)`, `1.2`, `IV.`
    let numbered = {
        let body = t.trim_end_matches(['.', ')']);
        t.len() > body.len()
            && !body.is_empty()
            && (body.chars().all(|c| c.is_ascii_digit() || c == '.')
                || (body.chars().count() == 1 && body.chars().all(|c| c.is_ascii_uppercase()))
                || matches!(body, "I" | "II" | "III" | "IV" | "V" | "VI"))
    };
    // `C Underskrift av verksamhetschef`: a lone capital (not a box mark) before a capitalised
    // word, on a line without a colon.
    let lettered = t.len() == 1
        && matches!(t, "A" | "B" | "C" | "D" | "E" | "F" | "G" | "H")
        && second.text.chars().next().is_some_and(char::is_uppercase)
        && !words.iter().any(|w| w.text.contains(':'));
    (numbered || lettered) && starts_word
}

/// A label followed by more words in its segment with no separator (`Vårdgivare och
/// vårdenhet`): the line is a heading that begins with a label's words, not a label and value.
/// A separator is a colon, or a gap wider than a space: most of a letter's height (`Vårdgivare
/// ⇥ Västra Götalandsregionen` whose colon OCR lost). A box, a tab or a wide gap end the
/// segment before.
fn label_runs_on(label: &[Word], rest: &[Word], field: &FieldSpec) -> bool {
    if !matches!(field.field_type, FieldType::Text) || rest.is_empty() {
        return false;
    }
    let Some(last) = label.last() else {
        return false;
    };
    if last.text.ends_with(':') || rest[0].text.starts_with(':') {
        return false;
    }
    if rest[0].x0 - last.x1 > 0.8 * (last.y1 - last.y0) {
        return false;
    }
    // Only words of letters follow (a value such as a number or an address is no heading).
    rest.iter().all(|w| {
        w.text
            .chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == ',' || c == '&' || c == '/')
    })
}

/// Finds the form titles on pages and reads every form's fields. Pages before the first title
/// belong to no form.
pub fn read_forms(pages: &[PageWords]) -> Vec<RawForm> {
    let mut forms: Vec<RawForm> = Vec::new();
    // Per form, the parts of pages it covers: (page, top, bottom) in points.
    let mut spans: Vec<Vec<(usize, f32, f32)>> = Vec::new();
    for page in pages {
        let lines = lines_of(&page.words);
        let mut from = 0;
        for i in 0..=lines.len() {
            let title = lines.get(i).and_then(|l| title_kind(&l.text()));
            if i < lines.len() && title.is_none() {
                continue;
            }
            // lines[from..i] belong to the form opened last (on this page or before).
            if let Some(form) = forms.last_mut() {
                if i > from {
                    if !form.pages.contains(&page.number) {
                        form.pages.push(page.number);
                    }
                    if let Some(span) = spans.last_mut() {
                        // To the next title, or the page's end.
                        let bottom = lines.get(i).map_or(f32::MAX, |l| l.y0);
                        span.push((page.number, lines[from].y0, bottom));
                    }
                    read_fields(&lines[from..i], page, form);
                }
            }
            if let Some(kind) = title {
                let mut form = RawForm::new(kind);
                form.pages.push(page.number);
                forms.push(form);
                spans.push(Vec::new());
            }
            from = i + 1;
        }
    }
    for (form, span) in forms.iter_mut().zip(&spans) {
        if form.kind != FormKind::Order {
            continue;
        }
        let own: Vec<&PageWords> = pages
            .iter()
            .filter(|p| form.pages.contains(&p.number))
            .collect();
        let reading = read_signature(&own, span);
        if let Some((number, r)) = reading.place {
            if let Some(page) = own.iter().find(|p| p.number == number) {
                let (w, h) = (page.width.max(1.0), page.height.max(1.0));
                form.boxes.push(FieldBox {
                    field: SIGNATURE_KEY.to_string(),
                    page: number,
                    left: ((r[0] - 4.0) / w).clamp(0.0, 1.0),
                    top: ((r[1] - 14.0) / h).clamp(0.0, 1.0),
                    right: ((r[2] + 4.0) / w).clamp(0.0, 1.0),
                    bottom: ((r[3] + 4.0) / h).clamp(0.0, 1.0),
                });
            }
        }
        form.signature = Some(reading);
    }
    forms
}

/// Reads the fields in `lines` of `page` into `form` (a field already read keeps its first
/// value).
fn read_fields(lines: &[Line], page: &PageWords, form: &mut RawForm) {
    let segs: Vec<Vec<Vec<Word>>> = lines.iter().map(segments).collect();
    let labels = PageLabels::of(&segs, form);
    let set = &labels;
    for (li, line_segs) in segs.iter().enumerate() {
        if is_heading(&lines[li].words) {
            continue;
        }
        // Segments of this line taken as a value: not read as labels after.
        let mut taken = vec![false; line_segs.len()];
        for (si, seg) in line_segs.iter().enumerate() {
            if taken[si] {
                continue;
            }
            let Some(hit) = label_at(set, seg) else {
                continue;
            };
            let LabelTarget::Field(field) = hit.target else {
                continue;
            };
            // A field keeps its first value; a label found with no value (on a heading, or an
            // empty box of an older layout) gives way to the same label with one.
            if form.values.get(field.key).is_some_and(|v| !v.is_empty()) {
                continue;
            }
            let label_words = &seg[..hit.words];
            if label_runs_on(label_words, &seg[hit.words..], field) {
                continue;
            }
            // A speck of dust read as `.` or `'` beside the label is no value.
            let mut value_words: Vec<Word> = seg[hit.words..]
                .iter()
                .filter(|w| !is_speck(w))
                .cloned()
                .collect();
            // The value may sit in the next segment of the same line (after a tab).
            // (Past a speck of dust between them.)
            let next_at = (si + 1..line_segs.len()).find(|&j| !line_segs[j].iter().all(is_speck));
            if value_words.is_empty() {
                if let Some(next_at) = next_at {
                    let next = &line_segs[next_at];
                    if is_value_after(set, label_words, next) {
                        taken[next_at] = true;
                        value_words = next.clone();
                        // A choice's options may spread over several segments.
                        if is_choice(field) {
                            for more in &line_segs[next_at + 1..] {
                                if label_at(set, more).is_some() {
                                    break;
                                }
                                value_words.extend(more.iter().cloned());
                            }
                        }
                    }
                }
            } else if is_choice(field) {
                for more in &line_segs[si + 1..] {
                    if label_at(set, more).is_some() {
                        break;
                    }
                    value_words.extend(more.iter().cloned());
                }
            }
            // Otherwise directly below the label, within its column. The next column starts a
            // little before its label: its value is aligned with the label give or take a
            // glyph's side bearing, which OCR boxes (tight around the ink) make visible.
            if value_words.is_empty() && hit.lead_mark.is_none() {
                let x0 = label_words[0].x0;
                let x_end = next_at
                    .and_then(|j| line_segs[j].first())
                    .map(|w| w.x0 - lines[li].height() * 0.5)
                    .unwrap_or(f32::MAX);
                value_words = below(set, lines, &segs, li, x0, x_end, field);
            }
            if matches!(field.field_type, FieldType::Choice(_)) {
                options_beside(set, lines, &segs, li, label_words, field, &mut value_words);
            }
            let mut value = value_of(field, &value_words, hit.lead_mark);
            let mut unclear = value_words.iter().any(|w| w.confidence < LOW_CONFIDENCE);
            if hit.lead_mark.is_none() {
                match marks_from_ink(field, label_words, &value_words, page) {
                    InkMarks::NotNeeded => {}
                    InkMarks::NoImage => form.needs_ink = true,
                    InkMarks::Read { value: v, certain } => {
                        value = v;
                        unclear |= !certain;
                    }
                    InkMarks::Unsure => unclear = true,
                }
            }
            if value.is_empty() && form.values.contains_key(field.key) {
                continue;
            }
            form.low_confidence.retain(|k| *k != field.key);
            form.boxes.retain(|b| b.field != field.key);
            if unclear {
                form.low_confidence.push(field.key);
            }
            form.boxes.push(field_box(
                field.key,
                page,
                label_words,
                &value_words,
                lines[li].height(),
            ));
            form.values.insert(field.key, value);
        }
    }
    choices_without_label(lines, page, form);
}

/// A choice's options laid out on two lines beside its label (`Nytt kort  Ersättningskort`
/// above, `Förnyelse` below, the label between them): the options on the lines just above and
/// below, right of the label, are its value too, where they add an option not yet found.
fn options_beside(
    set: &PageLabels,
    lines: &[Line],
    segs: &[Vec<Vec<Word>>],
    li: usize,
    label: &[Word],
    field: &FieldSpec,
    value: &mut Vec<Word>,
) {
    let options = LabelSet::option_keys(field);
    let Some(last) = label.last() else {
        return;
    };
    let (top, bottom) = label
        .iter()
        .fold((f32::MAX, f32::MIN), |(t, b), w| (t.min(w.y0), b.max(w.y1)));
    let h = lines[li].height();
    let mut found = options_in(&options, value);
    for lj in [li.checked_sub(1), Some(li + 1)].into_iter().flatten() {
        let (Some(line), Some(line_segs)) = (lines.get(lj), segs.get(lj)) else {
            continue;
        };
        let centre = (line.y0 + line.y1) / 2.0;
        if centre < top - 1.5 * h || centre > bottom + 1.5 * h || is_heading(&line.words) {
            continue;
        }
        for seg in line_segs {
            let right_of_label = seg.first().is_some_and(|w| w.x0 >= last.x1);
            if !right_of_label || label_at(set, seg).is_some() {
                continue;
            }
            let new: Vec<&str> = options_in(&options, seg)
                .into_iter()
                .filter(|e| !found.contains(e))
                .collect();
            // Words already taken (the line below, read by `below`) are not taken twice.
            let fresh = seg
                .iter()
                .all(|w| !value.iter().any(|v| v.x0 == w.x0 && v.y0 == w.y0));
            if !new.is_empty() && fresh {
                found.extend(new);
                value.extend(seg.iter().cloned());
            }
        }
    }
}

/// A choice whose label OCR lost (`Utlämning` read `uUtlarmning`) is found by its options: a
/// line that holds two or more of that field's options, and no label, is its value. The
/// reading is marked uncertain (no label vouches for it).
fn choices_without_label(lines: &[Line], page: &PageWords, form: &mut RawForm) {
    let set = &PageLabels::strict(form.kind);
    for field in form.kind.fields() {
        if !matches!(field.field_type, FieldType::Choice(_)) || form.values.contains_key(field.key)
        {
            continue;
        }
        let options = LabelSet::option_keys(field);
        let line = lines.iter().find(|line| {
            options_in(&options, &line.words).len() >= 2
                && !is_heading(&line.words)
                && !segments(line).iter().any(|seg| {
                    label_at(set, seg).is_some_and(
                        |hit| !matches!(hit.target, LabelTarget::Field(f) if f.key == field.key),
                    )
                })
        });
        let Some(line) = line else {
            continue;
        };
        let words = &line.words;
        let mut value = value_of(field, words, None);
        match marks_from_ink(field, &[], words, page) {
            InkMarks::NotNeeded | InkMarks::Unsure => {}
            InkMarks::NoImage => form.needs_ink = true,
            InkMarks::Read { value: v, .. } => value = v,
        }
        form.low_confidence.push(field.key);
        form.boxes
            .push(field_box(field.key, page, &[], words, line.height()));
        form.values.insert(field.key, value);
    }
}

/// The rectangle around a field's label and value, with a margin; when the value is empty, the
/// area to the right of and below the label where it would have been.
fn field_box(key: &str, page: &PageWords, label: &[Word], value: &[Word], line_h: f32) -> FieldBox {
    let [x0, y0, mut x1, mut y1] = bounds(label.iter().chain(value));
    if value.is_empty() {
        x1 = x1.max(x0 + page.width * 0.45);
        y1 += line_h * 2.0;
    }
    let pad = line_h * 0.6;
    let (w, h) = (page.width.max(1.0), page.height.max(1.0));
    FieldBox {
        field: key.to_string(),
        page: page.number,
        left: ((x0 - pad) / w).clamp(0.0, 1.0),
        top: ((y0 - pad) / h).clamp(0.0, 1.0),
        right: ((x1 + pad) / w).clamp(0.0, 1.0),
        bottom: ((y1 + pad) / h).clamp(0.0, 1.0),
    }
}

/// Words under a label: on the next line(s) close below, inside the column [x0, x_end).
fn below(
    set: &PageLabels,
    lines: &[Line],
    segs: &[Vec<Vec<Word>>],
    li: usize,
    x0: f32,
    x_end: f32,
    field: &FieldSpec,
) -> Vec<Word> {
    let label_line = &lines[li];
    let tolerance = label_line.height();
    let mut out = Vec::new();
    let mut last_y1 = label_line.y1;
    let max_lines = if matches!(field.field_type, FieldType::Choice(_)) {
        3
    } else {
        1
    };
    let mut taken = 0;
    for (line, line_segs) in lines.iter().zip(segs).skip(li + 1) {
        if line.y0 - last_y1 > label_line.height().max(line.height()) * 1.6 {
            break;
        }
        let in_column: Vec<&Vec<Word>> = line_segs
            .iter()
            .filter(|s| {
                s.first()
                    .is_some_and(|w| w.x0 >= x0 - tolerance && w.x0 < x_end)
            })
            .collect();
        if in_column.is_empty() {
            break;
        }
        // An empty box stays empty: the next label, a label this form does not know, or a
        // section heading below it is never its value.
        if in_column
            .iter()
            .any(|s| label_at(set, s).is_some() || is_other_label(s))
            || is_heading(&line.words)
        {
            break;
        }
        for s in in_column {
            out.extend(s.iter().filter(|w| w.x0 < x_end).cloned());
        }
        last_y1 = line.y1;
        taken += 1;
        if taken >= max_lines {
            break;
        }
    }
    out
}

fn value_of(field: &FieldSpec, words: &[Word], lead_mark: Option<bool>) -> String {
    match field.field_type {
        FieldType::Text => {
            // One stray letter or stroke where nothing was written (a speck read as `i`) is no
            // value: no field of either form is a single letter.
            let text = crate::domain::collapse_ws(&join(words));
            let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
            match letters == 1 && !text.chars().any(|c| c.is_ascii_digit()) {
                true => String::new(),
                false => text,
            }
        }
        FieldType::Choice(_) => choices_marked(field, words).join(","),
        FieldType::YesNo => yes_no(words, lead_mark).to_string(),
    }
}

/// What the ink around a choice's options says.
enum InkMarks {
    /// The text holds a mark (or no option was found): the text decides.
    NotNeeded,
    /// The page image is needed and not at hand.
    NoImage,
    /// A scan whose text has a mark but whose ink does not say clearly which option is
    /// marked: the text's reading stands, uncertain.
    Unsure,
    Read {
        value: String,
        certain: bool,
    },
}

/// A choice (or a Ja/Nej answer) with no mark in its text is read from the ink around its
/// options: marks drawn as graphics, ticks, rings and crosses that OCR does not read as text.
fn marks_from_ink(field: &FieldSpec, label: &[Word], words: &[Word], page: &PageWords) -> InkMarks {
    let options: Vec<(String, &'static str)> = match field.field_type {
        FieldType::Choice(_) => LabelSet::option_keys(field),
        FieldType::YesNo => vec![("ja".to_string(), YES), ("nej".to_string(), NO)],
        FieldType::Text => return InkMarks::NotNeeded,
    };
    // On a scan, what OCR made of a mark (`X`, `[X]]a`, `1Nej`, a tick read as `v`) is not
    // trusted on its own: the ink before each option decides, and the text only where the ink
    // is unclear. A text layer's marks are what the writer wrote.
    let scanned = page.ink.is_some() && !page.is_text_layer();
    let text_has_mark = words.iter().any(|w| is_mark(&w.text));
    if text_has_mark && !scanned {
        return InkMarks::NotNeeded;
    }
    let (spans, damaged) = option_spans(&options, words);
    // Every option has its own empty box written in the text (`☐ Nytt kort`): the text says
    // that none is marked.
    let empty_boxes = words.iter().filter(|w| is_empty_box(&w.text)).count()
        + words
            .windows(2)
            .filter(|p| p[0].text == "[" && p[1].text == "]")
            .count();
    if !spans.is_empty() && empty_boxes >= spans.len() && page.is_text_layer() {
        return InkMarks::NotNeeded;
    }
    if matches!(field.field_type, FieldType::YesNo) && words.is_empty() {
        // A lone box drawn before the label, nothing written.
        let Some(ink) = &page.ink else {
            return InkMarks::NoImage;
        };
        let rect = [label[0].x0, label[0].y0, label[0].x1, label[0].y1];
        return match crate::forms::ink::lone_box(ink, &rect) {
            Some((marked, certain)) => InkMarks::Read {
                value: if marked { YES } else { NO }.to_string(),
                certain,
            },
            None => InkMarks::NotNeeded,
        };
    }
    if spans.is_empty() || (matches!(field.field_type, FieldType::YesNo) && spans.len() < 2) {
        return InkMarks::NotNeeded;
    }
    let Some(ink) = &page.ink else {
        return InkMarks::NoImage;
    };
    let rects: Vec<Rect> = spans.iter().map(|(_, r)| *r).collect();
    let text: Vec<Rect> = page
        .words
        .iter()
        .filter(|w| !is_box_token(&w.text))
        .map(|w| [w.x0, w.y0, w.x1, w.y1])
        .collect();
    let reading = read_marks(ink, &rects, &text);
    if text_has_mark && !(reading.certain && !damaged && !reading.marked.is_empty()) {
        // An unclear reading of the ink stands only where the text's marks say the same:
        // each mark goes to the first option after it on its line.
        let mut by_text: Vec<usize> = words
            .iter()
            .filter(|w| is_mark(&w.text))
            .filter_map(|m| {
                let (cx, cy) = ((m.x0 + m.x1) / 2.0, (m.y0 + m.y1) / 2.0);
                rects
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r[0] >= cx && r[1] <= cy && r[3] >= cy)
                    .min_by(|a, b| a.1[0].total_cmp(&b.1[0]))
                    .map(|(i, _)| i)
            })
            .collect();
        by_text.sort_unstable();
        by_text.dedup();
        if reading.marked.is_empty() || by_text != reading.marked {
            return InkMarks::Unsure;
        }
    }
    let marked: Vec<&str> = reading.marked.iter().map(|&i| spans[i].0).collect();
    let value = match field.field_type {
        FieldType::YesNo => match marked.as_slice() {
            [one] => one.to_string(),
            _ => String::new(),
        },
        _ => marked.join(","),
    };
    InkMarks::Read {
        value,
        certain: reading.certain && !damaged,
    }
}

/// Each option found in `words` (once), with the box of its text. Near matches count: OCR
/// mangles an option's text under a ring drawn around it.
/// When one option is still missing, a word the ring has damaged beyond a near reading
/// (`[]Qfämningsstäle>` for `Utlämningsställe`) stands for it; the third value says so, and the
/// reading is then uncertain.
fn option_spans(
    options: &[(String, &'static str)],
    words: &[Word],
) -> (Vec<(&'static str, Rect)>, bool) {
    let mut out: Vec<(&'static str, Rect)> = Vec::new();
    let mut used = vec![false; words.len()];
    for (export, at) in find_options(options, words, true) {
        used[at.clone()].iter_mut().for_each(|u| *u = true);
        if !out.iter().any(|(e, _)| *e == export) {
            // One word that holds more than the option (`[1Nej`): the option is its end, and
            // what OCR glued before it is where the mark is.
            let key_len = options
                .iter()
                .find(|(_, e)| *e == export)
                .map_or(0, |(k, _)| k.chars().count());
            let rect = match &words[at.clone()] {
                [w] if key_len > 0 && fold(&w.text).chars().count() > key_len => {
                    tail_of(w, folded_tail(&w.text, key_len))
                }
                several => bounds(several),
            };
            out.push((export, rect));
        }
    }
    // Ja/Nej with one of the two lost to OCR (`[X]]a [1Nej`): the other is the word beside it,
    // Ja before Nej; its box is the word's last letters. Only short options vanish into the
    // box glyph that way; a longer one damaged by a ring is found by its likeness below.
    let short = |key: &str| key.chars().count() <= 3;
    if let ([(found, at)], [(first_key, first), (second_key, second)]) = (out.as_slice(), options) {
        let (found, at) = (*found, *at);
        let mid = (at[1] + at[3]) / 2.0;
        let same_line = |w: &&Word| w.y0 <= mid && w.y1 >= mid;
        // The other option's letters are as wide as the found one's: a box glued to the word
        // may have eaten a letter (`■ Ja` read `Ha`), so the word's own characters do not say
        // where the option begins.
        let found_len = options
            .iter()
            .find(|(_, e)| *e == found)
            .map_or(1, |(k, _)| k.chars().count().max(1));
        let per = (at[2] - at[0]) / found_len as f32;
        let tail = |w: &Word, key: &str| {
            let mut r = tail_of(w, folded_tail(&w.text, key.chars().count()));
            r[0] = r[0].max(w.x1 - per * key.chars().count() as f32);
            r
        };
        // The word must still end in a letter of the option (`Mja`, `]a`): the other option's
        // empty box, read as `CO` or `O`, lies between them and is not it.
        let may_hold = |w: &&Word, key: &str| {
            let letters: Vec<char> = fold(&w.text)
                .chars()
                .filter(|c| c.is_alphabetic())
                .collect();
            letters.last().is_some_and(|c| key.contains(*c))
        };
        let beside = if !(short(first_key) && short(second_key)) {
            None
        } else if found == *second {
            words
                .iter()
                .filter(same_line)
                .filter(|w| w.x1 <= at[0] + 1.0 && may_hold(w, first_key))
                .max_by(|a, b| a.x1.total_cmp(&b.x1))
                .map(|w| (*first, tail(w, first_key)))
        } else {
            words
                .iter()
                .filter(same_line)
                .filter(|w| w.x0 >= at[2] - 1.0 && may_hold(w, second_key))
                .min_by(|a, b| a.x0.total_cmp(&b.x0))
                .map(|w| (*second, tail(w, second_key)))
        };
        if let Some(other) = beside {
            out.push(other);
            out.sort_by(|a, b| a.1[0].total_cmp(&b.1[0]));
            return (out, false);
        }
    }
    let missing: Vec<&(String, &'static str)> = options
        .iter()
        .filter(|(_, e)| !out.iter().any(|(f, _)| f == e))
        .collect();
    let export = match missing.first() {
        Some((_, e)) if missing.iter().all(|(_, f)| f == e) => *e,
        _ => return (out, false),
    };
    let damaged = words
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .filter_map(|(w, _)| {
            let letters: String = fold(&w.text)
                .chars()
                .filter(|c| c.is_alphabetic())
                .collect();
            let likeness = missing
                .iter()
                .map(|(key, _)| strsim::normalized_levenshtein(&letters, key))
                .fold(0.0, f64::max);
            (letters.chars().count() >= 5 && likeness >= 0.6).then_some((likeness, w))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match damaged {
        Some((_, w)) => {
            let mut rect = letters_of(w);
            // The damaged word's box takes in the ring; the line's height is the other
            // options' on the same line.
            let centre = (w.y0 + w.y1) / 2.0;
            if let Some((_, other)) = out.iter().find(|(_, r)| r[1] < centre && r[3] > centre) {
                (rect[1], rect[3]) = (other[1], other[3]);
            }
            out.push((export, rect));
            (out, true)
        }
        None => (out, false),
    }
}

/// How many of `text`'s last characters fold to `folded_len` characters: the option's part of
/// a word that OCR glued a box to (`[1Förnyelse`: `Förnyelse`, which folds to 8).
fn folded_tail(text: &str, folded_len: usize) -> usize {
    let chars: Vec<char> = text.chars().collect();
    (1..=chars.len())
        .find(|&n| {
            let tail: String = chars[chars.len() - n..].iter().collect();
            fold(&tail).chars().count() >= folded_len
        })
        .unwrap_or(chars.len())
}

/// The box of a word's last `n` characters, sharing the width out evenly over its characters.
fn tail_of(w: &Word, n: usize) -> Rect {
    let count = w.text.chars().count().max(1);
    let per = (w.x1 - w.x0) / count as f32;
    [w.x1 - per * n.min(count) as f32, w.y0, w.x1, w.y1]
}

/// The part of a word's box that holds its letters and digits, sharing the width out evenly
/// over its characters: `[]Qfämning>` loses the box and the ring's end OCR read as text.
fn letters_of(w: &Word) -> Rect {
    let chars: Vec<char> = w.text.chars().collect();
    let lead = chars.iter().take_while(|c| !c.is_alphanumeric()).count();
    let trail = chars
        .iter()
        .rev()
        .take_while(|c| !c.is_alphanumeric())
        .count();
    let per = (w.x1 - w.x0) / chars.len().max(1) as f32;
    if lead + trail >= chars.len() {
        return [w.x0, w.y0, w.x1, w.y1];
    }
    [
        w.x0 + per * lead as f32,
        w.y0,
        w.x1 - per * trail as f32,
        w.y1,
    ]
}

/// The options in `words`, in order: the longest (up to three words) that starts at each word
/// read exactly or, with `near`, the shortest as OCR may damage it.
fn find_options(
    options: &[(String, &'static str)],
    words: &[Word],
    near: bool,
) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let folded: Vec<String> = words.iter().map(|w| fold(&w.text)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        // A box or mark before an option is not part of it (`☐` folds to nothing), nor is
        // what is left of a bracket (`)` of `( )`): an option starts at a letter.
        if is_box_token(&words[i].text) || folded[i].is_empty() {
            i += 1;
            continue;
        }
        let at = |from: usize, n: usize, near: bool| {
            let text: String = folded.get(from..from + n)?.concat();
            options
                .iter()
                .find(|(k, _)| *k == text || (near && near_option(&text, k)))
                .map(|(_, export)| (n, *export))
        };
        // An exact reading first, then the shortest near one: a near match must not swallow
        // the junk OCR makes of the next option's ring or box (`Utlämningsställe [I`), nor
        // the box before an option that is read exactly from the next word on (`[XI
        // Utlämningsställe`).
        let exact_next = (1..=3).any(|n| at(i + 1, n, false).is_some());
        let found = (1..=3).rev().find_map(|n| at(i, n, false)).or_else(|| {
            (1..=3)
                .filter(|_| near && !exact_next)
                .find_map(|n| at(i, n, true))
        });
        match found {
            Some((n, export)) => {
                out.push((export, i..i + n));
                i += n;
            }
            None => i += 1,
        }
    }
    out
}

/// The export values of the options found in `words` (near readings too), each once.
fn options_in(options: &[(String, &'static str)], words: &[Word]) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    for (export, _) in find_options(options, words, true) {
        if !found.contains(&export) {
            found.push(export);
        }
    }
    found
}

/// The rectangle around `words`.
fn bounds<'a>(words: impl IntoIterator<Item = &'a Word>) -> Rect {
    words.into_iter().fold(
        [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
        |[x0, y0, x1, y1], w| [x0.min(w.x0), y0.min(w.y0), x1.max(w.x1), y1.max(w.y1)],
    )
}

/// Export values of the options that have a mark right before their text.
fn choices_marked(field: &FieldSpec, words: &[Word]) -> Vec<&'static str> {
    options_marked(&LabelSet::option_keys(field), words)
}

/// Of `options` (folded text, export value), those with a mark right before their text.
fn options_marked(options: &[(String, &'static str)], words: &[Word]) -> Vec<&'static str> {
    find_options(options, words, false)
        .into_iter()
        .filter(|(_, at)| {
            let i = at.start;
            let before = if i > 0 {
                words[i - 1].text.as_str()
            } else {
                ""
            };
            let bracketed = i > 1 && words[i - 1].text == "]" && is_mark(&words[i - 2].text);
            is_mark(before) || bracketed || words[i].text.starts_with(['☒', '☑', '✓', '✔'])
        })
        .map(|(export, _)| export)
        .collect()
}

fn yes_no(words: &[Word], lead_mark: Option<bool>) -> &'static str {
    if let Some(marked) = lead_mark {
        return if marked { YES } else { NO };
    }
    // `[X] Ja  [ ] Nej`: a box before each answer.
    let answers = [("ja".to_string(), YES), ("nej".to_string(), NO)];
    let has = |a: &str| words.iter().any(|w| fold(&w.text) == a);
    if has("ja") && has("nej") {
        return match options_marked(&answers, words).as_slice() {
            [one] => one,
            _ => "",
        };
    }
    let text = join(words);
    let t = text.trim().to_lowercase();
    if t.is_empty() {
        return "";
    }
    if t.starts_with("ja")
        || is_mark(&t)
        || t.starts_with("[x]")
        || t.starts_with('☒')
        || t.starts_with('✓')
    {
        return YES;
    }
    if t.starts_with("nej") || is_empty_box(&t) {
        return NO;
    }
    // Something else was written: keep it, it is neither yes nor no.
    ""
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Lays out text lines as words, 12 pt high, 6 pt per character; `|` splits a cell.
    pub fn page(number: usize, lines: &[&str]) -> PageWords {
        let mut words = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let y0 = 50.0 + i as f32 * 16.0;
            let mut x = 40.0;
            for (ci, cell) in line.split('|').enumerate() {
                if ci > 0 {
                    x = 40.0 + 260.0 * ci as f32;
                }
                for t in cell.split(' ') {
                    if t.is_empty() {
                        x += 6.0;
                        continue;
                    }
                    let w = t.chars().count() as f32 * 6.0;
                    words.push(Word {
                        text: t.into(),
                        x0: x,
                        y0,
                        x1: x + w,
                        y1: y0 + 12.0,
                        confidence: 100.0,
                    });
                    x += w + 6.0;
                }
            }
        }
        PageWords {
            number,
            width: 595.0,
            height: 842.0,
            words,
            ink: None,
            graphics: Vec::new(),
        }
    }

    #[test]
    fn a_lone_letter_where_nothing_was_written_is_no_value() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "Utlämningsställe (namn):|i",
                "Förnamn:|Bo",
            ],
        );
        let v = &read_forms(&[p])[0].values;
        assert_eq!(v["utlamningsstalle"], "");
        assert_eq!(v["fornamn"], "Bo");
    }

    #[test]
    fn a_label_whose_colon_was_lost_is_told_from_a_heading_by_its_gap() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "Vårdgivare och vårdenhet",
                "Vårdgivare  Västra Götalandsregionen",
                "Efternamn  Ek",
            ],
        );
        let v = &read_forms(&[p])[0].values;
        assert_eq!(v["vardgivare_namn"], "Västra Götalandsregionen");
        assert_eq!(v["efternamn"], "Ek");
        // The heading alone: no value.
        let p = page(
            1,
            &["Beställning av eTjänstekort", "Vårdgivare och vårdenhet"],
        );
        let v = &read_forms(&[p])[0].values;
        assert!(v.get("vardgivare_namn").is_none_or(|v| v.is_empty()));
    }

    #[test]
    fn a_speck_beside_a_label_is_no_value_and_hides_none() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "Vårdgivare:|.|Västra Götalandsregionen",
                "Befattning:|'",
                "Mobiltelefon:|070-123 45 67",
            ],
        );
        let v = &read_forms(&[p])[0].values;
        assert_eq!(v["vardgivare_namn"], "Västra Götalandsregionen");
        assert_eq!(v["befattning"], "");
        assert_eq!(v["mobil"], "070-123 45 67");
    }

    #[test]
    fn options_on_the_lines_above_and_below_their_label_are_its_value() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "|Nytt kort  X Ersättningskort",
                "Beställningen avser:|",
                "|Förnyelse",
                "Befattning:|Läkare",
            ],
        );
        let v = &read_forms(&[p])[0].values;
        assert_eq!(v["bestallningstyp"], "Ersattning");
        assert_eq!(v["befattning"], "Läkare");
    }

    #[test]
    fn a_choice_whose_label_ocr_lost_is_found_by_its_options_and_marked_uncertain() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "Uxlarmnng",
                "X Utlämningsställe  Utkörning",
                "Utlämningsställe (namn):|Receptionen",
            ],
        );
        let form = &read_forms(&[p])[0];
        assert_eq!(form.values["utlamning"], "Utlamningsstalle");
        assert_eq!(form.values["utlamningsstalle"], "Receptionen");
        assert!(form.low_confidence.contains(&"utlamning"));
        // One option alone (the label `Utlämningsställe (namn)`) is not the field.
        let p = page(
            1,
            &["Beställning av eTjänstekort", "Utlämningsställe (namn):|X"],
        );
        assert!(!read_forms(&[p])[0].values.contains_key("utlamning"));
    }

    #[test]
    fn a_value_that_is_also_a_label_after_a_colon_label() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort",
                "Befattning:|Verksamhetschef",
                "Mobiltelefon:|070-123 45 67",
                "Verksamhetschef:|Karin Berg",
                "Telefon:|Datum:",
            ],
        );
        let v = &read_forms(&[p])[0].values;
        assert_eq!(v["befattning"], "Verksamhetschef");
        assert_eq!(v["mobil"], "070-123 45 67");
        assert_eq!(v["vc_namn"], "Karin Berg");
        assert_eq!(v["vc_telefon"], "");
    }

    #[test]
    fn same_line_layout() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort TJID-101",
                "Förnamn: Anna-Karin",
                "Efternamn:Åström",
                "Mobiltelefon: 070-123 45 67",
                "Telefon: 031-345 67 00",
                "Beställningen avser: [X] Nytt kort [ ] Ersättningskort [ ] Förnyelse",
                "Utlämning: [X] Utlämningsställe [X] Utkörning",
                "Utlämningsställe (namn): Receptionen",
                "Datum:",
                "Underskrift",
            ],
        );
        let forms = read_forms(&[p]);
        assert_eq!(forms.len(), 1);
        let v = &forms[0].values;
        assert_eq!(v["fornamn"], "Anna-Karin");
        assert_eq!(v["efternamn"], "Åström");
        assert_eq!(v["mobil"], "070-123 45 67");
        assert_eq!(v["vc_telefon"], "031-345 67 00");
        assert_eq!(v["bestallningstyp"], "Nytt");
        assert_eq!(v["utlamning"], "Utlamningsstalle,Utkorning");
        assert_eq!(v["utlamningsstalle"], "Receptionen");
        assert_eq!(v["datum"], "");
        assert!(!v.contains_key("personnummer"));
    }

    #[test]
    fn table_layout_reads_below_within_the_column() {
        let p = page(
            1,
            &[
                "Avregistrering av eTjänstekort",
                "Kortinnehavarens namn|Personnummer",
                "Anna Åström|19121212-1212",
                "Kortnummer|Vårdenhet",
                "|Vårdcentralen Ekmansgatan",
                "Klippt kort mottaget|Datum",
                "X|2026-11-18",
            ],
        );
        let forms = read_forms(&[p]);
        let v = &forms[0].values;
        assert_eq!(v["namn"], "Anna Åström");
        assert_eq!(v["personnummer"], "19121212-1212");
        assert_eq!(v["kortnummer"], "");
        assert_eq!(v["vardenhet_namn"], "Vårdcentralen Ekmansgatan");
        assert_eq!(v["klippt_kort"], "Ja");
        assert_eq!(v["datum"], "2026-11-18");
    }

    #[test]
    fn two_forms_and_a_continuation_page() {
        let p1 = page(1, &["Följebrev", "Förnamn: Ingen"]);
        let p2 = page(2, &["Beställning av eTjänstekort", "Förnamn: Anna"]);
        let p3 = page(3, &["Sida 2 av 2", "Datum: 2026-11-18"]);
        let p4 = page(4, &["Beställning av eTjänstekort", "Förnamn: Bo"]);
        let forms = read_forms(&[p1, p2, p3, p4]);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].values["fornamn"], "Anna");
        assert_eq!(forms[0].values["datum"], "2026-11-18");
        assert_eq!(forms[0].pages, vec![2, 3]);
        assert_eq!(forms[1].values["fornamn"], "Bo");
        assert!(!forms[1].values.contains_key("datum"));
    }

    #[test]
    fn legacy_layout_with_a_gap_instead_of_a_colon() {
        let p = page(
            1,
            &[
                "Beställning av eTjänstekort (TJID-101 version 2019)",
                "PERSONNUMMER|19121212-1212",
                "FÖRNAMN|Anna",
            ],
        );
        let forms = read_forms(&[p]);
        assert_eq!(forms[0].values["personnummer"], "19121212-1212");
        assert_eq!(forms[0].values["fornamn"], "Anna");
    }

    #[test]
    fn cut_card_box_before_the_label() {
        let p = page(
            1,
            &["Avregistrering av eTjänstekort", "☐ Klippt kort mottaget"],
        );
        assert_eq!(read_forms(&[p])[0].values["klippt_kort"], "Nej");
        let p = page(
            1,
            &[
                "Avregistrering av eTjänstekort",
                "Klippt kort mottaget: Nej",
            ],
        );
        assert_eq!(read_forms(&[p])[0].values["klippt_kort"], "Nej");
        let p = page(
            1,
            &[
                "Avregistrering av eTjänstekort",
                "Klippt kort mottaget: [X]",
            ],
        );
        assert_eq!(read_forms(&[p])[0].values["klippt_kort"], "Ja");
    }

    #[test]
    fn a_mention_of_the_title_is_no_form() {
        let p = page(
            1,
            &["Här kommer en beställning av eTjänstekort", "Förnamn: Anna"],
        );
        assert!(read_forms(&[p]).is_empty());
    }

    #[test]
    fn an_option_damaged_by_a_ring_stands_in_when_it_is_the_one_missing() {
        let opts = vec![
            ("utlamningsstalle".to_string(), "Utlamningsstalle"),
            ("utkorning".to_string(), "Utkorning"),
        ];
        let p = page(1, &["[]Qfämningsstäle> Utkörning"]);
        let (spans, damaged) = option_spans(&opts, &p.words);
        assert!(damaged);
        assert_eq!(
            spans.iter().map(|s| s.0).collect::<Vec<_>>(),
            ["Utkorning", "Utlamningsstalle"]
        );
        // The box and the ring's end are cut off the word; the line's height is the other's.
        let r = spans[1].1;
        assert!(r[0] > p.words[0].x0 + 6.0 && r[2] < p.words[0].x1, "{r:?}");
        assert_eq!((r[1], r[3]), (spans[0].1[1], spans[0].1[3]));
        // Junk that is no option stands in for nothing.
        let (spans, damaged) = option_spans(&opts, &page(1, &["[]Qxyz> Utkörning"]).words);
        assert!(!damaged);
        assert_eq!(spans.len(), 1);
    }

    #[test]
    fn the_lost_ja_is_the_word_ending_in_its_letters_not_the_box_of_nej() {
        let opts = vec![("ja".to_string(), YES), ("nej".to_string(), NO)];
        // `☑ Ja   ☐ Nej` read as `Mja CO Nej`: Ja is the end of `Mja`, and `CO` (the box of
        // Nej) is no option.
        let p = page(1, &["Mja CO Nej"]);
        let (spans, _) = option_spans(&opts, &p.words);
        assert_eq!(spans.iter().map(|s| s.0).collect::<Vec<_>>(), [YES, NO]);
        assert_eq!(spans[0].1[2], p.words[0].x1);
        assert_eq!(spans[0].1[0], p.words[0].x0 + 6.0);
        // `■ Ja` read as one word `Ha` whose box takes in the filled box: Ja is the word's
        // last two letters, as wide as Nej's letters, not the whole word.
        let mut p = page(1, &["Ha  Nej"]);
        p.words[0].x0 -= 14.0;
        let (spans, _) = option_spans(&opts, &p.words);
        assert_eq!(spans[0].0, YES);
        assert!(
            (spans[0].1[0] - (p.words[0].x1 - 12.0)).abs() < 0.01,
            "{spans:?}"
        );
        // With no word that can hold it, Ja is not made up.
        let (spans, _) = option_spans(&opts, &page(1, &["CO Nej"]).words);
        assert_eq!(spans.iter().map(|s| s.0).collect::<Vec<_>>(), [NO]);
    }

    #[test]
    fn a_glued_option_is_the_words_end_counted_in_folded_letters() {
        // `rn` folds to `m` (OCR's confusion), so `Förnyelse` is 8 folded letters: the whole
        // word, not its last 8 characters.
        assert_eq!(folded_tail("Förnyelse", 8), 9);
        assert_eq!(folded_tail("[1Förnyelse", 8), 9);
        assert_eq!(folded_tail("[1Nej", 3), 3);
        assert_eq!(folded_tail("Mja", 2), 2);
        let field = FormKind::Order
            .fields()
            .iter()
            .find(|f| f.key == "bestallningstyp");
        let opts = LabelSet::option_keys(field.unwrap());
        let p = page(1, &["Nytt kort", "Förnyelse"]);
        let (spans, _) = option_spans(&opts, &p.words[2..]);
        assert_eq!(spans[0].1[0], p.words[2].x0, "{:?}", spans);
    }

    #[test]
    fn a_bracketed_x_read_with_its_bracket_mangled_is_a_mark() {
        for t in ["[X]", "[XI", "[x", "X]", "[Xl", "(X)"] {
            assert!(is_mark(t), "{t}");
        }
        // A lone letter, a ring's edge and a heading's number are not.
        for t in ["XI", "[I", "1)", "[Ja", "Nej"] {
            assert!(!is_mark(t), "{t}");
        }
    }

    #[test]
    fn a_mangled_box_before_an_option_is_not_taken_into_the_option() {
        let field = FormKind::Order
            .fields()
            .iter()
            .find(|f| f.key == "utlamning");
        let opts = LabelSet::option_keys(field.unwrap());
        let p = page(1, &["[XI Utlämningsställe Utkörning"]);
        let (spans, _) = option_spans(&opts, &p.words);
        assert_eq!(spans[0].1[0], p.words[1].x0, "{:?}", spans);
    }
}
