//! `/portal/overview`, the certificate download and logout.
//!
//! The overview asks the server's portal endpoint (bound to the login's RP API session),
//! then asks OCSP itself for each certificate, as any relying party would (tandem-rp
//! `client::revocation`: OCSP, the CRL when OCSP gives no answer).

use std::time::Instant;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tandem_rp::api::portal::{
    KeyPurpose, PortalCertificate, PortalOverview, PortalOverviewRequest,
};
use tandem_rp::client::Error as RpError;
use tandem_rp::client::TrustAnchors;
use tandem_rp::client::revocation::{
    RevocationError, RevocationMethod, RevocationOptions, check_revocation, reason_name,
};

use super::{Notice, texts::T, views};
use crate::config::RelyingParty;
use crate::login::Person;
use crate::state::{AppState, Current, SessionChange};

/// A certificate's status as the portal's own OCSP request found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspView {
    /// OCSP: good.
    Good,
    /// Not revoked according to the CRL; OCSP gave no answer.
    GoodByCrl,
    /// Revoked at this time, for this reason.
    Revoked {
        /// revocationTime.
        at: String,
        /// The RFC 5280 reason name, if given.
        reason: Option<&'static str>,
    },
    /// The responder does not know the certificate.
    Unknown,
    /// Neither OCSP nor the CRL answered (or the certificate cannot be checked).
    Unreachable,
}

impl OcspView {
    /// The status of a revocation check's result.
    pub fn from_check(
        r: &Result<tandem_rp::client::revocation::NotRevoked, RevocationError>,
    ) -> Self {
        match r {
            Ok(n) if n.method == RevocationMethod::Ocsp => Self::Good,
            Ok(_) => Self::GoodByCrl,
            Err(RevocationError::Revoked { at, reason, .. }) => Self::Revoked {
                at: at.clone(),
                reason: reason.map(reason_name),
            },
            Err(RevocationError::UnknownToOcsp { .. }) => Self::Unknown,
            Err(_) => Self::Unreachable,
        }
    }

    /// A stable name for the page's `data-ocsp` and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::GoodByCrl => "good-crl",
            Self::Revoked { .. } => "revoked",
            Self::Unknown => "unknown",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Asks OCSP (CRL as fallback) for one certificate.
pub async fn ocsp_status(
    der_b64: &str,
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> OcspView {
    let Ok(der) = STANDARD.decode(der_b64) else {
        return OcspView::Unreachable;
    };
    OcspView::from_check(&check_revocation(&der, anchors, opts).await)
}

fn revocation_options(app: &AppState) -> RevocationOptions {
    let r = app.cfg.revocation.clone().unwrap_or_default();
    RevocationOptions {
        ocsp_url: r.ocsp_url,
        crl_url: r.crl_url,
        ca_crl_url: r.ca_crl_url,
        ..Default::default()
    }
}

/// The logged-in holder and the CSRF token, or `None`.
pub(crate) fn holder(app: &AppState, cur: &Current) -> Option<(Person, String)> {
    app.sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data
                .portal
                .person
                .clone()
                .map(|p| (p, s.csrf.expose_secret()))
        })
        .flatten()
}

/// Back to the login page saying the portal session is over.
pub fn expired(app: &AppState, cur: &Current) -> Response {
    app.sessions.with(&cur.id, Instant::now(), |s| {
        let p = &mut s.data.portal;
        p.person = None;
        p.deletion = None;
        p.notice = Some(Notice::Expired);
    });
    Redirect::to("/portal/").into_response()
}

/// What fetching the overview gave (its `Debug` leaves out the data and the token).
pub enum Fetched {
    /// The data, the holder and the CSRF token.
    Ok(Box<PortalOverview>, Person, String),
    /// A page to show instead (login, error).
    Page(Response),
}

