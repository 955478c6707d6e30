package main

import (
	"bytes"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The self-test proves the oracle before the gateway side exists: an in-memory log built with Go's tlog
// and signed with Go's note, served over exactly the gateway's HTTP contract, must pass; broken variants
// of it must fail in the check group that owns the breakage.

const selftestToken = "selftest-token"

// Faults the self-test server can be asked to commit.
const (
	faultNone        = ""
	faultTileEdge    = "tile-edge"    // one byte of the right-edge level-0 (partial) hash tile
	faultTileInner   = "tile-inner"   // one byte of a full level-0 hash tile
	faultEntryByte   = "entry-byte"   // one byte of one entry in an entry bundle
	faultBundleTail  = "bundle-tail"  // a trailing byte after an entry bundle's entries
	faultInclusion   = "inclusion"    // one hash of the inclusion proof for seq 1
	faultConsistency = "consistency"  // one hash of every consistency proof
	faultNoteByte    = "note-byte"    // one byte of /checkpoint's signed body
	faultStoredRoot  = "stored-root"  // a stored checkpoint, validly signed, of a root the log never had
	faultPaging      = "paging"       // next_before one below the page's last size, skipping checkpoints
	faultLeafHash    = "leaf-hash"    // an inclusion answer whose leaf_hash is not RecordHash(chain_hash)
	faultOldKeyGone  = "old-key-gone" // verifier_keys forgets the rotated-out key
	faultForgedLeaf  = "forged-leaf"  // leaf 384 replaced in its bundle and its level-0 tile alike
	// Not a fault: /checkpoint is the stored checkpoint of half the size (the log grew after it was
	// fetched), and partial tiles whose full tile exists are gone (404), as C2SP allows.
	grownHalf = "grown"
)

// forgedIndex is the leaf faultForgedLeaf replaces: in the full level-0 tile 1, which Go's
// TileHashReader does not check against its parent at size 1000 (see tileReader).
const forgedIndex = 384

var forgedLeaf = bytes.Repeat([]byte{0xfe}, leafSize)

// testLog is the in-memory log. It is a tlog.HashReader over Go's own stored hashes.
type testLog struct {
	origin  string
	leaves  [][]byte
	hashes  []tlog.Hash // tlog.StoredHashes of every leaf, in order: all levels of the tree
	ids     []string    // entry ids by leaf index
	idIndex map[string]int64
	stored  []testCheckpoint // ascending by size; the last is the latest
	latest  []byte           // /checkpoint: the latest note plus a witness cosignature
	vkeys   []string         // old (rotated out) and current
	forged  testCheckpoint   // for faultStoredRoot
}

type testCheckpoint struct {
	size    int64
	root    tlog.Hash
	note    string
	keyID   string
	created string
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("stored hash %d not in log", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *testLog) size() int64 { return int64(len(l.leaves)) }

func (l *testLog) treeHash(n int64) tlog.Hash {
	if n == 0 {
		return emptyRoot
	}
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		panic(err)
	}
	return h
}

// buildTestLog makes a log of size random 32-byte leaves and signs checkpoints at a spread of sizes
// (including 0, tile edges, and the latest), the older half with a key since rotated out.
func buildTestLog(size int64) (*testLog, error) {
	rng := rand.New(rand.NewSource(size))
	l := &testLog{origin: "selftest.docketops.example/ledger", idIndex: make(map[string]int64)}
	for i := int64(0); i < size; i++ {
		leaf := make([]byte, leafSize)
		rng.Read(leaf)
		hashes, err := tlog.StoredHashes(i, leaf, l)
		if err != nil {
			return nil, err
		}
		l.hashes = append(l.hashes, hashes...)
		l.leaves = append(l.leaves, leaf)
		id := fmt.Sprintf("evt_%08d%x", i+1, leaf[:4])
		l.ids = append(l.ids, id)
		l.idIndex[id] = i
	}

	oldSkey, oldVkey, err := note.GenerateKey(crand.Reader, l.origin)
	if err != nil {
		return nil, err
	}
	newSkey, newVkey, err := note.GenerateKey(crand.Reader, l.origin)
	if err != nil {
		return nil, err
	}
	oldSigner, err1 := note.NewSigner(oldSkey)
	newSigner, err2 := note.NewSigner(newSkey)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("note.NewSigner: %v %v", err1, err2)
	}
	l.vkeys = []string{oldVkey, newVkey}
	sign := func(n int64, root tlog.Hash) (testCheckpoint, error) {
		signer := newSigner
		if n < size/2 {
			signer = oldSigner
		}
		text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, root)
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		return testCheckpoint{
			size: n, root: root, note: string(msg),
			keyID:   fmt.Sprintf("ed25519:%08x", signer.KeyHash()),
			created: time.Unix(1700000000+n, 0).UTC().Format(time.RFC3339),
		}, err
	}

	set := map[int64]bool{}
	for _, n := range []int64{0, 1, 2, 3, 7, 8, 9, 255, 256, 257, 511, 512, 513, 1000, size / 3, size / 2, size - 1, size} {
		if n >= 0 && n <= size {
			set[n] = true
		}
	}
	for n := int64(0); n <= size; n += size/20 + 1 {
		set[n] = true
	}
	var sizes []int64
	for n := range set {
		sizes = append(sizes, n)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, n := range sizes {
		cp, err := sign(n, l.treeHash(n))
		if err != nil {
			return nil, err
		}
		l.stored = append(l.stored, cp)
	}
	// A validly signed checkpoint of a root this log never had (a fork), for faultStoredRoot.
	mid := l.stored[len(l.stored)/2]
	if l.forged, err = sign(mid.size, flip(mid.root)); err != nil {
		return nil, err
	}

	// The served checkpoint carries a C2SP cosignature/v1 line from a witness the oracle does not know:
	// key id = SHA-256(name "\n" 0x04 pubkey)[:4], then an 8-byte timestamp and the Ed25519 signature
	// of "cosignature/v1\ntime <t>\n" + body.
	wpub, wpriv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	const witness = "witness.selftest.example/w1"
	id := sha256.Sum256(append([]byte(witness+"\n\x04"), wpub...))
	ts := uint64(1700000000 + size)
	last := l.stored[len(l.stored)-1]
	body := last.note[:strings.Index(last.note, "\n\n")+1]
	sig := ed25519.Sign(wpriv, []byte(fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, body)))
	blob := append(append(id[:4:4], make([]byte, 8)...), sig...)
	binary.BigEndian.PutUint64(blob[4:], ts)
	l.latest = []byte(last.note + "— " + witness + " " + base64.StdEncoding.EncodeToString(blob) + "\n")
	return l, nil
}

