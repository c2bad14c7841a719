//! Small text helpers shared by the parsers.

/// Trims `s` and collapses every inner run of whitespace (spaces, tabs, newlines, NBSP and the
/// other Unicode white-space characters) to a single ASCII space. Case is kept.
pub fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// True for the hyphen-like characters word processors and OCR put where a `-` was meant
/// (hyphen-minus, hyphen, non-breaking hyphen, figure dash, en dash, minus sign).
pub(crate) fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_trims() {
        assert_eq!(
            collapse_ws("  Anna   Maria \t Svensson \n"),
            "Anna Maria Svensson"
        );
        assert_eq!(collapse_ws("Anna\u{00A0}\u{00A0}Svensson"), "Anna Svensson");
        assert_eq!(collapse_ws("a\r\n\tb"), "a b");
        assert_eq!(
            collapse_ws("\u{2003}Vårdcentral\u{202F}Öster\u{2003}"),
            "Vårdcentral Öster"
        );
    }

    #[test]
    fn keeps_case_and_single_words() {
        assert_eq!(collapse_ws("ÅSA von Essen"), "ÅSA von Essen");
        assert_eq!(collapse_ws("x"), "x");
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(collapse_ws(""), "");
        assert_eq!(collapse_ws(" \t\n\u{00A0} "), "");
    }

    #[test]
    fn dash_variants() {
        assert!(is_dash('-') && is_dash('\u{2013}') && is_dash('\u{2212}'));
        assert!(!is_dash('+') && !is_dash('_'));
    }
}
