//! `tandem`: server, operator tools, device simulator, relying-party client and demo.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "tandem", version, about = "Tandem split-key signing service")]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `tandem=debug`, `trace`. Default: `info`
    /// for `server`, `warn` for the other commands.
    #[arg(long, global = true, env = "TANDEM_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Initialise and run the server.
    #[command(subcommand)]
    Server(tandem_cli::ServerCommand),
    /// Operator commands on a data directory (registrations, accounts, audit log).
    Operator {
        /// Server data directory.
        #[arg(long, default_value = "tandem-data")]
        data_dir: PathBuf,
        #[command(subcommand)]
        command: tandem_cli::OperatorCommand,
    },
    /// Device simulator built on client-core.
    Device {
        #[command(flatten)]
        opts: tandem_cli::DeviceOptions,
        #[command(subcommand)]
        command: tandem_cli::DeviceCommand,
    },
    /// Relying-party client over the gRPC RelyingParty service.
    Rp {
        #[command(flatten)]
        opts: tandem_cli::RpOptions,
        #[command(subcommand)]
        command: tandem_cli::RpCommand,
    },
    /// Relying-party client of the REST API (Smart-ID RP API v3): device-link (QR) and
    /// notification flows, verification of the results.
    RpApi {
        #[command(flatten)]
        opts: Box<tandem_cli::rp_api::RpApiOptions>,
        #[command(subcommand)]
        command: Box<tandem_cli::rp_api::RpApiCommand>,
    },
    /// A relying party's software certificates (keys made here, .p12 download) for mutual
    /// TLS on the RP API; takes the `rp-api` options (--api, --rp-uuid, --rp-name, --trust).
    RpCert {
        #[command(flatten)]
        api: Box<tandem_cli::rp_api::RpApiOptions>,
        #[command(flatten)]
        opts: tandem_cli::rp_cert::RpCertOptions,
        #[command(subcommand)]
        command: tandem_cli::rp_cert::RpCertCommand,
    },
    /// Signed packages (ASiC-E): list what one holds.
    #[command(subcommand)]
    Package(tandem_cli::package::PackageCommand),
    /// Runs the whole thing once: server, device, authentication, signature, lockout.
    /// The server's log goes to `server.log` in the demo directory unless a log filter is
    /// given (`--log`, `TANDEM_LOG` or `RUST_LOG`): then to standard error.
    Demo {
        /// Fresh data directory for the demo (wiped if it holds an earlier demo).
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// Client and server key size (3072 as deployed; 2048 is faster).
        #[arg(long, default_value_t = 3072)]
        key_bits: usize,
        /// Use a SoftHSM token instead of hsm-sim (needs the softhsm2 package).
        #[arg(long)]
        softhsm: bool,
    },
    /// Load generator: starts a server, registers simulated devices and drives signatures
    /// through the relying-party and device APIs at each concurrency level; reports
    /// signatures per second, latency percentiles, errors and the server's CPU per
    /// signature (docs/BENCHMARKS.md).
    Load(tandem_cli::load::LoadOptions),
    /// Verifies a detached CAdES signature (`.p7s` with `--data`) or a signed package and
    /// writes the verification report (JSON, HTML, PDF). Exit status: 0 all valid, 1 any
    /// invalid, 2 otherwise indeterminate, 3 usage errors.
    Verify(tandem_cli::verify::VerifyOptions),
    /// Runs the web front end (Demo Bank) as its own process: HTTPS, a relying party of the
    /// REST RP API (docs/WEB.md).
    Web(tandem_cli::web::WebOptions),
}

fn main() -> std::process::ExitCode {
    let args = match Cli::try_parse() {
        Ok(a) => a,
        // `tandem verify` reports usage errors with its own status (3).
        Err(e)
            if std::env::args().nth(1).as_deref() == Some("verify")
                && e.use_stderr()
                && e.kind() != clap::error::ErrorKind::DisplayHelp =>
        {
            let _ = e.print();
            return std::process::ExitCode::from(tandem_cli::verify::USAGE);
        }
        Err(e) => e.exit(),
    };
    let default_level = if matches!(args.command, Command::Server(_) | Command::Web(_)) {
        "info"
    } else {
        "warn"
    };
    tandem_cli::init_logging(args.log.as_deref().unwrap_or(default_level));
    // A log filter the user asked for (the demo shows the server's log only then).
    let asked_log = args.log.clone().or_else(|| std::env::var("RUST_LOG").ok());
    let result = match args.command {
        Command::Server(c) => tandem_cli::server(c),
        Command::Operator { data_dir, command } => tandem_cli::operator(&data_dir, command),
        Command::Device { opts, command } => {
            tandem_cli::runtime().and_then(|rt| rt.block_on(tandem_cli::device(opts, command)))
        }
        Command::Rp { opts, command } => {
            tandem_cli::runtime().and_then(|rt| rt.block_on(tandem_cli::rp(opts, command)))
        }
        Command::RpApi { opts, command } => tandem_cli::runtime()
            .and_then(|rt| rt.block_on(tandem_cli::rp_api::run(*opts, *command))),
        Command::RpCert { api, opts, command } => tandem_cli::runtime()
            .and_then(|rt| rt.block_on(tandem_cli::rp_cert::run(*api, opts, command))),
        Command::Demo {
            data_dir,
            key_bits,
            softhsm,
        } => tandem_cli::demo::run(&data_dir, key_bits, softhsm, asked_log.as_deref()),
        Command::Load(opts) => tandem_cli::load::run(&opts),
        Command::Verify(opts) => {
            return std::process::ExitCode::from(tandem_cli::verify::main(opts));
        }
        Command::Package(c) => tandem_cli::package::run(c),
        Command::Web(opts) => tandem_cli::web::run(&opts),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of standard output has gone (`tandem device pending | head -1`): stop
        // quietly with the status a shell shows for a process killed by SIGPIPE.
        Err(e) if e.downcast_ref::<tandem_cli::StdoutClosed>().is_some() => {
            std::process::ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
