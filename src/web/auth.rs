//! Staff authentication: argon2id password hashes, session and CSRF tokens. (The limit on
//! failed logins is kept in the store: `login.rs`.)

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password must be at least 12 characters long")]
    WeakPassword,
    #[error("a user name is 1–64 letters, digits, '.', '-' or '_'")]
    BadUsername,
}

pub fn check_password_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 12 {
        return Err(AuthError::WeakPassword);
    }
    Ok(())
}

pub fn check_username(username: &str) -> Result<(), AuthError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadUsername)
    }
}

/// An argon2id PHC string with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let hash: PasswordHash = Argon2::default().hash_password(password.as_bytes())?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string (a malformed hash never matches).
pub fn verify_password(hash: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Verified when the user name is unknown, so that an unknown name costs as much time as a
/// wrong password and does not reveal which names exist.
pub static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("dummy password that matches nothing").unwrap_or_default());

/// 256 random bits as hex (two v4 UUIDs' worth of the OS random source).
pub fn random_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let c = uuid::Uuid::new_v4();
    hex::encode(Sha256::digest(
        [&a.as_bytes()[..], &b.as_bytes()[..], &c.as_bytes()[..]].concat(),
    ))
}

/// What the database keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares in time independent of where the strings differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("rätt lösenord 123").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "rätt lösenord 123"));
        assert!(!verify_password(&h, "fel lösenord 123"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &random_token()));
    }
}
