//! IMAP's modified UTF-7 for folder names.

use base64::Engine;

/// Encodes a folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): `Åtgärdat` →
/// `&AMU-tg&AOQ-rdat`.
pub fn encode_folder_name(name: &str) -> String {
    fn flush(out: &mut String, pending: &mut Vec<u16>) {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(bytes)
            .replace('/', ",");
        out.push('&');
        out.push_str(&b64);
        out.push('-');
        pending.clear();
    }
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_modified_utf7() {
        assert_eq!(encode_folder_name("INBOX"), "INBOX");
        assert_eq!(encode_folder_name("Åtgärdat"), "&AMU-tg&AOQ-rdat");
        assert_eq!(encode_folder_name("Karantän"), "Karant&AOQ-n");
        assert_eq!(encode_folder_name("A&B"), "A&-B");
        // RFC 3501's own example.
        assert_eq!(
            encode_folder_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }
}
