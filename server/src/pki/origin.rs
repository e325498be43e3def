//! The proof of origin's CMS: the statement (UTF-8 JSON, `tandem_rp::documents::origin`)
//! attached as id-data in a `SignedData` signed by the proof-of-origin key, the way the TSA
//! signs its tokens (`tsp.rs`): SHA-384, signed attributes content-type, message-digest,
//! signing-time and signing-certificate-v2, the signature made by a [`CaSigner`] (the HSM).
//!
//! Pure encoding: the time and the signer come in as arguments.

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;

use super::tsp::{EssCertIdV2, IssuerSerial, SigningCertificateV2, attribute};
use super::{CaSigner, PkiError, check_signer_matches, oids, x509_time};

/// A proof of origin: DER `ContentInfo` holding a `SignedData` (version 1) over the
/// attached `statement` (eContentType id-data), signed by `signer` whose certificate is
/// `certificate`; `certificate` and `issuing_cert` are embedded (the root is the verifier's).
pub fn proof_of_origin(
    statement: &[u8],
    signer: &dyn CaSigner,
    certificate: &Certificate,
    issuing_cert: &Certificate,
    time: SystemTime,
) -> Result<Vec<u8>, PkiError> {
    check_signer_matches(signer, certificate)?;
    if statement.is_empty() {
        return Err(PkiError::Malformed("empty statement"));
    }
    let tbs = certificate.tbs_certificate();
    let sha384 = AlgorithmIdentifierOwned {
        oid: oids::SHA384,
        parameters: None,
    };
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(certificate.to_der()?).to_vec())?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
    };
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(oids::ID_CONTENT_TYPE, &oids::ID_DATA)?,
        attribute(
            oids::ID_MESSAGE_DIGEST,
            &OctetString::new(Sha384::digest(statement).to_vec())?,
        )?,
        attribute(oids::ID_SIGNING_TIME, &x509_time(time)?)?,
        attribute(oids::ID_AA_SIGNING_CERTIFICATE_V2, &signing_certificate)?,
    ])?;
    // The signature covers the DER of the attributes as a SET (RFC 5652 5.4).
    let signature = signer.sign(&signed_attrs.to_der()?)?;
    if signature.is_empty() {
        return Err(PkiError::Signing("empty signature".into()));
    }
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: sha384.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: super::signature_algorithm(signer)?,
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha384])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::ID_DATA,
            econtent: Some(Any::from_der(&OctetString::new(statement)?.to_der()?)?),
        },
        certificates: Some(CertificateSet::try_from(vec![
            CertificateChoices::Certificate(certificate.clone()),
            CertificateChoices::Certificate(issuing_cert.clone()),
        ])?),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    Ok(ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::from_der(&signed_data.to_der()?)?,
    }
    .to_der()?)
}