/// The overview for the logged-in holder, or the page to show instead.
pub async fn fetch(app: &AppState, cur: &Current) -> Fetched {
    let Some(rp) = app.cfg.portal.clone() else {
        return Fetched::Page(views::not_configured(cur.lang));
    };
    let Some((person, csrf)) = holder(app, cur) else {
        if cur.expired {
            // The stale cookie was replaced by a new session: the login page says why.
            return Fetched::Page(expired(app, cur));
        }
        return Fetched::Page(Redirect::to("/portal/").into_response());
    };
    match overview(app, &rp, &person).await {
        Ok(o) => Fetched::Ok(Box::new(o), person, csrf),
        // 410: the login is older than the server's portal_session_seconds; 404: its
        // session (or account) is gone. Either way: log in again.
        Err(RpError::Problem {
            status: 404 | 410, ..
        }) => Fetched::Page(expired(app, cur)),
        Err(e) => {
            tracing::warn!(error = %e, "portal overview failed");
            Fetched::Page(views::error(
                cur.lang,
                StatusCode::BAD_GATEWAY,
                T::PortalUnavailable.text(cur.lang),
            ))
        }
    }
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ok(..) => "Fetched::Ok(<redacted>)",
            Self::Page(_) => "Fetched::Page",
        })
    }
}

async fn overview(
    app: &AppState,
    rp: &RelyingParty,
    p: &Person,
) -> Result<PortalOverview, RpError> {
    app.rp
        .portal_overview(&PortalOverviewRequest {
            relying_party_uuid: rp.relying_party_uuid.clone(),
            relying_party_name: rp.relying_party_name.clone(),
            auth_session_id: p.auth_session_id.clone(),
        })
        .await
}

/// `GET /portal/overview`.
pub async fn page(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let (o, _person, csrf) = match fetch(&app, &cur).await {
        Fetched::Ok(o, p, c) => (o, p, c),
        Fetched::Page(r) => return r,
    };
    // Every certificate's status, asked at once.
    let opts = revocation_options(&app);
    let mut tasks = tokio::task::JoinSet::new();
    for (a, acc) in o.accounts.iter().enumerate() {
        for (c, cert) in acc.certificates.iter().enumerate() {
            let (der, anchors, opts) = (cert.der.clone(), app.anchors.clone(), opts.clone());
            tasks.spawn(async move { ((a, c), ocsp_status(&der, &anchors, &opts).await) });
        }
    }
    let mut statuses = std::collections::HashMap::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok((k, v)) = r {
            statuses.insert(k, v);
        }
    }
    let status = |a: usize, c: usize| {
        statuses
            .get(&(a, c))
            .cloned()
            .unwrap_or(OcspView::Unreachable)
    };
    Html(views::overview(cur.lang, &csrf, &o, &status).into_string()).into_response()
}

/// The PEM text of a certificate given as Base64 DER (64 characters a line).
pub fn pem(der_b64: &str) -> Option<String> {
    let der = STANDARD.decode(der_b64).ok()?;
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).ok()?);
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    Some(out)
}

/// The download's file name: document number and purpose, e.g.
/// `PNOEE-30303039914-P3XN-Q-sign.pem` (only letters, digits and `-`).
pub fn file_name(document_number: &str, c: &PortalCertificate) -> String {
    let doc: String = document_number
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' {
                ch
            } else {
                '_'
            }
        })
        .collect();
    let purpose = match c.purpose {
        KeyPurpose::Auth => "auth",
        KeyPurpose::Sign => "sign",
    };
    format!("{doc}-{purpose}.pem")
}

