//! Server configuration: `<data-dir>/tandem.toml`, written by `tandem server init`.
//!
//! Relative paths are resolved against the data directory. The HSM user PIN is never part
//! of the configuration or the command line: it comes from `hsm.pin_file` or the
//! environment variable named by `hsm.pin_env` (default `TANDEM_HSM_PIN`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lockout::LockoutPolicy;

/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "tandem.toml";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the gRPC listener (device and relying-party services).
    pub listen: String,
    /// SQLite database file.
    pub database: PathBuf,
    /// TLS server certificate and key (PEM).
    pub tls: TlsConfig,
    /// PKCS#11 module and token.
    pub hsm: HsmSection,
    /// Key sizes.
    #[serde(default)]
    pub keys: KeySizes,
    /// PIN lockout table.
    #[serde(default)]
    pub lockout: LockoutPolicy,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Certificate authority, OCSP and CRL.
    #[serde(default)]
    pub pki: PkiConfig,
    /// Relying-party REST API (Smart-ID RP API v3 compatible).
    #[serde(default)]
    pub rp_api: RpApiConfig,
    /// The queue of relying parties' software certificates.
    #[serde(default)]
    pub rp_certs: RpCertsConfig,
}

/// The queue that signs relying parties' software certificates
/// (`crate::rp_cert_queue`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpCertsConfig {
    /// Threads signing in the HSM at once.
    pub workers: usize,
    /// Creations claimed (and completed) per database transaction.
    pub batch: usize,
    /// Seconds between looks at the queue when nobody wakes the pool.
    pub poll_seconds: u64,
}

impl Default for RpCertsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            batch: 64,
            poll_seconds: 5,
        }
    }
}

/// Relying-party REST API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpApiConfig {
    /// Listener of the REST API; empty turns it off.
    pub listen: String,
    /// Serve HTTPS with the server's TLS certificate (`false`: plain HTTP, for a TLS
    /// terminating proxy in front or loopback tests).
    pub tls: bool,
    /// Path prefix of every endpoint.
    pub base_path: String,
    /// `deviceLinkBase` handed to relying parties (the app's universal-link prefix).
    pub device_link_base: String,
    /// `schemeName` of ACSP_V2 payloads and authCodes: `smart-id` or `smart-id-demo` keep
    /// existing client libraries working unchanged.
    pub scheme_name: String,
    /// How old (seconds) a QR device link may be when the app presents it.
    pub max_qr_age_seconds: u64,
    /// How long (seconds) a completed session's result stays available.
    pub result_retention_seconds: i64,
    /// Window (seconds) in which an identical signing request returns the same session.
    pub idempotency_seconds: i64,
    /// Session-start requests per second and relying party (token bucket refill rate).
    pub rate_limit_per_second: u32,
    /// Burst size of the token bucket.
    pub rate_limit_burst: u32,
    /// Test accounts answering with fixed end results (`docs/RP_API.md`, "Test accounts").
    /// Never enable in production: their certificates come from this server's CA.
    pub test_accounts: bool,
    /// How long (milliseconds) a test account "thinks" before it answers.
    pub test_account_delay_ms: u64,
    /// Client key size (bits) of the test accounts' simulated devices.
    pub test_account_key_bits: usize,
    /// How old (seconds since it completed) an AUTH session may be when a proof of origin
    /// is asked for with it (`POST /tandem/v1/proof-of-origin`).
    pub max_auth_age_seconds: u64,
    /// How old (seconds since it completed) an AUTH session may be when the self-service
    /// portal asks for its holder's overview (`POST /tandem/v1/portal/overview`): the
    /// portal's login lasts this long. Deletions need a fresh one
    /// (`max_auth_age_seconds`).
    pub portal_session_seconds: u64,
}

impl Default for RpApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8088".into(),
            tls: true,
            base_path: "/v3".into(),
            device_link_base: "https://tandem.example/device-link".into(),
            scheme_name: "smart-id".into(),
            max_qr_age_seconds: 60,
            result_retention_seconds: 300,
            idempotency_seconds: 15,
            rate_limit_per_second: 20,
            rate_limit_burst: 50,
            test_accounts: false,
            test_account_delay_ms: 3000,
            test_account_key_bits: 3072,
            max_auth_age_seconds: 300,
            portal_session_seconds: 900,
        }
    }
}

