# Test fixture: a custom policy replacing the default one. Only staging-like namespaces are allowed,
# whatever the risk.
package docketops.policy

import rego.v1

import data.docketops.lib

decision := {"outcome": "allow", "reasons": ["staging-like namespace"]} if {
	lib.staging_like(input.action.namespace)
} else := {"outcome": "deny", "reasons": [sprintf("namespace %s is not staging-like", [input.action.namespace])]}
