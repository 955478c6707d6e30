package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8                   // C2SP tlog-tiles: 2^8 = 256 hashes or entries a tile
	tileWidth  = 1 << tileHeight     // a full tile
	leafSize   = 32                  // the leaf data of this log: the 32 raw bytes of an entry's chain_hash
	maxBody    = 16 << 20            // no response the oracle reads is anywhere near this
	workers    = 16                  // concurrent requests; a local gateway answers tiles in well under a millisecond
	pageLimit  = 100                 // checkpoints asked for per page
	maxPages   = 1 << 20 / pageLimit // a listing longer than a million checkpoints is a paging bug
)

// connError is a transport failure or a refused credential: the oracle could not ask, so it did not check
// (exit 2, not 1).
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// statusError is an HTTP answer other than 200 (and other than 401/403, which are connErrors).
type statusError struct {
	path string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.path, e.code, e.body)
}

// client does the oracle's GETs against the gateway.
type client struct {
	base     string // the -url, without a trailing slash
	token    string
	hc       *http.Client
	requests int64 // atomic; reported per check group
}

func newClient(base, token string, timeout time.Duration) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers // keep the parallel tile fetches on warm connections
	return &client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		hc:    &http.Client{Transport: tr, Timeout: timeout},
	}
}

// get fetches path (which starts with "/") and returns the body of a 200 answer.
func (c *client) get(path string) ([]byte, http.Header, error) {
	atomic.AddInt64(&c.requests, 1)
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, nil, &connError{err}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, &connError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, &connError{fmt.Errorf("GET %s: reading the body: %v", path, err)}
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("GET %s: body longer than %d bytes", path, maxBody)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, resp.Header, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, nil, &connError{fmt.Errorf("GET %s: HTTP %d (is -token right?)", path, resp.StatusCode)}
	}
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	return nil, nil, &statusError{path, resp.StatusCode, snippet}
}

// getJSON fetches path, requires each of the named fields to be present and not null, and decodes into v.
func (c *client) getJSON(path string, v interface{}, required ...string) error {
	body, _, err := c.get(path)
	if err != nil {
		return err
	}
	return decodeJSON(path, body, v, required...)
}