/// Certificate authority settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiConfig {
    /// CA key type: `rsa-4096`, `rsa-3072` (tests) or `ec-p384`.
    pub key_spec: crate::hsm::CaKeySpec,
    /// Plain-HTTP listener for OCSP, CRL and CA certificates.
    pub http_listen: String,
    /// Base URL written into certificates (AIA, CRL distribution point).
    pub public_base_url: String,
    /// Arc under which the certificate policy OIDs live (ours: a 2.25 UUID arc by default).
    pub policy_arc: String,
    /// Level of the certificates: `QUALIFIED` (ETSI QC statements) or `ADVANCED`.
    pub level: String,
    /// Validity of a CRL (nextUpdate − thisUpdate), in seconds.
    pub crl_validity_seconds: i64,
    /// Validity of a relying party's software certificate (TLS client), in days.
    #[serde(default = "default_rp_cert_validity_days")]
    pub rp_cert_validity_days: u32,
}

fn default_rp_cert_validity_days() -> u32 {
    365
}

impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            key_spec: crate::hsm::CaKeySpec::Rsa4096,
            http_listen: "127.0.0.1:7480".into(),
            public_base_url: "http://127.0.0.1:7480".into(),
            policy_arc: crate::pki::DEFAULT_POLICY_ARC.into(),
            level: "QUALIFIED".into(),
            crl_validity_seconds: 24 * 3600,
            rp_cert_validity_days: default_rp_cert_validity_days(),
        }
    }
}

/// TLS files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// HSM access.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    /// Path of the PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// Label of the token holding Tandem's keys.
    pub token_label: String,
    /// File holding the token's user PIN (mode 0600).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN when there is no `pin_file`.
    #[serde(default = "default_pin_env")]
    pub pin_env: String,
    /// Environment the module needs (e.g. `SOFTHSM2_CONF`); the server re-executes itself
    /// with these set before loading the module.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How long a confirmation waits for the HSM (opening the share envelope, the share
    /// exponentiation and the server's RSA operation, each) before it ends the transaction
    /// with SERVER_ERROR without counting a PIN attempt. Milliseconds, 100 to 600 000.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Where `x^d1'' mod n1` is computed: `auto` (the default: the module's vendor
    /// mechanism if it has one, as hsm-sim, else `software`), `software` (the HSM decrypts
    /// d1'' into server memory), `vendor` (hsm-sim's CKM_TANDEM_SHARE_EXP, required) or
    /// `token-rsa` (d1'' is a non-CRT RSA key object in a standard HSM; needs
    /// `keys.transport_key = "rsa"`). Chosen at `server init`: the token and the stored
    /// shares follow it, and `run` refuses a value the token was not set up for
    /// (docs/HSM_MODES.md).
    #[serde(default)]
    pub share_exponentiation: crate::hsm::ShareExponentiation,
}

fn default_pin_env() -> String {
    "TANDEM_HSM_PIN".into()
}

fn default_call_timeout_ms() -> u64 {
    10_000
}

impl HsmSection {
    /// [`HsmSection::call_timeout_ms`] as a duration.
    pub fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.call_timeout_ms)
    }
}

/// Key sizes in bits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySizes {
    /// Server key n2, generated in the HSM.
    pub server_key_bits: usize,
    /// Accepted device key sizes n1.
    pub client_key_bits: Vec<usize>,
    /// Key-transport key created by `init`: "ec-p256" (ECDH envelopes, the default) or
    /// "rsa" (RSA-OAEP envelopes of `transport_key_bits`). A key already on the token is
    /// used as it is, whatever this says.
    #[serde(default = "default_transport_key")]
    pub transport_key: String,
    /// Size of an RSA key-transport key.
    pub transport_key_bits: usize,
    /// Server keys generated ahead in the background (wrapped under the KEK, in the
    /// database), so registration takes them instead of generating RSA keys on the request
    /// path. 0 turns the pool off.
    #[serde(default = "default_server_key_pool")]
    pub server_key_pool: usize,
}

fn default_transport_key() -> String {
    "ec-p256".to_owned()
}

impl KeySizes {
    /// The transport key `init` creates.
    pub fn transport_spec(&self) -> anyhow::Result<crate::hsm::TransportKeySpec> {
        match self.transport_key.as_str() {
            "ec-p256" => Ok(crate::hsm::TransportKeySpec::EcP256),
            "rsa" => Ok(crate::hsm::TransportKeySpec::Rsa(self.transport_key_bits)),
            _ => anyhow::bail!("keys.transport_key must be ec-p256 or rsa"),
        }
    }
}

