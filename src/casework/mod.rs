//! What happens to a recorded case after the intake: staff's checked transitions (`lifecycle`) and
//! the notices they send (`notice`), held cases corrected and decided again (`verification`), the erasure of
//! personal data when its time is up (`retention`), and the register of connected providers as
//! the intake reads it from the store (`register`). The case's types are in `crate::case`.

pub mod lifecycle;
pub mod notice;
pub mod register;
pub mod retention;
pub mod verification;
