//! A SIEM's copy back into an export bundle, so that `docketops verify --bundle` checks it offline.
//!
//! The copy is one or more files of received lines, in any order and with duplicates (delivery is
//! at-least-once): JSON lines as the file sink writes them, syslog lines (the entry is the JSON object
//! at the end of the line, with or without the syslog header before it), HEC events (the entry is
//! the `event` member), and in each of these the `ocsf` and `ecs` formats, whose events carry the entry's
//! line as a JSON string (`unmapped.docketops.entry`, `docketops.entry`): it is decoded, and what the
//! event maps besides is ignored (it is derived from the entry and not signed). Lines holding no entry
//! are skipped. Copies are deduplicated by entry id, ordered
//! by seq and must cover seq 1 to the highest without a gap, since a bundle holds the whole ledger up
//! to its head. The entries are written byte for byte as received (decoded from their string in OCSF and
//! ECS events); the header is built from them
//! (the head is the last entry's chain hash, the keys those the genesis and rotation entries introduce).
//!
//! The verifier then checks every hash, link and signature. What it cannot show from a copy: entries
//! missing after the last one received (as for any bundle without an independent head).
//!
//! Memory holds an index of the entries (position, id and a digest each), not the entries themselves.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ledger_core::bundle::{self, BUNDLE_FORMAT, BundleHead, BundleHeader};
use ledger_core::entry::{KIND_INITIALIZED, KIND_KEY_ROTATED};
use ledger_core::{Digest, Entry, PublicKeyInfo};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Longest line read: the largest entry plus room for a syslog header or an HEC wrapper. Longer lines
/// are skipped without being held whole.
const MAX_LINE_BYTES: u64 = ledger_core::entry::MAX_PAYLOAD_BYTES as u64 + 96 * 1024;

/// What [`build_bundle`] found and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySummary {
    /// Entries written (seq 1 to the head).
    pub entries: u64,
    /// Further copies of entries already seen, dropped.
    pub duplicates: u64,
    /// Lines that hold no readable entry (other messages, a line cut short).
    pub skipped_lines: u64,
    /// The head the bundle's header names: the last entry's seq and chain hash.
    pub head: Option<BundleHead>,
}

/// Why no bundle could be built from a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A file of the copy cannot be opened or read.
    #[error("reading {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        error: std::io::Error,
    },
    /// Creating, writing or syncing the bundle failed.
    #[error("writing the bundle: {0}")]
    Write(std::io::Error),
    /// No line of the copy holds an entry.
    #[error("the copy holds no ledger entry")]
    Empty,
    /// Entries between seq 1 and the highest received are absent.
    #[error("the copy is incomplete: {count} entries missing (seq {})", list(sample, *count))]
    Missing {
        /// How many seqs are missing.
        count: u64,
        /// The first missing seqs, at most 10.
        sample: Vec<u64>,
    },
    /// Two copies disagree: different entries at one seq, or one entry id at two seqs.
    #[error("the copy holds two different entries {detail}: it is not one ledger, or a copy was altered")]
    Conflict {
        /// Where: the seq and the two ids, or the id and the two seqs.
        detail: String,
    },
    /// The highest entry's chain hash does not parse, so the header cannot name the head.
    #[error("the last entry (seq {seq}) has no valid chain_hash, so the bundle's head cannot be written")]
    BadHead {
        /// The highest seq received.
        seq: u64,
    },
}

impl CopyError {
    /// The copy itself is not a complete, consistent ledger (as opposed to a file that cannot be read).
    pub fn is_invalid_copy(&self) -> bool {
        matches!(
            self,
            CopyError::Empty | CopyError::Missing { .. } | CopyError::Conflict { .. } | CopyError::BadHead { .. }
        )
    }
}

