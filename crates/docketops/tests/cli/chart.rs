//! The Helm chart (charts/docketops-ledger): rendered, accepted by the real API server, RBAC applied for real.
