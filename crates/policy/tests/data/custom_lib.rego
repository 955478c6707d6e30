# Test fixture: a helper package used by custom_policy.rego (policies may span several files).
package docketops.lib

import rego.v1

staging_like(namespace) if namespace == "staging"

staging_like(namespace) if startswith(namespace, "dev-")
