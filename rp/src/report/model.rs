//! The typed verification result: header, proof of origin, documents and their signatures.
//! Filled by whoever checks the signatures; rendered by [`super::html`] and as JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::status::{Colour, SignatureStatus};
use super::time::UtcTime;

/// The version of the JSON form written by this library; other versions are rejected.
pub const REPORT_VERSION: u32 = 1;

/// The whole report: the seed's three parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerificationReport {
    /// Always [`REPORT_VERSION`]; checked when read.
    pub version: ReportVersion,
    /// Part 1: who issued the report, when, and about which message.
    pub header: ReportHeader,
    /// Part 2: the proof of origin of the package.
    pub proof_of_origin: ProofOfOrigin,
    /// Part 3: the documents and their signatures.
    pub documents: Vec<Document>,
}

/// The report format's version; only [`REPORT_VERSION`] is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportVersion;

impl Serialize for ReportVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(REPORT_VERSION)
    }
}

impl<'de> Deserialize<'de> for ReportVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u32::deserialize(deserializer)?;
        if version == REPORT_VERSION {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "report version {version} is not supported (expected {REPORT_VERSION})"
            )))
        }
    }
}

/// Part 1, the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportHeader {
    /// The system that issued the report, e.g. `Tandem 0.1.0`.
    pub issuing_system: String,
    /// When the report was made.
    pub created_at: UtcTime,
    /// The message data (absent for a single signed file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageData>,
    /// The sender as the proof of origin names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Party>,
    /// The recipient as the proof of origin names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Party>,
}

/// The references and id of a message (package).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageData {
    /// The sender's reference (file number), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_reference: Option<String>,
    /// The recipient's reference, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_reference: Option<String>,
    /// The message id.
    pub message_id: String,
}

/// A sender or recipient: a name and an identifier (e.g. `PNOEE-30303039914`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Party {
    /// Full name.
    pub name: String,
    /// The identifier (Tandem: the certificate subject's serial number).
    pub identifier: String,
}

/// Part 2: the proof of origin (the seed's "VHN") as checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "case", rename_all = "camelCase", deny_unknown_fields)]
pub enum ProofOfOrigin {
    /// The package carries no proof of origin (or it is a single signed file).
    Absent,
    /// The proof is signed by a CA that is not a trusted issuer of proofs.
    #[serde(rename_all = "camelCase")]
    UnknownCa {
        /// The issuer as named in the certificate, if it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca: Option<String>,
    },
    /// The proof is not a statement of the expected schema.
    Malformed,
    /// The proof's signature was checked against a trusted CA.
    #[serde(rename_all = "camelCase")]
    Checked {
        /// The CA that issued the proof's certificate.
        ca: String,
        /// The result of checking the proof's signature.
        status: SignatureStatus,
    },
}

/// Whether the package came over a secure transmission path, as the proof shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransmissionPath {
    /// A valid proof of origin shows an authenticated sender.
    Secure,
    /// The proof claims a secure path but could not be checked now (yellow).
    NotConfirmed,
    /// No secure path: no proof, an unknown CA, a malformed or an invalid proof.
    NotSecure,
}

impl ProofOfOrigin {
    /// The secure transmission path this proof shows.
    pub fn transmission_path(&self) -> TransmissionPath {
        match self {
            Self::Checked { status, .. } => match status.colour() {
                Colour::Green => TransmissionPath::Secure,
                Colour::Yellow => TransmissionPath::NotConfirmed,
                Colour::Red => TransmissionPath::NotSecure,
            },
            Self::Absent | Self::UnknownCa { .. } | Self::Malformed => TransmissionPath::NotSecure,
        }
    }

    /// The colour of the proof's signature check; none when nothing could be checked.
    pub fn colour(&self) -> Option<Colour> {
        match self {
            Self::Checked { status, .. } => Some(status.colour()),
            Self::Absent | Self::UnknownCa { .. } | Self::Malformed => None,
        }
    }
}

