//! Mutual TLS on the REST listener: the client-certificate verifier, the connection info
//! that carries the verified certificate to the handlers, and the mapping of the core's
//! refusals to problems.
//!
//! ```text
//!  TLS handshake ── client cert? ──▶ WebPkiClientVerifier (anchors: root + issuing CA,
//!       │                             EKU clientAuth, validity); a foreign CA fails here
//!       ▼
//!  Connection { addr, client_cert }  (connect info, per connection)
//!       │  attach(): request extensions ConnectInfo<PeerAddr> + ClientCert
//!       ▼
//!  handler ── Client ──▶ admit() ── core::rp_mtls::check(store, rp, cert, now)
//!                                     Required → 401, WrongRelyingParty /
//!                                     NotAnRpCertificate / Revoked → 403
//! ```
//! The listener asks every client for a certificate but does not require one: whether a
//! relying party must present one is the core's decision, per relying party.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tandem_rp::api::problem::Problem;
use tokio_rustls::rustls;
use tracing::info;

use super::{PeerAddr, PlainListener, TlsListener};
use crate::core::rp_mtls::{MtlsRefusal, PeerCertificate};

/// What a connection knows about its client: the address and the verified end-entity
/// certificate it presented in the handshake (none over plain HTTP or without one).
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client's address.
    pub addr: SocketAddr,
    /// The client certificate, verified against our CA by the listener.
    pub client_cert: Option<Arc<PeerCertificate>>,
}

impl Connected<axum::serve::IncomingStream<'_, PlainListener>> for Connection {
    fn connect_info(s: axum::serve::IncomingStream<'_, PlainListener>) -> Self {
        Self {
            addr: *s.remote_addr(),
            client_cert: None,
        }
    }
}

impl Connected<axum::serve::IncomingStream<'_, TlsListener>> for Connection {
    fn connect_info(s: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        let (_, tls) = s.io().get_ref();
        Self {
            addr: *s.remote_addr(),
            client_cert: tls
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| {
                    Arc::new(PeerCertificate {
                        der: c.as_ref().to_vec(),
                    })
                }),
        }
    }
}

/// The verified client certificate of the request's connection, if any.
#[derive(Debug, Clone, Default)]
pub struct ClientCert(pub Option<Arc<PeerCertificate>>);

/// Middleware: makes a connection's [`Connection`] available as `ConnectInfo<PeerAddr>`
/// (what the handlers extract for the address) and [`ClientCert`].
pub async fn attach(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(c)) = req.extensions().get::<ConnectInfo<Connection>>().cloned() {
        req.extensions_mut().insert(ConnectInfo(PeerAddr(c.addr)));
        req.extensions_mut().insert(ClientCert(c.client_cert));
    }
    next.run(req).await
}

/// The caller of a request: its address and its client certificate. Every handler that
/// names a relying party extracts this and hands it to [`super::admit`].
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address.
    pub addr: SocketAddr,
    /// The verified client certificate, if the connection presented one.
    pub cert: Option<Arc<PeerCertificate>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(PeerAddr(addr))) = parts.extensions.get::<ConnectInfo<PeerAddr>>()
        else {
            return Err(
                super::errors::ProblemResponse(super::internal("no connection info"))
                    .into_response(),
            );
        };
        let cert = parts
            .extensions
            .get::<ClientCert>()
            .and_then(|c| c.0.clone());
        Ok(Self { addr: *addr, cert })
    }
}

/// The problem answer for a refusal (the reason is logged, with the relying party).
pub fn refusal(rp_uuid: &str, r: MtlsRefusal) -> Problem {
    match r {
        MtlsRefusal::Required => {
            info!(rp_uuid, "REST request refused (401): no client certificate");
            Problem::new(
                401,
                "Unauthorized",
                "mutual TLS required for this relying party",
            )
        }
        MtlsRefusal::WrongRelyingParty => {
            info!(
                rp_uuid,
                "REST request refused (403): client certificate of another relying party"
            );
            Problem::forbidden("client certificate of another relying party")
        }
        MtlsRefusal::NotAnRpCertificate => {
            info!(
                rp_uuid,
                "REST request refused (403): not a relying party's client certificate"
            );
            Problem::forbidden("not a relying party's client certificate")
        }
        MtlsRefusal::Revoked => {
            info!(
                rp_uuid,
                "REST request refused (403): client certificate revoked"
            );
            Problem::forbidden("client certificate revoked")
        }
        MtlsRefusal::Expired => {
            info!(
                rp_uuid,
                "REST request refused (403): client certificate expired"
            );
            Problem::forbidden("client certificate expired")
        }
        MtlsRefusal::IssuerRevoked => {
            info!(
                rp_uuid,
                "REST request refused (403): the issuing CA certificate is revoked"
            );
            Problem::forbidden("the CA that issued the client certificate is revoked")
        }
        MtlsRefusal::Store(e) => super::internal(e),
    }
}

/// The client-certificate verifier of the REST listener: chains to one of `anchors` (DER;
/// the root CA and the issuing CA, so a client that sends only its own certificate is
/// accepted as well as one that sends the chain from its .p12), EKU clientAuth, within
/// validity. Clients without a certificate are let through (the core decides per relying
/// party).
pub fn client_verifier(
    anchors: &[Vec<u8>],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots.add(rustls::pki_types::CertificateDer::from(a.clone()))?;
    }
    Ok(
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()?,
    )
}
