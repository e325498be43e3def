//! Certificate levels of the RP API v3 and when a certificate meets a requested level.
//!
//! openapi.yml has three level names:
//! - requested (`AuthCertificateLevel`: `ADVANCED`, `QUALIFIED`; `SignCertificateLevel`: the
//!   same plus `QSCD`), "Level of certificate requested", default `QUALIFIED`;
//! - reported (`cert.certificateLevel`): "Level of Smart-ID certificate: `ADVANCED` or
//!   `QUALIFIED`";
//! - `QSCD` "is a shortcut marking a certificate of `QUALIFIED` level which is also
//!   QSCD-capable. `ADVANCED` certificates cannot be QSCD-capable"; whether a certificate is
//!   QSCD-capable is in the certificate itself ("The certificate itself contains info on
//!   whether the certificate is QSCD-enabled, data which is not represented by certificate
//!   level"), i.e. its QcSSCD statement (ETSI EN 319 412-5).
//!
//! So the levels form one order, ADVANCED < QUALIFIED < QSCD (response_verification.txt:
//! "the certificate's level meets or exceeds the required level (note that ADVANCED <
//! QUALIFIED)"): a certificate reaches QSCD when it is QUALIFIED and QSCD-capable, and it
//! meets a request when the level it reaches is at least the requested one. Nothing here
//! parses certificates; the caller says whether one is QSCD-capable.

use serde::{Deserialize, Serialize};

use super::types::{AuthCertificateLevel, SignCertificateLevel};

/// A certificate level in the specification's order: `Advanced < Qualified < Qscd`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateLevel {
    /// `ADVANCED`.
    Advanced,
    /// `QUALIFIED`: openapi.yml's `default` of both request enums.
    #[default]
    Qualified,
    /// `QSCD`: QUALIFIED and QSCD-capable (only ever requested for signing, never reported
    /// as `cert.certificateLevel`).
    Qscd,
}

impl CertificateLevel {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advanced => "ADVANCED",
            Self::Qualified => "QUALIFIED",
            Self::Qscd => "QSCD",
        }
    }

    /// A reported level (`cert.certificateLevel`, the level an account's certificate was
    /// issued with): `ADVANCED` or `QUALIFIED`; anything else (`QSCD` included) is `None`.
    pub fn from_reported(name: &str) -> Option<Self> {
        match name {
            "ADVANCED" => Some(Self::Advanced),
            "QUALIFIED" => Some(Self::Qualified),
            _ => None,
        }
    }

    /// The level a certificate reaches: its reported level, raised to `Qscd` when it is
    /// `Qualified` and QSCD-capable ("`ADVANCED` certificates cannot be QSCD-capable", so an
    /// advanced one stays advanced whatever it carries).
    pub fn of_certificate(reported: Self, qscd_capable: bool) -> Self {
        match reported {
            Self::Qualified | Self::Qscd if qscd_capable => Self::Qscd,
            Self::Qualified | Self::Qscd => Self::Qualified,
            Self::Advanced => Self::Advanced,
        }
    }

    /// Whether a certificate that reaches `certificate` (see [`Self::of_certificate`]) meets
    /// this requested level: it reaches at least as high.
    pub fn is_met_by(self, certificate: Self) -> bool {
        certificate >= self
    }

    /// The `cert.certificateLevel` to report for a certificate that reaches this level:
    /// `QSCD` is a QUALIFIED certificate.
    pub fn reported(self) -> &'static str {
        match self {
            Self::Advanced => "ADVANCED",
            Self::Qualified | Self::Qscd => "QUALIFIED",
        }
    }
}

impl From<AuthCertificateLevel> for CertificateLevel {
    fn from(l: AuthCertificateLevel) -> Self {
        match l {
            AuthCertificateLevel::Advanced => Self::Advanced,
            AuthCertificateLevel::Qualified => Self::Qualified,
        }
    }
}

impl From<SignCertificateLevel> for CertificateLevel {
    fn from(l: SignCertificateLevel) -> Self {
        match l {
            SignCertificateLevel::Advanced => Self::Advanced,
            SignCertificateLevel::Qualified => Self::Qualified,
            SignCertificateLevel::Qscd => Self::Qscd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CertificateLevel::{self, Advanced, Qscd, Qualified};
    use super::{AuthCertificateLevel, SignCertificateLevel};

    /// The certificates an account can have: (reported level, QSCD-capable).
    const CERTIFICATES: [(CertificateLevel, bool); 4] = [
        (Advanced, false),
        (Advanced, true),
        (Qualified, false),
        (Qualified, true),
    ];

    #[test]
    fn qscd_is_a_qualified_certificate_that_is_qscd_capable() {
        assert_eq!(CertificateLevel::of_certificate(Qualified, true), Qscd);
        assert_eq!(
            CertificateLevel::of_certificate(Qualified, false),
            Qualified
        );
        // "ADVANCED certificates cannot be QSCD-capable".
        assert_eq!(CertificateLevel::of_certificate(Advanced, true), Advanced);
        assert_eq!(CertificateLevel::of_certificate(Advanced, false), Advanced);
    }

    #[test]
    fn requested_levels_against_every_kind_of_certificate() {
        // (requested, which of CERTIFICATES meet it)
        let expected = [
            (Advanced, [true, true, true, true]),
            (Qualified, [false, false, true, true]),
            (Qscd, [false, false, false, true]),
        ];
        for (requested, meets) in expected {
            for ((reported, qscd), want) in CERTIFICATES.into_iter().zip(meets) {
                let reaches = CertificateLevel::of_certificate(reported, qscd);
                assert_eq!(
                    requested.is_met_by(reaches),
                    want,
                    "{} requested, {} certificate (QSCD-capable: {qscd})",
                    requested.as_str(),
                    reported.as_str()
                );
            }
        }
    }

    #[test]
    fn qscd_is_reported_as_qualified_and_never_parsed_as_a_reported_level() {
        assert_eq!(Qscd.reported(), "QUALIFIED");
        assert_eq!(Qualified.reported(), "QUALIFIED");
        assert_eq!(Advanced.reported(), "ADVANCED");
        assert_eq!(CertificateLevel::from_reported("QSCD"), None);
        assert_eq!(CertificateLevel::from_reported("qualified"), None);
        assert_eq!(
            CertificateLevel::from_reported("QUALIFIED"),
            Some(Qualified)
        );
        assert_eq!(CertificateLevel::from_reported("ADVANCED"), Some(Advanced));
    }

    #[test]
    fn request_enums_map_onto_the_order_and_default_to_qualified() {
        assert_eq!(CertificateLevel::default(), Qualified);
        assert_eq!(
            CertificateLevel::from(AuthCertificateLevel::default()),
            Qualified
        );
        assert_eq!(
            CertificateLevel::from(SignCertificateLevel::default()),
            Qualified
        );
        assert_eq!(CertificateLevel::from(SignCertificateLevel::Qscd), Qscd);
        assert_eq!(
            CertificateLevel::from(AuthCertificateLevel::Advanced),
            Advanced
        );
        assert!(Advanced < Qualified && Qualified < Qscd);
        // The stored form is the wire name.
        for l in [Advanced, Qualified, Qscd] {
            assert_eq!(
                serde_json::to_value(l).unwrap(),
                serde_json::json!(l.as_str())
            );
        }
    }
}
