//! One SMTP client connection (RFC 5321): greeting, EHLO, STARTTLS or implicit TLS (rustls),
//! AUTH PLAIN or LOGIN (RFC 4954), and a mail transaction split at the end of data.
//!
//! The split is why this is not lettre's transport: `send_body` writes everything but the
//! final `.`, so the caller can commit "handed over" to its store before `end_data` writes
//! it. A server that never saw the `.` discards the transaction (RFC 5321 §4.1.1.4), so a
//! sender that dies before it may send again; once the `.` is written the reply counts as
//! handed over.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::net::Security;

/// Longest reply line taken (RFC 5321 §4.5.3.1.5 says 512 with the code); longer is an error.
const MAX_LINE: u64 = 4096;
/// Most lines of one multi-line reply.
const MAX_LINES: usize = 200;
/// How long to wait for the answer to the end of data at least: RFC 5321 §4.5.3.2.6 asks a
/// client for 10 minutes (the server may be filtering the message). Giving up earlier would
/// leave the reply in doubt for nothing.
pub const DATA_TERMINATION: Duration = Duration::from_secs(600);

/// The server's answer to one command: its code and its text lines joined by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why an SMTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpFailure {
    #[error("{during}: {source}")]
    Io {
        during: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{during}: no answer within {secs} s")]
    Timeout { during: &'static str, secs: u64 },
    #[error("the server answered {during} with {answer}")]
    Refused {
        during: &'static str,
        answer: Answer,
    },
    /// A missing server feature or a protocol violation; `permanent` when it concerns this
    /// reply alone (an address the server cannot take).
    #[error("{message}")]
    Other { message: String, permanent: bool },
}

impl SmtpFailure {
    /// The server answered one of the mail's own commands (MAIL, RCPT, DATA, the end of
    /// data): about this mail, not about the relay or the connection.
    pub fn about_the_mail(&self) -> bool {
        matches!(self, SmtpFailure::Refused { during, .. }
            if matches!(*during, "MAIL FROM" | "RCPT TO" | "DATA" | "the end of data"))
    }

    /// Only an explicit 5xx to the mail's own commands (MAIL, RCPT, DATA, the end of data),
    /// or a reply the server cannot take at all, is final; everything else (4xx, network,
    /// TLS, time-out) may work later. A 5xx to the greeting, EHLO, STARTTLS or AUTH is about
    /// the relay or our account there (RFC 4954: 530, 534, 535, 538), not this reply: it
    /// waits for ops.
    pub fn temporary(&self) -> bool {
        match self {
            SmtpFailure::Refused { answer, .. } => {
                !(self.about_the_mail() && (500..600).contains(&answer.code))
                    || matches!(answer.code, 530 | 534 | 535 | 538)
            }
            SmtpFailure::Other { permanent, .. } => !permanent,
            _ => true,
        }
    }

    /// The server's code, when it answered.
    pub fn answer_code(&self) -> Option<u16> {
        match self {
            SmtpFailure::Refused { answer, .. } => Some(answer.code),
            _ => None,
        }
    }

    fn other(message: impl Into<String>) -> SmtpFailure {
        SmtpFailure::Other {
            message: message.into(),
            permanent: false,
        }
    }
}

/// Where and how to connect; built once from `[smtp]`.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// For `tls` and `starttls`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// AUTH user and password, when configured.
    pub credentials: Option<(String, String)>,
    pub hello_name: String,
    pub timeout: Duration,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What EHLO announced.
#[derive(Debug, Default)]
struct Extensions {
    starttls: bool,
    /// Upper-case SASL mechanisms.
    auth: Vec<String>,
    eight_bit_mime: bool,
    smtputf8: bool,
}

impl Extensions {
    fn from_answer(text_lines: &[String]) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the server's greeting to us.
        for line in text_lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "AUTH" => ext.auth.extend(words.map(|w| w.to_ascii_uppercase())),
                _ => {}
            }
        }
        ext
    }
}

/// An open, greeted (and authenticated) connection, ready for a mail transaction.
pub struct Session {
    io: BufReader<Stream>,
    ext: Extensions,
    timeout: Duration,
}

