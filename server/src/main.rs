//! The `portcullis` binary: read settings, set up logging, run the server.

use std::process::ExitCode;

use portcullis_config::{vars, LogFormat, LogSettings, Settings};
use portcullis_server::logging::{self, LogOutput};
use tracing_subscriber::EnvFilter;

/// Sets up logging: every line is formatted where it is logged and written to standard error
/// by the log writer thread (`portcullis_server::logging`), off the request path.
fn init_tracing(log: &LogSettings) -> std::io::Result<LogOutput> {
    // LOG_LEVEL sets the default; RUST_LOG, when set, refines it per module.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.level.as_str()));
    // Colour only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = LogOutput::start(
        std::io::stderr(),
        logging::DEFAULT_CAPACITY,
        Box::new(|dropped, total| {
            tracing::warn!(
                target: "portcullis::log",
                dropped,
                total,
                "{dropped} log lines were dropped because standard error did not keep up \
                 (portcullis_log_lines_dropped_total)"
            );
        }),
    )?;
    output.install_global();
    if !ansi {
        // The access log formats its lines itself, as this subscriber would (without colour).
        output.install_direct(match log.format {
            LogFormat::Json => logging::LineFormat::Json,
            LogFormat::Text => logging::LineFormat::Text,
        });
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(output.make_writer());
    // The filter is reloadable, so a configuration reload can change LOG_LEVEL.
    match log.format {
        LogFormat::Json => {
            let builder = builder.json().flatten_event(true).with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            logging::install_filter_reload(Box::new(move |filter| {
                handle.reload(filter).map_err(|err| err.to_string())
            }));
        }
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            logging::install_filter_reload(Box::new(move |filter| {
                handle.reload(filter).map_err(|err| err.to_string())
            }));
        }
    }
    Ok(output)
}

/// `portcullis healthcheck`: exits 0 when `/v1/.well-known/live` answers 200 on the configured
/// HTTP address (for container health checks, where no curl is installed). With
/// `PORTCULLIS_TLS_CERT_FILE` set it speaks TLS and trusts exactly that certificate.
fn healthcheck() -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;

    let configured = std::env::var(vars::HTTP_ADDR)
        .ok()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or(portcullis_config::DEFAULT_HTTP_ADDR);
    let ip = match configured.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, configured.port());
    let cert_file = std::env::var_os(vars::TLS_CERT_FILE).filter(|f| !f.is_empty());
    fn live(stream: &mut (impl Read + Write)) -> std::io::Result<bool> {
        stream.write_all(
            b"GET /v1/.well-known/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    }
    let probe = || -> Result<bool, Box<dyn std::error::Error>> {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        match &cert_file {
            None => Ok(live(&mut stream)?),
            Some(cert_file) => {
                let config = portcullis_server::tls::probe_config(std::path::Path::new(cert_file))?;
                let connection = rustls::ClientConnection::new(
                    std::sync::Arc::new(config),
                    rustls::pki_types::ServerName::IpAddress(ip.into()),
                )?;
                Ok(live(&mut rustls::StreamOwned::new(connection, stream))?)
            }
        }
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("portcullis healthcheck: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `portcullis generate-key`: prints a new database key (for `PORTCULLIS_BOOTSTRAP_ADMIN_KEY`),
/// drawn from the OS random source as the server draws its own.
fn generate_key() -> ExitCode {
    match portcullis_auth::api_key::format::generate() {
        Ok(key) => {
            println!("{}", key.expose());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("portcullis: could not draw a key from the OS random source: {err}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("healthcheck") => return healthcheck(),
        Some("generate-key") => return generate_key(),
        _ => {}
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("portcullis: invalid configuration\n{err}");
            return ExitCode::from(2);
        }
    };
    let log_output = match init_tracing(&settings.log) {
        Ok(output) => output,
        Err(err) => {
            eprintln!("portcullis: could not start the log writer thread: {err}");
            return ExitCode::FAILURE;
        }
    };
    for notice in &settings.notices {
        tracing::warn!("{notice}");
    }
    for (name, value) in settings.describe() {
        tracing::info!(setting = name, value = %value, "configuration");
    }
    let system = actix_web::rt::System::new();
    let result = system.block_on(portcullis_server::run(settings));
    // Tasks still pending when `run` returns (the user store's listener, a store call in
    // flight) are dropped with the system, and sqlx's connections return themselves to their
    // pool from their destructors by spawning a task: without a Tokio runtime entered, that
    // panics, twice, and the process aborted (exit 134) on every SIGTERM with the shared
    // store. Entered, the spawned tasks go to the runtime being shut down, which drops them.
    let runtime = system.runtime().tokio_runtime().handle().clone();
    let entered = runtime.enter();
    drop(system);
    drop(entered);
    if let Err(err) = &result {
        tracing::error!("{err:#}");
    }
    // Every queued line is written before the process ends (and before the plain message
    // below, so the two stay in order).
    log_output.stop();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portcullis: {err:#}");
            ExitCode::FAILURE
        }
    }
}
