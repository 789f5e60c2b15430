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

const USAGE: &str = "usage: gregor [--config PATH] | gregor healthcheck [HOST:PORT]\n\nOptions use Kafka's broker config names; set them in the TOML file or as\nGREGOR_<NAME> environment variables (GREGOR_LOG_DIRS=/var/lib/gregor).";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("healthcheck") {
        let addr = args.nth(1).unwrap_or_else(|| "127.0.0.1:9092".into());
        return healthcheck(&addr);
    }
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
    tracing::info!(listener = %local, advertised = %format!("{}:{}", broker.config().advertised.host, broker.config().advertised.port),
        data_dir = %broker.config().data_dir.display(), cluster_id = %broker.cluster_id, "gregor started");
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

/// `gregor healthcheck [HOST:PORT]`: exit 0 when a broker there answers an
/// ApiVersions v0 request within 5 s (used by the container HEALTHCHECK, so
/// the image needs no shell or curl).
fn healthcheck(addr: &str) -> ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    let check = || -> std::io::Result<()> {
        let sa = std::net::ToSocketAddrs::to_socket_addrs(addr)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        // size, api key 18, version 0, correlation id 1, client id "healthcheck"
        let mut req = vec![0, 0, 0, 21, 0, 18, 0, 0, 0, 0, 0, 1, 0, 11];
        req.extend_from_slice(b"healthcheck");
        s.write_all(&req)?;
        let mut head = [0u8; 10];
        s.read_exact(&mut head)?;
        let (corr, err) = (
            i32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            i16::from_be_bytes([head[8], head[9]]),
        );
        if corr != 1 || err != 0 {
            return Err(std::io::Error::other(format!(
                "unexpected answer (correlation {corr}, error {err})"
            )));
        }
        Ok(())
    };
    match check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor healthcheck {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