impl Session {
    /// Connects, reads the greeting, says EHLO, starts TLS as configured and authenticates.
    pub async fn open(ep: &Endpoint) -> Result<Session, SmtpFailure> {
        // The configuration check asks for a fully qualified name; here, because it is written
        // into a command, whatever it is must at least be a name or an address literal.
        if !is_domain_or_literal(&ep.hello_name) {
            return Err(SmtpFailure::other(format!(
                "smtp.hello_name {:?} is no domain name nor address literal; it is not sent in EHLO",
                ep.hello_name
            )));
        }
        let tcp = within(ep.timeout, "connecting", async {
            TcpStream::connect((ep.host.as_str(), ep.port)).await
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        let stream = match ep.security {
            Security::Tls => Stream::Tls(Box::new(handshake(ep, tcp).await?)),
            _ => Stream::Plain(tcp),
        };
        let mut s = Session {
            io: BufReader::new(stream),
            ext: Extensions::default(),
            timeout: ep.timeout,
        };
        s.expect("the greeting", 220).await?;
        s.ehlo(&ep.hello_name).await?;
        if ep.security == Security::Starttls {
            if !s.ext.starttls {
                return Err(SmtpFailure::other(format!(
                    "STARTTLS is not supported by the SMTP server {}:{} (security = \"starttls\" never falls back to plain text)",
                    ep.host, ep.port
                )));
            }
            s.command("STARTTLS", "STARTTLS", 220).await?;
            // Anything the server sent after its 220 would be read as if it came over TLS.
            if !s.io.buffer().is_empty() {
                return Err(SmtpFailure::other(
                    "the SMTP server sent data after its answer to STARTTLS",
                ));
            }
            let Stream::Plain(tcp) = s.io.into_inner() else {
                unreachable!("STARTTLS on a TLS stream")
            };
            s.io = BufReader::new(Stream::Tls(Box::new(handshake(ep, tcp).await?)));
            s.ehlo(&ep.hello_name).await?;
        }
        if let Some((user, password)) = &ep.credentials {
            // The password never crosses the network in clear, whatever the configuration
            // says; only a relay on this machine may take it so.
            let protected = matches!(s.io.get_ref(), Stream::Tls(_));
            if !protected && !crate::net::is_loopback(&ep.host) {
                return Err(SmtpFailure::other(format!(
                    "AUTH is not sent over a connection without TLS to {}:{} (set security = \"starttls\" or \"tls\")",
                    ep.host, ep.port
                )));
            }
            s.authenticate(user, password).await?;
        }
        Ok(s)
    }

    async fn ehlo(&mut self, name: &str) -> Result<(), SmtpFailure> {
        self.write(format!("EHLO {name}\r\n").as_bytes(), "EHLO")
            .await?;
        let (answer, lines) = self.read_answer("EHLO").await?;
        if answer.code != 250 {
            return Err(SmtpFailure::Refused {
                during: "EHLO",
                answer,
            });
        }
        self.ext = Extensions::from_answer(&lines);
        Ok(())
    }

    async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), SmtpFailure> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        if self.ext.auth.iter().any(|m| m == "PLAIN") {
            let token = b64(format!("\0{user}\0{password}").as_bytes());
            // The credentials are not part of any error text.
            self.write(format!("AUTH PLAIN {token}\r\n").as_bytes(), "AUTH")
                .await?;
            let (answer, _) = self.read_answer("AUTH").await?;
            return expect_code(answer, "AUTH", 235);
        }
        if self.ext.auth.iter().any(|m| m == "LOGIN") {
            self.command("AUTH LOGIN", "AUTH", 334).await?;
            self.write(format!("{}\r\n", b64(user.as_bytes())).as_bytes(), "AUTH")
                .await?;
            let (answer, _) = self.read_answer("AUTH").await?;
            expect_code(answer, "AUTH", 334)?;
            self.write(
                format!("{}\r\n", b64(password.as_bytes())).as_bytes(),
                "AUTH",
            )
            .await?;
            let (answer, _) = self.read_answer("AUTH").await?;
            return expect_code(answer, "AUTH", 235);
        }
        Err(SmtpFailure::other(format!(
            "the SMTP server offers no AUTH mechanism this client has (PLAIN, LOGIN); it offers: {}",
            if self.ext.auth.is_empty() {
                "none".to_string()
            } else {
                self.ext.auth.join(" ")
            }
        )))
    }

