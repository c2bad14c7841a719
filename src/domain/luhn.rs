//! The Luhn (mod 10) check used by personnummer, organisation numbers and card numbers.

/// Luhn sum modulo 10 over ASCII digits, where the rightmost digit is doubled when
/// `double_rightmost` is true. `None` when the input is empty or holds a non-digit.
fn luhn_sum(digits: &str, double_rightmost: bool) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        let doubled = (i % 2 == 0) == double_rightmost;
        let term = match (doubled, d * 2) {
            (false, _) => d,
            (true, x) if x > 9 => x - 9,
            (true, x) => x,
        };
        // Kept modulo 10, so arbitrarily long input cannot overflow.
        sum = (sum + term) % 10;
    }
    Some(sum)
}

/// True when `digits` is a non-empty string of ASCII digits whose last digit is a correct
/// Luhn check digit over the rest. False on empty input or any non-digit.
pub fn luhn_valid(digits: &str) -> bool {
    matches!(luhn_sum(digits, false), Some(sum) if sum % 10 == 0)
}

/// The Luhn check digit to append to `body` (ASCII digits, non-empty); `None` otherwise.
pub fn luhn_check_digit(body: &str) -> Option<u8> {
    let sum = luhn_sum(body, true)?;
    // `sum % 10` is below 10, so the result is a single digit.
    Some(((10 - sum % 10) % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_numbers() {
        assert!(luhn_valid("8112189876")); // Skatteverket example personnummer
        assert!(luhn_valid("1212121212"));
        assert!(luhn_valid("5560160680"));
        assert!(luhn_valid("2321000131"));
        assert!(luhn_valid("79927398713")); // classic Luhn example
        assert!(luhn_valid("0"));
    }

    #[test]
    fn known_invalid_numbers() {
        assert!(!luhn_valid("1212121213"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid("5560160681"));
    }

    #[test]
    fn rejects_empty_and_non_digits() {
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("121212-1212"));
        assert!(!luhn_valid("12121212a2"));
        assert!(!luhn_valid(" 1212121212"));
        assert!(!luhn_valid("１２")); // full-width digits are not ASCII digits
    }

    #[test]
    fn check_digit_matches_valid() {
        assert_eq!(luhn_check_digit("121212121"), Some(2));
        assert_eq!(luhn_check_digit("811218987"), Some(6));
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert_eq!(luhn_check_digit("556016068"), Some(0));
        for body in ["0", "1", "9", "123456789012345678", "975226790010000000"] {
            let c = luhn_check_digit(body).expect("digits");
            assert!(luhn_valid(&format!("{body}{c}")), "{body}");
            let wrong = (c + 1) % 10;
            assert!(!luhn_valid(&format!("{body}{wrong}")), "{body}");
        }
    }

    #[test]
    fn check_digit_rejects_bad_body() {
        assert_eq!(luhn_check_digit(""), None);
        assert_eq!(luhn_check_digit("12a"), None);
        assert_eq!(luhn_check_digit("12 3"), None);
    }
}
