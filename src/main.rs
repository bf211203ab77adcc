//! The `sluice` command: `sluice serve` runs the server; `sluice frames export` pulls a dataset of
//! frames from one.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use sluice::clock::SystemClock;
use sluice::config::Config;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Video stream ingestion and playback server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML config file (see sluice.example.toml). Unknown keys are errors.
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address, overriding server.listen.
        #[arg(long, env = "SLUICE_LISTEN")]
        listen: Option<SocketAddr>,
        /// Data directory, overriding server.data_dir.
        #[arg(long, env = "SLUICE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// RTSP publish listen address, overriding rtsp.listen.
        #[arg(long, env = "SLUICE_RTSP_LISTEN")]
        rtsp_listen: Option<SocketAddr>,
    },
    /// Frames from a running server.
    Frames {
        #[command(subcommand)]
        command: FramesCommand,
    },
    /// Credentials for `[auth]`.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Print an argon2id hash of a password for `[[auth.users]] password_hash`. The password is
    /// read from standard input (one line), so it stays out of the shell's history.
    HashPassword,
}

#[derive(Subcommand)]
enum FramesCommand {
    /// Export a dataset: one image per interval over a time range, plus manifest.jsonl
    /// (resumable: rerun the same command to finish an interrupted export).
    Export(sluice::frames_cli::ExportArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Frames { command: FramesCommand::Export(args) } => {
            let summary = tokio::runtime::Runtime::new()?
                .block_on(sluice::frames_cli::export(&args))
                .with_context(|| format!("frames export of stream {}", args.stream))?;
            eprintln!(
                "exported {} images to {} ({} already there, {} instants without media, {} errors)",
                summary.written,
                args.out.display(),
                summary.already,
                summary.no_media,
                summary.errors
            );
            Ok(())
        }
        Command::Auth { command: AuthCommand::HashPassword } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(password.len() >= 8, "the password must be at least 8 characters");
            println!("{}", sluice::auth::password::hash(password));
            Ok(())
        }
        Command::Serve { config, listen, data_dir, rtsp_listen } => {
            let mut cfg = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            if let Some(d) = data_dir {
                cfg.server.data_dir = d;
            }
            if let Some(r) = rtsp_listen {
                cfg.rtsp.listen = r;
            }
            cfg.validate()?;
            tokio::runtime::Runtime::new()?.block_on(serve(cfg))
        }
    }
}

/// Raises the open-file soft limit to the hard limit: every stream holds four files open, and
/// every client connection a socket, so the common default of 1,024 is reached by a modest
/// server. Logs the limit in force.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), max) = (limit.current, limit.maximum) else {
        tracing::info!("open-file limit: unlimited");
        return;
    };
    let target = max.unwrap_or(u64::MAX);
    if target > current {
        let raised = rustix::process::Rlimit { current: max, maximum: max };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(from = current, to = target, "open-file limit raised"),
            Err(e) => {
                tracing::warn!(limit = current, error = %e, "could not raise the open-file limit")
            }
        }
    } else {
        tracing::info!(limit = current, "open-file limit");
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    raise_fd_limit();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(cfg.server.listen).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {} (set [server] listen, --listen or SLUICE_LISTEN)",
            cfg.server.listen
        )
    })?;
    let addr = listener.local_addr()?;
    if !cfg.auth.enabled && !addr.ip().is_loopback() {
        tracing::warn!(http = %addr, "AUTHENTICATION IS OFF on a listener beyond loopback: anyone who can reach it may push, watch and delete every stream; set [auth] enabled = true (docs/security.md)");
    }
    let data_dir = cfg.server.data_dir.clone();
    let scheme = if cfg.server.tls_cert.is_some() { "https" } else { "http" };
    let webrtc = cfg.webrtc_udp_addrs().join(", ");
    // Its errors say which listener or directory failed.
    let server = sluice::app::build(cfg, Arc::new(SystemClock), shutdown.clone())?;
    tracing::info!(http = %addr, rtsp = ?server.rtsp_addr, webrtc_udp = %webrtc, data_dir = %data_dir.display(), "sluice is serving");
    let rtsp = match server.rtsp_addr {
        Some(rtsp) => format!(
            "  RTSP publish: ffmpeg -re -i in.mp4 -c copy -f rtsp -rtsp_transport tcp rtsp://{rtsp}/NAME\n"
        ),
        None => "  RTSP publish: off ([rtsp] enabled = false)\n".to_owned(),
    };
    let listeners = format!(
        "  Listening:   {} {addr}; RTSP {}; WebRTC UDP {webrtc}\n  Data:        {}\n",
        scheme.to_uppercase(),
        server.rtsp_addr.map_or("off".to_owned(), |a| a.to_string()),
        data_dir.display()
    );
    eprintln!(
        "\n  Sluice is running.\n{listeners}  Web UI:      {scheme}://{addr}/\n  API:         {scheme}://{addr}/v1/streams\n  Metrics:     {scheme}://{addr}/metrics\n  Push video:  ffmpeg -re -i in.mp4 -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -method PUT {scheme}://{addr}/v1/streams/NAME/media\n{rtsp}  WHIP:        {scheme}://{addr}/v1/streams/NAME/whip\n  Play:        {scheme}://{addr}/v1/streams/NAME/hls/live.m3u8\n"
    );
    tokio::spawn(signal_shutdown(shutdown.clone()));
    sluice::app::run(listener, server).await?;
    Ok(())
}

async fn signal_shutdown(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: telling producers, draining requests");
    shutdown.cancel();
}
