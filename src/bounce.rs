//! Delivery reports about our own replies. A report is still an ignored `bounce` (SPEC §4.1);
//! this module only finds which case it is about, so that staff see on the case that the
//! answer did not arrive. Our replies carry `X-TjanstID-Case` and a Message-ID of the form
//! `<tjid-2026-000123-1.<12 hex>@tjid-intake>`; reports quote one or both of them in their
//! returned-headers part.

use serde::Serialize;

/// What a delivery report says about one of our replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceLink {
    pub case_id: String,
    /// The outbox id (`TJID-2026-000123-1`) when the report quotes our Message-ID.
    pub reply_id: Option<String>,
    /// DSN `Action` (failed, delayed, …) when present.
    pub action: Option<String>,
    /// DSN `Status` (5.1.1, …) when present.
    pub status: Option<String>,
}

/// Finds the case a delivery report is about. Looks at the unfolded header lines of every
/// part that is not base64 (reports put the returned headers and the DSN fields in 7-bit
/// parts), so it needs no MIME structure to be intact.
pub fn link(raw: &[u8]) -> Option<BounceLink> {
    // Reports are ASCII where it matters; lossy decoding keeps odd bytes from stopping us.
    let text = String::from_utf8_lossy(&raw[..raw.len().min(2 * 1024 * 1024)]);
    let mut case_id = None;
    let mut reply_id = None;
    let mut action = None;
    let mut status = None;
    for line in unfold(&text) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("X-TjanstID-Case") && case_id.is_none() {
            case_id = parse_case_id(value);
        } else if (name.eq_ignore_ascii_case("Message-ID")
            || name.eq_ignore_ascii_case("In-Reply-To"))
            && reply_id.is_none()
        {
            reply_id = parse_reply_message_id(value);
        } else if name.eq_ignore_ascii_case("Action") && action.is_none() {
            action = Some(short(value));
        } else if name.eq_ignore_ascii_case("Status") && status.is_none() {
            status = Some(short(value));
        }
    }
    // A quoted Message-ID names the reply exactly; the case header only the case.
    let case_id = case_id.or_else(|| reply_id.as_deref().and_then(case_of_reply))?;
    if reply_id
        .as_deref()
        .and_then(case_of_reply)
        .is_some_and(|c| c != case_id)
    {
        reply_id = None;
    }
    Some(BounceLink {
        case_id,
        reply_id,
        action,
        status,
    })
}

fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
                continue;
            }
        }
        lines.push(line.to_string());
    }
    lines
}

fn short(value: &str) -> String {
    value
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect()
}

/// `TJID-2026-000123` (a case number, and nothing else).
fn parse_case_id(value: &str) -> Option<String> {
    let v = value.trim();
    let mut parts = v.split('-');
    let ok = parts.next() == Some("TJID")
        && parts
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|n| n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_none();
    ok.then(|| v.to_string())
}

/// `<tjid-2026-000123-1.0123456789ab@vgregion.se>` → `TJID-2026-000123-1`. The domain is the
/// office's (older replies carry `@tjid-intake`); the local part alone is ours.
fn parse_reply_message_id(value: &str) -> Option<String> {
    let start = value.find("<tjid-")?;
    let rest = &value[start + 1..];
    let end = rest.find('>')?;
    let id = &rest[..end];
    let (local, host) = id.split_once('@')?;
    if host.is_empty() {
        return None;
    }
    let reply = local.split('.').next()?.to_ascii_uppercase();
    case_of_reply(&reply)?;
    Some(reply)
}

fn case_of_reply(reply_id: &str) -> Option<String> {
    let (case, n) = reply_id.rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_case_id(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.se\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: TjänsteID-service <tjansteid-intake@vgregion.se>\r\nMessage-ID:\r\n <tjid-2026-000042-1.0123456789ab@tjid-intake>\r\nX-TjanstID-Case: TJID-2026-000042\r\n--b--\r\n";

    #[test]
    fn a_report_is_linked_to_its_case_and_reply() {
        let l = link(DSN.as_bytes()).unwrap();
        assert_eq!(l.case_id, "TJID-2026-000042");
        assert_eq!(l.reply_id.as_deref(), Some("TJID-2026-000042-1"));
        assert_eq!(l.action.as_deref(), Some("failed"));
        assert_eq!(l.status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn the_message_id_alone_is_enough_and_garbage_is_not() {
        let l = link(b"Subject: x\r\n\r\nIn-Reply-To: <tjid-2026-000007-2.aa@tjid-intake>\r\n")
            .unwrap();
        assert_eq!(l.case_id, "TJID-2026-000007");
        assert_eq!(l.reply_id.as_deref(), Some("TJID-2026-000007-2"));
        let l = link(b"In-Reply-To: <tjid-2026-000008-1.ab@vgregion.se>\r\n").unwrap();
        assert_eq!(l.reply_id.as_deref(), Some("TJID-2026-000008-1"));
        assert_eq!(link(b"X-TjanstID-Case: TJID-2026-1; drop table\r\n"), None);
        assert_eq!(link(b"Message-ID: <tjid-x@elsewhere>\r\n"), None);
        assert_eq!(link(b""), None);
    }
}
