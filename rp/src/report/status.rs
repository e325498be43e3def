//! ETSI EN 319 102-1 validation status of one signature: main indication, sub-indication
//! and the colour a reader sees.

use serde::{Deserialize, Serialize};

/// The main indication of a signature validation (ETSI EN 319 102-1, clause 5.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed: the signature is valid.
    TotalPassed,
    /// A check could not be completed; more data or a later check may decide.
    Indeterminate,
    /// A check failed for good: the signature is invalid.
    TotalFailed,
}

impl Indication {
    /// The colour this indication means in a report.
    pub fn colour(self) -> Colour {
        match self {
            Self::TotalPassed => Colour::Green,
            Self::Indeterminate => Colour::Yellow,
            Self::TotalFailed => Colour::Red,
        }
    }

    /// The ETSI name, e.g. `TOTAL_PASSED`.
    pub fn etsi_name(self) -> &'static str {
        match self {
            Self::TotalPassed => "TOTAL_PASSED",
            Self::Indeterminate => "INDETERMINATE",
            Self::TotalFailed => "TOTAL_FAILED",
        }
    }

    /// The URI of ETSI TS 119 102-2, e.g. `urn:etsi:019102:mainindication:total-passed`.
    pub fn etsi_uri(self) -> &'static str {
        match self {
            Self::TotalPassed => "urn:etsi:019102:mainindication:total-passed",
            Self::Indeterminate => "urn:etsi:019102:mainindication:indeterminate",
            Self::TotalFailed => "urn:etsi:019102:mainindication:total-failed",
        }
    }
}

/// Which indications a sub-indication may come with (ETSI EN 319 102-1, table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Allowed {
    Failed,
    Indeterminate,
    Both,
}

macro_rules! sub_indications {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $allowed:ident;)*) => {
        /// The sub-indication that says why a signature is not TOTAL_PASSED
        /// (ETSI EN 319 102-1, clause 5.1.3, table 5), serialised by its ETSI name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum SubIndication {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl SubIndication {
            /// Every sub-indication, in the order of ETSI EN 319 102-1's table.
            pub const ALL: &'static [SubIndication] = &[$(Self::$variant,)*];

            /// The ETSI name, e.g. `HASH_FAILURE`.
            pub fn etsi_name(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            fn allowed(self) -> Allowed {
                match self { $(Self::$variant => Allowed::$allowed,)* }
            }
        }
    };
}

sub_indications! {
    /// The signature or a container around it is not in the expected format.
    FormatFailure = "FORMAT_FAILURE", Both;
    /// The digest of the signed data does not match the signed digest.
    HashFailure = "HASH_FAILURE", Failed;
    /// The signature value does not verify with the signer's public key.
    SigCryptoFailure = "SIG_CRYPTO_FAILURE", Failed;
    /// The signing certificate was revoked before the signature existed.
    Revoked = "REVOKED", Failed;
    /// A constraint on the signature (policy, attributes) is not met.
    SigConstraintsFailure = "SIG_CONSTRAINTS_FAILURE", Both;
    /// A constraint on the certificate chain is not met.
    ChainConstraintsFailure = "CHAIN_CONSTRAINTS_FAILURE", Both;
    /// The chain could not be validated for a reason not covered by another sub-indication.
    CertificateChainGeneralFailure = "CERTIFICATE_CHAIN_GENERAL_FAILURE", Indeterminate;
    /// An algorithm or key size is no longer accepted.
    CryptoConstraintsFailure = "CRYPTO_CONSTRAINTS_FAILURE", Both;
    /// The signing certificate had expired at the signing time.
    Expired = "EXPIRED", Both;
    /// The signing time lies before the signing certificate's validity.
    NotYetValid = "NOT_YET_VALID", Both;
    /// The signature policy could not be processed.
    PolicyProcessingError = "POLICY_PROCESSING_ERROR", Indeterminate;
    /// The signature policy named by the signature is not available.
    SignaturePolicyNotAvailable = "SIGNATURE_POLICY_NOT_AVAILABLE", Indeterminate;
    /// The time-stamps are not in the order the format requires.
    TimestampOrderFailure = "TIMESTAMP_ORDER_FAILURE", Indeterminate;
    /// The signing certificate could not be identified.
    NoSigningCertificateFound = "NO_SIGNING_CERTIFICATE_FOUND", Indeterminate;
    /// No chain to a trust anchor could be built (e.g. an unknown CA).
    NoCertificateChainFound = "NO_CERTIFICATE_CHAIN_FOUND", Indeterminate;
    /// The signing certificate is revoked and no proof shows the signature existed before.
    RevokedNoPoe = "REVOKED_NO_POE", Indeterminate;
    /// A CA certificate in the chain is revoked and no proof shows the signature existed before.
    RevokedCaNoPoe = "REVOKED_CA_NO_POE", Indeterminate;
    /// The signing certificate has expired and no proof shows the signature existed before.
    OutOfBoundsNoPoe = "OUT_OF_BOUNDS_NO_POE", Indeterminate;
    /// The signing certificate has expired, but was not revoked while it was valid.
    OutOfBoundsNotRevoked = "OUT_OF_BOUNDS_NOT_REVOKED", Indeterminate;
    /// An algorithm is no longer accepted and no proof shows the signature existed before.
    CryptoConstraintsFailureNoPoe = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE", Indeterminate;
    /// No proof of existence where one is needed; Tandem also uses it for a claimed signing
    /// time later than the check time.
    NoPoe = "NO_POE", Indeterminate;
    /// Revocation information is not available now (OCSP and CRL unreachable).
    TryLater = "TRY_LATER", Indeterminate;
    /// The signed data could not be found (e.g. a detached signature without its document).
    SignedDataNotFound = "SIGNED_DATA_NOT_FOUND", Indeterminate;
}

