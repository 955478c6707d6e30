//! A whole gateway in-process over a fresh SQLite ledger: `TestApp::new().with_cluster(..).with_identity(..)`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::{IdentityKind, Role, Scope};
use ledger_core::{LedgerPublicKey, LedgerSigningKey};
use policy::{EmbeddedEngine, PolicyEngine, RiskConfig};
use storage::{AppendConfig, Ledger, Store};

use crate::{
    Caller, Cluster, Clusters, Directory, Metrics, NewIdentity, Pipeline, PipelineParts, PolicyMode, TrustGates,
};

/// A gateway's parts over a fresh ledger, and the callers the builder created (by name).
#[allow(missing_debug_implementations)] // test scaffolding over parts that hold trait objects
pub struct TestApp {
    /// The pipeline, as the server and MCP use it.
    pub pipeline: Arc<Pipeline>,
    /// The database (to read rows and entries back).
    pub store: Store,
    /// The ledger's appender.
    pub ledger: Ledger,
    /// Identities and keys.
    pub directory: Directory,
    /// The ledger's public key (to check entries' signatures).
    pub signing_key: LedgerPublicKey,
    callers: BTreeMap<String, (Caller, String)>,
    _dir: tempfile::TempDir,
}

/// What the test app will hold; `build` makes it.
#[allow(missing_debug_implementations)] // holds `dyn Cluster`s
pub struct TestAppBuilder {
    clusters: Vec<Arc<dyn Cluster>>,
    identities: Vec<(String, Vec<Role>, Vec<Scope>)>,
    mode: PolicyMode,
    trust_gates: TrustGates,
    breakers: crate::Breakers,
    budgets: crate::Budgets,
    groups: BTreeMap<String, Vec<String>>,
    policy: Option<EmbeddedEngine>,
}

impl TestApp {
    /// A builder: no cluster, no identity (an admin `admin` is always created), enforce mode, no trust gate.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> TestAppBuilder {
        TestAppBuilder {
            clusters: Vec::new(),
            identities: Vec::new(),
            mode: PolicyMode::Enforce,
            trust_gates: TrustGates::default(),
            breakers: crate::Breakers::default(),
            budgets: crate::Budgets::default(),
            groups: BTreeMap::new(),
            policy: None,
        }
    }

    /// The caller created as `name`.
    pub fn caller(&self, name: &str) -> &Caller {
        &self.identity(name).0
    }

    /// The API key issued to `name` (for tests through HTTP).
    pub fn api_key(&self, name: &str) -> &str {
        &self.identity(name).1
    }

    fn identity(&self, name: &str) -> &(Caller, String) {
        self.callers
            .get(name)
            .unwrap_or_else(|| panic!("no identity {name:?} in the test app"))
    }
}

impl TestAppBuilder {
    /// Governs `cluster` (the first one is the default).
    pub fn with_cluster(mut self, cluster: Arc<dyn Cluster>) -> Self {
        self.clusters.push(cluster);
        self
    }

    /// An identity `name` with `roles` and scopes in their short form (`mutate:staging:Deployment`).
    pub fn with_identity(mut self, name: &str, roles: &[Role], scopes: &[&str]) -> Self {
        let scopes = scopes
            .iter()
            .map(|s| Scope::parse_short(s).unwrap_or_else(|e| panic!("scope {s:?}: {e}")))
            .collect();
        self.identities.push((name.to_owned(), roles.to_vec(), scopes));
        self
    }

    /// The groups of the identity `name` (none by default).
    pub fn with_groups(mut self, name: &str, groups: &[&str]) -> Self {
        self.groups
            .insert(name.to_owned(), groups.iter().map(|g| g.to_string()).collect());
        self
    }

    /// The policy (the shipped default by default), e.g. the default with rendered templates.
    pub fn with_policy(mut self, engine: EmbeddedEngine) -> Self {
        self.policy = Some(engine);
        self
    }

    /// The policy mode (enforce by default).
    pub fn with_mode(mut self, mode: PolicyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Blast-radius budgets (none by default).
    pub fn with_budgets(mut self, budgets: crate::Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// Circuit breakers (none by default).
    pub fn with_breakers(mut self, breakers: crate::Breakers) -> Self {
        self.breakers = breakers;
        self
    }

    /// Trust gates (none by default).
    pub fn with_trust_gates(mut self, gates: TrustGates) -> Self {
        self.trust_gates = gates;
        self
    }

    /// A fresh SQLite ledger (genesis written), the identities created, the pipeline over it all.
    pub async fn build(self) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let store = Store::connect(&url).await.expect("the test database");
        store.migrate().await.expect("migrations");
        let key = LedgerSigningKey::generate();
        let signing_key = key.public_key();
        let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
        ledger.initialize().await.expect("genesis");
        let directory = Directory::new(store.clone(), ledger.clone());
        let mut callers = BTreeMap::new();
        let admin = ("admin".to_owned(), vec![Role::Admin, Role::Auditor], Vec::new());
        for (name, roles, scopes) in std::iter::once(admin).chain(self.identities) {
            let new = NewIdentity {
                name: name.clone(),
                kind: if roles.contains(&Role::Operator) {
                    IdentityKind::Agent
                } else {
                    IdentityKind::Human
                },
                roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
                scopes,
                groups: self.groups.get(&name).cloned().unwrap_or_default(),
            };
            let (_, issued) = directory.create("system", new).await.expect("an identity");
            let caller = directory.authenticate(&issued.api_key).await.expect("its key");
            callers.insert(name, (caller, issued.api_key));
        }
        let default = self.clusters.first().map(|first| first.name().to_owned());
        let clusters = match default {
            None => Clusters::none(),
            Some(default) => Clusters::new(&default, self.clusters).expect("clusters"),
        };
        let pipeline = Pipeline::new(PipelineParts {
            store: store.clone(),
            ledger: ledger.clone(),
            signing_key: signing_key.clone(),
            clusters,
            policy: Arc::new(PolicyEngine::Embedded(match self.policy {
                Some(engine) => engine,
                None => EmbeddedEngine::default_policy().expect("the default policy"),
            })),
            risk: RiskConfig::default(),
            mode: self.mode,
            metrics: Arc::new(Metrics::new(None)),
            approval_window: Duration::from_secs(3600),
            trust_gates: self.trust_gates,
            approval_webhook: None,
            instance_lease: crate::ownership::DEFAULT_LEASE,
            freeze: Default::default(),
            breakers: self.breakers,
            budgets: self.budgets,
        });
        // Registered as a live instance, as `serve` does before it accepts requests (one heartbeat: a test
        // is shorter than the lease).
        pipeline.heartbeat().await.expect("the instance's heartbeat");
        TestApp {
            pipeline: Arc::new(pipeline),
            store,
            ledger,
            directory,
            signing_key,
            callers,
            _dir: dir,
        }
    }
}
