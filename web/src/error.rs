//! The crate's error type (start-up and configuration; request failures become pages).

/// What can stop the web front end from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The configuration file is unreadable or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// TLS certificate or key unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The relying-party library refused its configuration (base URL, trust anchors).
    #[error(transparent)]
    Rp(#[from] tandem_rp::client::Error),
    /// Binding or serving failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
