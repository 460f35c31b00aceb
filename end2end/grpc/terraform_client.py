#!/usr/bin/env python3
"""An independent client of Matchbox's gRPC admin API that calls it the way
terraform-provider-matchbox does, to check that Pangea serves it unchanged.

Independent of the Rust side: stubs come from the .proto files in
server/tests/fixtures/matchbox-proto (written from Matchbox v0.11's wire contract), generated at
run time by grpcio-tools into a temporary directory, and the calls go through grpcio's own
HTTP/2 and TLS stack.

Scenarios (--scenario):
  terraform       matchbox_profile + matchbox_group create, read back, the Selects, destroy in
                  Terraform's order, then GroupGet must fail. Prints one JSON object on stdout.
  expect-refused  one ProfileList that must fail at the TLS/transport level (UNAVAILABLE):
                  for a client without a certificate or with one from another CA.

Exit status: 0 as expected, 1 something unexpected (the JSON says what, and so does stderr),
2 bad arguments or a broken setup (no grpcio, protoc failed, unreadable files).

Needs Python 3.11 with grpcio and grpcio-tools (.ci/setup makes a venv with them). Run with
another interpreter, it re-runs itself with the venv's python when that one exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
DEFAULT_PROTO_DIR = HERE.parent.parent / "server" / "tests" / "fixtures" / "matchbox-proto"
PROTO_FILES = ["storagepb/storage.proto", "serverpb/messages.proto", "rpcpb/rpc.proto"]
VENV = Path(os.environ.get("PANGEA_PY_VENV") or Path.home() / ".cache" / "pangea-venv")


def _reexec_in_venv_if_needed() -> None:
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError:
        python = VENV / "bin" / "python"
        # Not resolve() on the interpreter: a venv's python is a symlink to the base one.
        in_venv = Path(sys.prefix).resolve() == VENV.resolve()
        if python.exists() and not in_venv and not os.environ.get("PANGEA_GRPC_CLIENT_REEXEC"):
            os.environ["PANGEA_GRPC_CLIENT_REEXEC"] = "1"
            os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
        die(2, f"grpcio and grpcio-tools are not importable by {sys.executable} (nor by a venv at {VENV}): "
               "run .ci/setup, or set PANGEA_PY_VENV")


def die(code: int, message: str, result: dict[str, Any] | None = None) -> None:
    if result is not None:
        result["ok"] = False
        result["error"] = message
        print(json.dumps(result, indent=2, sort_keys=True))
    print(f"terraform_client: {message}", file=sys.stderr)
    sys.exit(code)


def generate_stubs(proto_dir: Path, out_dir: Path) -> None:
    """`python -m grpc_tools.protoc` into out_dir, which is then put first on sys.path."""
    missing = [f for f in PROTO_FILES if not (proto_dir / f).is_file()]
    if missing:
        die(2, f"proto files missing under {proto_dir}: {', '.join(missing)}")
    command = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        *PROTO_FILES,
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        die(2, f"protoc failed ({' '.join(command)}):\n{run.stderr}")
    sys.path.insert(0, str(out_dir))


class Stubs:
    """The generated modules and one stub per Matchbox service on a channel."""

    def __init__(self, channel: Any) -> None:
        from rpcpb import rpc_pb2_grpc
        from serverpb import messages_pb2
        from storagepb import storage_pb2

        self.pb = messages_pb2
        self.storage = storage_pb2
        self.groups = rpc_pb2_grpc.GroupsStub(channel)
        self.profiles = rpc_pb2_grpc.ProfilesStub(channel)
        self.ignition = rpc_pb2_grpc.IgnitionStub(channel)
        self.generic = rpc_pb2_grpc.GenericStub(channel)
        self.select = rpc_pb2_grpc.SelectStub(channel)


def read_file(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        die(2, f"cannot read the {what} {path}: {e}")
    return None


def open_channel(args: argparse.Namespace) -> Any:
    import grpc

    if (args.cert_file is None) != (args.key_file is None):
        die(2, "--cert-file and --key-file go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_file(args.ca_file, "CA file"),
        private_key=read_file(args.key_file, "client key"),
        certificate_chain=read_file(args.cert_file, "client certificate"),
    )
    options = [("grpc.primary_user_agent", "pangea-terraform-client")]
    if args.server_name:
        options += [("grpc.ssl_target_name_override", args.server_name), ("grpc.default_authority", args.server_name)]
    return grpc.secure_channel(args.endpoint, credentials, options=options)


def rpc_error(e: Exception) -> dict[str, Any]:
    import grpc

    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        return {"code": e.code().name, "details": e.details() or ""}
    return {"code": "CLIENT_ERROR", "details": f"{type(e).__name__}: {e}"}


def group_dict(g: Any) -> dict[str, Any]:
    raw = bytes(g.metadata)
    try:
        metadata: Any = json.loads(raw) if raw else None
        metadata_is_json = True
    except ValueError:
        metadata, metadata_is_json = raw.decode("utf-8", "replace"), False
    return {
        "id": g.id,
        "name": g.name,
        "profile": g.profile,
        "selector": dict(sorted(g.selector.items())),
        "metadata": metadata,
        "metadata_is_json": metadata_is_json,
    }


def profile_dict(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "ignition_id": p.ignition_id,
        "cloud_id": p.cloud_id,
        "generic_id": p.generic_id,
        "has_boot": p.HasField("boot"),
        "boot": {"kernel": p.boot.kernel, "initrd": list(p.boot.initrd), "args": list(p.boot.args)},
    }


class Run:
    """Records every call: method, outcome, elapsed time."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.calls: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []

    def call(self, method: str, fn: Callable[..., Any], request: Any) -> Any:
        """The response, or raises after recording the failure."""
        start = time.monotonic()
        try:
            response = fn(request, timeout=self.timeout)
        except Exception as e:
            self.calls.append({"method": method, "ms": int((time.monotonic() - start) * 1000), **rpc_error(e)})
            raise
        self.calls.append({"method": method, "ms": int((time.monotonic() - start) * 1000), "code": "OK"})
        return response

    def check(self, name: str, ok: bool, detail: Any = None) -> None:
        entry: dict[str, Any] = {"name": name, "ok": bool(ok)}
        if not ok:
            entry["detail"] = detail
            print(f"terraform_client: check failed: {name}: {detail}", file=sys.stderr)
        self.checks.append(entry)


