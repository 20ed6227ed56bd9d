"""The streaming sample (samples/python_streaming/stream.py) prints the generation the binding
makes."""

import os
import subprocess
import sys
import unittest

import support
from support import GREEDY, PROMPT

SAMPLE = os.environ.get("RWKVRT_STREAM_SAMPLE",
                        str(support.REPO_DIR / "samples" / "python_streaming" / "stream.py"))


class StreamSampleTest(unittest.TestCase):
    def test_output_equals_the_greedy_generation(self):
        max_tokens = 32
        with support.shared_model().session() as s:
            expected = s.generate(PROMPT, max_tokens=max_tokens, sampling=GREEDY).read()
        self.assertTrue(expected)
        env = dict(os.environ, PYTHONIOENCODING="utf-8")
        run = subprocess.run(
            [sys.executable, SAMPLE, str(support.MODEL_PATH), "--prompt", PROMPT,
             "--max-tokens", str(max_tokens), "--temperature", "0",
             "--threads", str(support.THREADS)],
            capture_output=True, env=env, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace"))
        stdout = run.stdout.decode("utf-8")
        self.assertTrue(stdout.strip())
        self.assertEqual(stdout, expected + "\n")
        self.assertIn(f"[length: {max_tokens} tokens", run.stderr.decode())


if __name__ == "__main__":
    unittest.main()
