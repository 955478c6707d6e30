// tlog-oracle checks the gateway's C2SP transparency log independently of the Rust code, with Go's own
// golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog (tiles, RFC 6962 proofs):
//
//  1. checkpoint   GET /checkpoint is a signed note that a -vkey key verifies (note.Open), and its body a
//     strict C2SP checkpoint (origin, size, base64 root, optional extension lines).
//  2. tiles        tlog.TreeHash over tlog.TileHashReader (which authenticates every C2SP hash tile it
//     reads) gives the checkpoint's root.
//  3. entries      every entry bundle is well formed, and each leaf's tlog.RecordHash is the level-0
//     hash of the authenticated tiles.
//  4. inclusion    sampled inclusion proofs pass tlog.CheckRecord; chain_hash equals the bundle's leaf.
//  5. checkpoints  stored checkpoints verify, agree with their JSON and, sampled, with the tiles.
//     consistency  consistency proofs between stored checkpoints pass tlog.CheckTree.
//  6. negative     tampered notes, roots, proofs and leaves are rejected by the same checks.
//
// One line per group goes to stderr and one JSON summary line to stdout. Exit 0: every check passed;
// 1: a check failed (the line and the summary name it); 2: usage error, or the gateway could not be
// asked (connection, timeout, 401/403).
//
//	tlog-oracle -url http://127.0.0.1:8080 -token TOKEN -vkey NAME+HASH+KEY [-vkey ...]
//	            [-inclusion-samples 200] [-consistency-samples 50] [-all-entries=true] [-timeout 30s]
//	tlog-oracle -selftest
//
// -selftest serves an in-memory log built with Go's tlog over the same HTTP contract (httptest), checks
// it, and checks that deliberately broken variants of it fail.
//
// It builds offline with Debian's Go and golang-golang-x-mod-dev: scripts/ensure-tlog-oracle.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	var cfg config
	var vkeys stringList
	var selftest bool
	fs := flag.NewFlagSet("tlog-oracle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "", "the gateway's base URL (`http://host:port`)")
	fs.StringVar(&cfg.token, "token", "", "bearer token sent on every request (none when empty)")
	fs.Var(&vkeys, "vkey", "a log verifier key `name+hash+base64` (Go note format); repeat for rotated keys")
	fs.IntVar(&cfg.inclusionSamples, "inclusion-samples", 200, "inclusion proofs to check (1 and size always among them)")
	fs.IntVar(&cfg.consistencySamples, "consistency-samples", 50, "consistency proofs to check, and stored roots to recompute from tiles")
	fs.BoolVar(&cfg.allEntries, "all-entries", true, "read every entry bundle and check it against the level-0 tile hashes")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of each HTTP request")
	fs.BoolVar(&selftest, "selftest", false, "check an in-memory log served over the same contract, and broken variants of it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tlog-oracle: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if selftest {
		return runSelftest(stdout, stderr)
	}
	cfg.vkeys = vkeys
	if u, err := url.Parse(cfg.url); cfg.url == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintln(stderr, "tlog-oracle: -url http(s)://host[:port] is required")
		return 2
	}
	if len(cfg.vkeys) == 0 {
		fmt.Fprintln(stderr, "tlog-oracle: at least one -vkey is required (the log's verifier keys, e.g. the gateway's verifier_keys)")
		return 2
	}
	if cfg.inclusionSamples < 0 || cfg.consistencySamples < 0 || cfg.timeout <= 0 {
		fmt.Fprintln(stderr, "tlog-oracle: sample counts must be ≥ 0 and -timeout > 0")
		return 2
	}
	o, err := newOracle(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tlog-oracle: %v\n", err)
		return 2
	}
	sum, err := o.run()
	line, _ := json.Marshal(sum)
	fmt.Fprintln(stdout, string(line))
	var f *failure
	switch {
	case err == nil:
		return 0
	case errors.As(err, &f):
		fmt.Fprintf(stderr, "tlog-oracle: FAILED check %q: %v\n", f.group, f.err)
		return 1
	default:
		fmt.Fprintf(stderr, "tlog-oracle: could not check: %v\n", err)
		return 2
	}
}
