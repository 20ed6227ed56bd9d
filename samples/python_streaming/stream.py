#!/usr/bin/env python3
"""Streams a generation to stdout as it is produced, with the rwkvrt Python binding.

    python3 stream.py                          # the repository's default model
    python3 stream.py path/to/model.pth --prompt "Hello" --max-tokens 200 --temperature 0

The generated text goes to stdout (ending with one newline); the finish reason and speed go to
stderr.  Ctrl-C stops the generation cleanly.
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

try:
    import rwkvrt
except ImportError:  # not installed: use the binding of this source checkout
    sys.path.insert(0, str(REPO / "bindings" / "python"))
    import rwkvrt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = REPO / "models" / "default" / "rwkv7-kjv-byte.pth"
    parser.add_argument("model", nargs="?", default=default_model,
                        help="checkpoint to load (default: the repository's default model)")
    parser.add_argument("--prompt", default="And it came to pass", help="text to continue")
    parser.add_argument("--max-tokens", type=int, default=200, help="tokens to generate at most (0 = no limit)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="the same seed repeats a run")
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--backend", default=None, help="cpu, cuda, ... (default: the best)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    args = parser.parse_args()

    sampling = rwkvrt.SamplingParams(temperature=args.temperature, top_p=args.top_p,
                                     seed=args.seed)
    with rwkvrt.Model(args.model, backend=args.backend, threads=args.threads) as model, \
            model.session() as session:
        start = time.perf_counter()
        generation = session.generate(args.prompt, max_tokens=args.max_tokens,
                                      stop=args.stop, sampling=sampling)
        shown = 0
        try:
            for text in generation:
                sys.stdout.write(text)
                sys.stdout.flush()
                shown += len(text)
        except KeyboardInterrupt:
            generation.close()  # ends it as cancelled, releasing any text held back
            sys.stdout.write(generation.text[shown:])
        sys.stdout.write("\n")
        seconds = time.perf_counter() - start
        rate = generation.n_generated / max(seconds, 1e-9)
        print(f"[{generation.finish_reason.name.lower()}: {generation.n_generated} tokens, "
              f"{rate:.1f} tokens/s on {model.info.backend}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
