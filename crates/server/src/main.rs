//! `gregor`: a Kafka-wire-compatible broker.
//!
//! Usage: `gregor [--config PATH]`. Without `--config`, `config/gregor.toml`
//! is read when it exists. Environment variables `GREGOR_<NAME>` override
//! the file. Logs go to stderr, filtered by `RUST_LOG` (default `info`).
//! SIGTERM or SIGINT: stop accepting, answer in-flight requests, flush, exit 0.

mod settings;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use gregor_broker::clock::SystemClock;
use gregor_broker::Broker;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: gregor [--config PATH]\n\nOptions use Kafka's broker config names; set them in the TOML file or as\nGREGOR_<NAME> environment variables (GREGOR_LOG_DIRS=/var/lib/gregor).";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = std::env::args().skip(1);
    let mut config_file: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => config_file = Some(PathBuf::from(p)),
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if config_file.is_none() {
        let default = PathBuf::from("config/gregor.toml");
        if default.exists() {
            config_file = Some(default);
        }
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let map = match settings::load(config_file.as_deref(), &env) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gregor: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics_addr = match settings::metrics_listener(&map) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gregor: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, advertised_set) = match settings::broker_config(&map) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gregor: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gregor: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, advertised_set, metrics_addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gregor stopped with an error");
            eprintln!("gregor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    mut config: gregor_broker::BrokerConfig,
    advertised_set: bool,
    metrics_addr: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let bind = format!("{}:{}", config.listener.host, config.listener.port);
    let listener = TcpListener::bind(&bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let local = listener.local_addr()?;
    config.listener.port = local.port();
    if !advertised_set {
        config.advertised.port = local.port();
        if config.advertised.host == "0.0.0.0" || config.advertised.host == "::" {
            config.advertised.host = "localhost".into();
        }
    }
    let broker = Broker::open(config, Arc::new(SystemClock))?;
    tracing::info!(listener = %local, advertised = %format!("{}:{}", broker.config.advertised.host, broker.config.advertised.port),
        data_dir = %broker.config.data_dir.display(), cluster_id = %broker.cluster_id, "gregor started");
    let metrics = match metrics_addr {
        Some(a) => {
            let m = TcpListener::bind(&a)
                .await
                .map_err(|e| format!("cannot serve metrics on {a}: {e}"))?;
            let addr = m.local_addr()?;
            tracing::info!(%addr, "serving /metrics");
            println!("gregor metrics on {addr}");
            Some(m)
        }
        None => None,
    };
    println!("gregor listening on {local}");
    gregor_broker::server::run(broker, listener, metrics, shutdown_signal()).await?;
    tracing::info!("gregor stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => tracing::info!("SIGTERM received"),
                _ = i.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
