//! The certificate authority: root and issuing CA keys in the HSM, their certificates in
//! the data directory (`pki/`), end-entity certificates for the composite keys, CRLs and
//! OCSP answers. All signatures are made by the HSM through [`HsmCaSigner`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use der::{Decode, Encode};
use rand_core::{OsRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tandem_client_core::types::KeyType;
use x509_cert::Certificate;

use crate::config::Config;
use crate::hsm::{CaKeySpec, Hsm};
use crate::pki::{self, CaProfile, CaSigner, CertificateLevel, EndEntity, KeyPurpose, PkiError};
use crate::store::{self, NewCertificate};

/// HSM label of the root CA key.
pub const ROOT_KEY_LABEL: &str = "tandem-root-ca";
/// HSM label of the issuing CA key.
pub const ISSUING_KEY_LABEL: &str = "tandem-issuing-ca";
/// Root CA validity.
const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
/// Issuing CA validity.
const ISSUING_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);

/// sha384WithRSAEncryption (RFC 4055).
const SHA384_WITH_RSA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
/// ecdsa-with-SHA384 (RFC 5758).
const ECDSA_WITH_SHA384: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// A CA key inside the HSM.
#[derive(Debug, Clone)]
pub struct HsmCaSigner {
    hsm: Hsm,
    label: String,
    spec: CaKeySpec,
    public_key: SubjectPublicKeyInfoOwned,
}

impl HsmCaSigner {
    /// The key with this label (it must exist).
    pub fn new(hsm: &Hsm, label: &str) -> anyhow::Result<Self> {
        let spec = hsm.ca_key_spec(label)?;
        let der = hsm.ca_public_key_der(label)?;
        let public_key = SubjectPublicKeyInfoOwned::from_der(&der).context("CA public key")?;
        Ok(Self {
            hsm: hsm.clone(),
            label: label.to_owned(),
            spec,
            public_key,
        })
    }
}

impl CaSigner for HsmCaSigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.spec {
            CaKeySpec::EcP384 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA384,
                parameters: None,
            },
            CaKeySpec::Rsa3072 | CaKeySpec::Rsa4096 => AlgorithmIdentifierOwned {
                oid: SHA384_WITH_RSA,
                parameters: Some(der::asn1::Null.into()),
            },
        }
    }

    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.public_key.clone()
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.hsm
            .ca_sign(&self.label, data)
            .map_err(|e| PkiError::Signing(e.to_string()))
    }
}

/// Where the CA certificates live in a data directory.
pub fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

fn random_serial() -> Vec<u8> {
    let mut serial = vec![0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, no leading zero byte
    serial
}

fn profile(cfg: &Config) -> anyhow::Result<CaProfile> {
    let base = cfg.pki.public_base_url.trim_end_matches('/');
    Ok(CaProfile {
        policy_arc: cfg
            .pki
            .policy_arc
            .parse()
            .map_err(|e| anyhow::anyhow!("pki.policy_arc: {e}"))?,
        ocsp_url: format!("{base}/ocsp"),
        ca_issuers_url: format!("{base}/ca/issuing.crt"),
        crl_url: format!("{base}/crl/issuing.crl"),
        root_crl_url: format!("{base}/crl/root.crl"),
    })
}

/// Creates the CA keys in the HSM and the root and issuing certificates (once). Idempotent:
/// existing keys and certificates are kept.
pub fn init(cfg: &Config, data_dir: &Path, hsm: &Hsm) -> anyhow::Result<()> {
    let dir = pki_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let root_status = hsm.ensure_ca_key(ROOT_KEY_LABEL, cfg.pki.key_spec)?;
    let issuing_status = hsm.ensure_ca_key(ISSUING_KEY_LABEL, cfg.pki.key_spec)?;
    eprintln!(
        "CA keys ({:?}): root {root_status:?}, issuing {issuing_status:?}",
        cfg.pki.key_spec
    );
    let root = HsmCaSigner::new(hsm, ROOT_KEY_LABEL)?;
    let issuing = HsmCaSigner::new(hsm, ISSUING_KEY_LABEL)?;
    let now = SystemTime::now();
    let root_path = dir.join("root.pem");
    let root_cert = if root_path.exists() {
        load_pem(&root_path)?
    } else {
        let cert = pki::root_ca_certificate(
            &root,
            "Tandem Root CA",
            &random_serial(),
            now,
            now + ROOT_VALIDITY,
        )?;
        std::fs::write(&root_path, pki::certificate_pem(&cert))?;
        cert
    };
    let issuing_path = dir.join("issuing.pem");
    if !issuing_path.exists() {
        let cert = pki::issuing_ca_certificate(
            &root,
            &root_cert,
            issuing.public_key(),
            "Tandem Issuing CA",
            &random_serial(),
            now,
            now + ISSUING_VALIDITY,
            &profile(cfg)?,
        )?;
        std::fs::write(&issuing_path, pki::certificate_pem(&cert))?;
    }
    eprintln!("CA certificates in {}", dir.display());
    Ok(())
}

/// Reads a PEM certificate.
pub fn load_pem(path: &Path) -> anyhow::Result<Certificate> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (label, der) = pem_rfc7468_decode(&text)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
    anyhow::ensure!(
        label == "CERTIFICATE",
        "{} is not a certificate",
        path.display()
    );
    Ok(Certificate::from_der(&der)?)
}