def mac_for(prefix: str) -> str:
    """A locally administered MAC unique to the prefix, in Matchbox's colon form."""
    digest = hashlib.sha256(prefix.encode()).digest()
    return "52:54:" + ":".join(f"{b:02x}" for b in digest[:4])


BUTANE = """variant: fcos
version: 1.5.0
passwd:
  users:
    - name: core
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      contents:
        inline: {{.hostname}}
"""

RAW_IGNITION = json.dumps(
    {
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": "/etc/motd", "mode": 420, "contents": {"source": "data:,hello%0A"}}]},
    }
)


def scenario_terraform(args: argparse.Namespace, channel: Any, result: dict[str, Any]) -> None:
    import grpc

    s = Stubs(channel)
    try:
        grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
    except grpc.FutureTimeoutError:
        # The future does not say why: one call does (its status, and the TLS error grpc logs).
        why = ""
        try:
            with CoreLog() as core_log:
                s.profiles.ProfileList(s.pb.ProfileListRequest(), timeout=5)
        except grpc.RpcError as e:
            why = f": {rpc_error(e)['code']}: {rpc_error(e)['details']}"
            result["connect_error"] = {**rpc_error(e), "core_log": core_log.text.strip().splitlines()[-5:]}
        die(1, f"could not connect to {args.endpoint} within {args.connect_timeout}s{why}", result)

    pb, storage = s.pb, s.storage
    run = Run(args.call_timeout)
    result["calls"], result["checks"] = run.calls, run.checks

    prefix = args.prefix
    profile_id = f"{prefix}-worker"
    group_id = f"{prefix}-node1"
    butane = args.ignition == "butane"
    ignition_name = f"{profile_id}.yaml.tmpl" if butane else f"{profile_id}.ign"
    ignition_text = BUTANE if butane else RAW_IGNITION
    # The provider names a profile's generic config after the profile itself.
    generic_name = profile_id
    generic_text = "HOSTNAME={{.hostname}}\nROLE={{.role}}\n"
    mac = mac_for(prefix)
    metadata = {"hostname": f"{group_id}.example.com", "role": "worker", "pool": prefix}
    boot = {
        "kernel": "/assets/fedora-coreos/kernel",
        "initrd": ["--name main /assets/fedora-coreos/initramfs.img"],
        "args": [
            "initrd=main",
            "coreos.live.rootfs_url=http://matchbox.example.com/assets/fedora-coreos/rootfs.img",
            "ignition.firstboot",
            "ignition.platform.id=metal",
            "ignition.config.url=http://matchbox.example.com/ignition?uuid=${uuid}&mac=${mac:hexhyp}",
        ],
    }
    result["input"] = {
        "profile_id": profile_id,
        "group_id": group_id,
        "ignition_name": ignition_name,
        "generic_name": generic_name,
        "mac": mac,
        "metadata": metadata,
        "boot": boot,
    }
    created: list[str] = []

    profile = storage.Profile(
        id=profile_id,
        name=f"Worker ({prefix})",
        ignition_id=ignition_name,
        generic_id=generic_name,
        boot=storage.NetBoot(kernel=boot["kernel"], initrd=boot["initrd"], args=boot["args"]),
    )
    group = storage.Group(
        id=group_id,
        name=group_id,
        profile=profile_id,
        selector={"mac": mac},
        metadata=json.dumps(metadata).encode(),
    )

    def destroy(record: dict[str, Any], best_effort: bool) -> None:
        """terraform destroy: the group first (it depends on the profile), then the profile,
        its Ignition config and its generic config."""
        steps = [
            ("group", "/rpcpb.Groups/GroupDelete", s.groups.GroupDelete, pb.GroupDeleteRequest(id=group_id)),
            ("profile", "/rpcpb.Profiles/ProfileDelete", s.profiles.ProfileDelete, pb.ProfileDeleteRequest(id=profile_id)),
            ("ignition", "/rpcpb.Ignition/IgnitionDelete", s.ignition.IgnitionDelete, pb.IgnitionDeleteRequest(name=ignition_name)),
            ("generic", "/rpcpb.Generic/GenericDelete", s.generic.GenericDelete, pb.GenericDeleteRequest(name=generic_name)),
        ]
        for what, method, fn, request in steps:
            if best_effort and what not in created:
                continue
            try:
                run.call(method, fn, request)
                record[what] = "OK"
            except Exception as e:
                record[what] = rpc_error(e)["code"]
                if not best_effort:
                    raise

    try:
        # matchbox_profile create: ProfilePut, IgnitionPut, GenericPut.
        run.call("/rpcpb.Profiles/ProfilePut", s.profiles.ProfilePut, pb.ProfilePutRequest(profile=profile))
        created.append("profile")
        run.call(
            "/rpcpb.Ignition/IgnitionPut",
            s.ignition.IgnitionPut,
            pb.IgnitionPutRequest(name=ignition_name, config=ignition_text.encode()),
        )
        created.append("ignition")
        run.call(
            "/rpcpb.Generic/GenericPut",
            s.generic.GenericPut,
            pb.GenericPutRequest(name=generic_name, config=generic_text.encode()),
        )
        created.append("generic")
        # matchbox_group create: GroupPut (the Terraform name is the id).
        run.call("/rpcpb.Groups/GroupPut", s.groups.GroupPut, pb.GroupPutRequest(group=group))
        created.append("group")

        # Read back, as terraform refresh and plan do, plus what bootcmd lists and selects.
        got_profile = run.call("/rpcpb.Profiles/ProfileGet", s.profiles.ProfileGet, pb.ProfileGetRequest(id=profile_id))
        result["profile_get"] = profile_dict(got_profile.profile)
        got_group = run.call("/rpcpb.Groups/GroupGet", s.groups.GroupGet, pb.GroupGetRequest(id=group_id))
        result["group_get"] = group_dict(got_group.group)
        got_ignition = run.call(
            "/rpcpb.Ignition/IgnitionGet", s.ignition.IgnitionGet, pb.IgnitionGetRequest(name=ignition_name)
        )
        result["ignition_get"] = {"name": ignition_name, "config": bytes(got_ignition.config).decode("utf-8", "replace")}
        got_generic = run.call("/rpcpb.Generic/GenericGet", s.generic.GenericGet, pb.GenericGetRequest(name=generic_name))
        result["generic_get"] = {"name": generic_name, "config": bytes(got_generic.config).decode("utf-8", "replace")}
        profiles = run.call("/rpcpb.Profiles/ProfileList", s.profiles.ProfileList, pb.ProfileListRequest())
        result["profile_list"] = {"count": len(profiles.profiles), "ids": sorted(p.id for p in profiles.profiles)}
        groups = run.call("/rpcpb.Groups/GroupList", s.groups.GroupList, pb.GroupListRequest())
        result["group_list"] = {"count": len(groups.groups), "ids": sorted(g.id for g in groups.groups)}
        selected_group = run.call(
            "/rpcpb.Select/SelectGroup", s.select.SelectGroup, pb.SelectGroupRequest(labels={"mac": mac})
        )
        result["select_group"] = group_dict(selected_group.group)
        selected_profile = run.call(
            "/rpcpb.Select/SelectProfile", s.select.SelectProfile, pb.SelectProfileRequest(labels={"mac": mac})
        )
        result["select_profile"] = profile_dict(selected_profile.profile)

        # terraform destroy.
        result["destroy"] = {}
        destroy(result["destroy"], best_effort=False)
        created.clear()

        # Gone: GroupGet must now fail with an error status.
        try:
            run.call("/rpcpb.Groups/GroupGet", s.groups.GroupGet, pb.GroupGetRequest(id=group_id))
            result["group_get_after_destroy"] = {"code": "OK", "details": ""}
        except grpc.RpcError as e:
            result["group_get_after_destroy"] = rpc_error(e)
    except Exception as e:
        failed = run.calls[-1]["method"] if run.calls and run.calls[-1]["code"] != "OK" else "(client)"
        error = rpc_error(e)
        result["cleanup"] = {}
        destroy(result["cleanup"], best_effort=True)
        die(1, f"{failed} failed: {error['code']}: {error['details']}", result)

    # What Terraform relies on; the Rust test may assert more on the JSON.
    expected_profile = profile_dict(profile)
    run.check("ProfileGet returns the profile as put", result["profile_get"] == expected_profile,
              {"put": expected_profile, "got": result["profile_get"]})
    g = result["group_get"]
    run.check("GroupGet id, name and profile", (g["id"], g["name"], g["profile"]) == (group_id, group_id, profile_id), g)
    run.check("GroupGet selector mac", g["selector"].get("mac", "").lower().replace("-", ":") == mac, g["selector"])
    run.check("GroupGet metadata is the JSON object put", g["metadata"] == metadata, g["metadata"])
    run.check("IgnitionGet returns the template put", result["ignition_get"]["config"] == ignition_text,
              result["ignition_get"]["config"])
    run.check("GenericGet returns the template put", result["generic_get"]["config"] == generic_text,
              result["generic_get"]["config"])
    run.check("ProfileList lists the profile", profile_id in result["profile_list"]["ids"], result["profile_list"])
    run.check("GroupList lists the group", group_id in result["group_list"]["ids"], result["group_list"])
    run.check("SelectGroup picks the group", result["select_group"]["id"] == group_id, result["select_group"])
    run.check("SelectProfile picks the profile", result["select_profile"]["id"] == profile_id, result["select_profile"])
    run.check("GroupGet fails after destroy", result["group_get_after_destroy"]["code"] != "OK",
              result["group_get_after_destroy"])
    failed_checks = [c["name"] for c in run.checks if not c["ok"]]
    if failed_checks:
        die(1, f"{len(failed_checks)} check(s) failed: {'; '.join(failed_checks)}", result)