func decodeJSON(what string, body []byte, v interface{}, required ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return fmt.Errorf("%s: not a JSON object: %v", what, err)
	}
	for _, name := range required {
		if raw, ok := fields[name]; !ok || string(raw) == "null" {
			return fmt.Errorf("%s: field %q missing or null", what, name)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// c2spTilePath maps a Go tile (height 8) to its C2SP tlog-tiles path: Go's tile/8/L/N[.p/W] is C2SP's
// tile/L/N[.p/W] (C2SP has no height element) and Go's data tile tile/8/data/N is C2SP's entry bundle
// tile/entries/N. N's x001/x234/067 encoding is the same in both.
func c2spTilePath(t tlog.Tile) string {
	if t.H != tileHeight {
		panic(fmt.Sprintf("c2spTilePath: height %d, C2SP tiles have height %d", t.H, tileHeight))
	}
	rest := strings.TrimPrefix(t.Path(), "tile/8/")
	if t.L == -1 {
		rest = "entries/" + strings.TrimPrefix(rest, "data/")
	}
	return "tile/" + rest
}

// parseC2SPTilePath is c2spTilePath's inverse, through Go's own (strict, canonical-only) ParseTilePath;
// the self-test server uses it.
func parseC2SPTilePath(path string) (tlog.Tile, error) {
	rest := strings.TrimPrefix(path, "tile/")
	switch {
	case rest == path || strings.HasPrefix(rest, "data/"):
		return tlog.Tile{}, fmt.Errorf("malformed tile path %q", path)
	case strings.HasPrefix(rest, "entries/"):
		rest = "data/" + strings.TrimPrefix(rest, "entries/")
	}
	t, err := tlog.ParseTilePath("tile/8/" + rest)
	if err != nil {
		return tlog.Tile{}, err
	}
	return t, nil
}

// fetchTile GETs tile t. C2SP lets a log delete a partial tile once the full one exists, and a client
// then reads the full tile's first W hashes (entries) instead; tiles are immutable, so the prefix is the
// same data. fellBack says that happened.
func (c *client) fetchTile(t tlog.Tile) (data []byte, fellBack bool, err error) {
	data, _, err = c.get("/" + c2spTilePath(t))
	var se *statusError
	if err == nil || t.W == tileWidth || !errors.As(err, &se) || se.code != http.StatusNotFound {
		return data, false, err
	}
	full := t
	full.W = tileWidth
	data, _, err2 := c.get("/" + c2spTilePath(full))
	if err2 != nil {
		return nil, false, fmt.Errorf("%v; the full tile neither: %w", err, err2)
	}
	if t.L == -1 {
		// An entry bundle's first W entries: walk W length prefixes.
		off := 0
		for i := 0; i < t.W && off+2 <= len(data); i++ {
			off += 2 + int(binary.BigEndian.Uint16(data[off:]))
		}
		if off > len(data) {
			off = len(data)
		}
		return data[:off], true, nil
	}
	if len(data) > t.W*tlog.HashSize {
		data = data[:t.W*tlog.HashSize]
	}
	return data, true, nil
}

// tileReader is the tlog.TileReader behind tlog.TileHashReader: it fetches C2SP hash tiles for the tree
// of size n. Go checks the right-edge tiles of a batch against the tree hash and means to check every
// other tile against the hash its parent holds for it, but that loop starts at len(stx) (the number of
// subtree hashes of the root) instead of at the number of distinct tiles those occupy, so the first few
// other tiles of a batch go unchecked whenever n has more 1 bits than edge tiles (n = 1000 does; x/mod
// v0.7.0, and upstream still). ReadTiles therefore checks every parent link itself (checkParentLinks).
// It keeps the authenticated tiles of level 1 and up (SaveTiles) because every batch needs them again.
type tileReader struct {
	c         *client
	n         int64 // the tree size the tiles are read for
	mu        sync.Mutex
	saved     map[tlog.Tile][]byte
	fetched   int64 // atomic
	fallbacks int64 // atomic: partial tiles read as a prefix of the full tile
}

func newTileReader(c *client, n int64) *tileReader {
	return &tileReader{c: c, n: n, saved: make(map[tlog.Tile][]byte)}
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	err := parallel(len(tiles), func(i int) error {
		t := tiles[i]
		r.mu.Lock()
		d, ok := r.saved[t]
		r.mu.Unlock()
		if ok {
			data[i] = d
			return nil
		}
		d, fellBack, err := r.c.fetchTile(t)
		if err != nil {
			return err
		}
		atomic.AddInt64(&r.fetched, 1)
		if fellBack {
			atomic.AddInt64(&r.fallbacks, 1)
		}
		// Go requires exactly W hashes; say which tile was wrong before Go says only "bad result slice".
		if len(d) != t.W*tlog.HashSize {
			return fmt.Errorf("GET /%s: %d bytes, want %d (%d hashes of 32 bytes)", c2spTilePath(t), len(d), t.W*tlog.HashSize, t.W)
		}
		data[i] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkParentLinks(tiles, data, r.n); err != nil {
		return nil, err
	}
	return data, nil
}

// checkParentLinks checks each full tile of a batch whose parent tile is in the batch: the tile's
// subtree hash must be the hash the parent holds for it. Go's TileHashReader puts the parent of every
// tile it adds into the batch; the tiles without one are the right edge, which Go checks against the
// tree hash.
func checkParentLinks(tiles []tlog.Tile, data [][]byte, n int64) error {
	at := make(map[tlog.Tile]int, len(tiles))
	for i, t := range tiles {
		at[t] = i
	}
	for i, t := range tiles {
		if t.W != tileWidth {
			continue // a partial tile is the right edge: no parent
		}
		p := tileParent(t, n)
		j, ok := at[p]
		if !ok {
			continue
		}
		want, err := tlog.HashFromTile(p, data[j], tlog.StoredHashIndex(p.L*tileHeight, t.N))
		if err != nil {
			return fmt.Errorf("/%s: %v", c2spTilePath(p), err)
		}
		if got := tileRoot(data[i]); got != want {
			return fmt.Errorf("/%s hashes to %s, but its parent /%s holds %s for it (inconsistent tiles)", c2spTilePath(t), got, c2spTilePath(p), want)
		}
	}
	return nil
}

// tileParent is the tile one level up holding t's subtree hash, as wide as the tree of size n allows
// (the same as Go's unexported tileParent(t, 1, n)).
func tileParent(t tlog.Tile, n int64) tlog.Tile {
	p := tlog.Tile{H: t.H, L: t.L + 1, N: t.N >> tileHeight, W: tileWidth}
	if count := n >> (uint(p.L) * tileHeight); p.N<<tileHeight+tileWidth > count {
		p.W = int(count - p.N<<tileHeight)
	}
	return p
}

// tileRoot is the Merkle subtree hash of a full tile's 256 hashes.
func tileRoot(data []byte) tlog.Hash {
	level := make([]tlog.Hash, len(data)/tlog.HashSize)
	for i := range level {
		copy(level[i][:], data[i*tlog.HashSize:])
	}
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = tlog.NodeHash(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, t := range tiles {
		if t.L >= 1 {
			r.saved[t] = data[i]
		}
	}
}

// parseBundle splits a C2SP entry bundle of w entries: each a big-endian uint16 length and that many
// bytes of leaf data, which in this log is always 32 bytes; nothing may follow the w'th entry.
func parseBundle(raw []byte, w int) ([][]byte, error) {
	entries := make([][]byte, 0, w)
	for off := 0; off < len(raw); {
		if len(entries) == w {
			return nil, fmt.Errorf("%d trailing bytes after the %d entries", len(raw)-off, w)
		}
		if off+2 > len(raw) {
			return nil, fmt.Errorf("entry %d: truncated length prefix", len(entries))
		}
		n := int(binary.BigEndian.Uint16(raw[off:]))
		off += 2
		if n != leafSize {
			return nil, fmt.Errorf("entry %d: length %d, want %d (a raw chain_hash)", len(entries), n, leafSize)
		}
		if off+n > len(raw) {
			return nil, fmt.Errorf("entry %d: truncated (%d of %d bytes)", len(entries), len(raw)-off, n)
		}
		entries = append(entries, raw[off:off+n])
		off += n
	}
	if len(entries) != w {
		return nil, fmt.Errorf("%d entries, want %d", len(entries), w)
	}
	return entries, nil
}

// parallel runs fn(0..n-1) on up to `workers` goroutines and returns the error of the lowest failing i
// (so a failure message does not depend on scheduling). It stops handing out work after a failure.
func parallel(n int, fn func(i int) error) error {
	var (
		mu      sync.Mutex
		next    int
		errAt   = -1
		errSeen error
		wg      sync.WaitGroup
	)
	w := workers
	if n < w {
		w = n
	}
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if errSeen != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if errAt < 0 || i < errAt {
						errAt, errSeen = i, err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errSeen
}

// decodeHash decodes a standard, padded, canonical base64 SHA-256 hash.
func decodeHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("hash %q: not standard base64: %v", s, err)
	}
	if len(b) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("hash %q: %d bytes, want %d", s, len(b), tlog.HashSize)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h, nil
}

func decodeProof(list []string) ([]tlog.Hash, error) {
	proof := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := decodeHash(s)
		if err != nil {
			return nil, fmt.Errorf("proof[%d]: %v", i, err)
		}
		proof[i] = h
	}
	return proof, nil
}

// parseChainHash decodes "sha256:<64 lowercase hex>" into the 32 bytes that are the entry's leaf data.
func parseChainHash(s string) ([]byte, error) {
	hexPart := strings.TrimPrefix(s, "sha256:")
	b, err := hex.DecodeString(hexPart)
	if hexPart == s || err != nil || len(b) != leafSize || hex.EncodeToString(b) != hexPart {
		return nil, fmt.Errorf("chain_hash %q: want sha256:<64 lowercase hex digits>", s)
	}
	return b, nil
}

// parseSize parses a C2SP checkpoint tree size: ASCII decimal, no sign, no leading zeros.
func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("tree size %q: want a decimal without sign or leading zeros", s)
	}
	return n, nil
}
