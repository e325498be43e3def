//! Everything that protects the browser's side, each in its own file:
//!
//! ```text
//!  request ─▶ headers (CSP, HSTS, nosniff, Referrer-Policy, no-store on every answer)
//!          ─▶ limit   (body size: Content-Length, then while streaming → 413 page)
//!          ─▶ origin  (POST: Origin, else Referer, must be our origin → 403 page)
//!          ─▶ session (cookie → in-memory session; Set-Cookie for new / rotated / ended)
//!          ─▶ csrf    (POST: the session's token from the form, constant time → 403 page)
//!          ─▶ handler
//! ```

pub mod cookie;
pub mod csrf;
pub mod headers;
pub mod limit;
pub mod origin;
pub mod session;
