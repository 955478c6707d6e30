//! JSON lines: one message per entry (its bundle line, or its event in the sink's format), appended to a file (acknowledged once fsynced) or written to
//! standard output (acknowledged once flushed to the pipe).

use std::fmt;
use std::path::{Path, PathBuf};

use ledger_core::Entry;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::sink::{Position, SinkConfigError, SinkError};

enum Target {
    File {
        path: PathBuf,
        file: Option<tokio::fs::File>,
    },
    Stdout(tokio::io::Stdout),
}

/// A file or standard output.
pub struct LinesSink {
    target: Target,
    sent: Option<Position>,
}

impl fmt::Debug for LinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::File { path, .. } => write!(f, "LinesSink(file:{})", path.display()),
            Target::Stdout(_) => f.write_str("LinesSink(stdout)"),
        }
    }
}

impl LinesSink {
    /// Opens (creates) the file now, so that a path that cannot be written is a usage error.
    pub(crate) async fn file(path: &Path) -> Result<Self, SinkConfigError> {
        let file = open_for_append(path)
            .await
            .map_err(|e| SinkConfigError::file(path, e))?;
        Ok(LinesSink {
            target: Target::File {
                path: path.to_path_buf(),
                file: Some(file),
            },
            sent: None,
        })
    }

    pub(crate) fn stdout() -> Self {
        LinesSink {
            target: Target::Stdout(tokio::io::stdout()),
            sent: None,
        }
    }

    /// Writes `messages`, one line each (the messages of `entries`).
    pub(crate) async fn send(&mut self, entries: &[Entry], messages: &[String]) -> Result<(), SinkError> {
        let mut buffer = Vec::with_capacity(messages.iter().map(|m| m.len() + 1).sum());
        for message in messages {
            buffer.extend_from_slice(message.as_bytes());
            buffer.push(b'\n');
        }
        match &mut self.target {
            Target::File { path, file } => {
                let io_error = |error| SinkError::Io {
                    target: format!("file:{}", path.display()),
                    error,
                };
                if file.is_none() {
                    *file = Some(open_for_append(path).await.map_err(io_error)?);
                }
                let open = file.as_mut().expect("opened above");
                open.write_all(&buffer).await.map_err(io_error)?;
                // Delivered means on disk: the cursor moves only past fsynced lines.
                open.sync_data().await.map_err(io_error)?;
            }
            Target::Stdout(out) => {
                out.write_all(&buffer).await.map_err(SinkError::Stdout)?;
                out.flush().await.map_err(SinkError::Stdout)?;
            }
        }
        self.sent = entries.last().map(Position::of);
        Ok(())
    }

    pub(crate) fn delivered(&mut self) -> Option<Position> {
        self.sent.take()
    }

    pub(crate) fn reset(&mut self) {
        self.sent = None;
        // Reopen after a failure: the next write starts on a fresh line again.
        if let Target::File { file, .. } = &mut self.target {
            *file = None;
        }
    }
}

/// Opens `path` for appending. A last line cut short (a crash in the middle of a write) is ended first,
/// so the next entry starts on a line of its own and the cut one is just an unreadable line.
async fn open_for_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .await?;
    let length = file.metadata().await?.len();
    if length > 0 {
        file.seek(std::io::SeekFrom::Start(length - 1)).await?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last).await?;
        if last[0] != b'\n' {
            file.write_all(b"\n").await?;
            file.sync_data().await?;
        }
    }
    Ok(file)
}
