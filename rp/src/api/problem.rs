//! RFC 9457 problem documents (`application/problem+json`) with the status codes of the RP API
//! v3: 400, 401, 403, 404, 480 (client too old), 580 (under maintenance), plus 500 for our own
//! failures and the HTTP layer's 405, 413, 415 and 429 (with `Retry-After`). 471/472 are no
//! longer used (changes.txt). `type` is always `about:blank` and `title` the status phrase, as
//! in openapi.yml's examples.
//!
//! This is the document only; a server turns it into an HTTP answer (status, `Content-Type:`
//! [`CONTENT_TYPE`], `Retry-After`), as Tandem's REST API does in its `rest::errors`.

use serde::{Deserialize, Serialize};

use super::types::ValidationError;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// `ErrorDetail` of the spec's `errors` extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// `ExtendedProblemDetailsJson`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub status: u16,
    pub title: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorDetail>>,
    /// `Retry-After` header (seconds) of a 429 answer; not part of the document.
    #[serde(skip)]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    pub fn new(status: u16, title: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank".to_owned(),
            status,
            title: title.to_owned(),
            detail: detail.into(),
            instance: None,
            errors: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<ErrorDetail>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// 400: malformed JSON, wrong types, failed validation.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "Bad Request", detail)
    }

    /// 400 naming the invalid field, as in `InvalidRequestErrorResponseJsonExample`.
    pub fn invalid(e: &ValidationError) -> Self {
        Self::bad_request("Invalid request parameters found").with_errors(vec![ErrorDetail {
            code: None,
            detail: Some(format!("Invalid {}: {}", e.field, e.reason)),
            param_name: Some(e.field.rsplit('.').next().unwrap_or(e.field).to_owned()),
            pointer: Some(e.pointer()),
        }])
    }

    /// 401: unknown relying party / IP and UUID combination.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403: the relying party may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", detail)
    }

    /// 403 for `requestProperties.shareMdClientIpAddress: true` from a relying party whose
    /// configuration forbids it (changes.txt 3.2.2, openapi.yml `403_Forbidden`), shaped as
    /// openapi.yml's `ForbiddenErrorResponseWithErrorsFieldJsonExample`.
    pub fn device_ip_sharing_forbidden() -> Self {
        Self::forbidden("Forbidden").with_errors(vec![ErrorDetail {
            code: None,
            detail: Some(
                "Relying Party does not have permissions to request the MD client IP address sharing"
                    .to_owned(),
            ),
            param_name: Some("shareMdClientIpAddress".to_owned()),
            pointer: Some("/requestProperties/shareMdClientIpAddress".to_owned()),
        }])
    }

    /// 404: no such account / document (same text for every cause, to resist enumeration).
    pub fn not_found() -> Self {
        Self::new(404, "Not Found", "Not Found")
    }

    /// 404 for GET /session: the session does not exist or has expired.
    pub fn session_not_found() -> Self {
        Self::new(404, "Not Found", "Session not found")
    }

    /// 405: the path exists, the method does not (the `Allow` header lists the methods).
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "Method Not Allowed",
            "This method is not allowed for this path",
        )
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn content_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "Content Too Large",
            format!("The request body is larger than {limit} bytes"),
        )
    }

    /// 415: a request body that is not `application/json`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "Unsupported Media Type",
            "The request body must be sent as Content-Type: application/json",
        )
    }

    /// 429: the relying party's rate limit; `retry_after_seconds` (at least 1) goes into the
    /// `Retry-After` header.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        let seconds = retry_after_seconds.max(1);
        Self {
            retry_after_seconds: Some(seconds),
            ..Self::new(
                429,
                "Too Many Requests",
                format!("Rate limit exceeded; retry after {seconds} s"),
            )
        }
    }

    /// 480: the client is too old.
    pub fn client_too_old() -> Self {
        Self::new(
            480,
            "Client Too Old",
            "The RP API client is too old and not supported anymore",
        )
    }

    /// 500: our own failure (never says what).
    pub fn internal() -> Self {
        Self::new(500, "Internal Server Error", "Internal Server Error")
    }

    /// 580: system under maintenance.
    pub fn under_maintenance() -> Self {
        Self::new(
            580,
            "System Under Maintenance",
            "System is under maintenance, retry again later",
        )
    }
}

impl From<ValidationError> for Problem {
    fn from(e: ValidationError) -> Self {
        Self::invalid(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_invalid_request_example_round_trips() {
        let json = r#"{"type":"about:blank","status":400,"title":"Bad Request","detail":"Invalid request parameters found","errors":[{"detail":"Invalid initialCallbackUrl: The callback URL value is invalid","paramName":"initialCallbackUrl","pointer":"/initialCallbackUrl"}]}"#;
        let p: Problem = serde_json::from_str(json).unwrap();
        assert_eq!(p.status, 400);
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
    }

    #[test]
    fn device_ip_sharing_refusal_is_the_spec_forbidden_example() {
        // ForbiddenErrorResponseWithErrorsFieldJsonExample without its `instance`.
        let spec = serde_json::json!({
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": "Forbidden",
            "errors": [{
                "detail": "Relying Party does not have permissions to request the MD client IP address sharing",
                "paramName": "shareMdClientIpAddress",
                "pointer": "/requestProperties/shareMdClientIpAddress"
            }]
        });
        assert_eq!(
            serde_json::to_value(Problem::device_ip_sharing_forbidden()).unwrap(),
            spec
        );
    }

    #[test]
    fn spec_not_found_example_parses() {
        let json = r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"Not Found","instance":"/task-id/tdgx2dj9cfumh8","errors":[{"code":"NO_SUITABLE_ACCOUNT_FOUND","detail":"No suitable account of requested type found, but user has some other accounts"}]}"#;
        let p: Problem = serde_json::from_str(json).unwrap();
        assert_eq!(
            p.errors.unwrap()[0].code.as_deref(),
            Some("NO_SUITABLE_ACCOUNT_FOUND")
        );
    }

    #[test]
    fn validation_error_names_field() {
        let e = ValidationError {
            field: "signatureProtocolParameters.rpChallenge",
            reason: "not Base64".into(),
        };
        let p = Problem::from(e);
        let d = &p.errors.unwrap()[0];
        assert_eq!(d.param_name.as_deref(), Some("rpChallenge"));
        assert_eq!(
            d.pointer.as_deref(),
            Some("/signatureProtocolParameters/rpChallenge")
        );
    }
}
