//! kubectl's view of the gateway: how a Kubernetes API request (`kubectl --server https://gateway/k8s`) becomes
//! actions, and how their outcomes become the answers kubectl expects. Pure functions of the request's parts;
//! the server does the HTTP and the pipeline runs the actions.
//!
//! - `resource_path`: which governed resource a URL path names (and which paths are discovery).
//! - `plan` and `patch`: which actions a request is (reads, SCALE, create, DELETE; a PATCH's many meanings).
//! - `outcome`: the action request each planned action sends, and whether its outcome is success for kubectl.
//! - `answers`: the Kubernetes objects (lists, `Scale`, `Status`) the answers carry.
//! - `refusal`: a Kubernetes `Status` failure, so kubectl prints every refusal readably.

mod answers;
mod outcome;
mod patch;
mod plan;
mod refusal;
mod resource_path;

pub use answers::{deletion_answer, list_answer, object_answer, scale_answer, with_planned_images};
pub use outcome::{action_request, judge_outcome};
pub use patch::plan_patch;
pub use plan::{Plan, PlannedAction, plan_create, plan_delete, plan_list, plan_scale, requested_replicas};
pub use refusal::Refusal;
pub use resource_path::{ResourcePath, is_discovery, kind_at, plain_segments};
