# METADATA
# {
#   "title": "Image registry allowlist",
#   "description": "Container images must come from the given registries (or repository prefixes): SET_IMAGE's image and the images of every container, init and ephemeral container in APPLY manifests and PATCH merge patches. Other images are denied.",
#   "custom": {
#     "parameters": {
#       "type": "object",
#       "properties": {
#         "registries": {
#           "type": "array", "items": {"type": "string"}, "minItems": 1,
#           "description": "Allowed registries (ghcr.io, registry.example.com:5000) or repository prefixes (ghcr.io/acme); Docker Hub images count as docker.io/library/NAME or docker.io/USER/NAME."
#         },
#         "namespaces": {
#           "type": "array", "items": {"type": "string"}, "default": [],
#           "description": "Namespace patterns (a name, a prefix ending in *, or *); empty: everywhere."
#         }
#       },
#       "required": ["registries"],
#       "additionalProperties": false
#     },
#     "example": {"registries": ["ghcr.io/acme", "registry.example.com"]}
#   }
# }
package docketops.templates.image_registry_allowlist

import rego.v1

deny_reasons contains sprintf("image %s is not from an allowed registry (%s)", [image, concat(", ", params.registries)]) if {
	in_scope
	some image in images
	not allowed(image)
}

images contains image if {
	input.action.action_type == "SET_IMAGE"
	image := input.action.parameters.image
	is_string(image)
}

images contains container.image if {
	some container in containers
	is_string(container.image)
}

allowed(image) if {
	reference := lower(repository(image))
	some registry in params.registries
	prefix := lower(trim_suffix(registry, "/"))
	allowed_by(reference, prefix)
}

allowed_by(reference, prefix) if reference == prefix

# The prefix must end at a path segment, tag or digest: ghcr.io/acme allows ghcr.io/acme/app, not ghcr.io/acme-evil/app.
allowed_by(reference, prefix) if startswith(reference, concat("", [prefix, "/"]))

allowed_by(reference, prefix) if startswith(reference, concat("", [prefix, ":"]))

allowed_by(reference, prefix) if startswith(reference, concat("", [prefix, "@"]))

# Docker's rule: the first path segment is a registry when it has a "." or a ":" or is "localhost";
# otherwise the image is on Docker Hub (docker.io, and library/ for one-segment names).
repository(image) := image if {
	contains(image, "/")
	is_registry(split(image, "/")[0])
} else := concat("/", ["docker.io", image]) if {
	contains(image, "/")
} else := concat("/", ["docker.io/library", image])

is_registry(host) if contains(host, ".")

is_registry(host) if contains(host, ":")

is_registry(host) if host == "localhost"

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
