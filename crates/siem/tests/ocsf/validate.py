"""Validates OCSF events against the JSON Schema of their class.

Usage: python validate.py VERSION CLASS_UID FILE

FILE holds one event per line (JSON). The schema is the one `ocsf-json-schema` generates for class CLASS_UID
of OCSF VERSION (objects embedded, the profiles each event names in metadata.profiles), checked with
`jsonschema` (Draft 2020-12). Prints one JSON line per event, {"line": N, "errors": [...]}, and exits 0 when
every event is valid, 1 otherwise. Run with the python that scripts/ensure-ocsf-validator prints.
"""

import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main() -> int:
    version, class_uid, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    class_name = ocsf.lookup_class_name_from_uid(class_uid=class_uid)
    validators = {}
    invalid = 0
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            event = json.loads(line)
            profiles = tuple(sorted((event.get("metadata") or {}).get("profiles") or []))
            if profiles not in validators:
                schema = ocsf.get_class_schema(class_name=class_name, profiles=list(profiles))
                Draft202012Validator.check_schema(schema)
                validators[profiles] = Draft202012Validator(schema)
            errors = [
                f"{'/'.join(str(p) for p in error.absolute_path) or '(event)'}: {error.message}"
                for error in validators[profiles].iter_errors(event)
            ]
            invalid += bool(errors)
            print(json.dumps({"line": number, "errors": errors}))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