fn list(sample: &[u64], count: u64) -> String {
    let shown: Vec<String> = sample.iter().map(u64::to_string).collect();
    let more = if count > sample.len() as u64 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// Where one entry's text sits in the copy.
struct Located {
    source: usize,
    offset: u64,
    length: usize,
    /// The text is a JSON string holding the entry's line (an OCSF or ECS event's `entry` member).
    quoted: bool,
    id: String,
    /// Of the entry as re-serialized: two copies are the same entry when these agree.
    fingerprint: Digest,
}

#[derive(Default)]
struct Index {
    by_seq: BTreeMap<u64, Located>,
    seq_of_id: HashMap<String, u64>,
    keys: BTreeMap<u64, PublicKeyInfo>,
    duplicates: u64,
    skipped_lines: u64,
}

impl Index {
    fn add(&mut self, source: usize, offset: u64, found: Found) -> Result<(), CopyError> {
        let Found {
            start: _,
            length,
            quoted,
            entry,
        } = found;
        if let Some(&seq) = self.seq_of_id.get(&entry.id)
            && seq != entry.seq
        {
            return Err(CopyError::Conflict {
                detail: format!("with id {} (at seq {seq} and at seq {})", entry.id, entry.seq),
            });
        }
        let fingerprint = Digest::of(bundle::entry_line(&entry).as_bytes());
        if let Some(existing) = self.by_seq.get(&entry.seq) {
            if existing.fingerprint == fingerprint {
                self.duplicates += 1;
                return Ok(());
            }
            return Err(CopyError::Conflict {
                detail: format!("at seq {} ({} and {})", entry.seq, existing.id, entry.id),
            });
        }
        if (entry.kind == KIND_INITIALIZED || entry.kind == KIND_KEY_ROTATED)
            && let Some(key) = introduced_key(&entry)
        {
            self.keys.insert(entry.seq, key);
        }
        self.seq_of_id.insert(entry.id.clone(), entry.seq);
        self.by_seq.insert(
            entry.seq,
            Located {
                source,
                offset,
                length,
                quoted,
                id: entry.id,
                fingerprint,
            },
        );
        Ok(())
    }
}

/// The key a genesis or rotation entry introduces (informational, for the bundle header).
fn introduced_key(entry: &Entry) -> Option<PublicKeyInfo> {
    let payload = entry.payload_value().ok()?;
    let text = |name: &str| payload.get(name)?.as_str().map(str::to_string);
    Some(PublicKeyInfo {
        key_id: text("key_id")?,
        algorithm: text("algorithm")?,
        public_key: text("public_key")?,
    })
}

/// Reads the copy in `sources` and writes the bundle to `out`.
pub fn build_bundle(sources: &[PathBuf], out: &mut impl Write) -> Result<CopySummary, CopyError> {
    let mut index = Index::default();
    let mut files = Vec::with_capacity(sources.len());
    for (source, path) in sources.iter().enumerate() {
        let read_error = |error| CopyError::Read {
            path: path.clone(),
            error,
        };
        let file = File::open(path).map_err(read_error)?;
        scan(&file, source, &mut index).map_err(|e| match e {
            ScanError::Io(e) => read_error(e),
            ScanError::Copy(e) => e,
        })?;
        files.push((file, path.clone()));
    }

    let head_seq = *index.by_seq.keys().next_back().ok_or(CopyError::Empty)?;
    let missing_count = head_seq - index.by_seq.len() as u64;
    if missing_count > 0 {
        let mut sample = Vec::new();
        let mut expected = 1;
        for &seq in index.by_seq.keys() {
            while expected < seq && sample.len() < 10 {
                sample.push(expected);
                expected += 1;
            }
            expected = seq + 1;
        }
        return Err(CopyError::Missing {
            count: missing_count,
            sample,
        });
    }

    let read = |located: &Located| -> Result<String, CopyError> {
        let (file, path) = &files[located.source];
        let mut bytes = vec![0u8; located.length];
        file.read_exact_at(&mut bytes, located.offset)
            .and_then(|()| String::from_utf8(bytes).map_err(std::io::Error::other))
            .and_then(|text| match located.quoted {
                true => serde_json::from_str::<String>(&text).map_err(std::io::Error::other),
                false => Ok(text),
            })
            .map_err(|error| CopyError::Read {
                path: path.clone(),
                error,
            })
    };
    let last = read(&index.by_seq[&head_seq])?;
    let chain_hash = bundle::parse_entry_line(&last)
        .ok()
        .and_then(|entry| entry.chain_hash.parse::<Digest>().ok())
        .ok_or(CopyError::BadHead { seq: head_seq })?;
    let head = BundleHead {
        seq: head_seq,
        chain_hash,
    };
    let header = BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        created_at: ledger_core::entry::format_timestamp(time::OffsetDateTime::now_utc()),
        entries: head_seq,
        head: Some(head.clone()),
        keys: index.keys.values().cloned().collect(),
    };
    let mut write_line = |line: &str| -> Result<(), CopyError> {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(CopyError::Write)
    };
    write_line(&header.to_line())?;
    for located in index.by_seq.values() {
        write_line(&read(located)?)?;
    }
    out.flush().map_err(CopyError::Write)?;
    Ok(CopySummary {
        entries: head_seq,
        duplicates: index.duplicates,
        skipped_lines: index.skipped_lines,
        head: Some(head),
    })
}