fn default_server_key_pool() -> usize {
    8
}

impl Default for KeySizes {
    fn default() -> Self {
        Self {
            server_key_bits: 3072,
            client_key_bits: vec![2048, 3072, 4096],
            transport_key: default_transport_key(),
            transport_key_bits: 3072,
            server_key_pool: default_server_key_pool(),
        }
    }
}

/// Time limits in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Validity of a registration code.
    pub registration_seconds: i64,
    /// Default lifetime of a transaction nobody answers.
    pub transaction_seconds: u32,
    /// Upper bound a relying party may ask for.
    pub max_transaction_seconds: u32,
    /// Account validity.
    pub account_validity_days: i64,
    /// PIN proofs allowed during registration.
    pub registration_proof_attempts: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            registration_seconds: 15 * 60,
            transaction_seconds: 120,
            max_transaction_seconds: 600,
            account_validity_days: 3 * 365,
            registration_proof_attempts: 3,
        }
    }
}

impl Config {
    /// Defaults for a data directory; `module` and `token_label` name the HSM.
    pub fn defaults(module: PathBuf, token_label: String) -> Self {
        Self {
            listen: "127.0.0.1:7443".into(),
            database: "tandem.db".into(),
            tls: TlsConfig {
                cert: "tls/server.crt".into(),
                key: "tls/server.key".into(),
            },
            hsm: HsmSection {
                module,
                token_label,
                pin_file: None,
                pin_env: default_pin_env(),
                env: BTreeMap::new(),
                call_timeout_ms: default_call_timeout_ms(),
                share_exponentiation: Default::default(),
            },
            keys: KeySizes::default(),
            lockout: LockoutPolicy::default(),
            timeouts: Timeouts::default(),
            pki: PkiConfig::default(),
            rp_api: RpApiConfig::default(),
            rp_certs: RpCertsConfig::default(),
        }
    }

