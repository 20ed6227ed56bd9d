#!/usr/bin/env python3
"""A Python (grpcio) client of rwkvrtd: streams a generation, in a persistent session that
survives daemon restarts.

  python3 samples/daemon_client.py "And God said"                 # new session, one turn
  python3 samples/daemon_client.py --session s-... " And he said"  # continue it (also after a restart)
  python3 samples/daemon_client.py --chat                          # interactive turns in one session
  python3 samples/daemon_client.py --list                          # models and sessions

Needs python3-grpcio and python3-protobuf (Debian) and the stubs the daemon build generates in
<build>/daemon/python (put it on PYTHONPATH; ./build-*/daemon/python is found automatically).
The bearer token comes from --token or $RWKVRTD_AUTH_TOKEN; --tls-ca enables TLS.
"""

import argparse
import glob
import os
import sys

import grpc

try:
    from rwkvrtd_proto.v1 import runtime_pb2 as pb, runtime_pb2_grpc as pb_grpc
except ImportError:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in sorted(glob.glob(os.path.join(root, "build*", "daemon", "python"))):
        sys.path.insert(0, candidate)
    try:
        from rwkvrtd_proto.v1 import runtime_pb2 as pb, runtime_pb2_grpc as pb_grpc
    except ImportError:
        sys.exit("cannot import rwkvrtd_proto: build the daemon and set PYTHONPATH=<build>/daemon/python")


def connect(args):
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            channel = grpc.secure_channel(args.address, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(args.address)
    token = args.token or os.environ.get("RWKVRTD_AUTH_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return pb_grpc.RuntimeStub(channel), metadata


def stream_turn(stub, metadata, session_id, prompt, args):
    """Feeds `prompt` to the session and prints the generated text as it arrives."""
    sampling = pb.SamplingParams(temperature=args.temperature, top_p=args.top_p)
    if args.seed is not None:
        sampling.seed = args.seed
    request = pb.GenerateRequest(session_id=session_id, text=prompt, max_tokens=args.max_tokens,
                                 sampling=sampling, stop=args.stop)
    for event in stub.Generate(request, metadata=metadata):
        kind = event.WhichOneof("event")
        if kind == "chunk":
            print(event.chunk.text, end="", flush=True)
        elif kind == "final":
            f = event.final
            reason = pb.FinishReason.Name(f.finish_reason).removeprefix("FINISH_REASON_").lower()
            print(f"\n[{reason}: {f.completion_tokens} tokens in {f.timings.total_ms:.0f} ms"
                  f"{', saved' if f.persisted else ''}]", file=sys.stderr)
        elif kind == "error":
            print(f"\n[error: {event.error.message}]", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?")
    parser.add_argument("--address", default="127.0.0.1:50551")
    parser.add_argument("--token")
    parser.add_argument("--tls-ca", help="PEM file of the CA (or self-signed certificate) to trust")
    parser.add_argument("--session", help="continue this session instead of creating one")
    parser.add_argument("--model", default="", help="model id for a new session (default: the only one)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--chat", action="store_true", help="read prompts from stdin, one turn per line")
    parser.add_argument("--list", action="store_true", help="list models and sessions, then exit")
    args = parser.parse_args()
    stub, metadata = connect(args)

    try:
        if args.list:
            for m in stub.ListModels(pb.ListModelsRequest(), metadata=metadata).models:
                print(f"model {m.id}: RWKV-{m.rwkv_version} L{m.n_layer} C{m.n_embd}, vocab {m.n_vocab}, "
                      f"tokenizer {m.tokenizer}, backend {m.backend}")
            for s in stub.ListSessions(pb.ListSessionsRequest(), metadata=metadata).sessions:
                print(f"session {s.session_id}: model {s.model}, {s.turns} turns, {s.tokens} tokens"
                      f"{', in memory' if s.resident else ''}{', generating' if s.generating else ''}")
            return 0
        if not args.prompt and not args.chat:
            parser.error("give a PROMPT, --chat or --list")
        session_id = args.session
        if not session_id:
            session_id = stub.CreateSession(pb.CreateSessionRequest(model=args.model), metadata=metadata).session_id
            print(f"[session {session_id}]", file=sys.stderr)
        if args.prompt:
            stream_turn(stub, metadata, session_id, args.prompt, args)
        if args.chat:
            for line in sys.stdin:
                if line.strip():
                    stream_turn(stub, metadata, session_id, line.rstrip("\n") + "\n", args)
        print(f"[continue with --session {session_id}]", file=sys.stderr)
    except grpc.RpcError as e:
        print(f"\nrwkvrtd: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
