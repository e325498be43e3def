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
/// HSM label of the time-stamp authority's key (RFC 3161).
pub const TSA_KEY_LABEL: &str = "tandem-tsa";
/// Common name of the TSA certificate.
const TSA_COMMON_NAME: &str = "Tandem Time-Stamping Authority";
/// TSA certificate validity (never beyond the issuing CA certificate's).
const TSA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);
/// HSM label of the key that signs proofs of origin.
pub const ORIGIN_KEY_LABEL: &str = "tandem-origin";
/// Common name of the proof-of-origin certificate.
const ORIGIN_COMMON_NAME: &str = "Tandem proof of origin";
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
    ensure_tsa(cfg, data_dir, hsm)?;
    ensure_origin(cfg, data_dir, hsm)?;
    eprintln!("CA certificates in {}", dir.display());
    Ok(())
}

/// The URL of the time-stamp authority: `POST` RFC 3161 requests there (`pki.public_base_url`
/// + `/tsa`, served by the publication point next to `/ocsp`).
pub fn tsa_url(cfg: &Config) -> String {
    format!("{}/tsa", cfg.pki.public_base_url.trim_end_matches('/'))
}

/// Creates the TSA key in the HSM ([`TSA_KEY_LABEL`], the CA key kind) and its certificate
/// `pki/tsa.pem` from the issuing CA, when missing: run by `server init` and by every
/// `server run`, so a data directory made before the TSA existed gets one without a manual
/// step. A certificate that does not certify the key in the HSM is replaced. Returns whether
/// anything was created (and says so on standard error and in the log).
pub fn ensure_tsa(cfg: &Config, data_dir: &Path, hsm: &Hsm) -> anyhow::Result<bool> {
    let policy = tsa_policy(cfg)?;
    let profile = profile(cfg)?;
    ensure_service_key(
        cfg,
        data_dir,
        hsm,
        TSA_KEY_LABEL,
        "tsa.pem",
        "TSA",
        |issuing, issuing_cert, key, now, not_after| {
            Ok(pki::tsa_certificate(
                issuing,
                issuing_cert,
                key,
                TSA_COMMON_NAME,
                &random_serial(),
                now,
                (now + TSA_VALIDITY).min(not_after),
                policy,
                &profile,
            )?)
        },
    )
}

/// Creates the proof-of-origin key in the HSM ([`ORIGIN_KEY_LABEL`], the CA key kind) and
/// its certificate `pki/origin.pem` from the issuing CA, when missing, as [`ensure_tsa`]
/// does for the TSA (run by `server init` and by every `server run`).
pub fn ensure_origin(cfg: &Config, data_dir: &Path, hsm: &Hsm) -> anyhow::Result<bool> {
    let profile = profile(cfg)?;
    ensure_service_key(
        cfg,
        data_dir,
        hsm,
        ORIGIN_KEY_LABEL,
        "origin.pem",
        "proof-of-origin",
        |issuing, issuing_cert, key, now, not_after| {
            Ok(pki::origin_certificate(
                issuing,
                issuing_cert,
                key,
                ORIGIN_COMMON_NAME,
                &random_serial(),
                now,
                (now + TSA_VALIDITY).min(not_after),
                &profile,
            )?)
        },
    )
}

/// The key `label` in the HSM and its certificate `pki/<file>`, made when missing or when
/// the certificate does not certify the key.
#[allow(clippy::too_many_arguments)] // private: the service key's names
fn ensure_service_key(
    cfg: &Config,
    data_dir: &Path,
    hsm: &Hsm,
    label: &str,
    file: &str,
    what: &str,
    issue: impl FnOnce(
        &HsmCaSigner,
        &Certificate,
        SubjectPublicKeyInfoOwned,
        SystemTime,
        SystemTime,
    ) -> anyhow::Result<Certificate>,
) -> anyhow::Result<bool> {
    let key_status = hsm
        .ensure_ca_key(label, cfg.pki.key_spec)
        .with_context(|| format!("cannot create or find the {what} key in the HSM"))?;
    let key_created = key_status == crate::hsm::ObjectStatus::Created;
    if key_created {
        eprintln!("created the {what} key ({label}, {})", cfg.pki.key_spec);
    }
    let key = HsmCaSigner::new(hsm, label)?;
    let dir = pki_dir(data_dir);
    let path = dir.join(file);
    if path.exists() {
        let cert = load_pem(&path)?;
        if cert.tbs_certificate().subject_public_key_info() == &key.public_key() {
            return Ok(key_created);
        }
        tracing::warn!(path = %path.display(), "the {what} certificate does not certify the {what} key in the HSM: issuing a new one");
    }
    let issuing = HsmCaSigner::new(hsm, ISSUING_KEY_LABEL)
        .with_context(|| format!("the issuing CA key is missing: cannot certify the {what} key"))?;
    let issuing_cert = load_pem(&dir.join("issuing.pem"))?;
    let issuing_end = issuing_cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time();
    let cert = issue(
        &issuing,
        &issuing_cert,
        key.public_key(),
        SystemTime::now(),
        issuing_end,
    )?;
    std::fs::write(&path, pki::certificate_pem(&cert))?;
    eprintln!("issued the {what} certificate {}", path.display());
    Ok(true)
}

fn tsa_policy(cfg: &Config) -> anyhow::Result<const_oid::ObjectIdentifier> {
    Ok(pki::tsp::tsa_policy_oid(profile(cfg)?.policy_arc)?)
}

