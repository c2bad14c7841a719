//! Stage 1: one raw RFC 5322 message → `ParsedMail`, the parts of it the later stages need.
//! Forwarded messages (message/rfc822) are walked recursively, so their attachments count
//! as the email's own, in order.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use mail_parser::{HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType};

/// How deep forwarded messages are followed.
const MAX_FORWARD_DEPTH: usize = 8;

#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// With angle brackets, as in headers (`<abc@host>`).
    pub message_id: Option<String>,
    pub subject: String,
    /// Address of `From`.
    pub from: Option<String>,
    pub from_name: Option<String>,
    /// Where a reply goes: `Reply-To`, else `From`.
    pub reply_to: Option<String>,
    /// `Some("")` for an empty return path `<>`.
    pub return_path: Option<String>,
    pub date: Option<DateTime<FixedOffset>>,
    /// The `References` chain plus the message's own id, for threading the reply.
    pub references: Vec<String>,
    pub is_report: bool,
    pub auto_submitted: Option<String>,
    pub has_autoreply_header: bool,
    pub precedence: Option<String>,
    pub has_list_id: bool,
    /// `Authentication-Results` values, topmost first.
    pub authentication_results: Vec<String>,
    /// The header block as received, for staff.
    pub raw_headers: String,
    /// Plain text of the first body (HTML converted to text when that is all there is).
    pub body_text: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: Option<String>,
    /// Declared MIME type, lower case.
    pub content_type: String,
    pub data: Vec<u8>,
    /// 0 for the email's own attachments, 1 inside a forwarded message, …
    pub depth: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty or not a MIME message")]
    NotAMessage,
}

impl ParsedMail {
    /// The calendar date of the `Date` header in its own offset, else `fallback`.
    pub fn email_date(&self, fallback: NaiveDate) -> NaiveDate {
        self.date.map(|d| d.date_naive()).unwrap_or(fallback)
    }
}

/// The most read of a header block by [`parse_headers_only`].
const MAX_HEADER_BYTES: usize = 256 * 1024;

/// Only the header block of `raw` (up to the first empty line, at most 256 KiB), parsed: the
/// sender, subject and Message-ID of an email quarantined before it could be read (too large,
/// a panic, a time-out), for staff. `None` when there is no header or reading it fails (a
/// panic included).
pub fn parse_headers_only(raw: &[u8]) -> Option<ParsedMail> {
    let cut = &raw[..raw.len().min(MAX_HEADER_BYTES)];
    // The header ends at the first line that is empty (CRLF or LF).
    let end = cut
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .find_map(|(i, _)| match cut.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 1),
            Some([b'\r', b'\n', ..]) => Some(i + 1),
            _ => None,
        })
        .unwrap_or(cut.len());
    let mut head = cut[..end].to_vec();
    // A header cut short (or never ended) is closed, else its last field is lost.
    head.extend_from_slice(b"\r\n");
    if !head.ends_with(b"\n\r\n") {
        head.extend_from_slice(b"\r\n");
    }
    std::panic::catch_unwind(|| parse_mail(&head).ok())
        .ok()
        .flatten()
}

