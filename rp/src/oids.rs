//! Object identifiers used in our certificates, CRLs and OCSP messages, each with the
//! document that defines it: read here by the relying-party client, written by the server's
//! CA (which re-exports this module as `tandem_server::pki::oids`). Our own policy OIDs live
//! under a configurable arc (the server's `CaProfile::policy_arc`), not here.

use const_oid::ObjectIdentifier as Oid;

// --- Algorithms -------------------------------------------------------------------------

/// rsaEncryption (RFC 8017).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// sha384WithRSAEncryption (RFC 4055).
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// ecdsa-with-SHA384 (RFC 5758).
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// id-sha1 (RFC 3279), the usual OCSP CertID hash.
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754).
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384 (RFC 5754).
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512 (RFC 5754).
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

// --- Name attributes (X.520) -------------------------------------------------------------

/// id-at-commonName.
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// id-at-surname.
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
/// id-at-serialNumber (holds the ETSI semantics identifier `PNO<CC>-<id>`).
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
/// id-at-countryName.
pub const AT_COUNTRY_NAME: Oid = Oid::new_unwrap("2.5.4.6");
/// id-at-organizationName.
pub const AT_ORGANIZATION_NAME: Oid = Oid::new_unwrap("2.5.4.10");
/// id-at-givenName.
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");

// --- Certificate and CRL extensions (RFC 5280) --------------------------------------------

/// id-ce-subjectKeyIdentifier.
pub const CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// id-ce-keyUsage.
pub const CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// id-ce-basicConstraints.
pub const CE_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// id-ce-cRLNumber.
pub const CE_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// id-ce-cRLReasons (CRL entry extension).
pub const CE_CRL_REASONS: Oid = Oid::new_unwrap("2.5.29.21");
/// id-ce-cRLDistributionPoints.
pub const CE_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// id-ce-certificatePolicies.
pub const CE_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
/// anyPolicy.
pub const ANY_POLICY: Oid = Oid::new_unwrap("2.5.29.32.0");
/// id-ce-authorityKeyIdentifier.
pub const CE_AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
/// id-ce-extKeyUsage.
pub const CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// id-pe-authorityInfoAccess.
pub const PE_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
/// id-pe-qcStatements (RFC 3739).
pub const PE_QC_STATEMENTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.3");
/// id-kp-clientAuth.
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-timeStamping (RFC 5280): the only extended key usage of a TSA certificate.
pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
/// Smart-ID authentication extended key usage (SK ID Solutions' arc). Relying parties that
/// follow the RP API's response_verification.txt accept an authentication certificate with
/// digitalSignature and this EKU (certificates from April 2025), or with digitalSignature,
/// keyEncipherment, dataEncipherment and clientAuth (older ones). Tandem's AUTH certificates
/// carry it, next to clientAuth, so those relying parties accept them; it names a purpose,
/// not an issuer.
pub const KP_SMART_ID_AUTH: Oid = Oid::new_unwrap("1.3.6.1.4.1.62306.5.7.0");
/// Tandem's "proof of origin" key purpose: the extendedKeyUsage (the only one) of the
/// certificate whose key signs proofs of origin (`docs/DOCUMENTS.md`). It lies under the
/// default policy arc `1.3.6.1.4.1.32473.1` (`<arc>.1.*` certificate policies, `<arc>.2.1`
/// the TSA policy, `<arc>.3.*` key purposes) but, unlike the policies, does not follow a
/// configured arc: verifiers recognise the purpose by this one value.
pub const KP_TANDEM_PROOF_OF_ORIGIN: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.1.3.1");
/// id-ad-ocsp.
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers.
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

// --- CMS (RFC 5652), ESS (RFC 5035) and time stamps (RFC 3161) -------------------------

/// id-data.
pub const ID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData.
pub const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType signed attribute (RFC 5652 11.1).
pub const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest signed attribute (RFC 5652 11.2).
pub const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime signed attribute (RFC 5652 11.3).
pub const ID_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificateV2 (RFC 5035; required for time stamps by RFC 5816).
pub const ID_AA_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-ct-TSTInfo (RFC 3161): the eContentType of a time-stamp token.
pub const ID_CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");

// --- OCSP (RFC 6960, RFC 8954) ----------------------------------------------------------

/// id-pkix-ocsp-basic: the response type of a BasicOCSPResponse.
pub const PKIX_OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
pub const PKIX_OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");

// --- ETSI policies and QC statements -------------------------------------------------------

/// ETSI EN 319 411-1 NCP+ (normalized policy requiring a secure device).
pub const ETSI_NCP_PLUS: Oid = Oid::new_unwrap("0.4.0.2042.1.2");
/// ETSI EN 319 411-2 QCP-n-qscd (qualified, natural person, key on a QSCD).
pub const ETSI_QCP_N_QSCD: Oid = Oid::new_unwrap("0.4.0.194112.1.2");
/// id-qcs-pkixQCSyntax-v2 (RFC 3739): carries the ETSI semantics identifier.
pub const QCS_PKIX_QC_SYNTAX_V2: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.11.2");
/// id-etsi-qcs-semanticsId-Natural (EN 319 412-1): serialNumber is `PNO<CC>-<id>` etc.
pub const ETSI_SEMANTICS_ID_NATURAL: Oid = Oid::new_unwrap("0.4.0.194121.1.1");
/// id-etsi-qcs-QcCompliance (EN 319 412-5).
pub const ETSI_QCS_QC_COMPLIANCE: Oid = Oid::new_unwrap("0.4.0.1862.1.1");
/// id-etsi-qcs-QcSSCD (EN 319 412-5).
pub const ETSI_QCS_QC_SSCD: Oid = Oid::new_unwrap("0.4.0.1862.1.4");
/// id-etsi-qcs-QcType (EN 319 412-5).
pub const ETSI_QCS_QC_TYPE: Oid = Oid::new_unwrap("0.4.0.1862.1.6");
/// id-etsi-qct-esign (EN 319 412-5): a certificate for electronic signatures.
pub const ETSI_QCT_ESIGN: Oid = Oid::new_unwrap("0.4.0.1862.1.6.1");
