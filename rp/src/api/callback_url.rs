//! The relying party's `initialCallbackUrl`: what the server accepts, and where.
//!
//! The specification's rules (openapi.yml `InitialCallbackUrl`, callback_urls.txt,
//! device_link_flows.txt) and how each is enforced:
//!
//! | rule | where it is checked |
//! |---|---|
//! | `type: string`, `format: uri` (an RFC 3986 URI: ASCII only, no spaces or controls, `%` only as `%XX`, `[` `]` only around an IP literal host) | [`check_initial_callback_url`], 400 |
//! | `maxLength: 1800` | [`check_initial_callback_url`], 400 |
//! | `pattern: ^https:\/\/([^\|#]+)$`: "Must use HTTPS scheme" (lower-case `https://`, as the pattern is case-sensitive), "Must not contain URL fragments (#)", "vertical bar characters must be percent encoded" (`%7C`) | [`check_initial_callback_url`], 400 |
//! | an `https` URI has a non-empty host (RFC 9110 §4.2.2) and a recipient treats userinfo (`user@host`) as an error (§4.2.4); a port is a number up to 65535 | [`check_initial_callback_url`], 400 |
//! | only device-link requests carry it (the notification request bodies have no such property; linked notification signing uses the callback of the certificate choice it follows, callback_urls.txt) | [`refuse_in_notification_request`], 400 |
//! | "If an RP would like to display a Web2App or App2App link …, a device link flow with a callback URL must be started" (device_link_flows.txt); QR-only sessions may leave it out | `device_link::ParsedLink::verify`: a Web2App / App2App link for a session without one is refused when the app presents it |
//!
//! Left to the relying party, as the specification puts it there: a fresh random parameter
//! in every session's URL and different URLs for Web2App and App2App (the server cannot know
//! at the start which kind of link the person will use).
//!
//! Every refusal is a 400 problem naming `initialCallbackUrl` (`paramName`, `pointer`), as in
//! openapi.yml's `InvalidRequestErrorResponseJsonExample`.

use super::types::ValidationError;

const FIELD: &str = "initialCallbackUrl";

/// `maxLength` of `InitialCallbackUrl`.
pub const MAX_LEN: usize = 1800;

fn invalid(reason: &str) -> ValidationError {
    ValidationError::new(FIELD, reason)
}

/// RFC 3986 `unreserved` / `sub-delims`.
fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// Checks `%XX` escapes and that every other byte is in `allowed`.
fn check_chars(
    part: &str,
    allowed: impl Fn(u8) -> bool,
    what: &str,
) -> Result<(), ValidationError> {
    let b = part.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return Err(invalid(&format!(
                    "a '%' in the {what} must start a percent-encoding (%XX)"
                )));
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return Err(invalid(&format!(
                "the {what} contains a character that is not allowed in a URI (RFC 3986); \
                 percent-encode it"
            )));
        }
    }
    Ok(())
}

/// Checks one `initialCallbackUrl` against the rules in the module docs.
pub fn check_initial_callback_url(url: &str) -> Result<(), ValidationError> {
    if url.chars().count() > MAX_LEN {
        return Err(invalid("longer than 1800 characters"));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(invalid("must use the https scheme (start with https://)"));
    };
    if rest.contains('#') {
        return Err(invalid("must not contain a fragment (#)"));
    }
    if rest.contains('|') {
        return Err(invalid("vertical bars (|) must be percent-encoded as %7C"));
    }
    if !rest.is_ascii() {
        return Err(invalid(
            "must be a URI (RFC 3986): percent-encode non-ASCII characters",
        ));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    if authority.contains('@') {
        return Err(invalid("must not contain user information (user@host)"));
    }
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        let (ip, after) = literal
            .split_once(']')
            .ok_or_else(|| invalid("an IP literal host must end with ]"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid("the IP literal host is not an IPv6 address"));
        }
        match after {
            "" => (authority, None),
            p => (
                authority,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| invalid("only a :port may follow the host"))?,
                ),
            ),
        }
    } else {
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        check_chars(h, unreserved_or_sub_delim, "host")?;
        (h, p)
    };
    if host.is_empty() {
        return Err(invalid("must name a host (https://host/…)"));
    }
    if let Some(p) = port
        && !p.is_empty()
        && (!p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return Err(invalid("the port must be a number from 0 to 65535"));
    }
    // path-abempty [ "?" query ]: pchar, "/" and "?".
    check_chars(
        path_and_query,
        |b| unreserved_or_sub_delim(b) || b":@/?".contains(&b),
        "path or query",
    )
}

/// Only the top-level `initialCallbackUrl` of a request body; everything else is skipped.
#[derive(serde::Deserialize)]
struct CallbackProbe {
    #[serde(rename = "initialCallbackUrl", default)]
    initial_callback_url: Option<serde::de::IgnoredAny>,
}