pub fn parse_mail(raw: &[u8]) -> Result<ParsedMail, ParseError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }

    let message_id = message.message_id().map(|id| format!("<{}>", id.trim()));
    let from_addr = message.from().and_then(|a| a.first());
    let from = from_addr
        .and_then(|a| a.address.as_deref())
        .map(|s| s.trim().to_string());
    let from_name = from_addr
        .and_then(|a| a.name.as_deref())
        .map(|s| s.trim().to_string());
    let reply_to = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address.as_deref())
        .map(|s| s.trim().to_string())
        .or_else(|| from.clone());

    let raw_header = |name: &str| {
        message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unfold(v))
    };
    let return_path = raw_header("Return-Path").map(|v| {
        let v = v.trim();
        v.trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_string()
    });
    let authentication_results = message
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, v)| unfold(v))
        .collect();

    let mut references: Vec<String> = match message.references() {
        HeaderValue::Text(t) => vec![format!("<{}>", t.trim())],
        HeaderValue::TextList(l) => l.iter().map(|t| format!("<{}>", t.trim())).collect(),
        _ => Vec::new(),
    };
    if let Some(id) = &message_id {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }

    let date = message.date().and_then(|d| {
        let offset_secs = (d.tz_hour as i32 * 3600 + d.tz_minute as i32 * 60)
            * if d.tz_before_gmt { -1 } else { 1 };
        let offset = FixedOffset::east_opt(offset_secs)?;
        offset
            .with_ymd_and_hms(
                d.year as i32,
                d.month as u32,
                d.day as u32,
                d.hour as u32,
                d.minute as u32,
                d.second as u32,
            )
            .single()
    });

    let is_report = message
        .root_part()
        .content_type()
        .map(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .unwrap_or(false);

    let raw_headers = {
        let end = message.root_part().raw_body_offset() as usize;
        String::from_utf8_lossy(raw.get(..end.min(raw.len())).unwrap_or_default())
            .trim_end()
            .to_string()
    };

    // Plain text when there is one; an HTML-only body is turned into lines here, keeping
    // table cells apart, so that `Label: value` lines survive.
    let body_text = match message.text_bodies().next() {
        Some(part) if !part.is_text_html() => part.text_contents().unwrap_or_default().to_string(),
        _ => message
            .body_html(0)
            .map(|h| html_to_text(&h))
            .unwrap_or_default(),
    };

    let mut attachments = Vec::new();
    collect_attachments(&message, 0, &mut attachments);

    Ok(ParsedMail {
        message_id,
        subject: message
            .subject()
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        from,
        from_name,
        reply_to,
        return_path,
        date,
        references,
        is_report,
        auto_submitted: raw_header("Auto-Submitted").map(|v| v.trim().to_string()),
        has_autoreply_header: raw_header("X-Autoreply").is_some()
            || raw_header("X-Autorespond").is_some(),
        precedence: raw_header("Precedence").map(|v| v.trim().to_ascii_lowercase()),
        has_list_id: raw_header("List-Id").is_some(),
        authentication_results,
        raw_headers,
        body_text,
        attachments,
    })
}

fn collect_attachments(
    message: &mail_parser::Message<'_>,
    depth: usize,
    out: &mut Vec<Attachment>,
) {
    for part in message.attachments() {
        if let Some(inner) = part.message() {
            if depth < MAX_FORWARD_DEPTH {
                collect_attachments(inner, depth + 1, out);
            }
            continue;
        }
        out.push(attachment_of(part, depth));
    }
}

fn attachment_of(part: &MessagePart<'_>, depth: usize) -> Attachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase();
    let data = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
        _ => part.contents().to_vec(),
    };
    Attachment {
        name: part.attachment_name().map(|n| n.trim().to_string()),
        content_type,
        data,
        depth,
    }
}

