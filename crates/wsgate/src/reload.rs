//! Config file reload, the GitOps path: SIGHUP, and with `serve --watch-config` every change of
//! the file's content, re-reads the file given to `serve --config`. Its `[[apis]]` apply to new
//! handshakes at once (`wsgate_gateway::FileApis::reload`); settings that only a restart can
//! change are named in one warning; a file that does not parse or validate changes nothing and
//! is named in one warning. Every reload ends in one log line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wsgate_core::config::{Config, changed_settings};
use wsgate_gateway::{FileApiChanges, FileApis};

use crate::cli::ServerArgs;
use crate::server::apply_args;

/// How often `--watch-config` reads the file.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What a reload reads and where it applies.
pub struct Reload {
    pub path: PathBuf,
    /// The flags that override the file, applied to every version of it as at start.
    pub args: ServerArgs,
    /// The file as the node started with it: settings are compared with it.
    pub started: String,
    pub apis: FileApis,
}

impl Reload {
    /// Re-reads the file and applies its APIs, or keeps everything; logs one line either way.
    fn reload(&self, text: std::io::Result<String>) {
        let text = match text {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(
                    "config reload failed: cannot read {}: {err}; the running config stays",
                    self.path.display()
                );
                return;
            }
        };
        let applied = self.apply(&text);
        self.apis.count(applied.is_ok());
        match applied {
            Ok(changes) => tracing::info!(
                added = changes.added.len(),
                changed = changes.changed.len(),
                removed = changes.removed.len(),
                "config reloaded from {}{}",
                self.path.display(),
                listed(&changes),
            ),
            Err(err) => tracing::warn!("config reload failed: {err:#}; the running config stays"),
        }
    }

    fn apply(&self, text: &str) -> anyhow::Result<FileApiChanges> {
        let mut config = Config::from_toml(text).with_context(|| format!("config {}", self.path.display()))?;
        apply_args(&mut config, &self.args)?;
        let changes = self.apis.reload(config.apis)?;
        let restart: Vec<String> =
            changed_settings(&self.started, text).into_iter().filter(|key| !self.overridden(key)).collect();
        if !restart.is_empty() {
            tracing::warn!("config reload: a restart is needed to apply {}; the APIs are applied", restart.join(", "));
        }
        Ok(changes)
    }

    /// Whether a command-line flag sets `key`, so that the file's value never applies.
    fn overridden(&self, key: &str) -> bool {
        let args = &self.args;
        match key {
            "gateway.ws_listen" => args.ws_listen.is_some(),
            "gateway.wss_listen" => args.wss_listen.is_some(),
            "control.listen" => args.control_listen.is_some(),
            "gateway.data_dir" => args.data_dir.is_some(),
            _ => false,
        }
    }
}

/// `: added /a 1.0.0; removed /b 1.0.0`, or nothing when nothing changed.
fn listed(changes: &FileApiChanges) -> String {
    let parts: Vec<String> = [("added", &changes.added), ("changed", &changes.changed), ("removed", &changes.removed)]
        .into_iter()
        .filter(|(_, apis)| !apis.is_empty())
        .map(|(what, apis)| format!("{what} {}", apis.join(", ")))
        .collect();
    if parts.is_empty() { String::new() } else { format!(": {}", parts.join("; ")) }
}

/// Reloads on SIGHUP and, with `watch`, when the file's content changes, until `shutdown`.
/// Without a config file SIGHUP only says there is nothing to reload (it no longer ends the
/// process, as its default action would). The handler is installed before this returns.
pub fn on_hangup(reload: Option<Reload>, watch: bool, shutdown: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
        tokio::spawn(async move {
            // The content read last, loaded or not: a broken file is reported once, not every
            // second.
            let mut seen = reload.as_ref().map(|r| r.started.clone());
            let mut ticks = tokio::time::interval(WATCH_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let hung_up = tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = hangup.recv() => true,
                    _ = ticks.tick(), if watch => false,
                };
                let Some(reload) = &reload else {
                    tracing::warn!("SIGHUP: no config file to reload (serve was started without --config)");
                    continue;
                };
                // A config file is small: reading it on this thread costs less than handing it off.
                let text = std::fs::read_to_string(&reload.path);
                if !hung_up && text.as_ref().ok() == seen.as_ref() {
                    continue;
                }
                seen = text.as_ref().ok().cloned();
                reload.reload(text);
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (reload, watch, shutdown);
    Ok(())
}
