//! `example-mcp-client <mcp-url> [--call TOOL [--arg K=V]…]… [--headless] [--store FILE]`: see
//! `--help` and `examples/mcp-client/README.md`.

use std::process::ExitCode;

use example_mcp_client::cli::{self, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let command = cli::parse(std::env::args().skip(1), |name| std::env::var(name).ok());
    let args = match command {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("example-mcp-client: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    // The library's events (discovery, registration, authorization, refresh; never a secret).
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("mcp_auth_client=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();

    match example_mcp_client::run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            example_mcp_client::report(error.as_ref());
            ExitCode::FAILURE
        }
    }
}
