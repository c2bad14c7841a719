//! A small MIME writer for test mail: the fixture generator, the benchmark and the tests use it
//! to build emails the way real mail clients do (multipart/mixed and /alternative, HTML-only
//! bodies, forwarded message/rfc822 parts, RFC 2231 and RFC 2047 file names, base64 and
//! quoted-printable).

use base64::Engine;

#[derive(Debug, Clone)]
pub struct MailSpec {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub date: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub enum Body {
    Plain(String),
    Html(String),
    Alternative { plain: String, html: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameEncoding {
    Plain,
    /// `filename*=utf-8''…` (RFC 2231), split into continuations when long.
    Rfc2231,
    /// `name="=?utf-8?B?…?="` (RFC 2047), as some clients still write it.
    Rfc2047,
}

#[derive(Debug, Clone)]
pub enum Part {
    File {
        name: String,
        content_type: String,
        data: Vec<u8>,
        encoding: NameEncoding,
    },
    Forwarded(Box<MailSpec>),
}

impl MailSpec {
    pub fn new(from: &str, subject: &str, message_id: &str, date: &str) -> MailSpec {
        MailSpec {
            from: from.into(),
            to: "TjänsteID-service <tjansteid@vgregion.se>".into(),
            subject: subject.into(),
            message_id: Some(message_id.into()),
            date: date.into(),
            headers: Vec::new(),
            body: Body::Plain("Hej!\n\nSe bifogad blankett.\n\nMed vänlig hälsning\n".into()),
            parts: Vec::new(),
        }
    }

    pub fn attach_pdf(mut self, name: &str, data: Vec<u8>) -> Self {
        self.parts.push(Part::File {
            name: name.into(),
            content_type: "application/pdf".into(),
            data,
            encoding: NameEncoding::Plain,
        });
        self
    }
}

pub fn build(spec: &MailSpec) -> Vec<u8> {
    let mut out = String::new();
    write_message(spec, &mut out, 0);
    out.into_bytes()
}

fn write_message(spec: &MailSpec, out: &mut String, depth: usize) {
    header(out, "From", &encode_address(&spec.from));
    header(out, "To", &encode_address(&spec.to));
    header(out, "Subject", &encode_word(&spec.subject));
    header(out, "Date", &spec.date);
    if let Some(id) = &spec.message_id {
        header(out, "Message-ID", id);
    }
    header(out, "MIME-Version", "1.0");
    for (k, v) in &spec.headers {
        header(out, k, v);
    }
    if spec.parts.is_empty() {
        write_body(&spec.body, out, depth);
        return;
    }
    let boundary = format!(
        "=_mixed_{depth}_{:08x}",
        fxhash(&spec.subject) ^ depth as u32
    );
    header(
        out,
        "Content-Type",
        &format!("multipart/mixed; boundary=\"{boundary}\""),
    );
    out.push_str("\r\nThis is a multi-part message in MIME format.\r\n");
    out.push_str(&format!("--{boundary}\r\n"));
    write_body(&spec.body, out, depth);
    for part in &spec.parts {
        out.push_str(&format!("\r\n--{boundary}\r\n"));
        match part {
            Part::File {
                name,
                content_type,
                data,
                encoding,
            } => {
                let (ct_name, disposition) = match encoding {
                    NameEncoding::Plain => (
                        format!("name=\"{name}\""),
                        format!("attachment; filename=\"{name}\""),
                    ),
                    NameEncoding::Rfc2047 => {
                        let w = encode_word(name);
                        (
                            format!("name=\"{w}\""),
                            format!("attachment; filename=\"{w}\""),
                        )
                    }
                    NameEncoding::Rfc2231 => (
                        String::new(),
                        format!("attachment;\r\n{}", rfc2231("filename", name)),
                    ),
                };
                if ct_name.is_empty() {
                    header(out, "Content-Type", content_type);
                } else {
                    header(out, "Content-Type", &format!("{content_type}; {ct_name}"));
                }
                header(out, "Content-Disposition", &disposition);
                header(out, "Content-Transfer-Encoding", "base64");
                out.push_str("\r\n");
                out.push_str(&base64_lines(data));
            }
            Part::Forwarded(inner) => {
                header(out, "Content-Type", "message/rfc822");
                header(out, "Content-Disposition", "inline");
                out.push_str("\r\n");
                write_message(inner, out, depth + 1);
            }
        }
    }
    out.push_str(&format!("\r\n--{boundary}--\r\n"));
}

fn write_body(body: &Body, out: &mut String, depth: usize) {
    match body {
        Body::Plain(text) => text_part(out, "text/plain", text),
        Body::Html(html) => text_part(out, "text/html", html),
        Body::Alternative { plain, html } => {
            let boundary = format!("=_alt_{depth}_{:08x}", fxhash(plain));
            header(
                out,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{boundary}\""),
            );
            out.push_str(&format!("\r\n--{boundary}\r\n"));
            text_part(out, "text/plain", plain);
            out.push_str(&format!("\r\n--{boundary}\r\n"));
            text_part(out, "text/html", html);
            out.push_str(&format!("\r\n--{boundary}--\r\n"));
        }
    }
}

fn text_part(out: &mut String, content_type: &str, text: &str) {
    header(
        out,
        "Content-Type",
        &format!("{content_type}; charset=utf-8"),
    );
    header(out, "Content-Transfer-Encoding", "quoted-printable");
    out.push_str("\r\n");
    out.push_str(&quoted_printable(text));
    out.push_str("\r\n");
}

fn header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// `Name <addr>` with a non-ASCII name encoded.
fn encode_address(addr: &str) -> String {
    match addr.rsplit_once('<') {
        Some((name, rest)) if !name.trim().is_empty() => {
            format!("{} <{rest}", encode_word(name.trim()))
        }
        _ => addr.to_string(),
    }
}

/// RFC 2047 encoded word when needed.
pub fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )
}

