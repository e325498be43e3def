//! The login handlers of every [`LoginArea`]: they convert between HTTP and the login's
//! state (decisions in [`super::state`], following in [`super::follow`], the same-device
//! return in [`super::callback`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use tandem_rp::api::device_link::DeviceLinkType;
use tandem_rp::api::types::{
    AuthCertificateLevel, AuthSignatureProtocol, AuthSignatureProtocolParameters,
    DeviceLinkAuthenticationRequest, HashAlgorithm, Interaction, NotificationAuthenticationRequest,
    SignatureAlgorithm, SignatureAlgorithmParametersInRequest, VerificationCodeType,
    encode_interactions,
};
use tandem_rp::api::vc::authentication_vc_b64;
use tandem_rp::client::{
    AuthTarget, AuthenticationExpectation, DeviceLinkSession, UserRef, generate_rp_challenge,
};

use super::LoginArea;
use super::follow::{self, AttemptKind, LoginAttempt, Verifier};
use super::state::{self as login_state, Failure, LoginState};
use super::views::{self, LoginView};
use crate::config::RelyingParty;
use crate::i18n::{Lang, Msg};
use crate::pages;
use crate::security::origin::expected_origin;
use crate::state::{AppState, Current, SessionChange};

/// How long a status request waits for the login to end before answering "waiting".
pub const STATUS_WAIT: Duration = Duration::from_secs(25);
/// Pixels per QR module: the lower end of the 6-10 that device_link_flows.txt recommends on
/// a PC screen; the page shows the image at its own size where it fits (23rem: 61 modules of
/// a version-9 code with its quiet zone). Every pixel costs drawing time 200 times a second
/// with 200 open logins (docs/BENCHMARKS.md).
const QR_MODULE_PX: u32 = 6;
/// The phone's text (at most 60 characters).
fn login_text(rp: &RelyingParty) -> String {
    let t = format!("Log in to {}", rp.relying_party_name);
    t.chars().take(60).collect()
}

/// What verifying a login's answer needs.
pub fn verifier(app: &AppState) -> Verifier {
    Verifier {
        anchors: app.anchors.clone(),
        revocation: app.cfg.revocation.clone(),
    }
}

/// Fresh ACSP_V2 parameters (a new rpChallenge).
pub fn protocol_parameters() -> AuthSignatureProtocolParameters {
    AuthSignatureProtocolParameters {
        rp_challenge: generate_rp_challenge(&mut OsRng),
        signature_algorithm: SignatureAlgorithm::RsassaPss,
        signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
            hash_algorithm: HashAlgorithm::Sha512,
        }),
    }
}

/// Starts an anonymous device-link login; its Web2App link returns to `callback_origin`.
async fn start_device_link(
    area: LoginArea,
    app: &AppState,
    rp: &RelyingParty,
    lang: Lang,
    callback_origin: Option<String>,
) -> LoginAttempt {
    let callback = callback_origin
        .filter(|o| o.starts_with("https://"))
        .map(|o| {
            let mut v = [0u8; 16];
            OsRng.fill_bytes(&mut v);
            format!("{o}{}?value={}", area.path("callback"), hex::encode(v))
        });
    let req = DeviceLinkAuthenticationRequest {
        relying_party_uuid: rp.relying_party_uuid.clone(),
        relying_party_name: rp.relying_party_name.clone(),
        initial_callback_url: callback,
        certificate_level: Some(AuthCertificateLevel::Qualified),
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: protocol_parameters(),
        interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
            display_text60: login_text(rp),
        }]),
        request_properties: None,
        capabilities: None,
        nonce: None,
    };
    let refused = |f| LoginAttempt::failed(AttemptKind::DeviceLinkRefused, f);
    let target = AuthTarget::Anonymous;
    let resp = match app.rp.device_link_authentication(&target, &req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "device-link login not started");
            return refused(login_state::start_failure(&e));
        }
    };
    let scheme = &app.cfg.rp_api.scheme_name;
    let built = DeviceLinkSession::for_authentication(&resp, Instant::now(), scheme, &req)
        .and_then(|s| s.with_lang(lang.iso639_2()))
        .and_then(|s| {
            let web2app = req
                .initial_callback_url
                .is_some()
                .then(|| s.same_device_link(DeviceLinkType::Web2App))
                .transpose()?;
            Ok((s, web2app))
        });
    let expected = AuthenticationExpectation::device_link(&req, scheme, &target);
    let (session, web2app, expected) = match (built, expected) {
        (Ok((s, w)), Ok(e)) => (s, w, e),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "device-link answer unusable");
            return refused(Failure::ServerError);
        }
    };
    follow::follow(
        AttemptKind::DeviceLink {
            session: Arc::new(session),
            web2app,
            callback_url: req.initial_callback_url.clone(),
        },
        app.rp.clone(),
        resp.session_id,
        expected,
        verifier(app),
    )
}

