//! `tandem rp-cert create --wait`: polls the list until all new certificates are READY.

use std::collections::HashSet;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use tandem_rp::api::rp_certs::{ListRequest, RpCertState};

use super::{Ctx, stale};

/// Waits until every certificate of `ids` is READY, looking every `poll`; the moment the
/// list first showed them all ready. Fails when one ends otherwise (cancelled, revoked,
/// expired) or disappears from the list.
pub(super) async fn all_ready(
    ctx: &Ctx,
    ids: &[String],
    poll: Duration,
) -> anyhow::Result<Instant> {
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let req = ListRequest {
        relying_party_uuid: ctx.rp_uuid.clone(),
        relying_party_name: ctx.rp_name.clone(),
        auth_session_id: ctx.session.clone(),
        target_relying_party_uuid: Some(ctx.target.clone()),
    };
    let mut last = usize::MAX;
    loop {
        let o = ctx.client.rp_certs_list(&req).await.map_err(stale)?;
        let at = Instant::now();
        let mut seen = 0;
        let mut ready = 0;
        for c in o
            .relying_parties
            .iter()
            .flat_map(|rp| &rp.certificates)
            .filter(|c| wanted.contains(c.id.as_str()))
        {
            seen += 1;
            match c.state {
                RpCertState::Ready => ready += 1,
                RpCertState::Queued | RpCertState::Creating => {}
                RpCertState::Revoked | RpCertState::Expired | RpCertState::Cancelled => {
                    bail!(
                        "certificate {} ended as {:?} instead of READY",
                        c.id,
                        c.state
                    )
                }
            }
        }
        if seen < wanted.len() {
            bail!(
                "{} of the new certificates are missing from the list",
                wanted.len() - seen
            );
        }
        if ready != last {
            eprint!("\rready: {ready}/{}", wanted.len());
            let _ = std::io::stderr().flush();
            last = ready;
        }
        if ready == wanted.len() {
            eprintln!();
            return Ok(at);
        }
        tokio::time::sleep(poll).await;
    }
}
