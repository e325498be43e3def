//! The HTTP(S) shell: the listener (TLS by default), the router with its security layers,
//! static files, the language switch, and the session sweep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use tandem_rp::client::{ClientConfig, RpApiClient, TrustAnchors};
use tokio::net::TcpListener;

use crate::config::WebConfig;
use crate::error::WebError;
use crate::i18n::Lang;
use crate::pages;
use crate::security::session::Sessions;
use crate::security::{cookie, csrf, headers, limit, origin};
use crate::state::{AppState, Current, browser_middleware};
use crate::tls::TlsListener;

const STYLE_CSS: &str = include_str!("../static/style.css");
const LOGIN_JS: &str = include_str!("../static/login.js");
const SIGN_JS: &str = include_str!("../static/sign.js");
const PORTAL_JS: &str = include_str!("../static/portal.js");
const RPCERT_PKI_JS: &str = include_str!("../static/rpcert-pki.js");
const RPCERTS_JS: &str = include_str!("../static/rpcerts.js");

/// How often expired sessions are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Builds the shared state: RP API client and trust anchors from the configuration.
pub fn state(cfg: WebConfig) -> Result<AppState, WebError> {
    let mut rp = ClientConfig::new(&cfg.rp_api.base_url);
    if let Some(p) = cfg.rp_api_tls_ca() {
        rp.extra_root_pem = Some(read(&p)?);
    }
    for pin in &cfg.rp_api.pin_sha256 {
        rp.pins.push(
            pin.parse()
                .map_err(|e| WebError::Config(format!("rp_api.pin_sha256: {e}")))?,
        );
    }
    let client = RpApiClient::new(rp)?;
    let mut anchors = TrustAnchors::new();
    for p in cfg.trust_anchor_files() {
        anchors
            .add_pem(&read(&p)?)
            .map_err(|e| WebError::Config(format!("{}: {e}", p.display())))?;
    }
    if anchors.root_count() == 0 {
        return Err(WebError::Config(
            "no root CA among the trust anchors: give trust_anchors (or tandem_data_dir)".into(),
        ));
    }
    let sessions = Sessions::new(cfg.session_lifetime(), cfg.max_sessions);
    Ok(AppState {
        cfg: Arc::new(cfg),
        sessions: Arc::new(sessions),
        rp: client,
        anchors: Arc::new(anchors),
        uploads: Arc::new(crate::upload::UploadDir::new()?),
    })
}

fn read(p: &std::path::Path) -> Result<Vec<u8>, WebError> {
    std::fs::read(p).map_err(|e| WebError::Config(format!("cannot read {}: {e}", p.display())))
}

/// The router with every layer (see [`crate::security`]).
pub fn router(app: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/bank/") }))
        .route("/bank", get(|| async { Redirect::to("/bank/") }))
        .merge(crate::bank::routes())
        .merge(crate::verify::routes())
        .merge(crate::portal::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            csrf::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            browser_middleware,
        ));
    Router::new()
        .route("/static/{file}", get(static_file))
        .route("/lang/{code}", get(switch_language))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            origin::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            limit::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            headers::middleware,
        ))
        .with_state(app)
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "login.js" => (LOGIN_JS, "text/javascript; charset=utf-8"),
        "sign.js" => (SIGN_JS, "text/javascript; charset=utf-8"),
        "portal.js" => (PORTAL_JS, "text/javascript; charset=utf-8"),
        "rpcert-pki.js" => (RPCERT_PKI_JS, "text/javascript; charset=utf-8"),
        "rpcerts.js" => (RPCERTS_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct Back {
    back: Option<String>,
}

/// `GET /lang/{de|en}?back=/path`: sets the `lang` cookie and returns to a local path.
async fn switch_language(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(b): Query<Back>,
) -> Response {
    let Some(lang) = Lang::from_code(&code) else {
        return pages::not_found(app.cfg.default_lang);
    };
    let back = b
        .back
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'))
        .unwrap_or_else(|| "/bank/".into());
    let mut r = Redirect::to(&back).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, cookie::lang(lang.code(), app.secure()));
    r
}

async fn not_found(axum::extract::Extension(cur): axum::extract::Extension<Current>) -> Response {
    pages::not_found(cur.lang)
}

/// Binds, prints the address, and serves until `stop` resolves.
pub async fn run(
    app: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr, bool),
) -> Result<(), WebError> {
    let listener = TcpListener::bind(app.cfg.listen).await?;
    let addr = listener.local_addr()?;
    let sweeper = {
        let sessions = app.sessions.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(SWEEP_EVERY);
            loop {
                t.tick().await;
                let n = sessions.sweep(Instant::now());
                if n > 0 {
                    tracing::debug!(expired = n, "sessions swept");
                }
            }
        })
    };
    let secure = app.secure();
    let tls = app.cfg.tls_files();
    let router = router(app);
    on_listening(addr, secure);
    let served = if secure {
        let (cert, key) = tls.ok_or_else(|| WebError::Config("no TLS certificate".into()))?;
        let l = TlsListener::new(listener, &read(&cert)?, &read(&key)?)?;
        axum::serve(l, router).with_graceful_shutdown(stop).await
    } else {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
    };
    sweeper.abort();
    Ok(served?)
}
