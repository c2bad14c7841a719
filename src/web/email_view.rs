//! The email itself on the case page: sender, date, the body as text (an HTML body turned into
//! text, shown escaped like everything else) and each attachment by name with what became of
//! it. Read from the raw email where [`Originals`] keeps it, checked to be the same email.
//!
//! The store records which attachment each case's form was read from, not what the intake
//! found in the others; for those the page says what can be told without reading them again
//! (a file type that is not read, a logo, too large, beyond the number read) and otherwise
//! what the case's decision said about them.

use serde::Serialize;

use super::form_image::{read_original, Unavailable};
use crate::originals::Originals;
use crate::pipeline::extract::{attachment_type, AttachmentType, DECORATIVE_MAX_SIDE};
use crate::pipeline::parse::parse_mail;
use crate::store::{CaseRow, MessageCase};

/// Characters of the body shown; a longer body is cut with a note.
const MAX_BODY_CHARS: usize = 20_000;

/// Limits the intake read attachments with (`[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_message_bytes: usize,
    pub max_attachment_bytes: usize,
    pub max_attachments: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailView {
    pub from: Option<String>,
    pub body: String,
    pub body_cut: bool,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub name: String,
    pub size: String,
    /// What became of it, in Swedish.
    pub outcome: String,
    /// `form`, `other` or `unread` (for the page's style).
    pub class: &'static str,
    /// The case its form made, when it is another case than this one.
    pub case: Option<String>,
}

/// The email of `case`, or why it cannot be shown. Blocking: reads and hashes the file.
pub fn email_of(
    case: &CaseRow,
    siblings: &[MessageCase],
    originals: &Originals,
    limits: ReadLimits,
) -> Result<EmailView, Unavailable> {
    if case.purged_at.is_some() || case.message_purged_at.is_some() {
        return Err(Unavailable::Purged);
    }
    let raw = read_original(case, originals, limits.max_message_bytes)?;
    let mail = parse_mail(&raw).map_err(|_| Unavailable::Missing)?;
    let (body, body_cut) = cut(mail.body_text.trim(), MAX_BODY_CHARS);
    let attachments = mail
        .attachments
        .iter()
        .enumerate()
        .map(|(i, att)| {
            let name = att.name.clone().unwrap_or_else(|| "(utan namn)".into());
            let read_from: Vec<&MessageCase> = siblings
                .iter()
                .filter(|c| {
                    c.attachment_index == Some(i as i64)
                        || (c.attachment_index.is_none()
                            && c.attachment.is_some()
                            && c.attachment == att.name)
                })
                .collect();
            let (outcome, class, other) = match read_from.first() {
                Some(c) => {
                    let pages: Vec<i64> = serde_json::from_str(&c.pages).unwrap_or_default();
                    let pages = match pages.as_slice() {
                        [] => String::new(),
                        [p] => format!(", sida {p}"),
                        more => format!(
                            ", sidorna {}",
                            more.iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    let what = if read_from.len() > 1 {
                        format!("{} blanketter lästa", read_from.len())
                    } else {
                        format!("Blankett läst ({}{pages})", super::views::kind_sv(&c.kind))
                    };
                    let other = if read_from.iter().any(|c| c.id == case.id) {
                        None
                    } else {
                        Some(c.id.clone())
                    };
                    (what, "form", other)
                }
                None => (not_read(i, att, siblings, limits), "unread", None),
            };
            AttachmentView {
                name,
                size: size_sv(att.data.len()),
                outcome,
                class,
                case: other,
            }
        })
        .collect();
    Ok(EmailView {
        from: mail.from,
        body,
        body_cut,
        attachments,
    })
}

/// An email that made no case (Ignorerat och karantän), as it was.
#[derive(Debug, Clone, Serialize)]
pub struct PlainEmailView {
    /// The header as it came (unfolded lines, as the email has them).
    pub headers: String,
    pub body: String,
    pub body_cut: bool,
    /// The email could not be read as MIME: `body` is the start of its raw text.
    pub unparsed: bool,
    /// Name, size and declared type of each attachment (none is opened here).
    pub attachments: Vec<(String, String, String)>,
}

/// The raw email `raw` shown as text: parsed when it parses, else its start as it is (a
/// quarantined email may be no MIME at all). Blocking.
pub fn plain_email(raw: &[u8]) -> PlainEmailView {
    // Lenient MIME parsing takes nearly anything for a header: what names no sender, subject
    // or date and holds no text nor attachment was no email.
    let recognised = |m: &crate::pipeline::parse::ParsedMail| {
        m.from.is_some()
            || !m.subject.is_empty()
            || m.date.is_some()
            || !m.body_text.trim().is_empty()
            || !m.attachments.is_empty()
    };
    match parse_mail(raw).ok().filter(recognised) {
        Some(mail) => {
            let (body, body_cut) = cut(mail.body_text.trim(), MAX_BODY_CHARS);
            PlainEmailView {
                headers: mail.raw_headers.clone(),
                body,
                body_cut,
                unparsed: false,
                attachments: mail
                    .attachments
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone().unwrap_or_else(|| "(utan namn)".into()),
                            size_sv(a.data.len()),
                            a.content_type.clone(),
                        )
                    })
                    .collect(),
            }
        }
        None => {
            let (body, body_cut) = cut(&String::from_utf8_lossy(raw), MAX_BODY_CHARS);
            PlainEmailView {
                headers: String::new(),
                body,
                body_cut,
                unparsed: true,
                attachments: Vec::new(),
            }
        }
    }
}

/// Why no form came from attachment `index`.
fn not_read(
    index: usize,
    att: &crate::pipeline::parse::Attachment,
    siblings: &[MessageCase],
    limits: ReadLimits,
) -> String {
    if index >= limits.max_attachments {
        return format!(
            "Lästes inte: bara de {} första bilagorna läses",
            limits.max_attachments
        );
    }
    let kind = attachment_type(att);
    if kind == AttachmentType::Other {
        return "Ingen PDF eller bild – läses inte som blankett".into();
    }
    if att.data.len() > limits.max_attachment_bytes {
        return format!(
            "Kunde inte läsas: större än {}",
            size_sv(limits.max_attachment_bytes)
        );
    }
    if kind == AttachmentType::Image {
        if let Some((w, h)) = crate::ocr::raster::image_dimensions(&att.data) {
            if w.min(h) < DECORATIVE_MAX_SIDE {
                return format!("Liten bild ({w}×{h} px, t.ex. en logotyp) – lästes inte");
            }
        }
    }
    let unreadable = siblings
        .iter()
        .any(|c| c.reasons.contains("\"unreadable_attachment\""));
    if unreadable {
        "Ingen blankett: bilagan kunde inte läsas (skadad, krypterad eller en skanning utan läsbar text)".into()
    } else {
        "Ingen blankett hittades i bilagan".into()
    }
}

fn cut(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (text[..at].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// `12 kB`, `1,4 MB`.
pub(super) fn size_sv(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} byte")
    } else if bytes < 1024 * 1024 {
        format!("{} kB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0)).replace('.', ",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_swedish_and_long_bodies_are_cut() {
        assert_eq!(size_sv(900), "900 byte");
        assert_eq!(size_sv(12 * 1024 + 1), "13 kB");
        assert_eq!(size_sv(3 * 1024 * 1024 / 2), "1,5 MB");
        assert_eq!(cut("åäö", 2), ("åä".to_string(), true));
        assert_eq!(cut("åäö", 3), ("åäö".to_string(), false));
    }
}
