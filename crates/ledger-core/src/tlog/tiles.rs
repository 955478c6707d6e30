//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, where N is written in
//! groups of three digits, all but the last prefixed with `x` (1234067 → `x001/x234/067`).
//!
//! `tlog_tiles` parses the Go checksum database's form, which also names the height (`tile/8/0/…`,
//! `tile/8/data/…`); C2SP fixes the height at 8 and drops it. This maps one onto the other and lets the
//! crate do the strict parsing (it refuses every non-canonical spelling by re-encoding the result).

use tlog_tiles::Tile;

use super::{TILE_HEIGHT, TILE_WIDTH};

/// A parsed tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// Tile level; None for an entry bundle (`tile/entries/…`).
    pub level: Option<u8>,
    /// The tile's index within its level, from 0 (the `N` of the path).
    pub index: u64,
    /// Hashes (or entries) in the tile: 256 for a full tile, 1 to 255 for a partial one (`.p/<W>`).
    pub width: usize,
}

/// A path that is not a canonical C2SP tile path; holds the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a C2SP tile path: {0:?}")]
pub struct TilePathError(pub String);

/// The highest tile level a tree of up to 2^64 leaves has.
const MAX_LEVEL: u8 = 7;

impl TilePath {
    /// Parses a path that starts with `tile/`.
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let bad = || TilePathError(path.to_string());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        // The crate panics on a width of 0 or a level of 64 and more: refuse those spellings first.
        let (level, _) = rest.split_once('/').ok_or_else(bad)?;
        let level_ok =
            level == "entries" || (level.len() == 1 && (b'0'..=b'0' + MAX_LEVEL).contains(&level.as_bytes()[0]));
        let width_ok = rest.split_once(".p/").is_none_or(|(_, w)| !w.starts_with('0'));
        if !level_ok || !width_ok {
            return Err(bad());
        }
        let go_path = match rest.strip_prefix("entries/") {
            Some(n) => format!("tile/{TILE_HEIGHT}/data/{n}"),
            None => format!("tile/{TILE_HEIGHT}/{rest}"),
        };
        let tile = Tile::from_path(&go_path).map_err(|_| bad())?;
        let width = tile.width() as usize;
        Ok(TilePath {
            level: (!tile.is_data()).then_some(tile.level()),
            index: tile.level_index(),
            width,
        })
    }

    /// The path, as C2SP writes it.
    pub fn to_path(&self) -> String {
        let tile = Tile::new(
            TILE_HEIGHT,
            self.level.unwrap_or(0),
            self.index,
            self.width as u32,
            self.level.is_none(),
        );
        let go_path = tile.path();
        let rest = go_path
            .strip_prefix(&format!("tile/{TILE_HEIGHT}/"))
            .expect("the crate writes the height first");
        match rest.strip_prefix("data/") {
            Some(n) => format!("tile/entries/{n}"),
            None => format!("tile/{rest}"),
        }
    }

    /// Whether the path names a full tile (no `.p/<W>`).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2sp_paths_parse_and_print_back() {
        for (path, level, index, width) in [
            ("tile/0/000", Some(0), 0, 256),
            ("tile/0/x001/x234/067", Some(0), 1_234_067, 256),
            ("tile/1/001.p/5", Some(1), 1, 5),
            ("tile/entries/000.p/1", None, 0, 1),
            ("tile/entries/x001/000", None, 1000, 256),
        ] {
            let parsed = TilePath::parse(path).unwrap();
            assert_eq!(parsed, TilePath { level, index, width }, "{path}");
            assert_eq!(parsed.to_path(), path);
        }
    }

    #[test]
    fn non_canonical_and_foreign_paths_are_refused() {
        for path in [
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/05",
            "tile/8/0/000",
            "tile/data/000",
            "tile/9/000",
            "tile/-1/000",
            "tile/0/000/",
            "tiles/0/000",
            "tile/entries/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(TilePath::parse(path).is_err(), "{path} was accepted");
        }
    }
}