/// The time-stamp authority: its key in the HSM, its certificate, its policy and the
/// TSTInfo serial numbers.
#[derive(Debug, Clone)]
pub struct Tsa {
    /// The TSA key ([`TSA_KEY_LABEL`]).
    pub signer: HsmCaSigner,
    /// `pki/tsa.pem`.
    pub cert: Certificate,
    /// The policy of our time stamps (`<policy_arc>.2.1`).
    pub policy: const_oid::ObjectIdentifier,
    /// The last serial number given out (shared by the clones).
    last_serial: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Tsa {
    /// Loads the TSA of a data directory (key and `pki/tsa.pem`; see [`ensure_tsa`]).
    pub fn load(cfg: &Config, data_dir: &Path, hsm: &Hsm) -> anyhow::Result<Self> {
        let signer = HsmCaSigner::new(hsm, TSA_KEY_LABEL).context("the TSA key is missing")?;
        let cert = load_pem(&pki_dir(data_dir).join("tsa.pem"))?;
        anyhow::ensure!(
            cert.tbs_certificate().subject_public_key_info() == &signer.public_key(),
            "pki/tsa.pem does not certify the TSA key in the HSM"
        );
        Ok(Self {
            signer,
            cert,
            policy: tsa_policy(cfg)?,
            last_serial: Default::default(),
        })
    }

    /// The next TSTInfo serial number: the time in nanoseconds since 1970, or the last one
    /// plus one if that is not larger. Unique and increasing within the process, and across
    /// restarts as long as the clock does not run backwards past the last time stamp.
    pub fn next_serial(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1));
        let previous = self
            .last_serial
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        now.max(previous.saturating_add(1))
    }
}

/// The proof-of-origin signer: its key in the HSM and its certificate.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The key ([`ORIGIN_KEY_LABEL`]).
    pub signer: HsmCaSigner,
    /// `pki/origin.pem`.
    pub cert: Certificate,
}

impl Origin {
    /// Loads the proof-of-origin key and `pki/origin.pem` (see [`ensure_origin`]).
    pub fn load(data_dir: &Path, hsm: &Hsm) -> anyhow::Result<Self> {
        let signer = HsmCaSigner::new(hsm, ORIGIN_KEY_LABEL)
            .context("the proof-of-origin key is missing")?;
        let cert = load_pem(&pki_dir(data_dir).join("origin.pem"))?;
        anyhow::ensure!(
            cert.tbs_certificate().subject_public_key_info() == &signer.public_key(),
            "pki/origin.pem does not certify the proof-of-origin key in the HSM"
        );
        Ok(Self { signer, cert })
    }
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
    /// The time-stamp authority; `None` when its key or certificate is missing or does not
    /// match (then `POST /tsa` answers 503).
    pub tsa: Option<Tsa>,
    /// The proof-of-origin signer; `None` when its key or certificate is missing or does
    /// not match (then the proof-of-origin endpoint answers 503).
    pub origin: Option<Origin>,
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
            tsa: Tsa::load(cfg, data_dir, hsm)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "the time-stamp authority is not usable"),
                )
                .ok(),
            origin: Origin::load(data_dir, hsm)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "the proof-of-origin key is not usable"),
                )
                .ok(),
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

    /// Issues a relying party's TLS client certificate (its software certificate) for the
    /// public key of its CSR (SPKI DER, checked by [`pki::csr::public_key_of_csr`]): subject
    /// O and CN `rp_name`, SubjectAltName `urn:uuid:<rp_uuid>`, clientAuth only. Signs in
    /// the HSM with the issuing CA key. Returns the serial (big-endian) and the DER.
    pub fn issue_rp_client(
        &self,
        rp_uuid: &str,
        rp_name: &str,
        public_key_der: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let serial = random_serial();
        let rp = self.rp_client(
            rp_uuid,
            rp_name,
            public_key_der,
            &serial,
            not_before,
            not_after,
        )?;
        let cert =
            pki::rp_client_certificate(&self.issuing, &self.issuing_cert, &rp, &self.profile)?;
        Ok((serial, cert.to_der()?))
    }

    fn rp_client<'a>(
        &self,
        rp_uuid: &'a str,
        rp_name: &'a str,
        public_key_der: &[u8],
        serial: &'a [u8],
        not_before: i64,
        not_after: i64,
    ) -> anyhow::Result<pki::RpClient<'a>> {
        Ok(pki::RpClient {
            rp_uuid,
            rp_name,
            public_key: SubjectPublicKeyInfoOwned::from_der(public_key_der)
                .context("the stored public key")?,
            serial,
            not_before: UNIX_EPOCH + Duration::from_secs(not_before.max(0) as u64),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
        })
    }

    /// The CA's bare signing speed: builds `count` RP client TBSCertificates for
    /// `public_key_der` (outside the timing), then signs them with the issuing CA key in the
    /// HSM from `threads` threads. Returns the time the signing took. The yardstick of the
    /// certificate queue (`tandem operator ca-sign-bench`).
    pub fn sign_bench(
        &self,
        public_key_der: &[u8],
        count: usize,
        threads: usize,
    ) -> anyhow::Result<Duration> {
        let now = crate::store::unix_now();
        let rp_uuid = uuid::Uuid::nil().to_string();
        let mut tbs = Vec::with_capacity(count);
        for _ in 0..count {
            let serial = random_serial();
            let rp = self.rp_client(
                &rp_uuid,
                "Benchmark",
                public_key_der,
                &serial,
                now,
                now + 86_400,
            )?;
            tbs.push(pki::rp_client_tbs(
                &self.issuing,
                &self.issuing_cert,
                &rp,
                &self.profile,
            )?);
        }
        let threads = threads.clamp(1, 64);
        let chunk = count.div_ceil(threads).max(1);
        let start = std::time::Instant::now();
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let handles: Vec<_> = tbs
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || -> anyhow::Result<()> {
                        for t in part {
                            pki::CaSigner::sign(&self.issuing, t)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
            }
            Ok(())
        })?;
        Ok(start.elapsed())
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
