#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/test_validate_openapi.py: scripts/validate-openapi.py's checks
against a Swagger 2.0 file (Firecracker's, when ../shared/firecracker has
it; a small one written here otherwise) next to kiln's openapi.yaml: what
each of them lists is checked, what only kiln lists is left to
openapi.yaml, Firecracker's serde rules (null for an absent Option, the
looser bodies of SWAGGER2_LOOSER) hold, and real mismatches still show."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(TOP, 'scripts', 'validate-openapi.py')
KILN_SPEC = os.path.join(TOP, 'openapi.yaml')
FC_SPEC = os.path.join(os.path.dirname(TOP), 'shared', 'firecracker', 'firecracker.yaml')

spec_loader = importlib.util.spec_from_file_location('validate_openapi', SCRIPT)
vo = importlib.util.module_from_spec(spec_loader)
spec_loader.loader.exec_module(vo)

# a Swagger 2.0 file in Firecracker's manner, for a machine without ../shared
MINI_SWAGGER = """
swagger: "2.0"
info: {title: mini, version: "1"}
paths:
  /machine-config:
    get:
      responses:
        200: {description: ok, schema: {$ref: "#/definitions/MachineConfiguration"}}
        default: {description: err, schema: {$ref: "#/definitions/Error"}}
    patch:
      parameters:
        - {name: body, in: body, description: A subset, schema: {$ref: "#/definitions/MachineConfiguration"}}
      responses:
        204: {description: ok}
        400: {description: bad, schema: {$ref: "#/definitions/Error"}}
  /vsock:
    put:
      parameters:
        - {name: body, in: body, required: true, schema: {$ref: "#/definitions/Vsock"}}
      responses:
        204: {description: ok}
        400: {description: bad, schema: {$ref: "#/definitions/Error"}}
definitions:
  Error:
    type: object
    properties: {fault_message: {type: string}}
  MachineConfiguration:
    type: object
    required: [vcpu_count, mem_size_mib]
    properties:
      vcpu_count: {type: integer, minimum: 1}
      mem_size_mib: {type: integer}
      smt: {type: boolean}
  Vsock:
    type: object
    required: [guest_cid, uds_path]
    properties:
      guest_cid: {type: integer, minimum: 3}
      uds_path: {type: string}
"""


def exchange(method, path, status, req=None, resp=None):
    return {'method': method, 'path': path, 'status': status, 'raw': False,
            'request_body': None if req is None else json.dumps(req),
            'response_body': None if resp is None else json.dumps(resp)}


class SwaggerTwo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        path = FC_SPEC
        if not os.path.exists(path):
            path = os.path.join(cls.tmp, 'firecracker.yaml')
            with open(path, 'w') as f:
                f.write(MINI_SWAGGER)
        cls.fc_path = path
        cls.fc = vo.Spec(path)

    def problems(self, x):
        return vo.check_exchange(self.fc, x)

    def test_a_good_answer_passes_and_a_bad_one_shows(self):
        good = exchange('GET', '/machine-config', 200, resp={'vcpu_count': 2, 'mem_size_mib': 128})
        self.assertEqual(self.problems(good), [])
        bad = exchange('GET', '/machine-config', 200, resp={'vcpu_count': 'two', 'mem_size_mib': 1})
        self.assertTrue(any('vcpu_count' in p for p in self.problems(bad)), self.problems(bad))
        missing = exchange('GET', '/machine-config', 200, resp={'vcpu_count': 2})
        self.assertTrue(any('mem_size_mib' in p for p in self.problems(missing)))

    def test_null_stands_for_an_absent_optional_member_only(self):
        opt = exchange('GET', '/machine-config', 200,
                       resp={'vcpu_count': 1, 'mem_size_mib': 64, 'smt': None})
        self.assertEqual(self.problems(opt), [])
        req = exchange('GET', '/machine-config', 200, resp={'vcpu_count': None, 'mem_size_mib': 64})
        self.assertTrue(self.problems(req))

    def test_the_looser_bodies(self):
        partial = exchange('PATCH', '/machine-config', 204, req={'vcpu_count': 2})
        self.assertEqual(self.problems(partial), [])
        typo = exchange('PATCH', '/machine-config', 204, req={'vcpu_count': 'x'})
        self.assertTrue(self.problems(typo))
        cid0 = exchange('PUT', '/vsock', 204, req={'guest_cid': 0, 'uds_path': 'v.sock'})
        self.assertEqual(self.problems(cid0), [])

    def test_only_listed_exchanges_meet_the_second_spec(self):
        self.assertTrue(vo.listed(self.fc, exchange('PUT', '/vsock', 204)))
        self.assertFalse(vo.listed(self.fc, exchange('GET', '/migration', 200)))
        self.assertFalse(vo.listed(self.fc, exchange('DELETE', '/vsock', 400)))

    def test_the_command_line(self):
        log = os.path.join(self.tmp, 'traffic.jsonl')
        with open(log, 'w') as f:
            f.write(json.dumps(exchange('PUT', '/vsock', 204,
                                        req={'guest_cid': 3, 'uds_path': 'v.sock'})) + '\n')
            f.write(json.dumps(exchange('GET', '/machine-config', 200,
                                        resp={'vcpu_count': 0, 'mem_size_mib': 64})) + '\n')
        r = subprocess.run([sys.executable, SCRIPT, '--spec', KILN_SPEC, '--firecracker-spec',
                            self.fc_path, log], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('firecracker.yaml: response 200: vcpu_count', r.stdout)
        self.assertIn('2 of them against firecracker.yaml; 1 with mismatches', r.stdout)
        r = subprocess.run([sys.executable, SCRIPT, '--spec', KILN_SPEC, '--firecracker-spec',
                            os.path.join(self.tmp, 'absent.yaml'), log],
                           capture_output=True, text=True)
        self.assertIn('is not there', r.stdout)
        self.assertNotIn('against firecracker.yaml', r.stdout)


if __name__ == '__main__':
    unittest.main()
