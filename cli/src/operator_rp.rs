//! Operator commands for relying parties' software certificates (docs/RP_API.md, "Software
//! certificates"): credits, administrators, the mutual-TLS requirement, the list of
//! certificates, a revocation, and the CA's bare signing speed (the yardstick of the
//! certificate queue). They work on the data directory like the other operator commands.

use std::path::Path;

use clap::Subcommand;
use tandem_server::config::Config;
use tandem_server::store::prelude::*;
use tandem_server::store::{RpCertStatus, SqliteStore};

/// `rp-admin` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminAction {
    /// Makes the person an administrator.
    Add,
    /// Removes the person.
    Remove,
}

/// `rp-mtls` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MtlsMode {
    /// The relying party must present one of its software certificates.
    Require,
    /// A certificate is optional (the default).
    Optional,
}

/// The operator commands of this module (flattened into `tandem operator`).
#[derive(Debug, Subcommand)]
pub enum RpCertCommand {
    /// Adds credits to a relying party (one credit = one software certificate); prints the
    /// new balance.
    RpCredit {
        /// The relying party's UUID.
        #[arg(long)]
        rp: String,
        /// Credits to add.
        #[arg(long)]
        add: u32,
    },
    /// Adds or removes an administrator of a relying party's software certificates: a
    /// person's identity `PNO<CC>-<national id>`, e.g. PNOEE-30303039914.
    RpAdmin {
        /// The relying party's UUID.
        #[arg(long)]
        rp: String,
        /// `add` or `remove`.
        #[arg(value_enum)]
        action: AdminAction,
        /// The person, `PNO<CC>-<national id>`.
        person: String,
    },
    /// Requires mutual TLS (a software certificate) on the RP API for a relying party, or
    /// makes it optional again.
    RpMtls {
        /// The relying party's UUID.
        uuid: String,
        /// `require` or `optional`.
        #[arg(value_enum)]
        mode: MtlsMode,
    },
    /// Lists relying parties' software certificates (all, or one relying party's), with
    /// credits and administrators.
    RpCerts {
        /// Only this relying party.
        #[arg(long)]
        rp: Option<String>,
    },
    /// Revokes a relying party's software certificate by creation id or serial (hex).
    RpCertRevoke {
        /// The relying party's UUID.
        #[arg(long)]
        rp: String,
        /// The creation's id or the certificate's serial number (hex).
        id_or_serial: String,
    },
    /// Measures the CA's bare signing: `count` TLS client certificates' TBS signed with the
    /// issuing CA key in the HSM (the yardstick of the certificate queue; nothing is
    /// stored).
    CaSignBench {
        /// How many to sign.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Signing threads (the queue's `rp_certs.workers`).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

fn uuid_arg(u: &str) -> anyhow::Result<String> {
    Ok(uuid::Uuid::parse_str(u.trim())
        .map_err(|_| anyhow::anyhow!("{u:?} is not a UUID"))?
        .hyphenated()
        .to_string())
}

/// Runs one of this module's commands.
pub fn run(
    data_dir: &Path,
    cfg: &Config,
    store: &SqliteStore,
    cmd: RpCertCommand,
    now: i64,
) -> anyhow::Result<()> {
    match cmd {
        RpCertCommand::RpCredit { rp, add } => {
            let rp = uuid_arg(&rp)?;
            let balance = store.add_rp_credits(&rp, add, now)?;
            outln!("relying party {rp} has {balance} credits");
        }
        RpCertCommand::RpAdmin { rp, action, person } => {
            let rp = uuid_arg(&rp)?;
            let person = person.trim().to_owned();
            match action {
                AdminAction::Add => {
                    let added = store.add_rp_admin(&rp, &person, now)?;
                    outln!(
                        "{person} administers relying party {rp}{}",
                        if added { " now" } else { " (unchanged)" }
                    );
                }
                AdminAction::Remove => {
                    let removed = store.remove_rp_admin(&rp, &person, now)?;
                    outln!(
                        "{person} does not administer relying party {rp}{}",
                        if removed { " any more" } else { " (unchanged)" }
                    );
                }
            }
        }
        RpCertCommand::RpMtls { uuid, mode } => {
            let uuid = uuid_arg(&uuid)?;
            let required = mode == MtlsMode::Require;
            let changed = store.set_relying_party_mtls(&uuid, required, now)?;
            outln!(
                "relying party {uuid}: mutual TLS {}{}",
                if required { "required" } else { "optional" },
                if changed { " now" } else { " (unchanged)" }
            );
        }
        RpCertCommand::RpCerts { rp } => {
            let rp = rp.as_deref().map(uuid_arg).transpose()?;
            let rps: Vec<String> = match &rp {
                Some(r) => vec![r.clone()],
                None => store
                    .relying_parties()?
                    .into_iter()
                    .map(|r| r.uuid)
                    .collect(),
            };
            for r in &rps {
                let admins = store.rp_admins(r)?;
                let open = store
                    .rp_vouchers(r)?
                    .iter()
                    .filter(|v| v.redeemed_at.is_none())
                    .count();
                outln!(
                    "relying party {r}: {} credits, {open} open vouchers, administrators: {}",
                    store.rp_credits(r)?,
                    if admins.is_empty() {
                        "none".to_owned()
                    } else {
                        admins.join(", ")
                    }
                );
            }
            for c in store.rp_certs_of(rp.as_deref())? {
                let state = match c.status {
                    RpCertStatus::Ready if c.not_after.is_some_and(|t| t < now) => "EXPIRED",
                    s => s.name(),
                };
                outln!(
                    "{}  {}  {state}  serial {}  not after {}  label {:?}",
                    c.id,
                    c.rp_uuid,
                    c.serial_hex.as_deref().unwrap_or("-"),
                    c.not_after.map_or("-".to_owned(), |t| t.to_string()),
                    c.label
                );
            }
        }
        RpCertCommand::RpCertRevoke { rp, id_or_serial } => {
            let rp = uuid_arg(&rp)?;
            let (rec, changed) =
                store.revoke_rp_cert(Some(&rp), &id_or_serial, 0, "operator", now)?;
            outln!(
                "certificate {} (serial {}) of relying party {rp} {}",
                rec.id,
                rec.serial_hex.as_deref().unwrap_or("-"),
                if changed {
                    "revoked"
                } else {
                    "was revoked already"
                }
            );
        }
        RpCertCommand::CaSignBench { count, threads } => {
            anyhow::ensure!(
                (1..=1_000_000).contains(&count),
                "--count must be 1 to 1000000"
            );
            tandem_server::run::ensure_module_env(cfg)?;
            let hsm = tandem_server::run::open_hsm(cfg)?;
            let ca = tandem_server::ca::Ca::load(cfg, data_dir, &hsm)?;
            // Any 2048-bit RSA key: only the CA's signature is measured.
            let key = openssl::rsa::Rsa::generate(2048)?;
            let spki = openssl::pkey::PKey::from_rsa(key)?.public_key_to_der()?;
            let took = ca.sign_bench(&spki, count, threads)?;
            let secs = took.as_secs_f64();
            outln!(
                "signed {count} certificates in {secs:.3} s with {threads} threads: {:.1} per second, {:.2} ms each",
                count as f64 / secs.max(1e-9),
                secs * 1000.0 / count as f64
            );
        }
    }
    Ok(())
}