/// A small HTML → text conversion: block elements end lines, table cells are separated by a
/// tab, other tags vanish, entities are decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let raw_tag = &rest[lt + 1..lt + gt];
        let closing = raw_tag.starts_with('/');
        let tag = raw_tag.trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match name.as_str() {
            "br" | "p" | "div" | "tr" | "li" | "table" | "h1" | "h2" | "h3" | "h4" | "h5"
            | "h6" | "blockquote" => out.push('\n'),
            "td" | "th" if !closing => out.push('\t'),
            _ => {}
        }
        // Skip the contents of style and script elements.
        rest = &rest[lt + gt + 1..];
        if !closing && (name == "style" || name == "script") && !rest.is_empty() {
            let close = format!("</{name}");
            rest = match rest.to_ascii_lowercase().find(&close) {
                Some(end) => &rest[end..],
                None => "",
            };
        }
    }
    out.push_str(&decode_entities(rest));
    out.lines()
        .map(|l| l.trim_matches([' ', '\t'].as_slice()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                "aring" => 'å',
                "auml" => 'ä',
                "ouml" => 'ö',
                "Aring" => 'Å',
                "Auml" => 'Ä',
                "Ouml" => 'Ö',
                "eacute" => 'é',
                "Eacute" => 'É',
                "uuml" => 'ü',
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Unfolds a raw header value (CRLF + white space → one space).
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, line) in v.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_header_block_is_read_for_a_quarantined_email() {
        let raw = b"From: Eva Nord <eva.nord@friskvardsyd.se>\r\nSubject: =?utf-8?q?Best=C3=A4llning?=\r\nMessage-ID: <q-1@test>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFrom: someone.else@example.org\r\n--b--\r\n";
        let m = super::parse_headers_only(raw).unwrap();
        assert_eq!(m.from.as_deref(), Some("eva.nord@friskvardsyd.se"));
        assert_eq!(m.subject, "Beställning");
        assert_eq!(m.message_id.as_deref(), Some("<q-1@test>"));
        assert!(
            m.body_text.is_empty(),
            "the body is not read: {:?}",
            m.body_text
        );
        // LF line ends, and a message that is nothing but a header.
        let m = super::parse_headers_only(b"From: a@b.se\nSubject: x\n\nbody").unwrap();
        assert_eq!(
            (m.from.as_deref(), m.subject.as_str()),
            (Some("a@b.se"), "x")
        );
        let m = super::parse_headers_only(b"From: a@b.se\r\nSubject: y").unwrap();
        assert_eq!(m.subject, "y");
        assert!(super::parse_headers_only(b"").is_none());
    }

    use super::*;

    #[test]
    fn headers_and_threading() {
        let raw = b"From: Anna <Anna@Example.se>\r\nReply-To: kansli@example.se\r\nTo: x@y.se\r\nSubject: =?utf-8?q?Best=C3=A4llning?=\r\nMessage-ID: <m1@host>\r\nReferences: <a@h> <b@h>\r\nDate: Mon, 16 Nov 2026 23:30:00 -0200\r\nAuthentication-Results: mx.vgregion.se;\r\n dmarc=pass\r\nAuthentication-Results: other; dmarc=fail\r\n\r\nHej\r\n";
        let m = parse_mail(raw).unwrap();
        assert_eq!(m.message_id.as_deref(), Some("<m1@host>"));
        assert_eq!(m.subject, "Beställning");
        assert_eq!(m.reply_to.as_deref(), Some("kansli@example.se"));
        assert_eq!(m.references, vec!["<a@h>", "<b@h>", "<m1@host>"]);
        assert_eq!(
            m.email_date(NaiveDate::MIN),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()
        );
        assert_eq!(
            m.authentication_results,
            vec!["mx.vgregion.se; dmarc=pass", "other; dmarc=fail"]
        );
        assert!(m.body_text.contains("Hej"));
    }

    #[test]
    fn forwarded_attachments_are_found() {
        let raw = concat!(
            "From: a@b.se\r\nSubject: Fwd\r\nMessage-ID: <o@h>\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n",
            "--X\r\nContent-Type: text/plain\r\n\r\nSe nedan\r\n",
            "--X\r\nContent-Type: message/rfc822\r\n\r\n",
            "From: c@d.se\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=Y\r\n\r\n",
            "--Y\r\nContent-Type: text/plain\r\n\r\ninner body\r\n",
            "--Y\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''best%C3%A4llning.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--Y--\r\n",
            "--X--\r\n"
        );
        let m = parse_mail(raw.as_bytes()).unwrap();
        assert_eq!(m.attachments.len(), 1, "{:?}", m.attachments);
        assert_eq!(m.attachments[0].name.as_deref(), Some("beställning.pdf"));
        assert_eq!(m.attachments[0].depth, 1);
        assert!(m.attachments[0].data.starts_with(b"%PDF-1.4"));
    }

    #[test]
    fn html_bodies_keep_lines_and_cells_apart() {
        let t = html_to_text("<html><style>p{x:1}</style><body><p>Hej&nbsp;d&aring;!</p><table><tr><td>Namn:</td><td>&Ouml;rjan &amp; Co</td></tr></table>Datum: 2026-11-18<br/>Slut &#229;&#xE4;</body></html>");
        assert_eq!(
            t.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
            vec![
                "Hej då!",
                "Namn:\tÖrjan & Co",
                "Datum: 2026-11-18",
                "Slut åä"
            ]
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(parse_mail(b"").is_err());
    }

    #[test]
    fn empty_return_path_is_kept() {
        let m =
            parse_mail(b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.se\r\nSubject: x\r\n\r\nbody")
                .unwrap();
        assert_eq!(m.return_path.as_deref(), Some(""));
    }
}
