# METADATA
# {
#   "title": "No privileged pods",
#   "description": "Denies APPLY manifests and PATCH merge patches whose pod spec (Pod, workload template, CronJob job template) has a privileged container, allowPrivilegeEscalation true, the SYS_ADMIN or ALL capability, hostNetwork, hostPID or hostIPC, or a hostPath volume.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "allow_host_path": {
#           "type": "boolean", "default": false,
#           "description": "Allow hostPath volumes (e.g. for a log collector); everything else stays denied."
#         },
#         "namespaces": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Namespace patterns (a name, a prefix ending in *, or *); empty: everywhere."
#         }
#       },
#       "additionalProperties": false
#     },
#     "example": {"namespaces": ["*"]}
#   }
# }
package docketops.templates.no_privileged_pods

import rego.v1

deny_reasons contains sprintf("privileged pod spec: %s", [violation]) if {
	in_scope
	some violation in violations
}

violations contains sprintf("container %v is privileged", [container_name(container)]) if {
	some container in containers
	container.securityContext.privileged == true
}

violations contains sprintf("container %v allows privilege escalation", [container_name(container)]) if {
	some container in containers
	container.securityContext.allowPrivilegeEscalation == true
}

violations contains sprintf("container %v adds the capability %s", [container_name(container), capability]) if {
	some container in containers
	is_array(container.securityContext.capabilities.add)
	some capability in container.securityContext.capabilities.add
	is_string(capability)
	trim_prefix(upper(capability), "CAP_") in {"SYS_ADMIN", "ALL"}
}

violations contains sprintf("%s is true", [field]) if {
	some spec in pod_specs
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
}

violations contains sprintf("volume %v mounts a host path", [object.get(volume, "name", "(unnamed)")]) if {
	not params.allow_host_path
	some spec in pod_specs
	is_array(spec.volumes)
	some volume in spec.volumes
	is_object(volume.hostPath)
}

container_name(container) := object.get(container, "name", "(unnamed)")

# The objects an action writes whole or in part, and the pod specs in them (Pod, workloads, CronJob).
written contains input.action.parameters.manifest if input.action.action_type == "APPLY"

written contains input.action.parameters.patch if input.action.action_type == "PATCH"

pod_spec_paths := [["spec"], ["spec", "template", "spec"], ["spec", "jobTemplate", "spec", "template", "spec"]]

pod_specs contains spec if {
	some document in written
	is_object(document)
	some path in pod_spec_paths
	spec := object.get(document, path, null)
	is_object(spec)
}

containers contains container if {
	some spec in pod_specs
	some field in ["containers", "initContainers", "ephemeralContainers"]
	is_array(spec[field])
	some container in spec[field]
	is_object(container)
}

in_scope if count(params.namespaces) == 0

in_scope if {
	some pattern in params.namespaces
	namespace_matches(pattern, input.action.namespace)
}

# Namespace patterns as in the risk tiers: exact, "*", or a prefix ending in "*".
namespace_matches(pattern, namespace) if {
	is_string(namespace)
	pattern == namespace
}

namespace_matches("*", namespace) if is_string(namespace)

namespace_matches(pattern, namespace) if {
	is_string(namespace)
	endswith(pattern, "*")
	startswith(namespace, trim_suffix(pattern, "*"))
}
