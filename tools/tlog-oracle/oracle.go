package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// config is the command line.
type config struct {
	url                string
	token              string
	vkeys              []string
	inclusionSamples   int
	consistencySamples int
	allEntries         bool
	timeout            time.Duration
}

// failure is a check that did not pass (exit 1); group names the check group.
type failure struct {
	group string
	err   error
}

func (f *failure) Error() string { return f.group + ": " + f.err.Error() }

// summary is the one JSON line on stdout.
type summary struct {
	OK                 bool     `json:"ok"`
	Size               int64    `json:"size"`
	Root               string   `json:"root"`
	KeysVerified       []string `json:"keys_verified"`
	EntriesChecked     int64    `json:"entries_checked"`
	InclusionChecked   int      `json:"inclusion_checked"`
	ConsistencyChecked int      `json:"consistency_checked"`
	CheckpointsChecked int      `json:"checkpoints_checked"`
	NegativeControls   int      `json:"negative_controls"`
	Failed             string   `json:"failed,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// checkpoint is a verified, parsed C2SP checkpoint note.
type checkpoint struct {
	Origin     string
	Size       int64
	Root       tlog.Hash
	Extensions []string // C2SP extension lines after the root (allowed, reported)
	Text       string   // the signed body
	Signers    []string // name+keyhash of the -vkey keys whose signatures verified
	Others     int      // signature lines by keys the oracle was not given (e.g. witness cosignatures)
}

// emptyRoot is RFC 6962's hash of the empty tree, SHA-256 of nothing. (Go's tlog.TreeHash(0) is all
// zeros instead, so size 0 is handled apart from Go.)
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// oracle runs the check groups in order; later groups use what earlier ones verified.
type oracle struct {
	cfg       config
	c         *client
	out       io.Writer // one line per check group
	verifiers note.Verifiers
	vkeyOf    map[string]string // "name+hash" → the -vkey string
	rng       *rand.Rand

	keysMu       sync.Mutex
	keysVerified map[string]bool

	cp     checkpoint      // the latest, from /checkpoint
	cpRaw  []byte          // its signed note as served
	tiles  *tileReader     //
	hr     tlog.HashReader // Go's tile-authenticating reader for the tree (cp.Size, cp.Root)
	seqs   []int64         // the inclusion samples
	leaves map[int64][]byte

	stored   []checkpoint // stored checkpoints no newer than cp, ascending by size
	incProof *inclusionSample
	conProof *consistencySample

	sum summary
}

type inclusionSample struct {
	index int64
	leaf  tlog.Hash
	proof tlog.RecordProof
}

type consistencySample struct {
	from, to         int64
	fromRoot, toRoot tlog.Hash
	proof            tlog.TreeProof
}

func newOracle(cfg config, out io.Writer) (*oracle, error) {
	o := &oracle{
		cfg:          cfg,
		c:            newClient(cfg.url, cfg.token, cfg.timeout),
		out:          out,
		vkeyOf:       make(map[string]string),
		keysVerified: make(map[string]bool),
		leaves:       make(map[int64][]byte),
		sum:          summary{KeysVerified: []string{}},
	}
	var list []note.Verifier
	for _, k := range cfg.vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("-vkey %q: %v", k, err)
		}
		id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if _, dup := o.vkeyOf[id]; dup {
			continue // note.VerifierList would call a repeated key ambiguous
		}
		o.vkeyOf[id] = k
		list = append(list, v)
	}
	o.verifiers = note.VerifierList(list...)
	return o, nil
}

// run runs every check group and returns the summary; the error is a *failure or a *connError.
func (o *oracle) run() (summary, error) {
	groups := []struct {
		name string
		fn   func() (string, error)
	}{
		{"checkpoint", o.checkCheckpoint},
		{"tiles", o.checkTiles},
		{"entries", o.checkEntries},
		{"inclusion", o.checkInclusion},
		{"checkpoints", o.checkStored},
		{"consistency", o.checkConsistency},
		{"negative", o.checkNegative},
	}
	for _, g := range groups {
		start := time.Now()
		before := atomic.LoadInt64(&o.c.requests)
		msg, err := g.fn()
		if err != nil {
			var ce *connError
			if errors.As(err, &ce) {
				fmt.Fprintf(o.out, "%s: cannot check: %v\n", g.name, err)
				o.sum.OK, o.sum.Failed, o.sum.Error = false, g.name, "cannot check: "+err.Error()
				return o.sum, &connError{fmt.Errorf("%s: %v", g.name, err)}
			}
			fmt.Fprintf(o.out, "%s: FAIL: %v\n", g.name, err)
			o.sum.OK, o.sum.Failed, o.sum.Error = false, g.name, err.Error()
			return o.sum, &failure{g.name, err}
		}
		fmt.Fprintf(o.out, "%s: ok: %s [%d requests, %.2fs]\n", g.name, msg,
			atomic.LoadInt64(&o.c.requests)-before, time.Since(start).Seconds())
	}
	o.sum.OK = true
	return o.sum, nil
}

func (o *oracle) noteKeys(cp checkpoint) {
	o.keysMu.Lock()
	defer o.keysMu.Unlock()
	for _, k := range cp.Signers {
		o.keysVerified[k] = true
	}
	o.sum.KeysVerified = o.sum.KeysVerified[:0]
	for k := range o.keysVerified {
		o.sum.KeysVerified = append(o.sum.KeysVerified, k)
	}
	sort.Strings(o.sum.KeysVerified)
}

// openCheckpoint verifies a signed note with Go's note.Open against the -vkey keys and parses its body
// as a C2SP checkpoint. At least one verified signature must be by a key named as the origin.
func (o *oracle) openCheckpoint(raw []byte) (checkpoint, error) {
	n, err := note.Open(raw, o.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			var ids []string
			for _, s := range unverified.Note.UnverifiedSigs {
				ids = append(ids, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return checkpoint{}, fmt.Errorf("note.Open: no signature by any -vkey key (signatures by: %s)", strings.Join(ids, ", "))
		}
		return checkpoint{}, fmt.Errorf("note.Open: %v", err)
	}
	cp, err := parseCheckpointBody(n.Text)
	if err != nil {
		return checkpoint{}, err
	}
	byOrigin := false
	for _, s := range n.Sigs {
		cp.Signers = append(cp.Signers, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		byOrigin = byOrigin || s.Name == cp.Origin
	}
	if !byOrigin {
		return checkpoint{}, fmt.Errorf("signed by %v, but none of those keys is named as the origin %q", cp.Signers, cp.Origin)
	}
	cp.Others = len(n.UnverifiedSigs)
	return cp, nil
}

// parseCheckpointBody parses the C2SP tlog-checkpoint body strictly: origin, size, root, then optional
// extension lines.
func parseCheckpointBody(text string) (checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, errors.New("checkpoint body does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, fmt.Errorf("checkpoint body has %d lines, want origin, size and root hash", len(lines))
	}
	cp := checkpoint{Origin: lines[0], Text: text, Extensions: lines[3:]}
	if cp.Origin == "" {
		return checkpoint{}, errors.New("checkpoint origin line is empty")
	}
	var err error
	if cp.Size, err = parseSize(lines[1]); err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint %v", err)
	}
	if cp.Root, err = decodeHash(lines[2]); err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint root: %v", err)
	}
	for i, ext := range cp.Extensions {
		if ext == "" {
			return checkpoint{}, fmt.Errorf("checkpoint extension line %d is empty", i+1)
		}
	}
	return cp, nil
}

// 1. The latest checkpoint: a signed note that a -vkey key verifies, with a well-formed body.
func (o *oracle) checkCheckpoint() (string, error) {
	raw, hdr, err := o.c.get("/checkpoint")
	if err != nil {
		return "", err
	}
	cp, err := o.openCheckpoint(raw)
	if err != nil {
		return "", err
	}
	o.cp, o.cpRaw = cp, raw
	o.noteKeys(cp)
	o.sum.Size, o.sum.Root = cp.Size, cp.Root.String()
	// The samples are chosen now so the entries pass can keep exactly the leaves inclusion cross-checks.
	o.rng = rand.New(rand.NewSource(cp.Size)) // reproducible for a given log state
	o.seqs = sampleSeqs(cp.Size, o.cfg.inclusionSamples, o.rng)

	msg := fmt.Sprintf("origin %q size %d root %s, note.Open verified %s", cp.Origin, cp.Size, cp.Root, strings.Join(cp.Signers, ", "))
	if cp.Others > 0 {
		msg += fmt.Sprintf("; %d signature line(s) by unknown keys ignored (witness cosignatures?)", cp.Others)
	}
	if len(cp.Extensions) > 0 {
		msg += fmt.Sprintf("; extension lines %q", cp.Extensions)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		msg += fmt.Sprintf("; WARNING Content-Type %q, want text/plain", ct)
	}
	return msg, nil
}

// treeHash is the root of the first n leaves, computed by tlog.TreeHash from tiles that Go's
// TileHashReader has authenticated against the latest checkpoint.
func (o *oracle) treeHash(n int64) (tlog.Hash, error) {
	if n == 0 {
		return emptyRoot, nil
	}
	return tlog.TreeHash(n, o.hr)
}

// 2. The hash tiles reproduce the checkpoint's root.
func (o *oracle) checkTiles() (string, error) {
	o.tiles = newTileReader(o.c, o.cp.Size)
	o.hr = tlog.TileHashReader(tlog.Tree{N: o.cp.Size, Hash: o.cp.Root}, o.tiles)
	if o.cp.Size == 0 {
		if o.cp.Root != emptyRoot {
			return "", fmt.Errorf("size 0 with root %s, want SHA-256 of nothing %s (RFC 6962)", o.cp.Root, emptyRoot)
		}
		return "empty log: root is SHA-256 of nothing, no tiles to read", nil
	}
	h, err := o.treeHash(o.cp.Size)
	if err != nil {
		return "", fmt.Errorf("tlog.TreeHash(%d) over tlog.TileHashReader: %w", o.cp.Size, err)
	}
	if h != o.cp.Root {
		return "", fmt.Errorf("tlog.TreeHash(%d) = %s, checkpoint root %s", o.cp.Size, h, o.cp.Root)
	}
	return fmt.Sprintf("tlog.TreeHash(%d) from %d authenticated tiles equals the checkpoint root%s",
		o.cp.Size, atomic.LoadInt64(&o.tiles.fetched), o.fallbackNote()), nil
}

func (o *oracle) fallbackNote() string {
	if n := atomic.LoadInt64(&o.tiles.fallbacks); n > 0 {
		return fmt.Sprintf(" (%d partial tiles answered 404 and were read from the full tile)", n)
	}
	return ""
}

// 3. Every entry bundle: strictly formed, and each leaf's RFC 6962 hash is the level-0 hash that the
// authenticated tiles hold for it.
func (o *oracle) checkEntries() (string, error) {
	if !o.cfg.allEntries {
		return "skipped (-all-entries=false)", nil
	}
	size := o.cp.Size
	bundles := (size + tileWidth - 1) / tileWidth
	keep := make(map[int64]bool, len(o.seqs))
	for _, s := range o.seqs {
		keep[s-1] = true
	}
	var fold rootFolder // the leaves' own RFC 6962 root, not relying on the tiles at all
	const batch = 64    // bundles a round: 16384 leaves, one ReadHashes call
	for b0 := int64(0); b0 < bundles; b0 += batch {
		b1 := b0 + batch
		if b1 > bundles {
			b1 = bundles
		}
		first, end := b0*tileWidth, b1*tileWidth
		if end > size {
			end = size
		}
		leaves := make([][]byte, end-first)
		indexes := make([]int64, end-first)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, first+int64(i))
		}
		// Fetch the bundles while Go's TileHashReader fetches and authenticates the hash tiles.
		var bundleErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			bundleErr = parallel(int(b1-b0), func(i int) error {
				n := b0 + int64(i)
				t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(minInt64(tileWidth, size-n*tileWidth))}
				raw, _, err := o.c.fetchTile(t)
				if err != nil {
					return err
				}
				entries, err := parseBundle(raw, t.W)
				if err != nil {
					return fmt.Errorf("/%s: %v", c2spTilePath(t), err)
				}
				copy(leaves[n*tileWidth-first:], entries)
				return nil
			})
		}()
		hashes, hashErr := o.hr.ReadHashes(indexes)
		<-done
		if bundleErr != nil {
			return "", bundleErr
		}
		if hashErr != nil {
			return "", fmt.Errorf("level-0 hashes of leaves [%d,%d) via tlog.TileHashReader: %w", first, end, hashErr)
		}
		for i, data := range leaves {
			idx := first + int64(i)
			if rh := tlog.RecordHash(data); rh != hashes[i] {
				return "", fmt.Errorf("leaf %d (seq %d) in /%s: tlog.RecordHash(leaf data %x) = %s, but the authenticated level-0 tile holds %s",
					idx, idx+1, c2spTilePath(tlog.Tile{H: tileHeight, L: -1, N: idx / tileWidth, W: int(minInt64(tileWidth, size-idx/tileWidth*tileWidth))}), data, rh, hashes[i])
			}
			if keep[idx] {
				o.leaves[idx] = data
			}
			fold.add(hashes[i])
		}
		o.sum.EntriesChecked = end
	}
	if size > 0 && fold.root() != o.cp.Root {
		return "", fmt.Errorf("the %d leaves fold (RFC 6962) to root %s, the checkpoint says %s", size, fold.root(), o.cp.Root)
	}
	return fmt.Sprintf("%d entries in %d bundles: each 32 bytes, tlog.RecordHash equals the authenticated level-0 hash; the leaves alone fold to the checkpoint root%s",
		size, bundles, o.fallbackNote()), nil
}

// rootFolder computes an RFC 6962 tree hash from the leaf hashes in order, keeping only the complete
// subtrees of the right edge (O(log n) memory).
type rootFolder struct {
	hashes []tlog.Hash
	sizes  []int64
}

func (f *rootFolder) add(h tlog.Hash) {
	f.hashes, f.sizes = append(f.hashes, h), append(f.sizes, 1)
	for k := len(f.hashes) - 1; k > 0 && f.sizes[k] == f.sizes[k-1]; k-- {
		f.hashes[k-1], f.sizes[k-1] = tlog.NodeHash(f.hashes[k-1], f.hashes[k]), 2*f.sizes[k]
		f.hashes, f.sizes = f.hashes[:k], f.sizes[:k]
	}
}

func (f *rootFolder) root() tlog.Hash {
	h := f.hashes[len(f.hashes)-1]
	for k := len(f.hashes) - 2; k >= 0; k-- {
		h = tlog.NodeHash(f.hashes[k], h)
	}
	return h
}

// inclusionJSON is GET /api/v1/ledger/proofs/inclusion.
type inclusionJSON struct {
	EntryID   string   `json:"entry_id"`
	Seq       int64    `json:"seq"`
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	ChainHash string   `json:"chain_hash"`
	LeafHash  string   `json:"leaf_hash"`
	RootHash  string   `json:"root_hash"`
	Proof     []string `json:"proof"`
}

var inclusionFields = []string{"entry_id", "seq", "leaf_index", "tree_size", "chain_hash", "leaf_hash", "root_hash", "proof"}

// 4. Inclusion proofs for the sampled seqs against the latest checkpoint, with tlog.CheckRecord.
func (o *oracle) checkInclusion() (string, error) {
	size := o.cp.Size
	answers := make([]inclusionJSON, len(o.seqs))
	checked := make([]*inclusionSample, len(o.seqs))
	err := parallel(len(o.seqs), func(i int) error {
		seq := o.seqs[i]
		path := fmt.Sprintf("/api/v1/ledger/proofs/inclusion?seq=%d&size=%d", seq, size)
		if err := o.c.getJSON(path, &answers[i], inclusionFields...); err != nil {
			return err
		}
		s, err := o.verifyInclusion(answers[i], seq)
		if err != nil {
			return fmt.Errorf("GET %s: %v", path, err)
		}
		checked[i] = s
		return nil
	})
	if err != nil {
		return "", err
	}
	// The negative controls tamper with the longest proof.
	for _, s := range checked {
		if o.incProof == nil || len(s.proof) > len(o.incProof.proof) {
			o.incProof = s
		}
	}
	// The same proofs asked for by entry id must be the same answers.
	byID := spread(int64(len(o.seqs)), 10)
	err = parallel(len(byID), func(k int) error {
		a := answers[byID[k]]
		path := fmt.Sprintf("/api/v1/ledger/proofs/inclusion?entry=%s&size=%d", url.QueryEscape(a.EntryID), size)
		var b inclusionJSON
		if err := o.c.getJSON(path, &b, inclusionFields...); err != nil {
			return err
		}
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("GET %s: answer differs from the one by seq=%d: %+v vs %+v", path, a.Seq, b, a)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	o.sum.InclusionChecked = len(o.seqs)
	if len(o.seqs) == 0 {
		return "no entries to prove (or -inclusion-samples 0)", nil
	}
	cross := "chain_hash not cross-checked against bundles (-all-entries=false)"
	if o.cfg.allEntries {
		cross = "chain_hash equals the entry bundle's leaf data"
	}
	return fmt.Sprintf("%d proofs (seq %d..%d) pass tlog.CheckRecord against the checkpoint root; leaf_hash = tlog.RecordHash(chain_hash); %s; %d re-asked by entry id agree",
		len(o.seqs), o.seqs[0], o.seqs[len(o.seqs)-1], cross, len(byID)), nil
}

func (o *oracle) verifyInclusion(a inclusionJSON, seq int64) (*inclusionSample, error) {
	size := o.cp.Size
	if a.Seq != seq || a.LeafIndex != seq-1 || a.TreeSize != size {
		return nil, fmt.Errorf("seq/leaf_index/tree_size = %d/%d/%d, want %d/%d/%d", a.Seq, a.LeafIndex, a.TreeSize, seq, seq-1, size)
	}
	if !strings.HasPrefix(a.EntryID, "evt_") || len(a.EntryID) == len("evt_") {
		return nil, fmt.Errorf("entry_id %q, want evt_...", a.EntryID)
	}
	chain, err := parseChainHash(a.ChainHash)
	if err != nil {
		return nil, err
	}
	leaf := tlog.RecordHash(chain)
	got, err := decodeHash(a.LeafHash)
	if err != nil {
		return nil, fmt.Errorf("leaf_hash: %v", err)
	}
	if got != leaf {
		return nil, fmt.Errorf("leaf_hash %s, but tlog.RecordHash(chain_hash) = %s", got, leaf)
	}
	root, err := decodeHash(a.RootHash)
	if err != nil {
		return nil, fmt.Errorf("root_hash: %v", err)
	}
	if root != o.cp.Root {
		return nil, fmt.Errorf("root_hash %s, checkpoint root %s", root, o.cp.Root)
	}
	proof, err := decodeProof(a.Proof)
	if err != nil {
		return nil, err
	}
	if err := tlog.CheckRecord(proof, size, o.cp.Root, seq-1, leaf); err != nil {
		return nil, fmt.Errorf("tlog.CheckRecord(%d hashes, size %d, leaf index %d): %v", len(proof), size, seq-1, err)
	}
	if o.cfg.allEntries {
		if data := o.leaves[seq-1]; !bytes.Equal(data, chain) {
			return nil, fmt.Errorf("chain_hash %s, but the entry bundle's leaf data is %x", a.ChainHash, data)
		}
	}
	return &inclusionSample{index: seq - 1, leaf: leaf, proof: proof}, nil
}

// checkpointJSON is one stored checkpoint as the JSON API gives it.
type checkpointJSON struct {
	Origin       string   `json:"origin"`
	Size         int64    `json:"size"`
	RootHash     string   `json:"root_hash"`
	Note         string   `json:"note"`
	KeyID        string   `json:"key_id"`
	CreatedAt    string   `json:"created_at"`
	VerifierKeys []string `json:"verifier_keys"`
}

var checkpointFields = []string{"origin", "size", "root_hash", "note", "key_id", "created_at"}

// openStored verifies a stored checkpoint's note and that its JSON fields say what the note says.
func (o *oracle) openStored(j checkpointJSON) (checkpoint, error) {
	cp, err := o.openCheckpoint([]byte(j.Note))
	if err != nil {
		return checkpoint{}, fmt.Errorf("size %d: note: %v", j.Size, err)
	}
	root, err := decodeHash(j.RootHash)
	if err != nil {
		return checkpoint{}, fmt.Errorf("size %d: root_hash: %v", j.Size, err)
	}
	switch {
	case cp.Origin != j.Origin || cp.Size != j.Size || cp.Root != root:
		return checkpoint{}, fmt.Errorf("JSON says origin %q size %d root %s, its note says %q %d %s", j.Origin, j.Size, root, cp.Origin, cp.Size, cp.Root)
	case cp.Origin != o.cp.Origin:
		return checkpoint{}, fmt.Errorf("size %d: origin %q, /checkpoint's is %q", j.Size, cp.Origin, o.cp.Origin)
	case !strings.HasPrefix(j.KeyID, "ed25519:") || len(j.KeyID) == len("ed25519:"):
		return checkpoint{}, fmt.Errorf("size %d: key_id %q, want ed25519:...", j.Size, j.KeyID)
	case j.CreatedAt == "":
		return checkpoint{}, fmt.Errorf("size %d: created_at is empty", j.Size)
	}
	o.noteKeys(cp)
	return cp, nil
}

// listStored pages through /api/v1/ledger/checkpoints, newest first.
func (o *oracle) listStored() ([]checkpointJSON, error) {
	var all []checkpointJSON
	before := int64(-1)
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("more than %d pages of checkpoints: paging does not end", maxPages)
		}
		path := fmt.Sprintf("/api/v1/ledger/checkpoints?limit=%d", pageLimit)
		if before >= 0 {
			path += fmt.Sprintf("&before=%d", before)
		}
		var l struct {
			Checkpoints []checkpointJSON `json:"checkpoints"`
			NextBefore  *int64           `json:"next_before"`
		}
		body, _, err := o.c.get(path)
		if err != nil {
			return nil, err
		}
		if err := decodeJSON(path, body, &l, "checkpoints"); err != nil {
			return nil, err
		}
		if !bytes.Contains(body, []byte(`"next_before"`)) {
			return nil, fmt.Errorf("%s: field \"next_before\" missing (null ends the listing)", path)
		}
		if len(l.Checkpoints) > pageLimit {
			return nil, fmt.Errorf("%s: %d checkpoints, more than limit", path, len(l.Checkpoints))
		}
		for i, j := range l.Checkpoints {
			if j.Size < 0 || j.Note == "" || j.RootHash == "" {
				return nil, fmt.Errorf("%s: checkpoints[%d] lacks size, note or root_hash", path, i)
			}
			if before >= 0 && j.Size >= before {
				return nil, fmt.Errorf("%s: checkpoints[%d] has size %d, not below before=%d", path, i, j.Size, before)
			}
			if n := len(all); n > 0 && j.Size >= all[n-1].Size {
				return nil, fmt.Errorf("%s: checkpoints[%d] size %d after size %d: want strictly newest (largest) first", path, i, j.Size, all[n-1].Size)
			}
			all = append(all, j)
		}
		if l.NextBefore == nil {
			return all, nil
		}
		// before is exclusive, so only the page's smallest size continues the listing without a gap.
		if len(l.Checkpoints) == 0 || *l.NextBefore != l.Checkpoints[len(l.Checkpoints)-1].Size {
			return nil, fmt.Errorf("%s: next_before %d, want the size of the page's last (oldest) checkpoint", path, *l.NextBefore)
		}
		before = *l.NextBefore
	}
}

// 5a. Stored checkpoints: every note verifies, the JSON agrees with it, the latest is /checkpoint's, and
// sampled roots are recomputed from the authenticated tiles.
func (o *oracle) checkStored() (string, error) {
	var latest checkpointJSON
	if err := o.c.getJSON("/api/v1/ledger/checkpoint", &latest, append(checkpointFields, "verifier_keys")...); err != nil {
		return "", err
	}
	lcp, err := o.openStored(latest)
	if err != nil {
		return "", fmt.Errorf("GET /api/v1/ledger/checkpoint: %v", err)
	}
	var notes []string
	latestIs := "latest equals /checkpoint"
	switch {
	case lcp.Size == o.cp.Size && lcp.Text != o.cp.Text:
		return "", fmt.Errorf("/api/v1/ledger/checkpoint and /checkpoint have size %d but different bodies", lcp.Size)
	case lcp.Size < o.cp.Size:
		return "", fmt.Errorf("/api/v1/ledger/checkpoint has size %d, older than /checkpoint's %d", lcp.Size, o.cp.Size)
	case lcp.Size > o.cp.Size:
		latestIs = fmt.Sprintf("latest is %d (the log grew), /checkpoint's %d is listed with its root", lcp.Size, o.cp.Size)
	}

	// verifier_keys: valid Go note verifier keys, and among them every key that signed a checkpoint.
	serverKeys := make(map[string]bool)
	for _, k := range latest.VerifierKeys {
		if _, err := note.NewVerifier(k); err != nil {
			return "", fmt.Errorf("verifier_keys: %q: note.NewVerifier: %v", k, err)
		}
		serverKeys[k] = true
	}

	all, err := o.listStored()
	if err != nil {
		return "", err
	}
	bySize := make(map[int64]checkpointJSON, len(all))
	o.stored = o.stored[:0]
	for i := len(all) - 1; i >= 0; i-- {
		cp, err := o.openStored(all[i])
		if err != nil {
			return "", fmt.Errorf("GET /api/v1/ledger/checkpoints: %v", err)
		}
		bySize[cp.Size] = all[i]
		if cp.Size <= o.cp.Size {
			o.stored = append(o.stored, cp)
		}
	}
	if _, ok := bySize[o.cp.Size]; !ok {
		return "", fmt.Errorf("the listing has no checkpoint of /checkpoint's size %d", o.cp.Size)
	}
	if last := o.stored[len(o.stored)-1]; last.Root != o.cp.Root {
		return "", fmt.Errorf("the stored checkpoint of size %d has root %s, /checkpoint %s", o.cp.Size, last.Root, o.cp.Root)
	}
	for _, k := range o.sum.KeysVerified {
		if !serverKeys[o.vkeyOf[k]] {
			return "", fmt.Errorf("verifier_keys %q lacks %s, which signed checkpoints", latest.VerifierKeys, o.vkeyOf[k])
		}
	}
	var unlisted []string
	for id, k := range o.vkeyOf {
		if !serverKeys[k] {
			unlisted = append(unlisted, id)
		}
	}
	if len(unlisted) > 0 {
		sort.Strings(unlisted)
		notes = append(notes, fmt.Sprintf("-vkey %s not in verifier_keys", strings.Join(unlisted, ", ")))
	}

	// ?size=N gives the listed checkpoint; a size with none is 404.
	probe := spread(int64(len(all)), 5)
	for _, i := range probe {
		var j checkpointJSON
		path := fmt.Sprintf("/api/v1/ledger/checkpoint?size=%d", all[i].Size)
		if err := o.c.getJSON(path, &j, checkpointFields...); err != nil {
			return "", err
		}
		if j.Note != all[i].Note || j.Size != all[i].Size {
			return "", fmt.Errorf("GET %s: note differs from the listing's", path)
		}
	}
	for i := 1; i < len(all); i++ {
		if gap := all[i].Size + 1; gap < all[i-1].Size {
			path := fmt.Sprintf("/api/v1/ledger/checkpoint?size=%d", gap)
			_, _, err := o.c.get(path)
			var se *statusError
			var ce *connError
			if errors.As(err, &ce) {
				return "", err
			}
			if !errors.As(err, &se) || se.code != http.StatusNotFound {
				return "", fmt.Errorf("GET %s (no checkpoint has that size): want 404, got %v", path, errOr200(err))
			}
			break
		}
	}

	// Recompute sampled stored roots from the tiles (Go's TileHashReader for the latest tree).
	// One at a time: each TreeHash already fetches its tiles in parallel.
	sample := spread(int64(len(o.stored)), o.cfg.consistencySamples)
	for _, k := range sample {
		cp := o.stored[k]
		h, err := o.treeHash(cp.Size)
		if err != nil {
			return "", fmt.Errorf("tlog.TreeHash(%d) over the tiles of size %d: %w", cp.Size, o.cp.Size, err)
		}
		if h != cp.Root {
			return "", fmt.Errorf("stored checkpoint of size %d has root %s, but the tiles of the latest tree give %s", cp.Size, cp.Root, h)
		}
	}
	o.sum.CheckpointsChecked = len(all)
	msg := fmt.Sprintf("%d stored checkpoints (sizes %d..%d): note.Open verifies each, JSON fields match; %s; %d roots recomputed with tlog.TreeHash from tiles; ?size= agrees for %d; signers %s",
		len(all), all[len(all)-1].Size, all[0].Size, latestIs, len(sample), len(probe), strings.Join(o.sum.KeysVerified, ", "))
	if len(notes) > 0 {
		msg += "; NOTE " + strings.Join(notes, "; ")
	}
	return msg, nil
}

func errOr200(err error) interface{} {
	if err == nil {
		return "HTTP 200"
	}
	return err
}

// consistencyJSON is GET /api/v1/ledger/proofs/consistency.
type consistencyJSON struct {
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	FromRoot string   `json:"from_root"`
	ToRoot   string   `json:"to_root"`
	Proof    []string `json:"proof"`
}

// 5b. Consistency proofs between stored checkpoints, with tlog.CheckTree.
func (o *oracle) checkConsistency() (string, error) {
	var points []checkpoint // size ≥ 1: RFC 6962 has no consistency proof from the empty tree
	for _, cp := range o.stored {
		if cp.Size >= 1 {
			points = append(points, cp)
		}
	}
	pairs := choosePairs(len(points), o.cfg.consistencySamples, o.rng)
	var keepMu sync.Mutex
	err := parallel(len(pairs), func(k int) error {
		m, n := points[pairs[k][0]], points[pairs[k][1]]
		path := fmt.Sprintf("/api/v1/ledger/proofs/consistency?from=%d&to=%d", m.Size, n.Size)
		var a consistencyJSON
		if err := o.c.getJSON(path, &a, "from", "to", "from_root", "to_root", "proof"); err != nil {
			return err
		}
		if a.From != m.Size || a.To != n.Size {
			return fmt.Errorf("GET %s: from/to = %d/%d", path, a.From, a.To)
		}
		fromRoot, err1 := decodeHash(a.FromRoot)
		toRoot, err2 := decodeHash(a.ToRoot)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("GET %s: from_root/to_root: %v %v", path, err1, err2)
		}
		if fromRoot != m.Root || toRoot != n.Root {
			return fmt.Errorf("GET %s: from_root/to_root %s/%s, the stored checkpoints' %s/%s", path, fromRoot, toRoot, m.Root, n.Root)
		}
		proof, err := decodeProof(a.Proof)
		if err != nil {
			return fmt.Errorf("GET %s: %v", path, err)
		}
		if err := tlog.CheckTree(proof, n.Size, n.Root, m.Size, m.Root); err != nil {
			return fmt.Errorf("GET %s: tlog.CheckTree(%d hashes, %d, %s, %d, %s): %v", path, len(proof), n.Size, n.Root, m.Size, m.Root, err)
		}
		keepMu.Lock()
		if o.conProof == nil || len(proof) > len(o.conProof.proof) {
			o.conProof = &consistencySample{m.Size, n.Size, m.Root, n.Root, proof}
		}
		keepMu.Unlock()
		return nil
	})
	if err != nil {
		return "", err
	}
	o.sum.ConsistencyChecked = len(pairs)
	if len(pairs) == 0 {
		return fmt.Sprintf("no pairs: %d stored checkpoint(s) of size ≥ 1", len(points)), nil
	}
	return fmt.Sprintf("%d proofs between stored checkpoints (consecutive and far pairs, sizes %d..%d) pass tlog.CheckTree",
		len(pairs), points[0].Size, points[len(points)-1].Size), nil
}

// 6. Negative controls: tampered inputs that the same Go checks must reject, so a pass above is not
// vacuous.
func (o *oracle) checkNegative() (string, error) {
	var done []string
	count := 0
	reject := func(what string, err error) error {
		if err == nil {
			return fmt.Errorf("%s was accepted", what)
		}
		count++
		done = append(done, what)
		return nil
	}

	// A checkpoint with one body byte changed (the first character of the root line) must not verify:
	// note.Open must say the known key's signature is invalid, not merely that the note is malformed.
	bad := append([]byte(nil), o.cpRaw...)
	i := len(o.cp.Origin) + 1 + len(fmt.Sprint(o.cp.Size)) + 1
	if bad[i] == 'A' {
		bad[i] = 'B'
	} else {
		bad[i] = 'A'
	}
	_, err := note.Open(bad, o.verifiers)
	var invalid *note.InvalidSignatureError
	if !errors.As(err, &invalid) {
		return "", fmt.Errorf("note.Open of /checkpoint with one root character changed: want InvalidSignatureError, got %v", err)
	}
	count++
	done = append(done, "tampered checkpoint note")

	if o.cp.Size > 0 {
		// Tiles must not authenticate against a root with one bit flipped.
		wrong := flip(o.cp.Root)
		_, err := tlog.TreeHash(o.cp.Size, tlog.TileHashReader(tlog.Tree{N: o.cp.Size, Hash: wrong}, o.tiles))
		if err := reject("tiles against a flipped root", err); err != nil {
			return "", err
		}
	}
	if s := o.incProof; s != nil {
		if len(s.proof) > 0 {
			p := append(tlog.RecordProof(nil), s.proof...)
			p[len(p)/2] = flip(p[len(p)/2])
			if err := reject("inclusion proof with a flipped hash", tlog.CheckRecord(p, o.cp.Size, o.cp.Root, s.index, s.leaf)); err != nil {
				return "", err
			}
		}
		if err := reject("inclusion of a flipped leaf hash", tlog.CheckRecord(s.proof, o.cp.Size, o.cp.Root, s.index, flip(s.leaf))); err != nil {
			return "", err
		}
	}
	if s := o.conProof; s != nil {
		if len(s.proof) > 0 {
			p := append(tlog.TreeProof(nil), s.proof...)
			p[len(p)/2] = flip(p[len(p)/2])
			if err := reject("consistency proof with a flipped hash", tlog.CheckTree(p, s.to, s.toRoot, s.from, s.fromRoot)); err != nil {
				return "", err
			}
		}
		if err := reject("consistency from a flipped old root", tlog.CheckTree(s.proof, s.to, s.toRoot, s.from, flip(s.fromRoot))); err != nil {
			return "", err
		}
	}
	o.sum.NegativeControls = count
	return fmt.Sprintf("%d tampered inputs rejected: %s", count, strings.Join(done, ", ")), nil
}

func flip(h tlog.Hash) tlog.Hash {
	h[7] ^= 0x10
	return h
}

// spread returns up to k indexes in [0,count), evenly spaced, always including the first and last.
func spread(count int64, k int) []int64 {
	if count <= 0 || k <= 0 {
		return nil
	}
	if int64(k) >= count {
		out := make([]int64, count)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	if k == 1 {
		return []int64{count - 1}
	}
	out := make([]int64, k)
	for i := range out {
		out[i] = int64(i) * (count - 1) / int64(k-1)
	}
	return out
}

// sampleSeqs picks k seqs in [1,size]: half evenly spread (1 and size always), half at random.
func sampleSeqs(size int64, k int, rng *rand.Rand) []int64 {
	if size == 0 || k <= 0 {
		return nil
	}
	set := map[int64]bool{1: true, size: true}
	for _, i := range spread(size, (k+1)/2) {
		set[i+1] = true
	}
	for tries := 0; len(set) < k && int64(len(set)) < size && tries < 100*k; tries++ {
		set[1+rng.Int63n(size)] = true
	}
	out := make([]int64, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// choosePairs picks up to k pairs i<j of n points: the oldest with the newest, consecutive pairs
// spread over the list, then random far pairs.
func choosePairs(n, k int, rng *rand.Rand) [][2]int {
	if n < 2 || k <= 0 {
		return nil
	}
	seen := make(map[[2]int]bool)
	var pairs [][2]int
	add := func(i, j int) {
		if len(pairs) < k && !seen[[2]int{i, j}] {
			seen[[2]int{i, j}] = true
			pairs = append(pairs, [2]int{i, j})
		}
	}
	add(0, n-1)
	for _, i := range spread(int64(n-1), (k+1)/2) {
		add(int(i), int(i)+1)
	}
	for tries := 0; len(pairs) < k && n > 2 && tries < 100*k; tries++ {
		i := rng.Intn(n - 2)
		j := i + 2 + rng.Intn(n-i-2)
		add(i, j)
	}
	return pairs
}

func minInt64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