    /// MAIL, RCPT, DATA and the message, dot-stuffed, without the final `.`: the server
    /// holds the transaction open until `end_data`, and discards it if the connection ends.
    pub async fn send_body(
        &mut self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> Result<(), SmtpFailure> {
        let utf8 = !from.is_ascii() || !to.is_ascii();
        if utf8 && !self.ext.smtputf8 {
            return Err(SmtpFailure::Other {
                message: "the SMTP server does not take UTF-8 addresses (no SMTPUTF8)".into(),
                permanent: true,
            });
        }
        let message = sendable(message, self.ext.eight_bit_mime)?;
        let mut mail = format!("MAIL FROM:<{from}>");
        if !message.is_ascii() && self.ext.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        self.command(&mail, "MAIL FROM", 250).await?;
        self.command(&format!("RCPT TO:<{to}>"), "RCPT TO", 250)
            .await?;
        self.command("DATA", "DATA", 354).await?;
        self.write(&dot_stuffed(&message), "sending the message")
            .await
    }

    /// Writes the final `.` and reads the server's answer (waiting at least
    /// `DATA_TERMINATION`). Once this is called the reply may be delivered whatever happens
    /// next.
    pub async fn end_data(&mut self) -> Result<Answer, SmtpFailure> {
        self.write(b".\r\n", "the end of data").await?;
        super::smtp::die_here_in_tests("after_end_of_data");
        let usual = self.timeout;
        self.timeout = usual.max(DATA_TERMINATION);
        let answer = self.read_answer("the end of data").await;
        self.timeout = usual;
        let (answer, _) = answer?;
        if answer.code / 100 == 2 {
            Ok(answer)
        } else {
            Err(SmtpFailure::Refused {
                during: "the end of data",
                answer,
            })
        }
    }

    /// MAIL FROM and RCPT TO only, no DATA: whether the relay would take a mail from `from` to
    /// `to` (`check`, and telling a refusal of us from a refusal of one reply). Ends with RSET
    /// whatever the answers, so the session stays usable when the server still talks.
    pub async fn envelope_only(&mut self, from: &str, to: &str) -> Result<(), SmtpFailure> {
        let result = async {
            self.command(&format!("MAIL FROM:<{from}>"), "MAIL FROM", 250)
                .await?;
            self.command(&format!("RCPT TO:<{to}>"), "RCPT TO", 250)
                .await
        }
        .await;
        match result {
            Ok(()) => self.reset().await,
            Err(e) => {
                if matches!(e, SmtpFailure::Refused { .. }) {
                    let _ = self.reset().await;
                }
                Err(e)
            }
        }
    }

    /// RSET: ends a refused transaction and keeps the connection (RFC 5321 §4.1.1.5).
    pub async fn reset(&mut self) -> Result<(), SmtpFailure> {
        self.command("RSET", "RSET", 250).await
    }

    /// NOOP: whether the connection still works.
    #[cfg(test)]
    pub async fn noop(&mut self) -> Result<(), SmtpFailure> {
        self.command("NOOP", "NOOP", 250).await
    }

    /// QUIT, best effort.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT", 221).await;
    }

    async fn command(
        &mut self,
        line: &str,
        during: &'static str,
        code: u16,
    ) -> Result<(), SmtpFailure> {
        self.write(format!("{line}\r\n").as_bytes(), during).await?;
        let (answer, _) = self.read_answer(during).await?;
        expect_code(answer, during, code)
    }

    async fn expect(&mut self, during: &'static str, code: u16) -> Result<(), SmtpFailure> {
        let (answer, _) = self.read_answer(during).await?;
        expect_code(answer, during, code)
    }

