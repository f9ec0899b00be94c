"""docs/scale-out.md stays runnable: its executor block is a valid ``SweepConfig.executor``, its sbatch script is
valid bash that starts Ray and runs the sweep on Ray, its RayCluster manifest is YAML whose pods all mount the shared
volume the command writes to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fairgym.config import from_dict
from fairgym.training.sweep_config import ExecutorSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale-out.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_executor_block_is_a_valid_executor_setting():
    block = next(yaml.safe_load(b) for b in blocks("yaml") if b.startswith("executor:"))
    assert from_dict(ExecutorSettings, block["executor"]) == ExecutorSettings("ray", "auto", 8, 1, 2)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_sbatch_script_is_valid_bash_that_starts_ray_and_runs_the_sweep_on_it(tmp_path):
    script = next(b for b in blocks("bash") if b.startswith("#!/bin/bash"))
    (tmp_path / "ray_sweep.sbatch").write_text(script)
    done = subprocess.run(["bash", "-n", str(tmp_path / "ray_sweep.sbatch")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ray start --head" in script and "ray start --address" in script
    assert re.search(r"fairgym sweep \S+ --executor ray --address \"\$RAY_ADDRESS\" --out /shared/", script)


def test_the_raycluster_manifest_mounts_the_shared_volume_in_every_pod():
    manifest = next(yaml.safe_load(b) for b in blocks("yaml") if "kind: RayCluster" in b)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["spec"]["rayVersion"] == "2.60.0"  # the pinned Ray
    spec = manifest["spec"]
    pods = [spec["headGroupSpec"]["template"]] + [group["template"] for group in spec["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert {"name": "shared", "mountPath": "/shared"} in container["volumeMounts"]
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "fairgym-shared"
        assert {"name": "RAY_AUTH_MODE", "value": "token"} in container["env"]
    assert "--out /shared/fairgym/runs" in next(b for b in blocks("bash") if "kubectl apply" in b)