/// The colour of a result: what the reader of a report sees first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Checked successfully.
    Green,
    /// The result is undetermined (e.g. the revocation service could not be reached).
    Yellow,
    /// The check failed.
    Red,
}

/// A main indication with its sub-indication, in a combination ETSI EN 319 102-1 allows:
/// TOTAL_PASSED has none, the others have one that belongs to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawStatus", into = "RawStatus")]
pub struct SignatureStatus {
    indication: Indication,
    sub_indication: Option<SubIndication>,
}

/// A combination of indication and sub-indication that ETSI EN 319 102-1 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sub-indication {sub:?} does not go with indication {indication:?}")]
pub struct InvalidStatus {
    /// The main indication given.
    pub indication: Indication,
    /// The sub-indication given (or none).
    pub sub: Option<SubIndication>,
}

impl SignatureStatus {
    /// The status of a valid signature.
    pub const PASSED: SignatureStatus = SignatureStatus {
        indication: Indication::TotalPassed,
        sub_indication: None,
    };

    /// TOTAL_FAILED/FORMAT_FAILURE: the red fallback where a computed status does not fit
    /// the table (never green by accident).
    pub const FORMAT_FAILED: SignatureStatus = SignatureStatus {
        indication: Indication::TotalFailed,
        sub_indication: Some(SubIndication::FormatFailure),
    };

    /// A status, checked against ETSI EN 319 102-1's table.
    pub fn new(
        indication: Indication,
        sub_indication: Option<SubIndication>,
    ) -> Result<Self, InvalidStatus> {
        let fits = match (indication, sub_indication) {
            (Indication::TotalPassed, None) => true,
            (Indication::TotalPassed, Some(_)) | (_, None) => false,
            (Indication::TotalFailed, Some(s)) => s.allowed() != Allowed::Indeterminate,
            (Indication::Indeterminate, Some(s)) => s.allowed() != Allowed::Failed,
        };
        if fits {
            Ok(Self {
                indication,
                sub_indication,
            })
        } else {
            Err(InvalidStatus {
                indication,
                sub: sub_indication,
            })
        }
    }

    /// TOTAL_FAILED with `sub`.
    pub fn failed(sub: SubIndication) -> Result<Self, InvalidStatus> {
        Self::new(Indication::TotalFailed, Some(sub))
    }

    /// INDETERMINATE with `sub`.
    pub fn indeterminate(sub: SubIndication) -> Result<Self, InvalidStatus> {
        Self::new(Indication::Indeterminate, Some(sub))
    }

    /// The main indication.
    pub fn indication(&self) -> Indication {
        self.indication
    }

    /// The sub-indication (none for TOTAL_PASSED).
    pub fn sub_indication(&self) -> Option<SubIndication> {
        self.sub_indication
    }

    /// The ETSI names as one text: `TOTAL_PASSED`, `INDETERMINATE/TRY_LATER`.
    pub fn etsi_text(&self) -> String {
        match self.sub_indication() {
            Some(sub) => format!("{}/{}", self.indication().etsi_name(), sub.etsi_name()),
            None => self.indication().etsi_name().to_owned(),
        }
    }

    /// The colour this status means.
    pub fn colour(&self) -> Colour {
        self.indication.colour()
    }
}

/// The JSON form: `{"indication": "TOTAL_FAILED", "subIndication": "HASH_FAILURE"}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStatus {
    indication: Indication,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub_indication: Option<SubIndication>,
}

impl TryFrom<RawStatus> for SignatureStatus {
    type Error = InvalidStatus;
    fn try_from(raw: RawStatus) -> Result<Self, Self::Error> {
        Self::new(raw.indication, raw.sub_indication)
    }
}

impl From<SignatureStatus> for RawStatus {
    fn from(status: SignatureStatus) -> Self {
        Self {
            indication: status.indication,
            sub_indication: status.sub_indication,
        }
    }
}