    async fn write(&mut self, bytes: &[u8], during: &'static str) -> Result<(), SmtpFailure> {
        let io = &mut self.io;
        within(self.timeout, during, async move {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
    }

    /// One reply, single- or multi-line (`250-…` continues, `250 …` ends); also its lines'
    /// texts.
    async fn read_answer(
        &mut self,
        during: &'static str,
    ) -> Result<(Answer, Vec<String>), SmtpFailure> {
        let io = &mut self.io;
        let lines = within(self.timeout, during, async move {
            let mut lines: Vec<(u16, String)> = Vec::new();
            loop {
                let mut buf = Vec::new();
                let n = (&mut *io)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut buf)
                    .await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                if !buf.ends_with(b"\n") {
                    return Err(bad_reply("a reply line without its end (too long?)"));
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\r', '\n']);
                let code = line
                    .get(..3)
                    .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| (200..600).contains(c))
                    .ok_or_else(|| bad_reply("a reply line that does not start with a code"))?;
                let more = line.as_bytes().get(3) == Some(&b'-');
                lines.push((code, line.get(4..).unwrap_or("").trim().to_string()));
                if lines.iter().any(|(c, _)| *c != code) {
                    return Err(bad_reply("a multi-line reply with two codes"));
                }
                if !more {
                    return Ok(lines);
                }
                if lines.len() >= MAX_LINES {
                    return Err(bad_reply("a reply of too many lines"));
                }
            }
        })
        .await?;
        let code = lines[0].0;
        let texts: Vec<String> = lines.into_iter().map(|(_, t)| t).collect();
        let answer = Answer {
            code,
            text: texts.join(" "),
        };
        Ok((answer, texts))
    }
}

fn bad_reply(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the server sent {what}"),
    )
}

fn expect_code(answer: Answer, during: &'static str, code: u16) -> Result<(), SmtpFailure> {
    if answer.code == code {
        Ok(())
    } else {
        Err(SmtpFailure::Refused { during, answer })
    }
}

async fn handshake(
    ep: &Endpoint,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SmtpFailure> {
    let config = ep
        .tls
        .clone()
        .ok_or_else(|| SmtpFailure::other("TLS is configured without a TLS client set-up"))?;
    let name = rustls::pki_types::ServerName::try_from(ep.host.clone()).map_err(|e| {
        SmtpFailure::other(format!("{} is not a valid TLS server name: {e}", ep.host))
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let result = within(
        ep.timeout,
        "the TLS handshake",
        connector.connect(name, tcp),
    )
    .await;
    match result {
        // Implicit TLS to a server that greets in plain text: its "220 …" is not a TLS record.
        Err(SmtpFailure::Io { source, .. })
            if ep.security == Security::Tls && not_tls_on_connect(&source) =>
        {
            Err(SmtpFailure::other(format!(
                "the server {}:{} does not speak TLS on connect: use security = \"starttls\" (or the relay's TLS port, usually 465)",
                ep.host, ep.port
            )))
        }
        other => other,
    }
}

/// Whether a handshake failed because the server's first bytes were no TLS record.
fn not_tls_on_connect(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidMessage(_)))
}

/// Runs one network step under the time limit.
async fn within<T>(
    limit: Duration,
    during: &'static str,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, SmtpFailure> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(SmtpFailure::Io { during, source }),
        Err(_) => Err(SmtpFailure::Timeout {
            during,
            secs: limit.as_secs(),
        }),
    }
}

/// The longest line SMTP carries, without its CRLF (RFC 5321 §4.5.3.1.6).
pub const MAX_DATA_LINE: usize = 998;

