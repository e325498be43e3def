//! The configuration file (`web.toml`): TOML, unknown fields refused.
//!
//! ```toml
//! listen = "127.0.0.1:8443"
//! public_url = "https://bank.example"   # optional: the origin browsers use
//! tandem_data_dir = "/var/lib/tandem"   # optional: defaults for TLS, RP API trust, anchors
//! default_lang = "de"
//!
//! [rp_api]
//! base_url = "https://127.0.0.1:8088/v3"
//!
//! [bank]
//! relying_party_uuid = "00000000-0000-4000-8000-000000000001"
//! relying_party_name = "Demo Bank"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tandem_rp::client::SpkiPin;

use crate::error::WebError;
use crate::i18n::Lang;

/// Default upload limit: 25 MiB.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 25 * 1024 * 1024;
/// Default session lifetime: 15 minutes.
pub const DEFAULT_SESSION_SECONDS: u64 = 15 * 60;
/// Default bound on the number of sessions held in memory.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the log line says which).
    pub listen: SocketAddr,
    /// The origin browsers reach this service at (`https://host[:port]`, no path): the
    /// Origin check and the Web2App callback URL use it. Without it, the request's `Host`
    /// header gives the origin (fine when nothing rewrites `Host` on the way).
    #[serde(default)]
    pub public_url: Option<String>,
    /// A Tandem server data directory whose files serve as defaults: `tls/server.crt` and
    /// `tls/server.key` (this service's HTTPS), `tls/server.crt` (trust for the RP API),
    /// `pki/root.pem` + `pki/issuing.pem` (trust anchors for user certificates).
    #[serde(default)]
    pub tandem_data_dir: Option<PathBuf>,
    /// HTTPS certificate chain (PEM).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP instead of HTTPS: only behind a TLS-terminating proxy or in tests. The
    /// session cookie then lacks `Secure` (and so cannot carry the `__Host-` prefix) and no
    /// `Strict-Transport-Security` is sent.
    #[serde(default)]
    pub insecure_http: bool,
    /// Language when neither the `lang` cookie nor `Accept-Language` decides.
    #[serde(default)]
    pub default_lang: Lang,
    /// Largest request body in bytes (uploads); larger ones get a 413 page.
    #[serde(default = "default_upload_limit")]
    pub upload_limit_bytes: u64,
    /// Lifetime of a browser session in seconds (from login or first visit).
    #[serde(default = "default_session_seconds")]
    pub session_lifetime_seconds: u64,
    /// At most this many sessions in memory.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Root CA certificates (PEM) user certificates must chain to; self-signed certificates
    /// in these files become roots, the others intermediates. Default: the data directory's
    /// `pki/root.pem` and `pki/issuing.pem`.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// RFC 3161 time-stamp authority for signatures (used by the signing pages).
    #[serde(default)]
    pub tsa_url: Option<String>,
    /// The REST RP API v3.
    pub rp_api: RpApiConfig,
    /// Revocation check of login certificates (off when absent).
    #[serde(default)]
    pub revocation: Option<RevocationConfig>,
    /// The Demo Bank's relying-party registration.
    pub bank: RelyingParty,
    /// The self-service portal's relying-party registration (used by the portal pages).
    #[serde(default)]
    pub portal: Option<RelyingParty>,
}

/// How to reach the RP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpApiConfig {
    /// E.g. `https://127.0.0.1:8088/v3`.
    pub base_url: String,
    /// Extra trusted root (PEM) for the RP API's HTTPS certificate. Default: the data
    /// directory's `tls/server.crt`.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Pins of the RP API's TLS key (Base64 SHA-256 of the SubjectPublicKeyInfo).
    #[serde(default)]
    pub pin_sha256: Vec<String>,
    /// Scheme name in authCodes and ACSP_V2 payloads.
    #[serde(default = "default_scheme")]
    pub scheme_name: String,
}

/// Revocation check of the login certificate and its CAs (OCSP, CRL as fallback).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// OCSP responder instead of the certificate's AIA.
    #[serde(default)]
    pub ocsp_url: Option<String>,
    /// CRL instead of the certificate's cRLDistributionPoints.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// CRL for the intermediate CA certificates.
    #[serde(default)]
    pub ca_crl_url: Option<String>,
}

/// A relying party as registered on the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelyingParty {
    pub relying_party_uuid: String,
    pub relying_party_name: String,
}

fn default_upload_limit() -> u64 {
    DEFAULT_UPLOAD_LIMIT
}
fn default_session_seconds() -> u64 {
    DEFAULT_SESSION_SECONDS
}
fn default_max_sessions() -> usize {
    DEFAULT_MAX_SESSIONS
}
fn default_scheme() -> String {
    "smart-id".into()
}