/// `GET /portal/certificate/{serial}`: one of the holder's certificates as PEM.
pub async fn certificate(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Path(serial): Path<String>,
) -> Response {
    let o = match fetch(&app, &cur).await {
        Fetched::Ok(o, _, _) => o,
        Fetched::Page(r) => return r,
    };
    let found = o.accounts.iter().find_map(|a| {
        a.certificates
            .iter()
            .find(|c| c.serial.eq_ignore_ascii_case(&serial))
            .map(|c| (a.document_number.clone(), c))
    });
    let Some((doc, c)) = found else {
        return crate::pages::not_found(cur.lang);
    };
    let (Some(body), Ok(disposition)) = (
        pem(&c.der),
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file_name(&doc, c))),
    ) else {
        return crate::pages::not_found(cur.lang);
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// `POST /portal/logout` (CSRF checked by the middleware): leaves the portal only (a bank
/// login in the same browser stays), with a new session id.
pub async fn logout(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let now = Instant::now();
    app.sessions.with(&cur.id, now, |s| {
        let p = &mut s.data.portal;
        p.attempt = None;
        p.person = None;
        p.deletion = None;
        p.notice = Some(Notice::LoggedOut);
    });
    let mut r = Redirect::to("/portal/").into_response();
    if let Some(new_id) = app.sessions.rotate(&cur.id, now) {
        r.extensions_mut().insert(SessionChange::Rotated(new_id));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_rp::api::portal::CertificateLevel;
    use tandem_rp::report::UtcTime;

    fn cert(der: &[u8], purpose: KeyPurpose) -> PortalCertificate {
        let t = UtcTime::from_unix_secs(1_800_000_000).unwrap();
        PortalCertificate {
            serial: "5c1e".into(),
            purpose,
            level: CertificateLevel::Qualified,
            subject: "CN=X".into(),
            not_before: t,
            not_after: t,
            revoked: None,
            der: STANDARD.encode(der),
        }
    }

    #[test]
    fn pem_lines_are_64_characters_and_names_are_safe() {
        let c = cert(&[0xAB; 100], KeyPurpose::Sign);
        let p = pem(&c.der).unwrap();
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(*lines.last().unwrap(), "-----END CERTIFICATE-----");
        let body: String = lines[1..lines.len() - 1].concat();
        assert_eq!(STANDARD.decode(body).unwrap(), vec![0xAB; 100]);
        assert_eq!(pem("not base64!"), None);
        assert_eq!(
            file_name("PNOEE-30303039914-P3XN-Q", &c),
            "PNOEE-30303039914-P3XN-Q-sign.pem"
        );
        let a = cert(&[1], KeyPurpose::Auth);
        assert_eq!(file_name("a\"b/c", &a), "a_b_c-auth.pem");
    }

    #[test]
    fn revocation_results_map_to_the_four_answers() {
        let ok = |method| {
            Ok(tandem_rp::client::revocation::NotRevoked {
                method,
                url: "u".into(),
                this_update: "t".into(),
                next_update: None,
                ocsp_failure: None,
            })
        };
        assert_eq!(
            OcspView::from_check(&ok(RevocationMethod::Ocsp)),
            OcspView::Good
        );
        assert_eq!(
            OcspView::from_check(&ok(RevocationMethod::Crl)),
            OcspView::GoodByCrl
        );
        let revoked = OcspView::from_check(&Err(RevocationError::Revoked {
            method: RevocationMethod::Ocsp,
            url: "u".into(),
            at: "2026-12-07T20:00:00Z".into(),
            reason: Some(x509_reason()),
            ocsp_failure: None,
        }));
        assert_eq!(
            revoked,
            OcspView::Revoked {
                at: "2026-12-07T20:00:00Z".into(),
                reason: Some("cessationOfOperation")
            }
        );
        assert_eq!(
            OcspView::from_check(&Err(RevocationError::UnknownToOcsp { url: "u".into() })),
            OcspView::Unknown
        );
        assert_eq!(
            OcspView::from_check(&Err(RevocationError::Unavailable {
                ocsp: "refused".into(),
                crl: "refused".into()
            })),
            OcspView::Unreachable
        );
    }

    fn x509_reason() -> tandem_rp::client::revocation::CrlReason {
        tandem_rp::client::revocation::CrlReason::CessationOfOperation
    }
}
