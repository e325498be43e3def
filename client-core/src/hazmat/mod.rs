//! Hazardous materials: raw big-integer arithmetic.
//!
//! # Warning
//!
//! Everything under this module is **raw, unpadded RSA** arithmetic. Exponentiating an
//! unencoded message, or a message whose encoding was not checked, turns a key share into a
//! signing oracle for arbitrary values. Use the padded, checked entry points in
//! [`crate::sign`] and [`crate::encoding`] unless you are implementing exactly those.
//!
//! Integers cross this API as unsigned big-endian byte strings.

pub mod bigint;
pub use bigint::*;
pub mod kwp;