    /// Loads `<dir>/tandem.toml` and resolves relative paths.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (run `tandem server init` first)",
                path.display()
            )
        })?;
        let mut cfg: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid {}: {e}", path.display()))?;
        cfg.validate()?;
        cfg.resolve(dir);
        Ok(cfg)
    }

    /// The secret files this configuration names, for the checks of `tandem server run`
    /// ([`crate::fs_mode::check_server_files`]).
    pub fn server_files(&self) -> crate::fs_mode::ServerFiles {
        crate::fs_mode::ServerFiles {
            database: self.database.clone(),
            pin_file: self.hsm.pin_file.clone(),
            tls_key: self.tls.key.clone(),
            hsm_sim_dir: self
                .hsm
                .env
                .get(crate::hsm::HSM_SIM_DIR_ENV)
                .map(PathBuf::from),
        }
    }

    /// Writes the configuration as TOML (mode 0600: it names the PIN file and the HSM's
    /// environment).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self)?;
        crate::fs_mode::write_private(&dir.join(CONFIG_FILE), text.as_bytes())?;
        Ok(())
    }

    /// Checks values that would otherwise fail late.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.lockout.validate().map_err(|e| anyhow::anyhow!(e))?;
        anyhow::ensure!(
            (100..=600_000).contains(&self.hsm.call_timeout_ms),
            "hsm.call_timeout_ms must be between 100 and 600000"
        );
        self.keys.transport_spec()?;
        anyhow::ensure!(
            self.hsm.share_exponentiation != crate::hsm::ShareExponentiation::TokenRsa
                || self.keys.transport_key == "rsa",
            "hsm.share_exponentiation = \"token-rsa\" needs keys.transport_key = \"rsa\": the \
             content key of a share is unwrapped by the RSA transport key inside the HSM (with \
             the EC P-256 key the ECDH secret would be derived in server memory)"
        );
        anyhow::ensure!(
            [2048, 3072, 4096].contains(&self.keys.server_key_bits),
            "keys.server_key_bits must be 2048, 3072 or 4096"
        );
        anyhow::ensure!(
            !self.keys.client_key_bits.is_empty(),
            "keys.client_key_bits must not be empty"
        );
        anyhow::ensure!(
            self.timeouts.transaction_seconds > 0,
            "timeouts.transaction_seconds must be positive"
        );
        anyhow::ensure!(
            self.timeouts.registration_seconds > 0,
            "timeouts.registration_seconds must be positive"
        );
        anyhow::ensure!(
            matches!(
                self.rp_api.scheme_name.as_str(),
                "smart-id" | "smart-id-demo"
            ),
            "rp_api.scheme_name must be smart-id or smart-id-demo"
        );
        anyhow::ensure!(
            self.rp_api.base_path.starts_with('/') && !self.rp_api.base_path.ends_with('/'),
            "rp_api.base_path must start with / and not end with /"
        );
        anyhow::ensure!(
            self.rp_api.rate_limit_per_second > 0 && self.rp_api.rate_limit_burst > 0,
            "rp_api rate limits must be positive"
        );
        anyhow::ensure!(
            !self.rp_api.test_accounts || !self.rp_api.listen.is_empty(),
            "rp_api.test_accounts needs the REST API (rp_api.listen)"
        );
        anyhow::ensure!(
            self.keys
                .client_key_bits
                .contains(&self.rp_api.test_account_key_bits),
            "rp_api.test_account_key_bits must be one of keys.client_key_bits"
        );
        anyhow::ensure!(
            (1..=86_400).contains(&self.rp_api.max_auth_age_seconds),
            "rp_api.max_auth_age_seconds must be 1 to 86400"
        );
        anyhow::ensure!(
            (1..=86_400).contains(&self.rp_api.portal_session_seconds),
            "rp_api.portal_session_seconds must be 1 to 86400"
        );
        anyhow::ensure!(
            self.rp_api.test_account_delay_ms <= 60_000,
            "rp_api.test_account_delay_ms must be at most 60000"
        );
        anyhow::ensure!(
            matches!(self.pki.level.as_str(), "QUALIFIED" | "ADVANCED"),
            "pki.level must be QUALIFIED or ADVANCED"
        );
        anyhow::ensure!(
            self.pki
                .policy_arc
                .parse::<const_oid::ObjectIdentifier>()
                .is_ok(),
            "pki.policy_arc must be an object identifier like 2.25.123"
        );
        anyhow::ensure!(
            self.pki.crl_validity_seconds > 0,
            "pki.crl_validity_seconds must be positive"
        );
        anyhow::ensure!(
            (1..=3650).contains(&self.pki.rp_cert_validity_days),
            "pki.rp_cert_validity_days must be 1 to 3650"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.rp_certs.workers),
            "rp_certs.workers must be 1 to 64"
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.rp_certs.batch),
            "rp_certs.batch must be 1 to 1000"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.rp_certs.poll_seconds),
            "rp_certs.poll_seconds must be 1 to 3600"
        );
        Ok(())
    }

    fn resolve(&mut self, dir: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        abs(&mut self.database);
        abs(&mut self.tls.cert);
        abs(&mut self.tls.key);
        if let Some(p) = self.hsm.pin_file.as_mut() {
            abs(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_validates() {
        let cfg: Config = toml::from_str(include_str!("../../deploy/tandem.toml.example")).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.lockout, LockoutPolicy::default());
        assert_eq!(cfg.pki.key_spec, crate::hsm::CaKeySpec::Rsa4096);
    }

    #[test]
    fn defaults_round_trip_and_bad_values_are_refused() {
        let cfg = Config::defaults("/m.so".into(), "t".into());
        let text = toml::to_string_pretty(&cfg).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        back.validate().unwrap();
        let mut bad = back.clone();
        bad.pki.level = "GOLD".into();
        assert!(bad.validate().is_err());
        let mut bad = back.clone();
        bad.pki.policy_arc = "not an oid".into();
        assert!(bad.validate().is_err());
        let mut bad = back.clone();
        bad.hsm.share_exponentiation = crate::hsm::ShareExponentiation::TokenRsa;
        let e = bad.validate().unwrap_err();
        assert!(e.to_string().contains("needs keys.transport_key"), "{e}");
        bad.keys.transport_key = "rsa".into();
        bad.validate().unwrap();
        let text = toml::to_string_pretty(&bad).unwrap();
        assert!(
            text.contains("share_exponentiation = \"token-rsa\""),
            "{text}"
        );
        let mut bad = back;
        bad.keys.transport_key = "ec-p265".into();
        let e = bad.validate().unwrap_err();
        assert!(
            e.to_string()
                .contains("keys.transport_key must be ec-p256 or rsa"),
            "{e}"
        );
        assert!(toml::from_str::<Config>(&format!("{text}\nunknown = 1\n")).is_err());
    }
}