/// RFC 2231 parameter with percent-encoding, in continuations of at most 30 characters.
fn rfc2231(param: &str, value: &str) -> String {
    let mut encoded = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let chunks: Vec<String> = encoded
        .as_bytes()
        .chunks(30)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let mut lines = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let prefix = if i == 0 { "utf-8''" } else { "" };
        lines.push(format!(" {param}*{i}*={prefix}{chunk}"));
    }
    lines.join(";\r\n")
}

fn base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let mut len = 0;
        for b in line.trim_end_matches('\r').bytes() {
            let piece = if (b.is_ascii_graphic() && b != b'=') || b == b' ' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if len + piece.len() > 73 {
                out.push_str("=\r\n");
                len = 0;
            }
            len += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tjid_intake::pipeline::parse::parse_mail;

    #[test]
    fn built_mail_parses_back() {
        let mut spec = MailSpec::new(
            "Örjan <orjan@vgregion.se>",
            "Beställning åäö",
            "<t1@test>",
            "Wed, 18 Nov 2026 10:00:00 +0100",
        );
        spec.parts.push(Part::File {
            name: "beställning för Åsa Öberg med ett långt namn.pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF-1.4 test".to_vec(),
            encoding: NameEncoding::Rfc2231,
        });
        let inner = MailSpec::new(
            "a@b.se",
            "inner",
            "<t2@test>",
            "Wed, 18 Nov 2026 09:00:00 +0100",
        )
        .attach_pdf("x.pdf", b"%PDF-1.7".to_vec());
        spec.parts.push(Part::Forwarded(Box::new(inner)));
        let m = parse_mail(&build(&spec)).unwrap();
        assert_eq!(m.subject, "Beställning åäö");
        assert_eq!(m.from_name.as_deref(), Some("Örjan"));
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(
            m.attachments[0].name.as_deref(),
            Some("beställning för Åsa Öberg med ett långt namn.pdf")
        );
        assert_eq!(m.attachments[1].depth, 1);
        assert!(m.body_text.contains("Se bifogad"));
    }
}
