//! kubectl's view of the gateway: how a Kubernetes API request (`kubectl --server https://gateway/k8s`) becomes
//! actions, and how their outcomes become the answers kubectl expects. Pure functions of the request's parts;
//! the server does the HTTP and the pipeline runs the actions.
//!
//! - `resource_path`: which governed resource a URL path names (and which paths are discovery).
//! - `plan` and `patch`: which actions a request is (reads, SCALE, create, DELETE; a PATCH's many meanings).
//! - `outcome`: the action request each planned action sends, and whether its outcome is success for kubectl.
//! - `answers`: the Kubernetes objects (lists, `Scale`, `Status`) the answers carry.
//! - `table`: whether kubectl asks for the API server's `Table` (the columns of `kubectl get`).
//! - `all_namespaces`: `get -A`, one LIST per namespace the caller's scopes name.
//! - `watch`: `?watch=true`, a recorded LIST and then the API server's event stream.
//! - `refusal`: a Kubernetes `Status` failure, so kubectl prints every refusal readably.

mod all_namespaces;
mod answers;
mod outcome;
mod patch;
mod plan;
mod refusal;
mod resource_path;
mod table;
mod watch;

pub use all_namespaces::{
    MAX_NAMESPACES, cut_off_warning, is_cut_off, merged_answer, namespace_names, namespaces_in_scope,
    needs_namespace_list,
};
pub use answers::{deletion_answer, list_answer, object_answer, scale_answer, with_planned_images};
/// What a watch needs of the executor (the server opens it after the LIST is recorded).
pub use executor::{CallContext, ExecError, Watch, WatchOptions};
pub use outcome::{action_request, judge_outcome};
pub use patch::{plan_patch, without_resource_version};
pub use plan::{
    Plan, PlannedAction, check_replace_precondition, plan_create, plan_delete, plan_list, plan_replace, plan_scale,
    replace_resource_version, requested_replicas,
};
pub use refusal::Refusal;
pub use resource_path::{ResourcePath, is_discovery, kind_at, plain_segments};
pub use table::wants_table;
pub use watch::{is_watch, plan_watch, watch_options};
