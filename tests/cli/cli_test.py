#!/usr/bin/env python3
"""End-to-end tests of the rwkvrt command-line tool: real processes, real files.

Run by CTest with the tool's path and the test data directory:
    cli_test.py RWKVRT_BINARY TESTDATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

RWKVRT = sys.argv[1] if len(sys.argv) > 1 else "rwkvrt"
TESTDATA = sys.argv[2] if len(sys.argv) > 2 else "../shared/testdata"
GOLDEN = ["v4_L2_C64", "v5_L2_C128", "v6_L2_C128", "v7_L2_C128", "v7_L3_C256"]


def run(*args, check=True):
    proc = subprocess.run([RWKVRT, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rwkvrt {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def golden(name):
    with open(os.path.join(TESTDATA, "golden", name + ".json")) as f:
        return json.load(f)


def max_abs(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))


class Help(unittest.TestCase):
    def test_every_command_has_help(self):
        top = run("--help").stdout
        commands = ["backends", "info", "logits", "bench", "convert", "random-model"]
        for cmd in commands:
            self.assertIn(cmd, top)
            out = run(cmd, "--help").stdout
            self.assertIn("Usage", out)
            self.assertGreater(len(out.splitlines()), 3, cmd)

    def test_unknown_command_fails(self):
        proc = run("frobnicate", check=False)
        self.assertNotEqual(proc.returncode, 0)


class Backends(unittest.TestCase):
    def test_lists_cpu(self):
        out = json.loads(run("backends", "--json").stdout)
        names = {b["name"]: b for b in out["backends"]}
        self.assertIn("cpu", names)
        self.assertTrue(names["cpu"]["usable"])
        self.assertEqual(names["cpu"]["abi"], 1)


class Info(unittest.TestCase):
    def test_reports_version_and_dims(self):
        expect = {"v4_L2_C64": ("4", 64), "v5_L2_C128": ("5.2", 128), "v6_L2_C128": ("6.0", 128),
                  "v7_L3_C256": ("7.0", 256)}
        for name, (version, width) in expect.items():
            info = json.loads(run("info", "--json", os.path.join(TESTDATA, "golden", name + ".pth")).stdout)
            self.assertEqual(info["version"], version)
            self.assertEqual(info["width"], width)
            self.assertEqual(info["format"], "pth")
            self.assertGreater(info["state_floats"], 0)

    def test_missing_file_is_a_clear_error(self):
        proc = run("info", "/nonexistent/model.pth", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/nonexistent/model.pth", proc.stderr)

    def test_garbage_file_is_a_clear_error(self):
        with tempfile.NamedTemporaryFile(suffix=".pth") as f:
            f.write(b"this is not a model at all")
            f.flush()
            proc = run("info", f.name, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("not a model file", proc.stderr)
            self.assertEqual(proc.stdout, "")


class Logits(unittest.TestCase):
    def test_golden_vectors_in_both_modes(self):
        for name in GOLDEN:
            g = golden(name)
            tokens = ",".join(map(str, g["tokens"]))
            model = os.path.join(TESTDATA, "golden", name + ".pth")
            for mode in ([], ["--rnn"]):
                out = json.loads(run("logits", "-q", "--weights", "f32", "--model", model,
                                     "--tokens", tokens, "--all", *mode).stdout)["logits"]
                self.assertEqual(len(out), len(g["tokens"]))
                worst = max(max_abs(a, b) for a, b in zip(out, g["logits_rnn"]))
                self.assertLessEqual(worst, 1e-4, f"{name} {mode}")
            last = json.loads(run("logits", "-q", "-m", model, "-t", tokens).stdout)["logits"]
            self.assertEqual(len(last), 1)
            self.assertLessEqual(max_abs(last[0], g["logits_seq_last"]), 1e-4)

    def test_state_out_then_state_in_continues(self):
        g = golden("v7_L3_C256")
        model = os.path.join(TESTDATA, "golden", "v7_L3_C256.pth")
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "state.bin")
            run("logits", "-q", "-m", model, "-t", ",".join(map(str, g["tokens"])),
                "--state-out", state)
            self.assertTrue(os.path.getsize(state) > 64)
            out = json.loads(run("logits", "-q", "-m", model, "-t", str(g["next_token"]),
                                 "--state-in", state).stdout)["logits"][0]
            self.assertLessEqual(max_abs(out, g["logits_after_next"]), 1e-4)
            # A state of another model is refused with a reason.
            other = os.path.join(TESTDATA, "golden", "v7_L2_C128.pth")
            proc = run("logits", "-q", "-m", other, "-t", "1", "--state-in", state, check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("state", proc.stderr)

    def test_bad_tokens_are_refused(self):
        model = os.path.join(TESTDATA, "golden", "v7_L2_C128.pth")
        for tokens, needle in (("1,x,3", "'x'"), ("1,,2", "''"), ("-4", "'-4'"), ("500", "500")):
            proc = run("logits", "-q", "-m", model, "-t", tokens, check=False)
            self.assertEqual(proc.returncode, 1, tokens)
            self.assertIn(needle, proc.stderr)
            self.assertEqual(proc.stdout, "")


class Convert(unittest.TestCase):
    def test_convert_gives_identical_logits(self):
        with tempfile.TemporaryDirectory() as d:
            for src in (os.path.join(TESTDATA, "golden", "v6_L2_C128.pth"),
                        os.path.join(TESTDATA, "rwkvcpp", "tiny-rwkv-5v2-730K-Q5_0.bin")):
                out = os.path.join(d, "m.safetensors")
                run("convert", "-q", src, out)
                a = run("logits", "-q", "-m", src, "-t", "34,105,110").stdout
                b = run("logits", "-q", "-m", out, "-t", "34,105,110").stdout
                self.assertEqual(a, b)
                info = json.loads(run("info", "--json", out).stdout)
                self.assertEqual(info["format"], "safetensors")

    def test_random_model_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.safetensors")
            run("random-model", "-q", out, "--layers", "1", "--width", "64", "--head-size", "32")
            info = json.loads(run("info", "--json", out).stdout)
            self.assertEqual((info["version"], info["layers"], info["width"], info["vocab"]),
                             ("7.0", 1, 64, 256))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
