"""Thread setup: a passive OpenMP wait policy and a thread count from the CPUs this process may use, set before
torch loads, in every entry point, with the user's own settings kept."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairgym import threads
from fairgym.commands import main

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "LOCAL_WORLD_SIZE",
               "LOCAL_SIZE")
PROBE = ("import json, os; from fairgym.threads import configure_threads; s = configure_threads(); import torch; "
         "print(json.dumps({'threads': torch.get_num_threads(), 'env': {k: os.environ.get(k) for k in "
         "('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'KMP_BLOCKTIME')}, 'user': s.set_by_user}))")


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_defaults_wait_passively_on_every_usable_cpu():
    result = probe()
    cpus = len(os.sched_getaffinity(0))
    assert result["env"] == {"OMP_NUM_THREADS": str(cpus), "OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert result["threads"] == cpus and result["user"] == []


def test_user_settings_are_kept():
    result = probe(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="ACTIVE", KMP_BLOCKTIME="200")
    assert result["env"] == {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE", "KMP_BLOCKTIME": "200"}
    assert result["threads"] == 1 and set(result["user"]) == {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME"}


def test_an_explicit_spin_count_is_not_overridden_by_a_wait_policy():
    assert probe(GOMP_SPINCOUNT="300000")["env"]["OMP_WAIT_POLICY"] is None


def test_a_distributed_launch_shares_the_cpus_of_the_node(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.default_threads() == 1


@pytest.mark.parametrize(("text", "quota"), [("max 100000", None), ("150000 100000", 1.5), ("50000 100000", 0.5)])
def test_cgroup_quota(tmp_path, text, quota):
    (tmp_path / "cpu.max").write_text(text + "\n")
    assert threads.cgroup_cpu_quota(tmp_path / "cpu.max") == quota
    assert threads.cgroup_cpu_quota(tmp_path / "missing") is None


def test_a_cgroup_quota_caps_the_threads(monkeypatch):
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 0.5)
    assert threads.usable_cpus() == 1


def test_the_cli_configures_threads_before_any_subcommand(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(threads, "configure_threads", lambda: calls.append("threads"))
    assert main(["envs", "list"]) == 0
    assert calls == ["threads"]


@pytest.mark.parametrize("script", ["benchmarks/llm_decisions.py", "benchmarks/training.py",
                                    "benchmarks/episode_grpo.py"])
def test_benchmarks_configure_threads_before_importing_torch(script):
    """Every module-level import that could load torch (anything but the standard library) comes after the call."""
    tree = ast.parse((ROOT / script).read_text())
    order = []
    for node in tree.body:  # module level, in order
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            order += ["import" for n in names if n.split(".")[0] not in sys.stdlib_module_names
                      and n not in ("__future__", "fairgym.threads")]
        elif isinstance(node, (ast.Expr, ast.Assign)) and isinstance(node.value, ast.Call):
            order += ["configure"] if getattr(node.value.func, "id", "") == "configure_threads" else []
    first_import = order.index("import") if "import" in order else len(order)  # torch may load only inside functions
    assert "configure" in order and order.index("configure") < first_import


def run_script(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True)


REPORT = ("import json, os, torch; print(json.dumps({'threads': torch.get_num_threads(), "
          "'wait': os.environ.get('OMP_WAIT_POLICY')}))")


@pytest.mark.parametrize("first_import", ["import fairgym", "from fairgym.agents import make_agent",
                                          "import fairgym.lm.models", "import fairgym.training.trl_config"])
def test_importing_fairgym_configures_threads_before_torch_loads(first_import):
    """A plain script gets the CLI's settings from the import alone, whichever fairgym module it imports first."""
    done = run_script(f"{first_import}\n{REPORT}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"threads": threads.usable_cpus(), "wait": "PASSIVE"}
    assert "torch was imported before fairgym" not in done.stderr


def test_torch_loaded_first_gets_the_safe_subset_and_a_one_line_note():
    done = run_script("import torch; torch.set_num_threads(1); import fairgym\n" + REPORT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["threads"] == 1  # a count the user chose is never raised
    notes = [line for line in done.stderr.splitlines() if "torch was imported before fairgym" in line]
    assert len(notes) == 1 and "OMP_WAIT_POLICY=PASSIVE" in notes[0]


def test_torch_loaded_first_with_a_wait_policy_chosen_gets_no_note():
    done = run_script("import torch; import fairgym", OMP_WAIT_POLICY="PASSIVE")
    assert "torch was imported before fairgym" not in done.stderr


def test_torch_loaded_first_with_more_threads_than_usable_cpus_is_lowered(monkeypatch):
    import torch

    monkeypatch.setattr(threads, "default_threads", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert threads.configure_threads().threads == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
