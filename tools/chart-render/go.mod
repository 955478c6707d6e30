module github.com/docketops/ledger/tools/chart-render

go 1.19

// scripts/ensure-chart-tools builds this offline in GOPATH mode against Debian's packages
// (golang-github-masterminds-sprig-dev, golang-github-ghodss-yaml-dev); the versions are Debian bookworm's.
require (
	github.com/Masterminds/sprig/v3 v3.2.3
	github.com/ghodss/yaml v1.0.0
)
