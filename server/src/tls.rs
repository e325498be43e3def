//! Development TLS: a self-signed server certificate generated at `server init`.

use std::path::Path;

/// Writes a self-signed certificate for `localhost` / `127.0.0.1` and its key (PEM, key
/// file mode 0600).
pub fn generate_self_signed(cert_path: &Path, key_path: &Path) -> anyhow::Result<()> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cert_path, certified.cert.pem())?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}

/// Writes a file readable only by its owner (mode 0600, replaced atomically; see
/// [`crate::fs_mode::write_private`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::fs_mode::write_private(path, bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