/// `GET /{area}/`.
pub async fn index(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    headers: HeaderMap,
) -> Response {
    let Some(rp) = area.relying_party(&app).cloned() else {
        return views::not_configured(area, cur.lang);
    };
    let now = Instant::now();
    let (logged_in, running) = app
        .sessions
        .with(&cur.id, now, |s| {
            let slot = area.slot(&mut s.data);
            let running = slot.attempt.as_ref().is_some_and(|a| {
                matches!(a.kind, AttemptKind::DeviceLink { .. }) && !a.current().is_final()
            });
            (slot.person.is_some(), running)
        })
        .unwrap_or((false, false));
    if logged_in {
        return Redirect::to(area.after_login()).into_response();
    }
    if !running {
        let origin = expected_origin(app.cfg.public_url.as_deref(), app.secure(), &headers);
        let attempt = start_device_link(area, &app, &rp, cur.lang, origin).await;
        app.sessions.with(&cur.id, Instant::now(), |s| {
            *area.slot(&mut s.data).attempt = Some(attempt)
        });
    }
    render_login(area, &app, &cur, "EE", "", false, StatusCode::OK)
}

/// The note above the login page: the portal's (logged out, session over), or that the
/// browser's session expired.
fn notice(area: LoginArea, app: &AppState, cur: &Current) -> Option<&'static str> {
    let portal = match area {
        LoginArea::Portal => app
            .sessions
            .with(&cur.id, Instant::now(), |s| s.data.portal.notice.take())
            .flatten(),
        LoginArea::Bank => None,
    };
    portal
        .map(|n| n.text(cur.lang))
        .or_else(|| cur.expired.then(|| Msg::SessionExpired.text(cur.lang)))
}

fn render_login(
    area: LoginArea,
    app: &AppState,
    cur: &Current,
    country: &str,
    national_id: &str,
    form_invalid: bool,
    code: StatusCode,
) -> Response {
    let Some((csrf, qr, web2app, qr_failure)) = app.sessions.with(&cur.id, Instant::now(), |s| {
        let (qr, web2app, failure) = match &*area.slot(&mut s.data).attempt {
            Some(a) => match (&a.kind, a.current()) {
                (AttemptKind::DeviceLink { web2app, .. }, LoginState::Failed(f)) => {
                    (false, web2app.clone(), Some(f))
                }
                (AttemptKind::DeviceLink { web2app, .. }, _) => (true, web2app.clone(), None),
                (AttemptKind::DeviceLinkRefused, LoginState::Failed(f)) => (false, None, Some(f)),
                _ => (false, None, None),
            },
            None => (false, None, None),
        };
        (s.csrf.expose_secret(), qr, web2app, failure)
    }) else {
        return Redirect::to(area.home()).into_response();
    };
    let view = LoginView {
        area,
        notice: notice(area, app, cur),
        qr,
        web2app: web2app.as_deref(),
        qr_failure,
        country,
        national_id,
        form_invalid,
    };
    (
        code,
        Html(views::login(cur.lang, &csrf, &view).into_string()),
    )
        .into_response()
}