func (cp testCheckpoint) json(origin string) map[string]interface{} {
	return map[string]interface{}{
		"origin": origin, "size": cp.size, "root_hash": cp.root.String(), "note": cp.note,
		"key_id": cp.keyID, "created_at": cp.created,
	}
}

// handler serves the gateway's contract for l, committing fault.
func (l *testLog) handler(fault string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		body := append([]byte(nil), l.latest...)
		if fault == grownHalf {
			body = []byte(l.half().note)
		}
		if fault == faultNoteByte {
			i := bytes.IndexByte(body, '\n') + 1 // the size line's first digit
			body[i] = "12"[(body[i]-'0')%2]      // still a decimal, no longer the signed one
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	mux.HandleFunc("/tile/", func(w http.ResponseWriter, r *http.Request) {
		t, err := parseC2SPTilePath(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		start := t.N << tileHeight
		var data []byte
		count := l.size() // entries; a hash tile of level L holds the tree's level-8L hashes
		if t.L >= 0 {
			count >>= tileHeight * uint(t.L)
		}
		if fault == grownHalf && t.W < tileWidth && start+tileWidth <= count {
			http.NotFound(w, r) // the full tile exists, so the partial is deleted
			return
		}
		if t.L == -1 {
			if start+int64(t.W) > count {
				http.NotFound(w, r)
				return
			}
			for i := 0; i < t.W; i++ {
				leaf := l.leaves[start+int64(i)]
				if fault == faultForgedLeaf && start+int64(i) == forgedIndex {
					leaf = forgedLeaf
				}
				data = append(data, 0, leafSize)
				data = append(data, leaf...)
			}
			switch {
			case fault == faultEntryByte && t.N == 1:
				data[2+7] ^= 1
			case fault == faultBundleTail && t.N == 0:
				data = append(data, 0)
			}
		} else {
			if start+int64(t.W) > count {
				http.NotFound(w, r)
				return
			}
			if data, err = tlog.ReadTileData(t, l); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			switch {
			case fault == faultTileEdge && t.L == 0 && t.W < tileWidth,
				fault == faultTileInner && t.L == 0 && t.N == 1:
				data[len(data)/2] ^= 1
			case fault == faultForgedLeaf && t.L == 0 && start <= forgedIndex && forgedIndex < start+int64(t.W):
				h := tlog.RecordHash(forgedLeaf)
				copy(data[(forgedIndex-start)*tlog.HashSize:], h[:])
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	})
	mux.HandleFunc("/api/v1/ledger/checkpoints", func(w http.ResponseWriter, r *http.Request) {
		limit, before := int64(20), l.size()+1
		if v, ok, err := intParam(r, "limit"); err != nil || (ok && v < 1) {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		} else if ok {
			limit = v
		}
		if limit > 16 {
			limit = 16 // a server may cap the page; this one does, so the self-test pages
		}
		if v, ok, err := intParam(r, "before"); err != nil {
			http.Error(w, "bad before", http.StatusBadRequest)
			return
		} else if ok {
			before = v
		}
		page := []map[string]interface{}{}
		var next interface{}
		for i := len(l.stored) - 1; i >= 0; i-- {
			cp := l.stored[i]
			if cp.size >= before {
				continue
			}
			if int64(len(page)) == limit {
				next = l.stored[i+1].size
				if fault == faultPaging {
					next = l.stored[i+1].size - 1
				}
				break
			}
			if fault == faultStoredRoot && cp.size == l.forged.size {
				cp = l.forged
			}
			page = append(page, cp.json(l.origin))
		}
		writeJSON(w, map[string]interface{}{"checkpoints": page, "next_before": next})
	})
	mux.HandleFunc("/api/v1/ledger/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		n, ok, err := intParam(r, "size")
		if err != nil {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		if ok {
			for _, cp := range l.stored {
				if cp.size == n {
					if fault == faultStoredRoot && cp.size == l.forged.size {
						cp = l.forged
					}
					writeJSON(w, cp.json(l.origin))
					return
				}
			}
			http.NotFound(w, r)
			return
		}
		obj := l.stored[len(l.stored)-1].json(l.origin)
		obj["verifier_keys"] = l.vkeys
		if fault == faultOldKeyGone {
			obj["verifier_keys"] = l.vkeys[1:]
		}
		writeJSON(w, obj)
	})
	mux.HandleFunc("/api/v1/ledger/proofs/inclusion", func(w http.ResponseWriter, r *http.Request) {
		size, ok1, err1 := intParam(r, "size")
		seq, ok2, err2 := intParam(r, "seq")
		if id := r.URL.Query().Get("entry"); id != "" && !ok2 {
			idx, found := l.idIndex[id]
			if !found {
				http.NotFound(w, r)
				return
			}
			seq, ok2 = idx+1, true
		}
		if err1 != nil || err2 != nil || !ok1 || !ok2 || size > l.size() || seq < 1 || seq > size {
			http.Error(w, "want seq (or entry) and size with 1 ≤ seq ≤ size ≤ tree size", http.StatusBadRequest)
			return
		}
		proof, err := tlog.ProveRecord(size, seq-1, l)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if fault == faultInclusion && seq == 1 && len(proof) > 0 {
			proof[0] = flip(proof[0])
		}
		leafHash := tlog.RecordHash(l.leaves[seq-1])
		if fault == faultLeafHash && seq == size {
			leafHash = flip(leafHash)
		}
		writeJSON(w, map[string]interface{}{
			"entry_id": l.ids[seq-1], "seq": seq, "leaf_index": seq - 1, "tree_size": size,
			"chain_hash": fmt.Sprintf("sha256:%x", l.leaves[seq-1]), "leaf_hash": leafHash.String(),
			"root_hash": l.treeHash(size).String(), "proof": hashStrings(proof),
		})
	})
	mux.HandleFunc("/api/v1/ledger/proofs/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, ok1, err1 := intParam(r, "from")
		to, ok2, err2 := intParam(r, "to")
		if err1 != nil || err2 != nil || !ok1 || !ok2 || from < 1 || from > to || to > l.size() {
			http.Error(w, "want 1 ≤ from ≤ to ≤ tree size", http.StatusBadRequest)
			return
		}
		proof, err := tlog.ProveTree(to, from, l)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if fault == faultConsistency && len(proof) > 0 {
			proof[0] = flip(proof[0])
		}
		writeJSON(w, map[string]interface{}{
			"from": from, "to": to, "from_root": l.treeHash(from).String(), "to_root": l.treeHash(to).String(),
			"proof": hashStrings(proof),
		})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+selftestToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func intParam(r *http.Request, name string) (int64, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, true, err
}

func hashStrings(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// checkTileAuthGap reads leaf 384's hash at size 1000 from a server that corrupted the full level-0
// tile holding it, once through Go's TileHashReader over a reader that only fetches, once over the
// oracle's tileReader. The oracle's must fail; whether bare Go noticed is reported.
func checkTileAuthGap(l *testLog) (bareAccepted bool, err error) {
	srv := httptest.NewServer(l.handler(faultTileInner))
	defer srv.Close()
	c := newClient(srv.URL, selftestToken, 20*time.Second)
	tree := tlog.Tree{N: l.size(), Hash: l.treeHash(l.size())}
	index := []int64{tlog.StoredHashIndex(0, forgedIndex)}
	_, bareErr := tlog.TileHashReader(tree, fetchOnly{c}).ReadHashes(index)
	if _, err := tlog.TileHashReader(tree, newTileReader(c, tree.N)).ReadHashes(index); err == nil {
		return bareErr == nil, errors.New("the oracle's tileReader accepted a corrupted full tile")
	}
	return bareErr == nil, nil
}

// fetchOnly is a TileReader that leaves all authentication to Go.
type fetchOnly struct{ c *client }

func (fetchOnly) Height() int                     { return tileHeight }
func (fetchOnly) SaveTiles([]tlog.Tile, [][]byte) {}
func (f fetchOnly) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, _, err := f.c.fetchTile(t)
		if err != nil {
			return nil, err
		}
		data[i] = d
	}
	return data, nil
}

// checkTilePaths pins the Go ↔ C2SP tile path mapping to hand-written C2SP paths.
func checkTilePaths() error {
	cases := []struct {
		t    tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}, "tile/0/x001/x234/067"},
		{tlog.Tile{H: 8, L: 1, N: 1234067, W: 8}, "tile/1/x001/x234/067.p/8"},
		{tlog.Tile{H: 8, L: 2, N: 5, W: 256}, "tile/2/005"},
		{tlog.Tile{H: 8, L: 0, N: 1000, W: 255}, "tile/0/x001/000.p/255"},
		{tlog.Tile{H: 8, L: -1, N: 0, W: 256}, "tile/entries/000"},
		{tlog.Tile{H: 8, L: -1, N: 1234067, W: 17}, "tile/entries/x001/x234/067.p/17"},
	}
	for _, c := range cases {
		if got := c2spTilePath(c.t); got != c.path {
			return fmt.Errorf("c2spTilePath(%+v) = %q, want %q", c.t, got, c.path)
		}
		if back, err := parseC2SPTilePath(c.path); err != nil || back != c.t {
			return fmt.Errorf("parseC2SPTilePath(%q) = %+v, %v", c.path, back, err)
		}
	}
	for _, bad := range []string{"tile/data/000", "tile/0/1234067", "tile/0/000.p/256", "tile/0/000.p/0", "tile/8/0/000", "tile/entries/000.p/", "tile/0/x000/001"} {
		if t, err := parseC2SPTilePath(bad); err == nil {
			return fmt.Errorf("parseC2SPTilePath(%q) accepted it as %+v", bad, t)
		}
	}
	return nil
}

type scenario struct {
	name     string
	size     int64
	fault    string
	token    string
	wantExit int
	wantIn   string // the check group the failure must be named after
	wantSize int64  // the checkpoint size a passing run reports, when not the log's size
	args     []string
	verbose  bool
}

// runSelftest runs every scenario through realMain, the same code path as a real run.
func runSelftest(stdout, stderr io.Writer) int {
	begin := time.Now()
	ok := func(format string, args ...interface{}) {
		fmt.Fprintf(stderr, "selftest: PASS "+format+"\n", args...)
	}
	bad := 0
	fail := func(format string, args ...interface{}) {
		bad++
		fmt.Fprintf(stderr, "selftest: FAIL "+format+"\n", args...)
	}
	if err := checkTilePaths(); err != nil {
		fail("tile paths: %v", err)
	} else {
		ok("tile paths: Go tile/8/L/N ↔ C2SP tile/L/N and tile/8/data/N ↔ tile/entries/N, with .p/W and x001/x234/067")
	}

	scenarios := []scenario{
		{name: "log of 1000 entries, a rotated key, a witness cosignature", size: 1000, verbose: true},
		{name: "log of 0 entries", size: 0},
		{name: "log of 1 entry", size: 1},
		{name: "log of 2 entries", size: 2},
		{name: "log of 256 entries (one full tile, no partial)", size: 256},
		{name: "log of 257 entries", size: 257},
		{name: "log of 65537 entries (a level-2 tile)", size: 65537},
		{name: "log of 100000 entries", size: 100000},
		{name: "log grown to 1000 past a /checkpoint of 500; completed partial tiles gone (404)", size: 1000, fault: grownHalf, wantSize: 500},
		{name: "log of 1000 entries, -all-entries=false -inclusion-samples 3 -consistency-samples 2", size: 1000,
			args: []string{"-all-entries=false", "-inclusion-samples", "3", "-consistency-samples", "2"}},
		{name: "log of 1000 entries, -inclusion-samples 0 -consistency-samples 0", size: 1000,
			args: []string{"-inclusion-samples", "0", "-consistency-samples", "0"}},
		{name: "wrong token", size: 1000, token: "not-the-token", wantExit: 2, wantIn: "checkpoint"},
		{name: "broken: one byte of the right-edge hash tile", size: 1000, fault: faultTileEdge, wantExit: 1, wantIn: "tiles"},
		{name: "broken: one byte of a full level-0 hash tile", size: 1000, fault: faultTileInner, wantExit: 1, wantIn: "entries"},
		{name: "broken: a leaf forged in its bundle and its level-0 tile alike", size: 1000, fault: faultForgedLeaf, wantExit: 1, wantIn: "entries"},
		{name: "broken: one byte of an entry", size: 1000, fault: faultEntryByte, wantExit: 1, wantIn: "entries"},
		{name: "broken: a trailing byte after an entry bundle", size: 1000, fault: faultBundleTail, wantExit: 1, wantIn: "entries"},
		{name: "broken: the inclusion proof of seq 1", size: 1000, fault: faultInclusion, wantExit: 1, wantIn: "inclusion"},
		{name: "broken: a leaf_hash that is not RecordHash(chain_hash)", size: 1000, fault: faultLeafHash, wantExit: 1, wantIn: "inclusion"},
		{name: "broken: one byte of /checkpoint's signed body", size: 1000, fault: faultNoteByte, wantExit: 1, wantIn: "checkpoint"},
		{name: "broken: a validly signed stored checkpoint of a forked root", size: 1000, fault: faultStoredRoot, wantExit: 1, wantIn: "checkpoints"},
		{name: "broken: paging skips a checkpoint", size: 1000, fault: faultPaging, wantExit: 1, wantIn: "checkpoints"},
		{name: "broken: verifier_keys forgets the rotated-out key", size: 1000, fault: faultOldKeyGone, wantExit: 1, wantIn: "checkpoints"},
		{name: "broken: every consistency proof", size: 1000, fault: faultConsistency, wantExit: 1, wantIn: "consistency"},
	}
	logs := make(map[int64]*testLog)
	if l, err := buildTestLog(1000); err != nil {
		fail("building the log: %v", err)
	} else {
		logs[1000] = l
		if bare, err := checkTileAuthGap(l); err != nil {
			fail("tile authentication: %v", err)
		} else {
			ok("tile authentication: a corrupted full level-0 tile at size 1000 is rejected by the oracle's tileReader (bare tlog.TileHashReader accepted it: %v)", bare)
		}
	}
	for _, sc := range scenarios {
		l := logs[sc.size]
		if l == nil {
			var err error
			if l, err = buildTestLog(sc.size); err != nil {
				fail("%s: building the log: %v", sc.name, err)
				continue
			}
			logs[sc.size] = l
		}
		srv := httptest.NewServer(l.handler(sc.fault))
		wantEntries := int64(-1) // the checkpoint size unless -all-entries=false
		token := selftestToken
		if sc.token != "" {
			token = sc.token
		}
		args := []string{"-url", srv.URL, "-token", token, "-timeout", "20s"}
		for _, k := range l.vkeys {
			args = append(args, "-vkey", k)
		}
		args = append(args, sc.args...)
		if sc.args != nil && sc.args[0] == "-all-entries=false" {
			wantEntries = 0
		}
		var out, lines bytes.Buffer
		start := time.Now()
		code := realMain(args, &out, &lines)
		took := time.Since(start).Seconds()
		srv.Close()

		var sum summary
		jsonErr := json.Unmarshal(out.Bytes(), &sum)
		wantSize := l.size()
		if sc.wantSize != 0 {
			wantSize = sc.wantSize
		}
		if wantEntries < 0 {
			wantEntries = wantSize
		}
		switch {
		case jsonErr != nil || strings.Count(out.String(), "\n") != 1:
			fail("%s: stdout is not one JSON line: %q", sc.name, out.String())
		case code != sc.wantExit:
			fail("%s: exit %d, want %d\n%s", sc.name, code, sc.wantExit, indent(lines.String()))
		case sc.wantExit == 0 && (!sum.OK || sum.Size != wantSize || sum.EntriesChecked != wantEntries):
			fail("%s: summary %s", sc.name, strings.TrimSpace(out.String()))
		case sc.wantExit == 0:
			ok("%s (%.2fs): %s", sc.name, took, strings.TrimSpace(out.String()))
			if sc.verbose || sc.fault == grownHalf {
				fmt.Fprint(stderr, indent(lines.String()))
			}
		case sum.OK || sum.Failed != sc.wantIn:
			fail("%s: failed in %q, want %q: %s", sc.name, sum.Failed, sc.wantIn, sum.Error)
		default:
			ok("%s: rejected (exit %d) by %q: %s", sc.name, code, sum.Failed, sum.Error)
		}
	}
	line, _ := json.Marshal(map[string]interface{}{
		"ok": bad == 0, "selftest": true, "scenarios": len(scenarios) + 2, "failed": bad,
		"seconds": float64(time.Since(begin).Milliseconds()) / 1000,
	})
	fmt.Fprintln(stdout, string(line))
	if bad > 0 {
		return 1
	}
	return 0
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString("    | " + line)
		}
	}
	return b.String()
}

// half is the stored checkpoint of half the log's size, which grownHalf serves as /checkpoint.
func (l *testLog) half() testCheckpoint {
	for _, cp := range l.stored {
		if cp.size == l.size()/2 {
			return cp
		}
	}
	panic("no stored checkpoint of half the size")
}
