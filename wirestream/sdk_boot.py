"""The Python SDK worker's boot for Beam's PROCESS environment: what Beam's boot binary (the
entry point of its SDK container images) does for an SDK already installed here.

A TaskManager of the Flink session cluster starts one of these for each worker it needs
(`python -m wirestream.sdk_boot --id=ID --provision_endpoint=HOST:PORT`), so every TaskManager's
Python workers are its own processes, started and stopped by it alone. The boot asks the
provision service for the pipeline options and the control and logging endpoints, and becomes
`apache_beam.runners.worker.sdk_worker_main` with them, as the boot binary does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
    from google.protobuf import json_format, text_format

    parser = argparse.ArgumentParser(prog="python -m wirestream.sdk_boot")
    parser.add_argument("--id", required=True)
    parser.add_argument("--provision_endpoint", required=True)
    # Given by some runners; the provision service says the same.
    for name in ("--logging_endpoint", "--artifact_endpoint", "--control_endpoint", "--semi_persist_dir"):
        parser.add_argument(name)
    args, _unknown = parser.parse_known_args(argv)
    with grpc.insecure_channel(args.provision_endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        # The runner tells its workers apart by this header on every call (the boot binary's too).
        info = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), timeout=60, metadata=[("worker_id", args.id)]
        ).info
    environ = dict(os.environ)
    environ["WORKER_ID"] = args.id
    environ["PIPELINE_OPTIONS"] = json.dumps(json_format.MessageToDict(info.pipeline_options))
    environ["CONTROL_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.control_endpoint)
    environ["LOGGING_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.logging_endpoint)
    if info.HasField("status_endpoint"):
        environ["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint)
    environ["SEMI_PERSISTENT_DIRECTORY"] = args.semi_persist_dir or tempfile.mkdtemp(prefix="beam-sdk-")
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], environ)


if __name__ == "__main__":
    main()
