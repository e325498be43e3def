//! The signature time-stamp (CAdES B-T, RFC 3161): a token over the signature value whose
//! signature verifies with a TSA certificate that carries the timeStamping extended key
//! usage and chains to the trust anchors. A valid token proves the signature existed at its
//! genTime (the best signature time).

use std::time::SystemTime;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::OctetString;
use der::{Decode, Encode};
use openssl::x509::X509;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use super::cms::EmbeddedCert;
use super::{chain, signer};
use crate::documents::timestamp::TstInfo;
use crate::oids;

/// Checks `token` (DER ContentInfo) as the time-stamp of `signature_value`; returns its
/// genTime. The error says which check failed.
pub fn check(token: &[u8], signature_value: &[u8], anchors: &[X509]) -> Result<SystemTime, String> {
    check_with(token, signature_value, anchors, &[])
}

/// [`check`], with `untrusted` certificates (e.g. those a B-LT signature embeds next to the
/// token, such as the issuing CA of the TSA) offered for the TSA's chain besides the token's
/// own; only `anchors` are trusted.
pub fn check_with(
    token: &[u8],
    signature_value: &[u8],
    anchors: &[X509],
    untrusted: &[EmbeddedCert],
) -> Result<SystemTime, String> {
    let e = |what: &'static str| move |err: der::Error| format!("time-stamp {what}: {err}");
    let ci = ContentInfo::from_der(token).map_err(e("token"))?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err("the time-stamp token is not a SignedData".into());
    }
    let sd: SignedData = ci.content.decode_as().map_err(e("SignedData"))?;
    if sd.encap_content_info.econtent_type != oids::ID_CT_TST_INFO {
        return Err("the time-stamp token does not contain a TSTInfo".into());
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the time-stamp token has no TSTInfo")?;
    let tst_der: OctetString = econtent.decode_as().map_err(e("eContent"))?;
    let tst = TstInfo::from_der(tst_der.as_bytes()).map_err(e("TSTInfo"))?;

    let imprint_hash = signer::document_hash(tst.message_imprint.hash_algorithm.oid)
        .map_err(|a| format!("time-stamp imprint: {a}"))?;
    if imprint_hash.digest(signature_value) != tst.message_imprint.hashed_message.as_bytes() {
        return Err(
            "the time-stamp's message imprint is not the hash of the signature value".into(),
        );
    }

    let mut infos = sd.signer_infos.0.iter();
    let si = match (infos.next(), infos.next()) {
        (Some(si), None) => si,
        _ => return Err("the time-stamp token must have exactly one SignerInfo".into()),
    };
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or("the time-stamp token has no signed attributes")?;
    let md = attrs
        .iter()
        .find(|a| a.oid == oids::ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .ok_or("the time-stamp token has no message-digest attribute")?;
    let md: OctetString = md.decode_as().map_err(e("message-digest"))?;
    let digest =
        signer::document_hash(si.digest_alg.oid).map_err(|a| format!("time-stamp: {a}"))?;
    if digest.digest(tst_der.as_bytes()) != md.as_bytes() {
        return Err("the time-stamp token's message-digest does not match its TSTInfo".into());
    }
    let certs: Vec<EmbeddedCert> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(EmbeddedCert {
                der: c.to_der().ok()?,
                cert: c.clone(),
            }),
            _ => None,
        })
        .collect();
    let tsa = signer::find_signer(si, &certs)
        .ok_or("the time-stamp token does not embed the TSA certificate")?;
    let key = signer::public_key(tsa)?;
    signer::key_acceptable(&key).map_err(|a| format!("time-stamp: {a}"))?;
    let attrs_der = attrs.to_der().map_err(e("signed attributes"))?;
    if !signer::verify_signature(
        &si.signature_algorithm,
        digest,
        &key,
        &attrs_der,
        si.signature.as_bytes(),
    )
    .map_err(|a| format!("time-stamp: {a}"))?
    {
        return Err("the time-stamp token's signature does not verify".into());
    }
    let eku = tsa
        .cert
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .ok()
        .flatten();
    if !eku.is_some_and(|(_, k)| k.0.contains(&oids::KP_TIME_STAMPING)) {
        return Err("the TSA certificate lacks the timeStamping extended key usage".into());
    }
    let mut pool = certs.clone();
    pool.extend(untrusted.iter().cloned());
    let chain =
        chain::build(&tsa.der, &pool, anchors).map_err(|c| format!("TSA certificate: {c}"))?;
    let gen_time = tst.gen_time.to_system_time();
    for c in &chain.certs {
        let within = openssl::asn1::Asn1Time::from_unix(unix(gen_time))
            .map(|t| c.not_before() <= t && t <= c.not_after())
            .unwrap_or(false);
        if !within {
            return Err("the time-stamp's genTime is outside its TSA chain's validity".into());
        }
    }
    Ok(gen_time)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
