#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks recorded API traffic against kiln's openapi.yaml (and Firecracker's swagger).

    scripts/validate-openapi.py [--spec openapi.yaml]
                                [--firecracker-spec firecracker.yaml] [--allow-empty] LOG...

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
With --firecracker-spec (Firecracker's own Swagger 2.0 file, e.g.
../shared/firecracker/firecracker.yaml; a path that does not exist is
skipped with a note), the exchanges whose path and method that file lists
are checked against it too, by the same rules; the others (kiln's own
endpoints, such as /migration, and requests to unknown paths) are left to
openapi.yaml alone. Swagger 2.0 is read as OpenAPI 3.0: a body parameter is
the requestBody, a response's schema its application/json content, and
x-nullable is nullable; an optional member may be null (serde's Option),
and SWAGGER2_LOOSER lists where Firecracker takes more than its swagger says.
Prints every mismatch and a count; exits 1 on any mismatch (or an empty log
without --allow-empty), 2 when a spec itself is broken.
"""
import argparse
import copy
import json
import os
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
    if s.get("nullable") is True or s.get("x-nullable") is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


def swagger2_operation(op):
    """A Swagger 2.0 operation in OpenAPI 3.0's shape (its $refs left to resolve())."""
    out = {k: v for k, v in op.items() if k not in ("parameters", "responses")}
    for param in op.get("parameters") or []:
        if param.get("in") == "body":
            out["requestBody"] = {"required": bool(param.get("required", False)),
                                  "content": {"application/json": {"schema": param["schema"]}}}
    out["responses"] = {}
    for code, resp in (op.get("responses") or {}).items():
        r = {"description": resp.get("description", "")}
        if "schema" in resp:
            r["content"] = {"application/json": {"schema": resp["schema"]}}
        out["responses"][str(code)] = r  # YAML reads 200 as a number
    return out


def option_nullable(node):
    """Marks every optional member of every object schema x-nullable (in place).

    Firecracker's serde structs hold an optional member as Option<T>: they
    read a null there as absent and write an absent one as null (GET
    /vm/config's "balloon": null, the hinting status's "guest_cmd": null),
    which its swagger, written for the members' values, does not say."""
    if isinstance(node, list):
        for n in node:
            option_nullable(n)
    elif isinstance(node, dict):
        required = node.get("required") if isinstance(node.get("required"), list) else []
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    option_nullable(sub)
                    if name not in required and isinstance(sub, dict):
                        sub["x-nullable"] = True
            else:
                option_nullable(value)


# Where Firecracker's swagger is stricter than the code that answers, by
# (method, path): what the check takes instead, and why.
SWAGGER2_LOOSER = {
    # vmm_config/machine_config.rs: the PATCH body is a MachineConfigUpdate,
    # every member optional (the swagger's description: "A subset")
    ("patch", "/machine-config"): "partial request",
    # parsed_request.rs reads the body as any serde_json::Value and
    # mmds/data_store.rs put_data keeps it whatever its type
    ("put", "/mmds"): "any JSON",
    ("patch", "/mmds"): "any JSON",
    ("get", "/mmds"): "any JSON",
    # vmm_config/vsock.rs: guest_cid is any u32, nothing checks the swagger's
    # minimum of 3 (firecracker-containerd sends the Go SDK's zero)
    ("put", "/vsock"): "any u32 guest_cid",
}


def swagger2_loosen(paths):
    """Applies SWAGGER2_LOOSER to resolved Swagger 2.0 paths (in place)."""
    for (method, template), how in SWAGGER2_LOOSER.items():
        op = paths.get(template, {}).get(method)
        if op is None:
            continue
        media = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        if how == "partial request" and media:
            media["schema"].pop("required", None)
        elif how == "any u32 guest_cid" and media:
            media["schema"]["properties"]["guest_cid"].pop("minimum", None)
        elif how == "any JSON":
            for content in [(op.get("requestBody") or {}).get("content")] + \
                    [r.get("content") for c, r in op["responses"].items() if c.startswith("2")]:
                if content and "application/json" in content:
                    content["application/json"]["schema"] = {}


def swagger2_paths(raw):
    """The paths of a Swagger 2.0 document as OpenAPI 3.0 path items."""
    return {template: {m: (swagger2_operation(op) if m != "parameters" else op)
                       for m, op in item.items()}
            for template, item in (raw.get("paths") or {}).items()}


class Spec:
    def __init__(self, path):
        with open(path) as f:
            raw = yaml.safe_load(f)
        if not isinstance(raw, dict):
            raise ValueError("not a YAML mapping")
        if str(raw.get("swagger", "")) == "2.0":
            paths = swagger2_paths(raw)
        elif str(raw.get("openapi", "")).startswith("3.0"):
            paths = raw["paths"]
        else:
            raise ValueError("neither an OpenAPI 3.0 nor a Swagger 2.0 document")
        self.name = path.rsplit("/", 1)[-1]
        self.paths = resolve(paths, raw)
        if str(raw.get("swagger", "")) == "2.0":
            option_nullable(self.paths)
            swagger2_loosen(self.paths)
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


def listed(spec, x):
    """Whether spec documents the exchange's path and method."""
    path, method = x.get("path"), x.get("method")
    if not isinstance(path, str) or not isinstance(method, str):
        return True  # malformed: check_exchange says so
    _, item = spec.find(path.split("?", 1)[0])
    return bool(item) and method.lower() in item


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
    ap.add_argument("--firecracker-spec", metavar="SWAGGER",
                    help="also check the exchanges Firecracker's swagger lists against it")
    ap.add_argument("--allow-empty", action="store_true")
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args()
    specs = [args.spec]
    if args.firecracker_spec and os.path.exists(args.firecracker_spec):
        specs.append(args.firecracker_spec)
    elif args.firecracker_spec:
        print(f"validate-openapi: {args.firecracker_spec} is not there; "
              f"checking against {args.spec} alone")
    loaded = []
    for path in specs:
        try:
            loaded.append(Spec(path))
        except (OSError, ValueError, KeyError, yaml.YAMLError,
                jsonschema.exceptions.SchemaError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 2
    spec, others = loaded[0], loaded[1:]

    checked = bad = 0
    also = {o.name: 0 for o in others}  # exchanges each other spec lists
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
                    for o in others if isinstance(x, dict) else []:
                        if listed(o, x):
                            also[o.name] += 1
                            problems += [f"{o.name}: {p}" for p in check_exchange(o, x)]
                checked += 1
                if problems:
                    bad += 1
                    where = f"{log}:{n}: {x.get('method')} {x.get('path')} -> {x.get('status')}"
                    for p in problems:
                        print(f"{where}: {p}")
    print(f"validate-openapi: {checked} exchanges checked against {args.spec}"
          + "".join(f", {n} of them against {name}" for name, n in also.items())
          + f"; {bad} with mismatches")
    if checked == 0 and not args.allow_empty:
        print("validate-openapi: the log is empty (was KILN_API_LOG set?)", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