enum ScanError {
    Io(std::io::Error),
    Copy(CopyError),
}

/// Indexes every entry of one file.
fn scan(file: &File, source: usize, index: &mut Index) -> Result<(), ScanError> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buffer = Vec::new();
    let mut offset = 0u64;
    loop {
        buffer.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(ScanError::Io)? as u64;
        if read == 0 {
            return Ok(());
        }
        let line_start = offset;
        offset += read;
        if buffer.last() != Some(&b'\n') && read > MAX_LINE_BYTES {
            // Too long to be an entry: skip to the end of the line without keeping it.
            loop {
                buffer.clear();
                let more = (&mut reader)
                    .take(MAX_LINE_BYTES)
                    .read_until(b'\n', &mut buffer)
                    .map_err(ScanError::Io)? as u64;
                offset += more;
                if more == 0 || buffer.last() == Some(&b'\n') {
                    break;
                }
            }
            index.skipped_lines += 1;
            continue;
        }
        match std::str::from_utf8(&buffer).ok().and_then(find_entry) {
            Some(found) if found.entry.seq > 0 => index
                .add(source, line_start + found.start as u64, found)
                .map_err(ScanError::Copy)?,
            _ => index.skipped_lines += 1,
        }
    }
}

#[derive(Deserialize)]
struct HecEvent<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
}

/// The ledger's fields of an OCSF or ECS event: the entry's line is a string in `entry`.
#[derive(Deserialize)]
struct LedgerFields<'a> {
    #[serde(borrow)]
    entry: &'a RawValue,
}

#[derive(Deserialize)]
struct Unmapped<'a> {
    #[serde(borrow)]
    docketops: LedgerFields<'a>,
}

/// An OCSF event (`unmapped.docketops.entry`) or an ECS document (`docketops.entry`).
#[derive(Deserialize)]
struct SchemaEvent<'a> {
    #[serde(borrow, default)]
    unmapped: Option<Unmapped<'a>>,
    #[serde(borrow, default)]
    docketops: Option<LedgerFields<'a>>,
}

/// An entry found in a received line: the byte range of its text in the line, and whether that text is
/// a JSON string holding the entry's line (OCSF, ECS) rather than the line itself.
struct Found {
    start: usize,
    length: usize,
    quoted: bool,
    entry: Entry,
}

/// The entry `text` (a JSON value starting at byte `start` of its line) is or carries: an entry line, or
/// an OCSF or ECS event with the entry's line in a string.
fn entry_in(text: &str, start: usize) -> Option<Found> {
    if let Ok(entry) = bundle::parse_entry_line(text) {
        return Some(Found {
            start,
            length: text.len(),
            quoted: false,
            entry,
        });
    }
    let event = serde_json::from_str::<SchemaEvent<'_>>(text).ok()?;
    let fields = event.unmapped.map(|u| u.docketops).or(event.docketops)?;
    let raw = fields.entry.get();
    let line = serde_json::from_str::<String>(raw).ok()?;
    let entry = bundle::parse_entry_line(&line).ok()?;
    Some(Found {
        start: start + (raw.as_ptr() as usize - text.as_ptr() as usize),
        length: raw.len(),
        quoted: true,
        entry,
    })
}

