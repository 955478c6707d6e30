module github.com/docketops/ledger/tools/tlog-oracle

go 1.19

// scripts/ensure-tlog-oracle builds this offline in GOPATH mode against Debian's golang-golang-x-mod-dev
// (bookworm: v0.7.0, which has sumdb/note and sumdb/tlog as used here).
require golang.org/x/mod v0.7.0
