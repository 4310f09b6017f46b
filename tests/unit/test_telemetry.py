"""OpenVINO's and NNCF's usage telemetry stays off in lle, so an offline process still exits.

``import openvino`` sends an event, and each event forks a sender process; offline, one that never ends keeps the
interpreter from exiting (``python -m pytest`` never returned on a user's machine). The subprocess below runs lle's
OpenVINO export path the way a server would, inside a thread pool, with ``CI`` unset and an empty home folder (no
consent file), on a network that never answers a name lookup and with SIGTERM blocked, so a forked sender can never
be stopped; it must exit on its own and fork nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lle._lazy import TELEMETRY_ENV

EXIT_WITHIN_S = 60

SCRIPT = textwrap.dedent("""
    import concurrent.futures, os, signal, socket, sys, threading

    socket.getaddrinfo = lambda *a, **k: threading.Event().wait()  # offline: a name lookup never answers
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # a forked sender cannot be terminated either
    forks = []
    os.register_at_fork(before=lambda: forks.append(threading.current_thread().name))


    def export(weights, out):
        from lle._lazy import require
        from lle.export import export_model
        from lle.export.config import ExportConfig

        require("openvino.tools.ovc", extra="openvino")
        require("nncf", extra="openvino")
        cfg = ExportConfig(format="openvino", parity_hw=((32, 48),), io="float32")
        return export_model(weights, "openvino", out, cfg).final.name


    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        print("artifact", pool.submit(export, sys.argv[1], sys.argv[2]).result())
    print("telemetry", "on" if sys.modules.get("openvino_telemetry") else "off")
    print("forks", len(forks), *forks)
""")


def _clean_env(home: Path) -> dict[str, str]:
    """This environment with no CI marker, no opt-in/out switch and an empty home folder."""
    drop = {"CI", "TF_BUILD", "JENKINS_URL", "NNCF_CI", "NNCF_DEV", TELEMETRY_ENV}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "HOME": str(home), "OMP_NUM_THREADS": "1"}


def test_openvino_export_in_a_thread_pool_exits_offline(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    pytest.importorskip("onnx")
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "ov"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tiny_weights["realtime"]), str(out)],
                            env=_clean_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and the telemetry senders it forked
        stdout, stderr = proc.communicate()
        pytest.fail(f"the process did not exit within {EXIT_WITHIN_S} s:\n{stdout}{stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    assert "artifact model.xml" in stdout, stdout
    assert "telemetry off" in stdout and "forks 0\n" in stdout, stdout
    assert not (home / "intel").exists()  # no consent file written, no client id made


def test_an_explicit_opt_in_leaves_telemetry_alone(tmp_path: Path) -> None:
    code = (
        "from lle._lazy import quiet_openvino_telemetry as q; q(); import os, sys; "
        "print(sys.modules.get('openvino_telemetry', 'unset'), os.environ.get('NNCF_CI'))"
    )
    for choice, want in (("1", "unset None"), ("0", "None 1")):
        env = {**_clean_env(tmp_path), TELEMETRY_ENV: choice}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == want, (choice, r.stdout, r.stderr)
    consent = tmp_path / "intel" / "openvino_telemetry"
    consent.parent.mkdir()
    consent.write_text("1")  # what `opt_in_out --opt_in` writes
    r = subprocess.run([sys.executable, "-c", code], env=_clean_env(tmp_path), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.stdout.strip() == "unset None", r.stderr
