# Test fixture: `decision` is declared but undefined unless input.approved_by_magic is true.
package docketops.policy

import rego.v1

decision := {"outcome": "allow", "reasons": ["magic"]} if input.approved_by_magic == true