/// A domain (letters, digits, `-` and `.`) or an address literal (`[192.0.2.1]`,
/// `[IPv6:2001:db8::1]`): nothing that could end or extend the EHLO command.
fn is_domain_or_literal(name: &str) -> bool {
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        let address_like = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return address_like || super::valid_hello_name(name);
    }
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The longest line of `message`, without its line end.
fn longest_line(message: &[u8]) -> usize {
    message
        .split(|&b| b == b'\n' || b == b'\r')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// The message as this server can take it, checked before any command: as it is; or, when a
/// line is longer than [`MAX_DATA_LINE`] or it holds 8-bit data and the server did not offer
/// 8BITMIME, with its body re-encoded as quoted-printable (a single-part message whose body is
/// not encoded yet, as lettre would have had to). What cannot be made sendable (a multipart
/// body, an over-long or 8-bit header) is a permanent failure on the reply, not a message
/// cut or garbled in transit. The replies this service builds never need either (lettre
/// encodes their bodies and headers).
fn sendable(message: &[u8], eight_bit_mime: bool) -> Result<Cow<'_, [u8]>, SmtpFailure> {
    let fits = |m: &[u8]| longest_line(m) <= MAX_DATA_LINE && (m.is_ascii() || eight_bit_mime);
    if fits(message) {
        return Ok(Cow::Borrowed(message));
    }
    if let Some(encoded) = body_quoted_printable(message).filter(|m| fits(m)) {
        return Ok(Cow::Owned(encoded));
    }
    let longest = longest_line(message);
    let problem = if longest > MAX_DATA_LINE {
        format!("a line of the message is {longest} characters long; SMTP allows {MAX_DATA_LINE}")
    } else {
        "the message holds 8-bit data and the SMTP server does not offer 8BITMIME".into()
    };
    Err(SmtpFailure::Other {
        message: format!("{problem}, and its body cannot be re-encoded; it was not sent"),
        permanent: true,
    })
}