/// A notification request (authentication, signing, linked signing, certificate choice)
/// must not carry `initialCallbackUrl`: only Web2App / App2App device links call back, and a
/// linked signing session calls back to the URL of the certificate choice it follows. `null`
/// counts as absent. `body` is JSON the request parser has already accepted.
pub fn refuse_in_notification_request(body: &[u8]) -> Result<(), ValidationError> {
    match serde_json::from_slice::<CallbackProbe>(body) {
        Ok(CallbackProbe {
            initial_callback_url: Some(_),
        }) => Err(invalid(
            "not allowed in notification requests (only Web2App and App2App device-link \
             flows call back; a linked signature uses the certificate choice's callback)",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";

    #[test]
    fn accepted_urls() {
        for ok in [
            SPEC_EXAMPLE,
            "https://rp.example.com",
            "https://rp.example.com/",
            "https://rp.example.com:8443/cb?x=%7C&y=a/b?c:d@e",
            "https://rp.example.com:/cb",
            "https://[2001:db8::1]:443/cb",
            "https://192.0.2.1/cb",
            "https://xn--bcher-kva.example/cb?q=%C3%BC",
            "https://rp.example.com/a;b=c,d!$'()*+~_.-",
        ] {
            assert_eq!(check_initial_callback_url(ok), Ok(()), "{ok}");
        }
        let longest = format!("https://rp.example.com/{}", "a".repeat(MAX_LEN - 23));
        assert_eq!(longest.len(), MAX_LEN);
        assert_eq!(check_initial_callback_url(&longest), Ok(()));
    }

    #[test]
    fn refused_urls_say_why() {
        for (bad, why) in [
            ("http://rp.example.com/cb", "https scheme"),
            ("HTTPS://rp.example.com/cb", "https scheme"),
            ("rp.example.com/cb", "https scheme"),
            ("https://", "host"),
            ("https:///cb", "host"),
            ("https://?x=1", "host"),
            ("https://rp.example.com/cb#frag", "fragment"),
            ("https://rp.example.com/cb?a=1|2", "%7C"),
            ("https://rp.example.com/c b", "not allowed in a URI"),
            ("https://rp.example.com/cb\n", "not allowed in a URI"),
            ("https://rp.example.com/\"x\"", "not allowed in a URI"),
            ("https://rp.example.com/<x>", "not allowed in a URI"),
            ("https://rp.example.com/{x}", "not allowed in a URI"),
            ("https://rp.example.com/a\\b", "not allowed in a URI"),
            ("https://rp.example.com/[x]", "not allowed in a URI"),
            ("https://rp.example.com/ü", "non-ASCII"),
            ("https://bücher.example/", "non-ASCII"),
            ("https://rp.example.com/%zz", "percent-encoding"),
            ("https://rp.example.com/%4", "percent-encoding"),
            ("https://rp.example.com/%", "percent-encoding"),
            ("https://user:pw@rp.example.com/", "user information"),
            ("https://rp.example.com@evil.example/", "user information"),
            ("https://rp.example.com:99999/", "port"),
            ("https://rp.example.com:8a/", "port"),
            ("https://rp.exa mple.com/", "not allowed in a URI"),
            ("https://[::1/", "end with ]"),
            ("https://[not-ip]/", "IPv6"),
            ("https://[::1]x/", ":port"),
        ] {
            let e = check_initial_callback_url(bad).unwrap_err();
            assert_eq!(e.field, "initialCallbackUrl");
            assert!(e.reason.contains(why), "{bad}: {}", e.reason);
        }
        let too_long = format!("https://rp.example.com/{}", "a".repeat(MAX_LEN - 22));
        assert!(
            check_initial_callback_url(&too_long)
                .unwrap_err()
                .reason
                .contains("1800")
        );
    }

    #[test]
    fn notification_requests_carry_no_callback() {
        assert!(refuse_in_notification_request(br#"{"relyingPartyName":"x"}"#).is_ok());
        assert!(refuse_in_notification_request(br#"{"initialCallbackUrl":null}"#).is_ok());
        // Nested fields of the same name are not the request's.
        assert!(
            refuse_in_notification_request(br#"{"requestProperties":{"initialCallbackUrl":"x"}}"#)
                .is_ok()
        );
        let e = refuse_in_notification_request(
            format!(r#"{{"initialCallbackUrl":"{SPEC_EXAMPLE}"}}"#).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.field, "initialCallbackUrl");
        assert!(e.reason.contains("notification"), "{}", e.reason);
        assert!(refuse_in_notification_request(br#"{"initialCallbackUrl":""}"#).is_err());
    }
}