/// `GET /{area}/login/qr.png?n=…`: the QR code of the link at this second (`n` only
/// defeats caches). The authCode is computed here; the sessionSecret stays in this process.
pub async fn qr_png(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
) -> Response {
    let now = Instant::now();
    let session = app
        .sessions
        .with(&cur.id, now, |s| match &*area.slot(&mut s.data).attempt {
            Some(LoginAttempt {
                kind: AttemptKind::DeviceLink { session, .. },
                ..
            }) => Some(Arc::clone(session)),
            _ => None,
        })
        .flatten();
    let Some(session) = session else {
        return pages::not_found(cur.lang);
    };
    // The session keeps the QR mask it picked for its first code (tandem_rp::client::qr::QrMask).
    match session.qr_png(now, QR_MODULE_PX) {
        Ok(png) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
            png,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "QR code not drawn");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The notification form.
#[derive(Debug, Deserialize)]
pub struct NotifyForm {
    #[serde(default)]
    country: String,
    #[serde(default)]
    national_id: String,
}

/// `POST /{area}/login/notify` (CSRF checked by the middleware).
pub async fn notify(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Form(f): Form<NotifyForm>,
) -> Response {
    let Some(rp) = area.relying_party(&app).cloned() else {
        return views::not_configured(area, cur.lang);
    };
    let Some(id) = login_state::semantics_identifier(&f.country, &f.national_id) else {
        return render_login(
            area,
            &app,
            &cur,
            &f.country,
            &f.national_id,
            true,
            StatusCode::BAD_REQUEST,
        );
    };
    let user = UserRef::Etsi(id);
    let text = login_text(&rp);
    let attempt = start_notification(&app, &rp, &user, text).await;
    let failed = attempt.current().is_final();
    app.sessions.with(&cur.id, Instant::now(), |s| {
        *area.slot(&mut s.data).attempt = Some(attempt)
    });
    let next = if failed {
        area.done_path().to_owned()
    } else {
        area.path("wait")
    };
    Redirect::to(&next).into_response()
}

/// Starts a notification authentication of `user` for `rp` with `text` on the phone and
/// follows it (also the portal's fresh confirmation before a deletion).
pub async fn start_notification(
    app: &AppState,
    rp: &RelyingParty,
    user: &UserRef,
    text: String,
) -> LoginAttempt {
    let req = NotificationAuthenticationRequest {
        relying_party_uuid: rp.relying_party_uuid.clone(),
        relying_party_name: rp.relying_party_name.clone(),
        certificate_level: Some(AuthCertificateLevel::Qualified),
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: protocol_parameters(),
        interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
            display_text60: text.chars().take(60).collect(),
        }]),
        request_properties: None,
        capabilities: None,
        vc_type: VerificationCodeType::Numeric4,
        nonce: None,
    };
    let vc =
        authentication_vc_b64(&req.signature_protocol_parameters.rp_challenge).unwrap_or_default();
    let kind = AttemptKind::Notification { vc: vc.clone() };
    match app.rp.notification_authentication(user, &req).await {
        Err(e) => {
            tracing::info!(error = %e, "notification login not started");
            LoginAttempt::failed(kind, login_state::start_failure(&e))
        }
        Ok(resp) => {
            match AuthenticationExpectation::notification(&req, &app.cfg.rp_api.scheme_name, user) {
                Ok(expected) => follow::follow(
                    kind,
                    app.rp.clone(),
                    resp.session_id,
                    expected,
                    verifier(app),
                ),
                Err(_) => LoginAttempt::failed(kind, Failure::ServerError),
            }
        }
    }
}

/// `GET /{area}/login/wait`: the verification code of a running notification login.
pub async fn wait(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
) -> Response {
    let vc = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            match &*area.slot(&mut s.data).attempt {
                Some(LoginAttempt {
                    kind: AttemptKind::Notification { vc },
                    ..
                }) => Some(vc.clone()),
                _ => None,
            }
        })
        .flatten();
    match vc {
        Some(vc) => Html(views::wait(area, cur.lang, &vc).into_string()).into_response(),
        None => Redirect::to(area.home()).into_response(),
    }
}

/// `GET /{area}/login/status`: answers when the login ends, or after [`STATUS_WAIT`].
pub async fn status(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
) -> Response {
    let rx = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            area.slot(&mut s.data)
                .attempt
                .as_ref()
                .map(|a| a.state.clone())
        })
        .flatten();
    let Some(mut rx) = rx else {
        return Json(login_state::status_answer(area, None, cur.lang)).into_response();
    };
    // Ends early when the login ends (or its task is gone: the sender dropped).
    let _ = tokio::time::timeout(STATUS_WAIT, rx.wait_for(LoginState::is_final)).await;
    let state = rx.borrow().clone();
    Json(login_state::status_answer(area, Some(&state), cur.lang)).into_response()
}

/// `GET /{area}/login/done`: a successful login rotates the session id and goes to the
/// area's page; a failed one shows its message; a running one goes back.
pub async fn done(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
) -> Response {
    let now = Instant::now();
    let state = app
        .sessions
        .with(&cur.id, now, |s| {
            let slot = area.slot(&mut s.data);
            let st = slot.attempt.as_ref().map(LoginAttempt::current);
            if let Some(LoginState::LoggedIn(p)) = &st {
                *slot.person = Some(p.clone());
                *slot.attempt = None;
            }
            st
        })
        .flatten();
    match state {
        Some(LoginState::LoggedIn(p)) => {
            let Some(new_id) = app.sessions.rotate(&cur.id, now) else {
                return Redirect::to(area.home()).into_response();
            };
            tracing::info!(area = area.prefix(), person = %p.semantics_identifier, "logged in");
            let mut r = Redirect::to(area.after_login()).into_response();
            r.extensions_mut().insert(SessionChange::Rotated(new_id));
            r
        }
        Some(LoginState::Failed(f)) => {
            Html(views::failed(area, cur.lang, f).into_string()).into_response()
        }
        Some(LoginState::Waiting | LoginState::Callback(_)) => {
            let running_notification = app
                .sessions
                .with(&cur.id, now, |s| {
                    matches!(
                        area.slot(&mut s.data).attempt.as_ref().map(|a| &a.kind),
                        Some(AttemptKind::Notification { .. })
                    )
                })
                .unwrap_or(false);
            if running_notification {
                Redirect::to(&area.path("wait")).into_response()
            } else {
                Redirect::to(area.home()).into_response()
            }
        }
        None => Redirect::to(area.home()).into_response(),
    }
}