class CoreLog:
    """Captures what grpc's C core writes to file descriptor 2 meanwhile (and passes it on)."""

    def __enter__(self) -> "CoreLog":
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *_: Any) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        sys.stderr.write(self.text)


# Signs, in the status details, that a TCP connection was made and TLS then refused it.
TLS_HINTS = ("handshake", "ssl", "tls", "tsi_", "certificate", "socket closed", "connection reset",
             "end of tcp stream", "broken pipe")
# Signs that nothing was reached at all: no proof that the server refuses anyone.
UNREACHED_HINTS = ("connection refused", "failed to connect to remote host", "errors resolving", "dns resolution failed",
                   "name resolution", "no route to host", "network is unreachable")


def scenario_expect_refused(args: argparse.Namespace, channel: Any, result: dict[str, Any]) -> None:
    import grpc

    s = Stubs(channel)
    start = time.monotonic()
    try:
        with CoreLog() as core_log:
            response = s.profiles.ProfileList(s.pb.ProfileListRequest(), timeout=args.connect_timeout)
    except grpc.RpcError as e:
        error = rpc_error(e)
        result["profile_list"] = {**error, "ms": int((time.monotonic() - start) * 1000)}
        # grpc's status rarely names the TLS alert; its C core logs it (e.g.
        # TLSV1_ALERT_CERTIFICATE_REQUIRED, TLSV1_ALERT_UNKNOWN_CA).
        result["tls_alerts"] = sorted(set(re.findall(r"\b(TLSV1[0-9_]*_ALERT_[A-Z_]+|SSLV3_ALERT_[A-Z_]+)", core_log.text)))
        details = error["details"].lower()
        result["tls_level"] = bool(result["tls_alerts"]) or any(h in details for h in TLS_HINTS)
        if any(h in details for h in UNREACHED_HINTS):
            die(1, f"nothing was reached at {args.endpoint}, so no refusal was shown: {error['details']}", result)
        if error["code"] == "UNAVAILABLE":
            print(f"terraform_client: refused as expected: {error['code']}: {error['details']}", file=sys.stderr)
            return
        die(1, f"ProfileList failed, but not at the TLS/transport level: {error['code']}: {error['details']} "
               "(expected UNAVAILABLE: the server must refuse the handshake, not answer)", result)
    result["profile_list"] = {"code": "OK", "count": len(response.profiles)}
    die(1, f"the server answered ProfileList ({len(response.profiles)} profiles) to a client it should refuse", result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of the gRPC listener")
    parser.add_argument("--ca-file", required=True, help="PEM CA the server's certificate is checked against")
    parser.add_argument("--cert-file", help="PEM client certificate (omit, with --key-file, for no client certificate)")
    parser.add_argument("--key-file", help="PEM private key of --cert-file")
    parser.add_argument("--scenario", required=True, choices=["terraform", "expect-refused"])
    parser.add_argument("--prefix", default=None, help="prefix of every id, so runs don't collide [default: tf-RANDOM]")
    parser.add_argument("--server-name", default=None,
                        help="TLS name to check the server's certificate for, when it is not the endpoint's host")
    parser.add_argument("--ignition", choices=["butane", "raw"], default="butane",
                        help="the profile's config: Butane template (<id>.yaml.tmpl) or raw Ignition (<id>.ign)")
    parser.add_argument("--proto-dir", default=os.environ.get("PANGEA_MATCHBOX_PROTO_DIR", str(DEFAULT_PROTO_DIR)))
    parser.add_argument("--connect-timeout", type=float, default=25.0,
                        help="seconds to connect (the provider dials with 25 s) [default: 25]")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="deadline of each call in seconds [default: 10]")
    args = parser.parse_args()
    if args.prefix is None:
        args.prefix = f"tf-{uuid.uuid4().hex[:8]}"

    _reexec_in_venv_if_needed()
    import grpc

    result: dict[str, Any] = {
        "scenario": args.scenario,
        "endpoint": args.endpoint,
        "prefix": args.prefix,
        "client_certificate": args.cert_file is not None,
        "grpcio": grpc.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="matchbox-stubs-") as out:
        generate_stubs(Path(args.proto_dir), Path(out))
        channel = open_channel(args)
        try:
            if args.scenario == "terraform":
                scenario_terraform(args, channel, result)
            else:
                scenario_expect_refused(args, channel, result)
        finally:
            channel.close()
    result["ok"] = True
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
