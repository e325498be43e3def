//! Reading the `Cookie` header and writing `Set-Cookie` values.

use axum::http::{HeaderMap, HeaderValue, header};

/// The session cookie's name over HTTPS: the `__Host-` prefix makes browsers accept it only
/// with `Secure`, `Path=/` and no `Domain` (so no sibling host can set or shadow it).
pub const SECURE_SESSION_COOKIE: &str = "__Host-tandem";
/// The session cookie's name with `insecure_http` (the prefix needs `Secure`).
pub const INSECURE_SESSION_COOKIE: &str = "tandem";
/// The language cookie (not a secret).
pub const LANG_COOKIE: &str = "lang";

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` for the session: `HttpOnly; SameSite=Strict; Path=/; Max-Age`, plus `Secure`
/// over HTTPS. `value` must be cookie-safe (hex).
pub fn session(name: &str, value: &str, max_age_seconds: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let s = format!(
        "{name}={value}; Max-Age={max_age_seconds}; Path=/; HttpOnly; SameSite=Strict{secure}"
    );
    // Hex, digits and fixed ASCII only.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that deletes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    session(name, "", 0, secure)
}

/// `Set-Cookie` for the language (one year; readable by nobody but us, not secret).
pub fn lang(code: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let s = format!("{LANG_COOKIE}={code}; Max-Age=31536000; Path=/; SameSite=Strict{secure}");
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-tandem=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("lang=en"));
        assert_eq!(read(&h, "__Host-tandem"), Some("abc"));
        assert_eq!(read(&h, "lang"), Some("en"));
        assert_eq!(read(&h, "tandem"), None);
    }

    #[test]
    fn session_cookie_has_every_attribute() {
        let v = session(SECURE_SESSION_COOKIE, "00ff", 900, true);
        assert_eq!(
            v.to_str().unwrap(),
            "__Host-tandem=00ff; Max-Age=900; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!clear("tandem", false).to_str().unwrap().contains("Secure"));
    }
}