/// The entry in a received line, with the byte range of its text: the line itself, the JSON object
/// after a syslog header, an OCSF or ECS event, or an HEC event's `event` (of any of these formats).
fn find_entry(line: &str) -> Option<Found> {
    let line = line.trim_end_matches(['\n', '\r', ' ', '\t']);
    // The JSON is the last thing on a syslog line; try the first few objects that start there.
    for (start, _) in line.match_indices("{\"").take(4) {
        let candidate = &line[start..];
        if let Some(found) = entry_in(candidate, start) {
            return Some(found);
        }
        if let Ok(wrapper) = serde_json::from_str::<HecEvent<'_>>(candidate) {
            let inner = wrapper.event.get();
            return entry_in(inner, inner.as_ptr() as usize - line.as_ptr() as usize);
        }
    }
    None
}

/// Convenience for callers with a path to write to.
pub fn build_bundle_file(sources: &[PathBuf], out: &Path) -> Result<CopySummary, CopyError> {
    let file = File::create(out).map_err(CopyError::Write)?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let summary = build_bundle(sources, &mut writer)?;
    writer
        .into_inner()
        .map_err(|e| CopyError::Write(e.into_error()))?
        .sync_all()
        .map_err(CopyError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_in_each_form_a_siem_keeps() {
        let json = r#"{"seq":3,"id":"evt_3","timestamp":"t","kind":"ledger.note","actor":"a","action_id":null,"payload":{"b":{"x":1},"a":2},"prev_chain_hash":"p","event_hash":"e","chain_hash":"c","key_id":"k","signature":"s"}"#;
        let syslog = format!(
            r#"<110>1 2026-01-01T00:00:00.000000Z gw docketops - ledger.note [docketops@32473 seq="3" id="evt_3"] {json}"#
        );
        let traditional = format!("Jan  1 00:00:00 gw docketops {json}\r\n");
        let hec = format!(
            r#"{{"time":1.5,"host":"gw","source":"docketops","sourcetype":"docketops:ledger","event":{json}}}"#
        );
        for line in [json.to_string(), syslog, traditional, hec] {
            let found = find_entry(&line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(
                &line[found.start..found.start + found.length],
                json,
                "the exact received text"
            );
            assert!(!found.quoted);
            assert_eq!(found.entry.seq, 3);
            assert_eq!(found.entry.payload, r#"{"b":{"x":1},"a":2}"#);
        }
        let quoted = serde_json::Value::from(json).to_string();
        let ocsf = format!(r#"{{"class_uid":6003,"unmapped":{{"docketops":{{"seq":3,"entry":{quoted}}}}},"time":1}}"#);
        let ecs = format!(r#"{{"@timestamp":"t","docketops":{{"entry":{quoted},"seq":3}}}}"#);
        let hec_ocsf = format!(r#"{{"time":1.5,"host":"gw","event":{ocsf}}}"#);
        let syslog_ecs = format!(r#"<110>1 - gw docketops - ledger.note [docketops@32473 seq="3"] {ecs}"#);
        for line in [ocsf, ecs, hec_ocsf, syslog_ecs] {
            let found = find_entry(&line).unwrap_or_else(|| panic!("{line}"));
            assert!(found.quoted, "{line}");
            assert_eq!(
                &line[found.start..found.start + found.length],
                quoted,
                "the received string"
            );
            assert_eq!(found.entry.payload, r#"{"b":{"x":1},"a":2}"#);
        }
        for noise in [
            "",
            "hello",
            "{\"seq\":3}",
            "<13>1 - - - - - {\"truncated\":",
            "[1,2]",
            "{\"docketops\":{\"entry\":\"not an entry\"}}",
            "{\"unmapped\":{\"docketops\":{\"entry\":{\"seq\":3}}}}",
        ] {
            assert!(find_entry(noise).is_none(), "{noise}");
        }
    }
}
