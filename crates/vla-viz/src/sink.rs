//! Where a recording goes: a file, a spawned viewer, a running viewer, or nowhere.

use std::path::PathBuf;

use rerun::{RecordingStream, RecordingStreamBuilder};

use crate::{VizError, APP_ID};

/// The `--rrd FILE` / `--spawn` / `--connect ADDR` choice of the commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VizSink {
    /// No recording.
    #[default]
    None,
    /// Write an `.rrd` file.
    Rrd(PathBuf),
    /// Start a local `rerun` viewer (must be on PATH) and stream to it.
    Spawn,
    /// Stream to a running viewer, `host:port` or `rerun+http://host:port/proxy`.
    Connect(String),
}

impl VizSink {
    /// Picks the sink from the three command-line flags (file wins, then
    /// connect, then spawn).
    pub fn from_flags(rrd: Option<PathBuf>, spawn: bool, connect: Option<String>) -> Self {
        match (rrd, connect, spawn) {
            (Some(path), _, _) => Self::Rrd(path),
            (None, Some(addr), _) => Self::Connect(addr),
            (None, None, true) => Self::Spawn,
            (None, None, false) => Self::None,
        }
    }

    /// The proxy URL for a `--connect` address.
    pub fn proxy_url(addr: &str) -> Result<String, VizError> {
        if addr.starts_with("rerun+http://") || addr.starts_with("rerun+https://") {
            return Ok(addr.to_string());
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| VizError::Address(addr.to_string()))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(VizError::Address(addr.to_string()));
        }
        Ok(format!("rerun+http://{host}:{port}/proxy"))
    }

    /// Opens the stream; `None` for [`VizSink::None`].
    pub(crate) fn open(&self, recording_name: &str) -> Result<Option<RecordingStream>, VizError> {
        let builder = RecordingStreamBuilder::new(APP_ID)
            .recording_name(recording_name)
            .enabled(true);
        Ok(match self {
            Self::None => None,
            Self::Rrd(path) => Some(builder.save(path)?),
            Self::Spawn => Some(builder.spawn()?),
            Self::Connect(addr) => Some(builder.connect_grpc_opts(Self::proxy_url(addr)?)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_one_sink() {
        assert_eq!(VizSink::from_flags(None, false, None), VizSink::None);
        assert_eq!(VizSink::from_flags(None, true, None), VizSink::Spawn);
        assert_eq!(
            VizSink::from_flags(Some("a.rrd".into()), true, Some("h:1".into())),
            VizSink::Rrd("a.rrd".into())
        );
    }

    #[test]
    fn connect_addresses() {
        assert_eq!(
            VizSink::proxy_url("127.0.0.1:9876").unwrap(),
            "rerun+http://127.0.0.1:9876/proxy"
        );
        assert!(VizSink::proxy_url("nonsense").is_err());
        assert!(VizSink::proxy_url("host:notaport").is_err());
    }
}
