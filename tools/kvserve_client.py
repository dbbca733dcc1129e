#!/usr/bin/env python3
"""Example Python client for kvserve: streams one Generate request to stdout.

The gRPC stubs are generated from proto/ at run time into a temporary directory (nothing is
vendored), with Debian's protoc and grpc_python_plugin (scripts/setup.sh installs them and
python3-grpcio), or with grpc_tools.protoc when that is installed instead.

    tools/kvserve_client.py --server localhost:50051 --prompt "Once upon a time" --max-tokens 32
    tools/kvserve_client.py --server localhost:50051 --prompt "Hi" --kv-policy snapkv --json
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_FILE = "kvserve/v1/inference.proto"
DEFAULT_PROTO_DIR = Path(__file__).resolve().parent.parent / "proto"

FINISH_REASONS = {
    "FINISH_REASON_EOS": "eos",
    "FINISH_REASON_MAX_TOKENS": "max_tokens",
    "FINISH_REASON_STOP_SEQUENCE": "stop",
    "FINISH_REASON_CANCELLED": "cancelled",
    "FINISH_REASON_DEADLINE": "deadline",
    "FINISH_REASON_ERROR": "error",
}


def fail(message):
    print(f"kvserve_client: error: {message}", file=sys.stderr)
    sys.exit(1)


def generate_stubs(proto_dir, out_dir):
    """Writes kvserve/v1/inference_pb2{,_grpc}.py under out_dir."""
    proto_path = Path(proto_dir) / PROTO_FILE
    if not proto_path.is_file():
        fail(f"{proto_path} not found (give --proto-dir)")
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc and plugin:
        cmd = [protoc, f"-I{proto_dir}", f"--python_out={out_dir}",
               f"--grpc_python_out={out_dir}", f"--plugin=protoc-gen-grpc_python={plugin}",
               str(proto_path)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            fail(f"protoc failed: {result.stderr.strip()}")
        return
    try:
        from grpc_tools import protoc as grpc_protoc  # pylint: disable=import-outside-toplevel
    except ImportError:
        fail("need protoc and grpc_python_plugin (scripts/setup.sh) or grpc_tools")
    rc = grpc_protoc.main(["grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                           f"--grpc_python_out={out_dir}", str(proto_path)])
    if rc != 0:
        fail(f"grpc_tools.protoc failed on {proto_path}")


def load_stubs(proto_dir, out_dir):
    generate_stubs(proto_dir, out_dir)
    sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("kvserve.v1.inference_pb2")
    pb2_grpc = importlib.import_module("kvserve.v1.inference_pb2_grpc")
    return pb2, pb2_grpc


def build_request(pb2, args):
    request = pb2.GenerateRequest(request_id=args.request_id, non_streaming=args.non_streaming)
    if args.prompt_ids:
        request.token_ids.ids.extend(int(t) for t in args.prompt_ids.split(","))
    else:
        request.text = args.prompt
    request.sampling.max_new_tokens = args.max_tokens
    request.sampling.temperature = args.temperature
    if args.seed is not None:
        request.sampling.seed = args.seed
    request.sampling.ignore_eos = args.ignore_eos
    if args.kv_policy:
        # The policy's member of the KvPolicy oneof, with its defaults (an unknown name goes as
        # the deprecated flat form's `name`, for the server to refuse).
        members = [f.name for f in pb2.KvPolicy.DESCRIPTOR.oneofs_by_name["options"].fields]
        if args.kv_policy in members:
            getattr(request.kv_policy, args.kv_policy).SetInParent()
        else:
            request.kv_policy.name = args.kv_policy
    return request


def read_file(path, flag):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        fail(f"{flag}: cannot read {path}: {error.strerror}")
        return b""


def open_channel(grpc, args):
    """The channel --tls* asks for (plaintext without them), and the call metadata of the key."""
    metadata = []
    key = args.api_key or os.environ.get("KVSERVE_API_KEY", "")
    if args.api_key_file:
        key = read_file(args.api_key_file, "--api-key-file").decode().splitlines()[0].strip()
    if key:
        metadata.append(("authorization", f"Bearer {key}"))
    if bool(args.tls_cert) != bool(args.tls_key):
        fail("--tls-cert and --tls-key go together")
    if not (args.tls or args.tls_ca or args.tls_cert):
        return grpc.insecure_channel(args.server), metadata
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_file(args.tls_ca, "--tls-ca") if args.tls_ca else None,
        private_key=read_file(args.tls_key, "--tls-key") if args.tls_key else None,
        certificate_chain=read_file(args.tls_cert, "--tls-cert") if args.tls_cert else None)
    return grpc.secure_channel(args.server, credentials), metadata


def result_json(pb2, tokens, text, last):
    timing = last.timing
    kv = last.kv
    return {
        "request_id": last.request_id,
        "token_ids": tokens,
        "text": text,
        "prompt_tokens": last.usage.prompt_tokens,
        "completion_tokens": last.usage.completion_tokens,
        "finish_reason": FINISH_REASONS.get(pb2.FinishReason.Name(last.finish_reason),
                                            "unspecified"),
        "queue_ms": timing.queue_ms,
        "prefill_ms": timing.prefill_ms,
        "ttft_ms": timing.ttft_ms,
        "decode_ms": timing.decode_ms,
        "decode_tokens_per_s": timing.decode_tokens_per_s,
        "e2e_ms": timing.e2e_ms,
        "kv": {
            "policy": kv.policy,
            "kept_tokens": list(kv.kept_tokens),
            "tsp_tokens": kv.tsp_tokens,
            "prefill_flops_fraction": kv.prefill_flops_fraction,
            "host_tokens": kv.host_tokens,
            "recalled_bytes": kv.recalled_bytes,
            "corrections": kv.corrections,
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:50051", help="HOST:PORT of kvserve")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="prompt text (the server adds the model's BOS)")
    prompt.add_argument("--prompt-ids", help="comma-separated prompt token ids, used as given")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--ignore-eos", action="store_true")
    parser.add_argument("--kv-policy", default="", help="KV policy; empty = server default")
    parser.add_argument("--request-id", default="")
    parser.add_argument("--timeout", type=float, help="deadline in seconds")
    parser.add_argument("--non-streaming", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--proto-dir", default=str(DEFAULT_PROTO_DIR))
    parser.add_argument("--api-key", help="API key, sent as 'authorization: Bearer KEY' "
                        "(or KVSERVE_API_KEY)")
    parser.add_argument("--api-key-file", help="file whose first line is the API key")
    parser.add_argument("--tls", action="store_true", help="TLS with the system's roots")
    parser.add_argument("--tls-ca", help="PEM root certificates to trust (implies --tls)")
    parser.add_argument("--tls-cert", help="PEM client certificate for mutual TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args()

    try:
        import grpc  # pylint: disable=import-outside-toplevel
    except ModuleNotFoundError:
        # Debian's python3-grpcio (scripts/setup.sh) lives with /usr/bin/python3; another python3
        # first on PATH (pyenv, a venv) lacks it: run again under Debian's.
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system):
            os.execv(system, [system, *sys.argv])
        raise

    with tempfile.TemporaryDirectory(prefix="kvserve-stubs-") as out_dir:
        pb2, pb2_grpc = load_stubs(args.proto_dir, out_dir)
        request = build_request(pb2, args)
        tokens, text, last = [], "", None
        channel, metadata = open_channel(grpc, args)
        with channel:
            stub = pb2_grpc.InferenceStub(channel)
            try:
                for response in stub.Generate(request, timeout=args.timeout, metadata=metadata):
                    tokens.extend(response.token_ids)
                    text += response.text
                    if not args.json:
                        sys.stdout.write(response.text)
                        sys.stdout.flush()
                    if response.finish_reason != pb2.FINISH_REASON_UNSPECIFIED:
                        last = response
            except grpc.RpcError as error:
                if not args.json and text:
                    print()
                fail(f"{error.code().name}: {error.details()}")
        if last is None:
            fail("the stream ended without a final message")
        if last.finish_reason == pb2.FINISH_REASON_ERROR:
            fail(last.error)
        if args.json:
            print(json.dumps(result_json(pb2, tokens, text, last)))
        else:
            print()


if __name__ == "__main__":
    main()