/// Part 3: one document of the package (or the single signed file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// The file name as found in the package: attacker-controlled text.
    pub name: String,
    /// Main document or attachment.
    pub role: DocumentRole,
    /// Its signatures; empty when the document is not signed.
    pub signatures: Vec<SignatureResult>,
}

/// The role of a document in a package (the seed's "Schriftsatz" and "Anlage").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DocumentRole {
    /// The main document (a pleading, a contract).
    MainDocument,
    /// An attachment.
    Attachment,
}

/// The check of one signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureResult {
    /// The signer's name from the signing certificate; absent when none was identified.
    /// Attacker-controlled text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_name: Option<String>,
    /// When it was signed, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<SigningTime>,
    /// Qualified or advanced electronic signature.
    pub level: SignatureLevel,
    /// Format and baseline level.
    pub format: SignatureFormat,
    /// The ETSI indication and sub-indication.
    pub status: SignatureStatus,
    /// When the check was made.
    pub checked_at: UtcTime,
}

/// A signing time and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningTime {
    /// The time.
    pub time: UtcTime,
    /// Claimed by the signer or proven by a time-stamp.
    pub source: SigningTimeSource,
}

/// Where a signing time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SigningTimeSource {
    /// The signer's claim (CAdES signing-time, the PDF's `/M`).
    Claimed,
    /// A signature time-stamp (B-T and above).
    TimeStamp,
}

/// The signature level (eIDAS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignatureLevel {
    /// Qualified electronic signature: QC statements and a qualified policy.
    Qualified,
    /// Advanced electronic signature.
    Advanced,
    /// Not determined (e.g. the signing certificate could not be read).
    NotDetermined,
}

/// The family of a signature format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatFamily {
    /// CMS (ETSI EN 319 122-1).
    Cades,
    /// PDF (ETSI EN 319 142-1).
    Pades,
    /// XML (ETSI EN 319 132-1).
    Xades,
}

/// An ETSI baseline level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaselineLevel {
    /// B-B: basic signature.
    B,
    /// B-T: with a signature time-stamp.
    T,
    /// B-LT: with the validation data (certificates, revocation).
    Lt,
    /// B-LTA: with archive time-stamps.
    Lta,
}

/// A signature format with its baseline level, written like `CAdES-B-T`; a signature of the
/// family that meets no baseline profile is written like `CAdES-NOT-BASELINE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignatureFormat {
    /// CAdES, PAdES or XAdES.
    pub family: FormatFamily,
    /// The baseline level met, if any.
    pub baseline: Option<BaselineLevel>,
}

/// A format name that is not one of [`SignatureFormat`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature format (expected e.g. CAdES-B-T, PAdES-B-B, CAdES-NOT-BASELINE)")]
pub struct UnknownFormat;

impl fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            FormatFamily::Cades => "CAdES",
            FormatFamily::Pades => "PAdES",
            FormatFamily::Xades => "XAdES",
        };
        let level = match self.baseline {
            Some(BaselineLevel::B) => "B-B",
            Some(BaselineLevel::T) => "B-T",
            Some(BaselineLevel::Lt) => "B-LT",
            Some(BaselineLevel::Lta) => "B-LTA",
            None => "NOT-BASELINE",
        };
        write!(f, "{family}-{level}")
    }
}

impl FromStr for SignatureFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (family, level) = s.split_once('-').ok_or(UnknownFormat)?;
        let family = match family {
            "CAdES" => FormatFamily::Cades,
            "PAdES" => FormatFamily::Pades,
            "XAdES" => FormatFamily::Xades,
            _ => return Err(UnknownFormat),
        };
        let baseline = match level {
            "B-B" => Some(BaselineLevel::B),
            "B-T" => Some(BaselineLevel::T),
            "B-LT" => Some(BaselineLevel::Lt),
            "B-LTA" => Some(BaselineLevel::Lta),
            "NOT-BASELINE" => None,
            _ => return Err(UnknownFormat),
        };
        Ok(Self { family, baseline })
    }
}

impl Serialize for SignatureFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SignatureFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
