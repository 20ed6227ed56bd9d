"""The ctypes mirror of rwkvrt.h: struct layouts, exported functions, defaults, status mapping."""

import ctypes
import os
import subprocess
import unittest

import support  # noqa: F401  (puts the package on sys.path)

import rwkvrt
from rwkvrt import _lib


class LayoutTest(unittest.TestCase):
    def test_struct_layouts_match_the_compiler(self):
        probe = os.environ.get("RWKVRT_ABI_PROBE")
        if not probe:
            self.skipTest("RWKVRT_ABI_PROBE is not set")
        out = subprocess.run([probe], check=True, capture_output=True, text=True).stdout
        c_layout: dict[str, dict[str, tuple[int, int]]] = {}
        for line in out.splitlines():
            struct, field, offset, size = line.split()
            c_layout.setdefault(struct, {})[field] = (int(offset), int(size))
        self.assertEqual(set(c_layout), set(_lib.STRUCTS))
        for name, ctype in _lib.STRUCTS.items():
            with self.subTest(struct=name):
                fields = c_layout[name]
                self.assertEqual(ctypes.sizeof(ctype), fields.pop("-")[1], "sizeof")
                py_fields = {f: (getattr(ctype, f).offset, getattr(ctype, f).size)
                             for f, _ in ctype._fields_}
                self.assertEqual(py_fields, fields)

    def test_params_defaults_carry_the_ctypes_size(self):
        # *_default() sets struct_size = sizeof in C: equal to the ctypes size iff layouts agree.
        lib = _lib.lib()
        for fn, ctype in [("rwkvrt_model_params_default", _lib.rwkvrt_model_params),
                          ("rwkvrt_sampling_params_default", _lib.rwkvrt_sampling_params),
                          ("rwkvrt_generate_params_default", _lib.rwkvrt_generate_params)]:
            with self.subTest(fn=fn):
                self.assertEqual(getattr(lib, fn)().struct_size, ctypes.sizeof(ctype))


class FunctionsTest(unittest.TestCase):
    def test_every_header_function_is_declared_and_exported(self):
        header = support.REPO_DIR / "sdk" / "include" / "rwkvrt" / "rwkvrt.h"
        import re
        declared = set(re.findall(r"RWKVRT_API\s+[^;(]*?\b(rwkvrt_\w+)\s*\(", header.read_text()))
        self.assertTrue(declared)
        self.assertEqual(declared, set(_lib.FUNCTION_NAMES))
        lib = _lib.lib()
        for name in _lib.FUNCTION_NAMES:
            self.assertTrue(hasattr(lib, name), name)

    def test_versions(self):
        self.assertGreaterEqual(rwkvrt.abi_version(), rwkvrt.ABI_VERSION)
        self.assertRegex(rwkvrt.library_version(), r"^\d+\.\d+\.\d+$")
        self.assertTrue(os.path.exists(rwkvrt.library_path()))

    def test_sampling_defaults_equal_the_library(self):
        c = _lib.lib().rwkvrt_sampling_params_default()
        py, _ = rwkvrt.SamplingParams()._to_c()
        for name, _ in _lib.rwkvrt_sampling_params._fields_:
            if name in ("banned", "logit_bias_ids", "logit_bias_values"):
                continue
            self.assertEqual(getattr(py, name), getattr(c, name), name)
        self.assertEqual(rwkvrt.SamplingParams().mode, rwkvrt.SamplingMode(c.mode))

    def test_generate_defaults(self):
        c = _lib.lib().rwkvrt_generate_params_default()
        self.assertEqual((c.max_tokens, c.n_stop, c.stop_at_eos), (256, 0, 1))


class ErrorMappingTest(unittest.TestCase):
    def test_every_status_has_its_class(self):
        lib = _lib.lib()
        for status in range(1, 14):
            name = lib.rwkvrt_status_name(status).decode()
            cls = rwkvrt.error_class(status)
            with self.subTest(status=name):
                self.assertIsNot(cls, rwkvrt.RwkvrtError)
                self.assertEqual(cls.STATUS, status)
                # RWKVRT_ERR_STATE_MISMATCH -> StateMismatchError, with the documented renames.
                words = name.removeprefix("RWKVRT_ERR_").split("_")
                expected = "".join(w.capitalize() for w in words) + "Error"
                expected = {"IoError": "InputOutputError", "CorruptError": "CorruptStateError",
                            "AbiMismatchError": "AbiMismatchError"}.get(expected, expected)
                self.assertEqual(cls.__name__, expected)
                self.assertIs(getattr(rwkvrt, cls.__name__), cls)
        self.assertIs(rwkvrt.error_class(999), rwkvrt.RwkvrtError)

    def test_error_carries_status_and_message(self):
        with self.assertRaises(rwkvrt.InputOutputError) as ctx:
            rwkvrt.Tokenizer.load(support.REPO_DIR / "no-such-tokenizer.json")
        e = ctx.exception
        self.assertEqual(e.status, 2)
        self.assertEqual(e.status_name, "RWKVRT_ERR_IO")
        self.assertEqual(e.function, "rwkvrt_tokenizer_load")
        self.assertIn("no-such-tokenizer.json", e.message)
        self.assertIn("RWKVRT_ERR_IO", str(e))
        self.assertIsInstance(e, rwkvrt.RwkvrtError)

    def test_invalid_argument_is_a_value_error(self):
        self.assertTrue(issubclass(rwkvrt.InvalidArgumentError, ValueError))


class BackendsTest(unittest.TestCase):
    def test_cpu_backend_is_found_and_usable(self):
        found = {b.name: b for b in rwkvrt.backends()}
        self.assertIn("cpu", found)
        cpu = found["cpu"]
        self.assertTrue(cpu.usable, cpu.unavailable_reason)
        devices = rwkvrt.backend_devices(cpu)
        self.assertEqual(len(devices), cpu.device_count)
        self.assertTrue(devices[0].name)

    def test_loading_a_missing_plugin_is_an_io_error(self):
        with self.assertRaises(rwkvrt.InputOutputError):
            rwkvrt.load_backend(support.REPO_DIR / "no-such-plugin.so")

    def test_log_callback_receives_lines(self):
        lines = []
        rwkvrt.set_log_callback(lambda level, msg: lines.append((level, msg)),
                                rwkvrt.LogLevel.DEBUG)
        try:
            rwkvrt.Model(support.MODEL_PATH, threads=support.THREADS).close()
        finally:
            rwkvrt.set_log_callback(None)
        self.assertTrue(lines, "loading a model at DEBUG level logs nothing")
        self.assertTrue(all(isinstance(level, rwkvrt.LogLevel) for level, _ in lines))


if __name__ == "__main__":
    unittest.main()
