//! The `pyairtable` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pyairtable::schema_files;
use pyairtable_kit::config::parse_subgraph_pair;
use pyairtable_kit::{Config, ConfigError, Kit};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "pyairtable", version, about = "PyAirtable Platform: a federated GraphQL supergraph")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole supergraph (router and every subgraph) in one process.
    Serve,
    /// Run one subgraph as its own HTTP service.
    Subgraph {
        /// auth, users, tenants
        name: String,
    },
    /// Run the router alone over HTTP subgraphs.
    Router {
        /// A subgraph as name=url (repeatable); its SDL is fetched and composed.
        #[arg(long = "subgraph", value_parser = parse_subgraph_pair)]
        subgraphs: Vec<(String, String)>,
        /// A supergraph SDL file to load instead of composing.
        #[arg(long)]
        supergraph: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and everything it names (database, migrations, Redis, storage,
    /// SMTP, other services); one line per check, exit code 1 when one fails.
    Doctor,
    /// Exit 0 when this process's own service answers /readyz with 200 (container health checks:
    /// the image has no curl).
    Healthcheck {
        /// What to ask instead of http://127.0.0.1:<port of PYAIRTABLE_LISTEN>/readyz.
        #[arg(long)]
        url: Option<String>,
    },
    /// Rotate the keys that sign access tokens (tokens already issued stay valid).
    RotateKeys,
    /// Write or check the SDL files under schema/.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
        /// The schema directory.
        #[arg(long, default_value = "schema", global = true)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Write each subgraph's SDL and the composed supergraph.
    Print,
    /// Fail when the files differ from what the code produces.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<ConfigError>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Schema { action, dir } = command {
        return schema(action, &dir);
    }
    if let Command::Doctor = command {
        return doctor().await;
    }
    if let Command::Healthcheck { url } = command {
        return healthcheck(url).await;
    }
    let mut config = Config::from_env()?;
    let service = match &command {
        Command::Serve => "serve".to_owned(),
        Command::Subgraph { name } => name.clone(),
        Command::Router { .. } => "router".to_owned(),
        _ => "admin".to_owned(),
    };
    pyairtable_kit::telemetry::init(&config, &service)?;
    let server = match command {
        Command::Serve => pyairtable::build_serve(config).await?,
        Command::Subgraph { name } => pyairtable::build_subgraph(&name, config).await?,
        Command::Router { subgraphs, supergraph } => {
            config.subgraphs.extend(subgraphs);
            config.supergraph = supergraph.or(config.supergraph);
            pyairtable::build_router(config).await?
        }
        Command::Migrate => {
            config.migrate = true;
            let kit = Kit::start(config).await?;
            kit.shutdown().await;
            println!("migrations applied");
            return Ok(());
        }
        Command::RotateKeys => {
            let kit = Kit::start(config).await?;
            let rotated = pyairtable_auth::rotate_keys(&kit).await;
            kit.shutdown().await;
            rotated?;
            println!("signing keys rotated: the next key signs now; the old one stays published");
            return Ok(());
        }
        Command::Schema { .. } | Command::Doctor | Command::Healthcheck { .. } => {
            unreachable!("handled above")
        }
    };
    // Listen for signals before saying we listen: a SIGTERM from then on drains.
    let stop = pyairtable_kit::lifecycle::signal();
    println!("listening on http://{}", server.local_addr());
    server.run_until(stop).await
}

async fn doctor() -> anyhow::Result<()> {
    let checks = pyairtable_kit::doctor::run(std::env::vars()).await;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| c.status == pyairtable_kit::doctor::Status::Fail).count();
    match failed {
        0 => Ok(()),
        n => anyhow::bail!("{n} check(s) failed"),
    }
}

async fn healthcheck(url: Option<String>) -> anyhow::Result<()> {
    let url = match url {
        Some(url) => url,
        None => format!("http://127.0.0.1:{}/readyz", Config::from_env()?.listen.port()),
    };
    let client = pyairtable_kit::internal::Client::new(std::time::Duration::from_secs(3));
    match client.status(&url).await? {
        200 => Ok(()),
        status => anyhow::bail!("{url} answered {status}"),
    }
}

fn schema(action: SchemaAction, dir: &std::path::Path) -> anyhow::Result<()> {
    match action {
        SchemaAction::Print => {
            for path in schema_files::print(dir)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        SchemaAction::Check => {
            let stale = schema_files::check(dir)?;
            if stale.is_empty() {
                println!("schema files are up to date");
                return Ok(());
            }
            let list: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
            Err(anyhow::anyhow!("out of date: {}", list.join(", ")))
                .context("run `cargo run -- schema print` and commit the result")
        }
    }
}
