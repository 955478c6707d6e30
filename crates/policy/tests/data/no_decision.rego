# Test fixture: the package exists but defines no `decision` rule.
package docketops.policy

import rego.v1

allow := true