/// `message` with its body quoted-printable (line ends made CRLF first) and its
/// Content-Transfer-Encoding header saying so; `None` for a multipart message or a body
/// already encoded (base64, quoted-printable).
fn body_quoted_printable(message: &[u8]) -> Option<Vec<u8>> {
    let split = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| {
            let at = message.windows(sep.len()).position(|w| w == *sep)?;
            Some((at, sep.len()))
        })
        .min()?;
    let (head, body) = (&message[..split.0], &message[split.0 + split.1..]);
    let head = std::str::from_utf8(head).ok()?;
    // Header fields with their continuation lines.
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        match (line.starts_with([' ', '\t']), fields.last_mut()) {
            (true, Some(field)) => {
                field.push_str("\r\n");
                field.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    let named = |field: &str, name: &str| {
        field
            .split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    let value = |name: &str| {
        fields.iter().find(|f| named(f, name)).map(|f| {
            f.split_once(':')
                .map_or("", |(_, v)| v)
                .to_ascii_lowercase()
        })
    };
    if value("Content-Type").is_some_and(|v| v.contains("multipart/")) {
        return None;
    }
    if value("Content-Transfer-Encoding")
        .is_some_and(|v| v.contains("base64") || v.contains("quoted-printable"))
    {
        return None;
    }
    let mut out = Vec::with_capacity(message.len() * 3 / 2);
    for field in fields
        .iter()
        .filter(|f| !named(f, "Content-Transfer-Encoding"))
    {
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    let mut crlf = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' | b'\n' => {
                crlf.extend_from_slice(b"\r\n");
                i += if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b => {
                crlf.push(b);
                i += 1;
            }
        }
    }
    out.extend(quoted_printable::encode(&crlf));
    Some(out)
}

/// The message as DATA carries it: every line end CRLF (a bare LF and a bare CR become CRLF,
/// RFC 5321 §2.3.8), a `.` doubled at the start of a line (§4.5.2), and a final CRLF; not the
/// closing `.`.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    let mut line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if b == b'\r' || b == b'\n' {
            // CRLF, a bare LF or a bare CR: one line end.
            out.extend_from_slice(b"\r\n");
            i += if b == b'\r' && message.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            line_start = true;
            continue;
        }
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = false;
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled_and_line_ends_made_crlf() {
        assert_eq!(
            dot_stuffed(b".a\r\nb\n.\n..c"),
            b"..a\r\nb\r\n..\r\n...c\r\n"
        );
        assert_eq!(dot_stuffed(b"x.\r\n"), b"x.\r\n");
        assert_eq!(dot_stuffed(b""), b"\r\n");
        // A bare CR ends a line too (RFC 5321 §2.3.8): never passed on alone.
        assert_eq!(dot_stuffed(b"a\rb\r\r\n.c\r"), b"a\r\nb\r\n\r\n..c\r\n");
    }

    #[test]
    fn what_a_server_cannot_take_is_re_encoded_or_refused_before_any_command() {
        let line = |n: usize| {
            let mut m = b"Subject: x\r\n\r\n".to_vec();
            m.extend(std::iter::repeat_n(b'a', n));
            m.extend_from_slice(b"\r\n");
            m
        };
        assert!(matches!(sendable(&line(998), false), Ok(Cow::Borrowed(_))));
        let eight_bit = "Subject: x\r\n\r\nHälsningar\r\n".as_bytes();
        assert!(matches!(sendable(eight_bit, true), Ok(Cow::Borrowed(_))));
        // Re-encoded: every line within the limit, 7-bit, and it says how it is encoded.
        for (message, eight_bit_mime) in [(&line(999)[..], true), (eight_bit, false)] {
            let sent = sendable(message, eight_bit_mime).unwrap();
            assert!(sent.is_ascii() && longest_line(&sent) <= 76, "{sent:?}");
            let text = String::from_utf8(sent.into_owned()).unwrap();
            assert!(text.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
        }
        let text = String::from_utf8(sendable(eight_bit, false).unwrap().into_owned()).unwrap();
        assert!(text.ends_with("\r\n\r\nH=C3=A4lsningar\r\n"), "{text:?}");
        // A multipart body, or an 8-bit header, cannot be: a permanent failure, said why.
        let multipart =
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nHälsningar\r\n--b--\r\n";
        let header = "Subject: Hälsningar\r\n\r\nx\r\n";
        for message in [multipart, header] {
            let err = sendable(message.as_bytes(), false).unwrap_err();
            assert!(!err.temporary(), "{err}");
            assert!(err.to_string().contains("8BITMIME"), "{err}");
        }
    }

    #[test]
    fn an_ehlo_name_cannot_carry_another_command() {
        for ok in [
            "mail.vgregion.se",
            "vm",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
        ] {
            assert!(is_domain_or_literal(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "x\r\nRSET",
            "mail.vgregion.se\n",
            "[]",
            "[a b]",
            "ä.se",
        ] {
            assert!(!is_domain_or_literal(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_this_machine_is_loopback() {
        use crate::net::is_loopback;
        for host in ["localhost", "127.0.0.1", "::1", "[::1]", "127.0.0.2"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.vgregion.se", "10.0.0.1", "localhost.example"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn ehlo_keywords_are_read_case_blind_past_the_greeting_line() {
        let lines: Vec<String> = [
            "mail.example.se Hello",
            "8bitmime",
            "AUTH LOGIN plain",
            "STARTTLS",
            "SIZE 1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ext = Extensions::from_answer(&lines);
        assert!(ext.starttls && ext.eight_bit_mime && !ext.smtputf8);
        assert_eq!(ext.auth, ["LOGIN", "PLAIN"]);
    }

    #[test]
    fn only_a_5xx_about_the_mail_is_final() {
        let refused = |code| SmtpFailure::Refused {
            during: "RCPT TO",
            answer: Answer {
                code,
                text: "x".into(),
            },
        };
        assert!(!refused(550).temporary());
        assert!(refused(451).temporary());
        assert!(refused(535).temporary(), "a refused AUTH waits for ops");
        let greeting = SmtpFailure::Refused {
            during: "the greeting",
            answer: Answer {
                code: 554,
                text: "no service".into(),
            },
        };
        assert!(
            greeting.temporary(),
            "the relay's refusal is not the reply's"
        );
        assert!(SmtpFailure::Timeout {
            during: "DATA",
            secs: 1
        }
        .temporary());
    }

    /// A scripted server on loopback: answers each line it reads with the next canned reply.
    async fn scripted(replies: Vec<&'static str>) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let mut seen = Vec::new();
            let mut replies = replies.into_iter();
            w.write_all(b"220 test ESMTP\r\n").await.unwrap();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    return seen;
                }
                seen.push(line.trim_end().to_string());
                if line.starts_with("DATA") {
                    w.write_all(b"354 go on\r\n").await.unwrap();
                    // Up to and with the final dot.
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).await.unwrap() == 0 {
                            seen.push("(closed inside DATA)".into());
                            return seen;
                        }
                        if l == ".\r\n" {
                            seen.push(".".into());
                            break;
                        }
                        // A line of the message as it arrived (a line end other than CRLF
                        // stays visible).
                        seen.push(format!("| {}", l.strip_suffix("\r\n").unwrap_or(&l)));
                    }
                }
                match replies.next() {
                    // `slow:` answers after 1.5 s.
                    Some(reply) => {
                        let reply = match reply.strip_prefix("slow:") {
                            Some(r) => {
                                tokio::time::sleep(Duration::from_millis(1500)).await;
                                r
                            }
                            None => reply,
                        };
                        w.write_all(reply.as_bytes()).await.unwrap()
                    }
                    None => return seen,
                }
            }
        });
        (port, task)
    }

    fn endpoint(port: u16) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
            security: Security::Plain,
            tls: None,
            credentials: None,
            hello_name: "client.test".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn implicit_tls_to_a_plain_text_greeting_says_to_use_starttls() {
        let (port, server) = scripted(vec![]).await;
        let mut ep = endpoint(port);
        ep.security = Security::Tls;
        ep.host = "localhost".into();
        ep.tls = Some(crate::net::tls::client_config(None).unwrap());
        let err = Session::open(&ep).await.err().unwrap().to_string();
        assert!(
            err.contains("does not speak TLS on connect: use security = \"starttls\""),
            "{err}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_refused_envelope_is_reset_and_the_connection_kept() {
        let (port, server) = scripted(vec![
            "250 test\r\n",
            "250 ok\r\n",
            "451 4.3.0 try later\r\n",
            "250 reset\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 reset\r\n",
            "221 bye\r\n",
        ])
        .await;
        let mut s = Session::open(&endpoint(port)).await.unwrap();
        let err = s.envelope_only("a@b.se", "c@d.se").await.unwrap_err();
        assert!(err.temporary(), "{err}");
        s.envelope_only("a@b.se", "c@d.se").await.unwrap();
        s.quit().await;
        let seen = server.await.unwrap();
        assert_eq!(
            seen,
            [
                "EHLO client.test",
                "MAIL FROM:<a@b.se>",
                "RCPT TO:<c@d.se>",
                "RSET",
                "MAIL FROM:<a@b.se>",
                "RCPT TO:<c@d.se>",
                "RSET",
                "QUIT"
            ]
        );
    }

    #[tokio::test]
    async fn a_transaction_left_before_its_end_of_data_never_reaches_the_dot() {
        let (port, server) = scripted(vec![
            "250-test\r\n250 8BITMIME\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
        ])
        .await;
        let mut s = Session::open(&endpoint(port)).await.unwrap();
        s.send_body("a@b.se", "c@d.se", b"Subject: x\r\n\r\n.hej\r\n")
            .await
            .unwrap();
        drop(s);
        let seen = server.await.unwrap();
        assert_eq!(
            seen,
            [
                "EHLO client.test",
                "MAIL FROM:<a@b.se>",
                "RCPT TO:<c@d.se>",
                "DATA",
                "| Subject: x",
                "| ",
                "| ..hej",
                "(closed inside DATA)"
            ]
        );
    }

    #[tokio::test]
    async fn the_answer_to_the_end_of_data_is_awaited_past_the_usual_time_out() {
        let (port, server) = scripted(vec![
            "250 test\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "slow:250 2.0.0 queued after filtering\r\n",
            "slow:250 ok\r\n",
        ])
        .await;
        let mut ep = endpoint(port);
        ep.timeout = Duration::from_secs(1);
        let mut s = Session::open(&ep).await.unwrap();
        s.send_body("a@b.se", "c@d.se", b"x").await.unwrap();
        let answer = s.end_data().await.unwrap();
        assert_eq!(answer.code, 250);
        // Any other command keeps the usual time-out.
        let err = s.noop().await.unwrap_err();
        assert!(
            matches!(
                err,
                SmtpFailure::Timeout {
                    during: "NOOP",
                    secs: 1
                }
            ),
            "{err}"
        );
        drop(s);
        server.abort();
    }

    #[tokio::test]
    async fn multi_line_answers_and_a_refusal_at_the_end_of_data() {
        let (port, server) = scripted(vec![
            "250-test greets you\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "552-5.3.4 too big\r\n552 5.3.4 really\r\n",
        ])
        .await;
        let mut s = Session::open(&endpoint(port)).await.unwrap();
        s.send_body("a@b.se", "räk@d.se", b"x").await.unwrap();
        let err = s.end_data().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server answered the end of data with 552 5.3.4 too big 5.3.4 really"
        );
        assert!(!err.temporary());
        drop(s);
        let seen = server.await.unwrap();
        assert_eq!(seen[1], "MAIL FROM:<a@b.se> SMTPUTF8");
        assert_eq!(seen.last().unwrap(), ".");
    }

    #[tokio::test]
    async fn bytes_after_the_answer_to_starttls_abort_the_session() {
        // The 220 and a smuggled answer in one packet: read as if they came over TLS.
        let (port, server) = scripted(vec![
            "250-test\r\n250 STARTTLS\r\n",
            "220 go ahead\r\n250 smuggled\r\n",
        ])
        .await;
        let mut ep = endpoint(port);
        ep.security = Security::Starttls;
        ep.host = "localhost".into();
        ep.tls = Some(crate::net::tls::client_config(None).unwrap());
        let err = Session::open(&ep).await.err().unwrap().to_string();
        assert!(
            err.contains("sent data after its answer to STARTTLS"),
            "{err}"
        );
        server.abort();
    }

    /// Sends `message` to a scripted server (offering 8BITMIME or not) and returns what it saw.
    async fn sent_as(message: &[u8], eight_bit_mime: bool) -> Vec<String> {
        let ehlo = match eight_bit_mime {
            true => "250-test\r\n250 8BITMIME\r\n",
            false => "250 test\r\n",
        };
        let (port, server) =
            scripted(vec![ehlo, "250 ok\r\n", "250 ok\r\n", "250 queued\r\n"]).await;
        let mut s = Session::open(&endpoint(port)).await.unwrap();
        s.send_body("a@b.se", "c@d.se", message).await.unwrap();
        assert_eq!(s.end_data().await.unwrap().code, 250);
        drop(s);
        server.await.unwrap()
    }

    #[tokio::test]
    async fn a_bare_cr_reaches_the_server_as_a_line_end() {
        let seen = sent_as(b"Subject: x\r\n\r\na\rb\nc\r\n", true).await;
        let data: Vec<&str> = seen.iter().filter_map(|l| l.strip_prefix("| ")).collect();
        assert_eq!(data, ["Subject: x", "", "a", "b", "c"], "{seen:?}");
    }

    #[tokio::test]
    async fn without_8bitmime_an_8_bit_body_goes_quoted_printable() {
        let message = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nRäksmörgås\r\n";
        let seen = sent_as(message.as_bytes(), false).await;
        assert_eq!(seen[1], "MAIL FROM:<a@b.se>", "no BODY=8BITMIME");
        let data: Vec<&str> = seen.iter().filter_map(|l| l.strip_prefix("| ")).collect();
        assert_eq!(
            data,
            [
                "Subject: x",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                "R=C3=A4ksm=C3=B6rg=C3=A5s"
            ]
        );
        // Offered: sent as it is, declared.
        let seen = sent_as(message.as_bytes(), true).await;
        assert_eq!(seen[1], "MAIL FROM:<a@b.se> BODY=8BITMIME");
        assert!(seen.iter().any(|l| l == "| Räksmörgås"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_999_character_line_is_re_encoded_within_the_limit() {
        let mut message = b"Subject: x\r\n\r\n".to_vec();
        message.extend(std::iter::repeat_n(b'a', 999));
        let seen = sent_as(&message, true).await;
        let data: Vec<&str> = seen.iter().filter_map(|l| l.strip_prefix("| ")).collect();
        assert!(data.iter().all(|l| l.len() <= 76), "{data:?}");
        assert!(data.contains(&"Content-Transfer-Encoding: quoted-printable"));
        // Soft line breaks joined again: the same 999 letters.
        let body = data[3..].concat().replace('=', "");
        assert_eq!(body, "a".repeat(999));
    }
}
