//! Building blocks for tests of the gateway's own rules without a Kubernetes API server (feature `testing`):
//! a [`FakeCluster`] that answers like the executor from objects in memory, and a [`TestApp`] builder that
//! puts a whole pipeline over a fresh SQLite ledger. The end-to-end tests against a real API server stay
//! the proof of what a cluster does; these prove what the gateway decides, in milliseconds.

mod fake_cluster;
mod test_app;

pub use fake_cluster::FakeCluster;
pub use test_app::{TestApp, TestAppBuilder};