fn pem_rfc7468_decode(text: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((label.to_owned(), der))
}

/// The running CA: root and issuing keys in the HSM, CA certificates, profile.
#[derive(Debug, Clone)]
pub struct Ca {
    /// Root CA key: signs the root's CRL of the CA certificates it issued. `None` when the
    /// root key is not in the HSM (kept offline): the server runs, and `/crl/root.crl`
    /// answers 503 naming the reason.
    pub root: Option<HsmCaSigner>,
    /// Issuing CA key.
    pub issuing: HsmCaSigner,
    /// Issuing CA certificate.
    pub issuing_cert: Certificate,
    /// Root CA certificate.
    pub root_cert: Certificate,
    /// Certificate profile.
    pub profile: CaProfile,
    /// QUALIFIED or ADVANCED.
    pub level: CertificateLevel,
    /// CRL validity.
    pub crl_validity: Duration,
}

impl Ca {
    /// Loads the CA of a data directory.
    pub fn load(cfg: &Config, data_dir: &Path, hsm: &Hsm) -> anyhow::Result<Self> {
        let dir = pki_dir(data_dir);
        Ok(Self {
            root: HsmCaSigner::new(hsm, ROOT_KEY_LABEL)
                .inspect_err(|e| tracing::warn!(error = %e, "the root CA key is not usable"))
                .ok(),
            issuing: HsmCaSigner::new(hsm, ISSUING_KEY_LABEL)
                .context("the issuing CA key is missing (run `tandem server hsm-init`)")?,
            issuing_cert: load_pem(&dir.join("issuing.pem"))?,
            root_cert: load_pem(&dir.join("root.pem"))?,
            profile: profile(cfg)?,
            level: if cfg.pki.level == "ADVANCED" {
                CertificateLevel::Advanced
            } else {
                CertificateLevel::Qualified
            },
            crl_validity: Duration::from_secs(cfg.pki.crl_validity_seconds.max(60) as u64),
        })
    }

    /// Serial number of the issuing CA certificate (big-endian, as issued).
    pub fn issuing_serial(&self) -> Vec<u8> {
        self.issuing_cert
            .tbs_certificate()
            .serial_number()
            .as_bytes()
            .to_vec()
    }

    /// The level name stored with certificates.
    pub fn level_name(&self) -> &'static str {
        match self.level {
            CertificateLevel::Qualified => "QUALIFIED",
            CertificateLevel::Advanced => "ADVANCED",
        }
    }

    /// Issues the AUTH or SIGN certificate for a composite key. Signs in the HSM.
    pub fn issue(
        &self,
        key_type: KeyType,
        composite_modulus: &[u8],
        identity: &store::Identity,
        not_before: i64,
        not_after: i64,
    ) -> anyhow::Result<NewCertificate> {
        let serial = random_serial();
        let ee = EndEntity {
            purpose: match key_type {
                KeyType::Auth => KeyPurpose::Authentication,
                KeyType::Sign => KeyPurpose::Signature,
            },
            level: self.level,
            composite_modulus: composite_modulus.to_vec(),
            given_name: identity.given_name.clone(),
            surname: identity.surname.clone(),
            country: identity.country.clone(),
            national_id: identity.national_id.clone(),
            serial: serial.clone(),
            not_before: UNIX_EPOCH + Duration::from_secs(not_before.max(0) as u64),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
        };
        let cert =
            pki::end_entity_certificate(&self.issuing, &self.issuing_cert, &ee, &self.profile)?;
        Ok(NewCertificate {
            serial,
            key_type,
            level: self.level_name().into(),
            der: cert.to_der()?,
            not_before,
            not_after,
        })
    }
}
