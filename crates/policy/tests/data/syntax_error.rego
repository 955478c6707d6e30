# Test fixture: not valid Rego.
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": [} if {
