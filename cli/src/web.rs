//! `tandem web --config web.toml`: runs the web front end (crate `tandem-web`: the Demo
//! Bank, later the portal and the verification page) as its own process until SIGTERM or
//! Ctrl-C. Prints `web: listening on https://ADDR` (tests read the port from it).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// Options of `tandem web`.
#[derive(Args, Debug, Clone)]
pub struct WebOptions {
    /// The configuration file (docs/WEB.md shows one).
    #[arg(long, default_value = "web.toml")]
    pub config: PathBuf,
}

/// Runs the web front end.
pub fn run(opts: &WebOptions) -> anyhow::Result<()> {
    let cfg = tandem_web::WebConfig::load(&opts.config)
        .with_context(|| format!("configuration {}", opts.config.display()))?;
    super::runtime()?.block_on(async {
        tandem_web::run(cfg, super::shutdown_signal(), |addr, https| {
            let scheme = if https { "https" } else { "http" };
            println!("web: listening on {scheme}://{addr}");
        })
        .await
    })?;
    Ok(())
}
