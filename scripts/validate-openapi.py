#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks recorded API traffic against kiln's openapi.yaml.

    scripts/validate-openapi.py [--spec openapi.yaml] [--allow-empty] LOG...

Each LOG holds JSON lines {"method", "path", "status", "request_body",
"response_body", "raw"} as tests/integration/api_client.c writes them when
KILN_API_LOG is set (bodies are raw text or null). For every exchange:
  - a path openapi.yaml does not list, or a listed path with a method it
    does not list, must have been answered 400 with an Error body (as
    Firecracker answers both);
  - otherwise the status must be documented for the operation (an error may
    be covered by its "default"), and the response body must match that response's schema
    (no body where none is documented);
  - when the request succeeded (2xx) and was not handcrafted ("raw"), its
    body must match the operation's requestBody schema (none if it has
    none). Failed requests are not checked: bad input is what they test.
Prints every mismatch and a count; exits 1 on any mismatch (or an empty log
without --allow-empty), 2 when the spec itself is broken.
"""
import argparse
import copy
import json
import re
import sys

import jsonschema
import yaml

# OpenAPI 3.0 keywords that JSON Schema does not know (or reads differently)
OPENAPI_ONLY = ("nullable", "example", "discriminator", "xml", "externalDocs", "deprecated")


def resolve(node, root, seen=()):
    """Replaces every local $ref by a copy of its target (the spec has no cycles)."""
    if isinstance(node, list):
        return [resolve(n, root, seen) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"unresolvable or cyclic $ref {ref}")
        target = root
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise ValueError(f"$ref {ref} points nowhere")
            target = target[part]
        return resolve(copy.deepcopy(target), root, seen + (ref,))
    return {k: resolve(v, root, seen) for k, v in node.items()}


def to_json_schema(s):
    """OpenAPI 3.0 schema object -> JSON Schema (draft 7): nullable becomes anyOf null."""
    if isinstance(s, list):
        return [to_json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: to_json_schema(v) for k, v in s.items() if k not in OPENAPI_ONLY}
    for key in ("properties",):  # property names are data, not keywords
        if key in s:
            out[key] = {name: to_json_schema(v) for name, v in s[key].items()}
    if s.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


class Spec:
    def __init__(self, path):
        with open(path) as f:
            raw = yaml.safe_load(f)
        if not str(raw.get("openapi", "")).startswith("3.0"):
            raise ValueError("not an OpenAPI 3.0 document")
        self.paths = resolve(raw["paths"], raw)
        self.routes = []
        for template, item in self.paths.items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            self.routes.append((re.compile(rx), template, item))
        self.check()

    def schema_of(self, content):
        """The JSON Schema of an application/json content map, or None."""
        media = (content or {}).get("application/json")
        return to_json_schema(media["schema"]) if media and "schema" in media else None

    def check(self):
        """Every operation has responses and every schema compiles."""
        for template, item in self.paths.items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                where = f"{method.upper()} {template}"
                if not op.get("responses"):
                    raise ValueError(f"{where} documents no responses")
                bodies = [r.get("content") for r in op["responses"].values()]
                bodies.append((op.get("requestBody") or {}).get("content"))
                for content in bodies:
                    schema = self.schema_of(content)
                    if schema is not None:
                        jsonschema.Draft7Validator.check_schema(schema)

    def find(self, path):
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # kiln accepts one trailing slash, as Firecracker
        for rx, template, item in self.routes:
            if rx.match(path):
                return template, item
        return None, None


def parse_body(text):
    """(present, value, error): the body as JSON; "" and None are absent."""
    if text is None or text == "":
        return False, None, None
    if isinstance(text, (dict, list)):
        return True, text, None
    try:
        return True, json.loads(text), None
    except ValueError as err:
        return True, None, f"not JSON ({err})"


def errors_of(schema, value):
    v = jsonschema.Draft7Validator(schema)
    return ["/".join(map(str, e.absolute_path)) + (": " if e.absolute_path else "") + e.message
            for e in sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))]


ERROR_SCHEMA = {"type": "object", "required": ["fault_message"],
                "properties": {"fault_message": {"type": "string"}},
                "additionalProperties": False}


def check_exchange(spec, x):
    """The list of problems with one logged exchange."""
    method, path, status = x.get("method"), x.get("path"), x.get("status")
    if not isinstance(method, str) or not isinstance(path, str) or not isinstance(status, int):
        return ["malformed log line: method, path and status are required"]
    problems = []
    has_resp, resp, resp_err = parse_body(x.get("response_body"))
    template, item = spec.find(path.split("?", 1)[0])
    op = item.get(method.lower()) if item else None
    if op is None:
        wanted = 400  # Firecracker's "Invalid request method and/or path"
        what = "path not in openapi.yaml" if item is None else f"method not documented for {template}"
        if status != wanted:
            return [f"{what}, yet answered {status} (expected {wanted})"]
        if resp_err or not has_resp:
            return [f"{wanted} without a JSON Error body"]
        return [f"{wanted} body: {m}" for m in errors_of(ERROR_SCHEMA, resp)]

    responses = op["responses"]
    # "default" documents the errors (the 500s, the 503 of a shutdown), not other successes
    rspec = responses.get(str(status)) or (responses.get("default") if status >= 400 else None)
    if rspec is None:
        return [f"status {status} is not documented for {method} {template}"]
    schema = spec.schema_of(rspec.get("content"))
    if schema is None and has_resp:
        problems.append(f"response {status} should have no body")
    elif schema is not None:
        if resp_err or not has_resp:
            problems.append(f"response {status}: {resp_err or 'missing JSON body'}")
        else:
            problems += [f"response {status}: {m}" for m in errors_of(schema, resp)]

    if 200 <= status < 300 and not x.get("raw"):
        has_req, req, req_err = parse_body(x.get("request_body"))
        rb = op.get("requestBody")
        rschema = spec.schema_of(rb.get("content")) if rb else None
        if rschema is None and has_req:
            problems.append("request has a body the operation does not take")
        elif rschema is not None and (has_req or rb.get("required", False)):
            # a body the operation marks required: false may be left out
            if req_err or not has_req:
                problems.append(f"request: {req_err or 'missing JSON body'}")
            else:
                problems += [f"request: {m}" for m in errors_of(rschema, req)]
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="openapi.yaml")
    ap.add_argument("--allow-empty", action="store_true")
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args()
    try:
        spec = Spec(args.spec)
    except (OSError, ValueError, KeyError, yaml.YAMLError,
            jsonschema.exceptions.SchemaError) as err:
        print(f"{args.spec}: {err}", file=sys.stderr)
        return 2

    checked = bad = 0
    for log in args.logs:
        with open(log) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    x = json.loads(line)
                except ValueError as err:
                    problems, x = [f"line is not JSON ({err})"], {}
                else:
                    problems = check_exchange(spec, x) if isinstance(x, dict) else ["not an object"]
                checked += 1
                if problems:
                    bad += 1
                    where = f"{log}:{n}: {x.get('method')} {x.get('path')} -> {x.get('status')}"
                    for p in problems:
                        print(f"{where}: {p}")
    print(f"validate-openapi: {checked} exchanges checked against {args.spec}, "
          f"{bad} with mismatches")
    if checked == 0 and not args.allow_empty:
        print("validate-openapi: the log is empty (was KILN_API_LOG set?)", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
