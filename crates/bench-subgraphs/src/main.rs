//! `bench-subgraphs`: serves the benchmark's four subgraphs, each on its own port, or prints the
//! SDL of one.

use std::net::IpAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bench-subgraphs",
    about = "The gateway benchmark's subgraphs (accounts, inventory, products, reviews)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 4201)]
    accounts: u16,
    #[arg(long, default_value_t = 4202)]
    inventory: u16,
    #[arg(long, default_value_t = 4203)]
    products: u16,
    #[arg(long, default_value_t = 4204)]
    reviews: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Print a subgraph's federation SDL.
    Sdl { name: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Sdl { name }) = &cli.command {
        let sdl = bench_subgraphs::sdl(name)
            .with_context(|| format!("no subgraph {name:?}; one of {:?}", bench_subgraphs::NAMES))?;
        print!("{sdl}");
        return Ok(());
    }
    let ports = [cli.accounts, cli.inventory, cli.products, cli.reviews];
    let mut servers = tokio::task::JoinSet::new();
    for (name, port) in bench_subgraphs::NAMES.into_iter().zip(ports) {
        let app = bench_subgraphs::app(name).context("a known subgraph")?;
        let listener = tokio::net::TcpListener::bind((cli.host, port))
            .await
            .with_context(|| format!("{name}: cannot listen on {}:{port}", cli.host))?;
        println!("{name} listening on http://{}/graphql", listener.local_addr()?);
        servers.spawn(
            async move { axum::serve(listener, app).await.with_context(|| format!("{name} stopped")) },
        );
    }
    tokio::select! {
        Some(ended) = servers.join_next() => ended?,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for ctrl-c"),
    }
}