impl WebConfig {
    /// Reads and checks a configuration file; relative paths are taken from its directory.
    pub fn load(path: &Path) -> Result<Self, WebError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WebError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut cfg = Self::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        Ok(cfg)
    }

    /// Parses and checks configuration text (paths as written).
    pub fn parse(text: &str) -> Result<Self, WebError> {
        let cfg: Self =
            toml::from_str(text).map_err(|e| WebError::Config(format!("web.toml: {e}")))?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), WebError> {
        if self.upload_limit_bytes == 0 {
            return Err(WebError::Config("upload_limit_bytes must be > 0".into()));
        }
        if self.session_lifetime_seconds < 60 {
            return Err(WebError::Config(
                "session_lifetime_seconds must be at least 60".into(),
            ));
        }
        if self.max_sessions == 0 {
            return Err(WebError::Config("max_sessions must be > 0".into()));
        }
        if let Some(u) = &self.public_url {
            let scheme_ok =
                u.starts_with("https://") || (self.insecure_http && u.starts_with("http://"));
            let rest = u.split_once("://").map_or("", |(_, r)| r);
            if !scheme_ok || rest.is_empty() || rest.contains('/') {
                return Err(WebError::Config(format!(
                    "public_url {u:?} must be an origin like https://host[:port] (no path)"
                )));
            }
        }
        if !self.insecure_http && self.tls_files().is_none() {
            return Err(WebError::Config(
                "HTTPS needs tls_cert and tls_key (or tandem_data_dir); plain HTTP only with \
                 insecure_http = true"
                    .into(),
            ));
        }
        for p in &self.rp_api.pin_sha256 {
            p.parse::<SpkiPin>()
                .map_err(|e| WebError::Config(format!("rp_api.pin_sha256 {p:?}: {e}")))?;
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in [
            self.tandem_data_dir.as_mut(),
            self.tls_cert.as_mut(),
            self.tls_key.as_mut(),
            self.rp_api.tls_ca.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            abs(p);
        }
        self.trust_anchors.iter_mut().for_each(abs);
    }

    /// The HTTPS certificate and key files: configured, or the data directory's.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        match (&self.tls_cert, &self.tls_key, &self.tandem_data_dir) {
            (Some(c), Some(k), _) => Some((c.clone(), k.clone())),
            (None, None, Some(d)) => Some((d.join("tls/server.crt"), d.join("tls/server.key"))),
            _ => None,
        }
    }

    /// The extra root for the RP API's certificate: configured, or the data directory's.
    pub fn rp_api_tls_ca(&self) -> Option<PathBuf> {
        self.rp_api.tls_ca.clone().or_else(|| {
            self.tandem_data_dir
                .as_ref()
                .map(|d| d.join("tls/server.crt"))
        })
    }

    /// The trust anchor files: configured, or the data directory's CA certificates.
    pub fn trust_anchor_files(&self) -> Vec<PathBuf> {
        if !self.trust_anchors.is_empty() {
            return self.trust_anchors.clone();
        }
        match &self.tandem_data_dir {
            Some(d) => vec![d.join("pki/root.pem"), d.join("pki/issuing.pem")],
            None => Vec::new(),
        }
    }

    /// The session lifetime.
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_lifetime_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
listen = "127.0.0.1:0"
tandem_data_dir = "/srv/tandem"
[rp_api]
base_url = "https://127.0.0.1:8088/v3"
[bank]
relying_party_uuid = "00000000-0000-4000-8000-000000000001"
relying_party_name = "Demo Bank"
"#;

    #[test]
    fn defaults_come_from_the_data_directory() {
        let c = WebConfig::parse(MINIMAL).unwrap();
        assert_eq!(c.upload_limit_bytes, 25 * 1024 * 1024);
        assert_eq!(c.session_lifetime(), Duration::from_secs(900));
        let (cert, key) = c.tls_files().unwrap();
        assert_eq!(cert, Path::new("/srv/tandem/tls/server.crt"));
        assert_eq!(key, Path::new("/srv/tandem/tls/server.key"));
        assert_eq!(c.trust_anchor_files().len(), 2);
        assert_eq!(c.rp_api.scheme_name, "smart-id");
    }

    #[test]
    fn unknown_fields_and_missing_tls_are_refused() {
        let e = WebConfig::parse(&format!("{MINIMAL}\nsurprise = 1")).unwrap_err();
        assert!(e.to_string().contains("surprise"), "{e}");
        let no_tls = MINIMAL.replace("tandem_data_dir = \"/srv/tandem\"", "");
        let e = WebConfig::parse(&no_tls).unwrap_err();
        assert!(e.to_string().contains("insecure_http"), "{e}");
        let plain = no_tls.replace("listen", "insecure_http = true\nlisten");
        assert!(WebConfig::parse(&plain).is_ok());
    }

    #[test]
    fn public_url_must_be_an_origin() {
        let with = |u: &str| MINIMAL.replace("listen", &format!("public_url = \"{u}\"\nlisten"));
        assert!(WebConfig::parse(&with("https://bank.example:8443")).is_ok());
        assert!(WebConfig::parse(&with("https://bank.example/x")).is_err());
        assert!(WebConfig::parse(&with("http://bank.example")).is_err());
    }
}
