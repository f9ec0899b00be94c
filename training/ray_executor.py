"""The Ray executor: a sweep's stages as Ray tasks across the GPUs and machines of a Ray cluster.

``RayExecutor.run(stages)`` submits each stage as a task (``ray.remote(stage.fn)``) once every stage it needs has
finished, reserving the stage's ``num_cpus`` and ``num_gpus`` (Ray sets ``CUDA_VISIBLE_DEVICES`` for the GPUs it
gives a task, and each task's torch gets ``OMP_NUM_THREADS`` = its whole CPUs). The driver (the process running
``fairgym sweep``) holds the sweep folder's lock and waits; the workers write the folder, which must therefore lie on
storage every node sees at the same path (the folder is made absolute for them).

Faults: a worker process or node that dies is Ray's to notice; it runs the task again, up to ``max_retries`` times
(``SweepConfig.executor.max_retries``), and the stage resumes from what it wrote (an arm's training from its last
``checkpoint-N``, its evaluation from the episodes already in ``episodes.jsonl``). A stage that still fails is
handed to its ``lost`` recorder (an arm is recorded as failed with its traceback and the other arms go on); a stage
without one (the implant, the learning-rate selection) stops the sweep, cancelling the tasks in flight. A rerun of
the command resumes the sweep from its folder, on either executor.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fairgym.threads import WAIT_POLICY_DEFAULTS
from fairgym.training.executors import Stage, check_plan

RAY_MISSING = ("executor.kind='ray' needs Ray, which is not installed here: pip install 'fairgym[ray]' (the pinned "
               "version is in requirements-ray.txt), or run with --executor local.")


class RayExecutor:
    """Each stage a Ray task, started when the stages it needs have finished.

    Args:
        address: the cluster to join (``ray.init(address=...)``): ``None`` joins ``RAY_ADDRESS`` when set, else
            starts Ray on this machine; ``"auto"``, ``"<head>:6379"`` or ``"ray://<head>:10001"``. When Ray is
            already initialised in this process (e.g. by a script or a test), that connection is used.
        max_retries: times a task whose worker died is run again.

    Raises:
        ValueError: Ray is not installed.
    """

    def __init__(self, address: str | None = None, max_retries: int = 2) -> None:
        try:
            import ray  # noqa: F401  # fail at once, before the sweep takes its folder
        except ImportError:
            raise ValueError(RAY_MISSING) from None
        self.address = address
        self.max_retries = max_retries
        self._remote: dict[Any, Any] = {}

    def folder(self, path: Path) -> Path:
        """``path`` made absolute: workers may run in other directories, or on other machines that mount the same
        storage at the same path (symbolic links are kept: the path as this machine names it may be the one every
        node mounts, where the link's target is not)."""
        return Path(path).absolute()

    def run(self, stages: Sequence[Stage]) -> dict[str, Any]:
        """Run the plan on the cluster; returns each stage's result by name.

        Raises:
            ValueError: the cluster cannot be reached.
            Exception: the error of a stage without ``lost`` recorder (its own type where it raised one).
        """
        import ray

        plan = check_plan(stages)
        started = self._connect(ray)
        try:
            self._check_resources(ray, plan)
            return self._run(ray, plan)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Join (or start) the cluster; ``True`` when this call did, so ``run`` shuts it down again."""
        if ray.is_initialized():
            return False
        local = self.address is None and not os.environ.get("RAY_ADDRESS")
        try:
            ray.init(address=self.address, log_to_driver=True, **({"include_dashboard": False} if local else {}))
        except ConnectionError as exc:
            raise ValueError(f"executor.address={self.address!r}: {exc} Start the cluster first (`ray start --head` "
                             "on its head node), or leave the address out to start Ray on this machine.") from None
        return True

    def _check_resources(self, ray: Any, plan: list[Stage]) -> None:
        """Warn where the plan and the cluster do not fit: a stage asking for more than the cluster has waits until
        such a node joins (an autoscaling cluster); GPUs no stage asks for stay unused (Ray hides them from tasks)."""
        total = ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
        most = max(plan, key=lambda s: (s.resources.num_gpus, s.resources.num_cpus), default=None)
        if most and (most.resources.num_gpus > gpus or most.resources.num_cpus > cpus):
            warnings.warn(f"stage {most.name} asks for {most.resources.num_cpus:g} CPUs and "
                          f"{most.resources.num_gpus:g} GPUs, the Ray cluster has {cpus:g} and {gpus:g}: it waits "
                          "until a node that large joins; lower executor.num_cpus / num_gpus for this cluster.",
                          RuntimeWarning, stacklevel=3)
        if gpus and not any(s.resources.num_gpus for s in plan):
            warnings.warn(f"the Ray cluster has {gpus:g} GPUs but executor.num_gpus is 0, so every stage runs on CPU; "
                          "set executor.num_gpus=1 to give each arm a GPU.", RuntimeWarning, stacklevel=3)

    def _submit(self, stage: Stage, results: dict[str, Any]) -> Any:
        import ray

        remote = self._remote.get(stage.fn)
        if remote is None:
            remote = self._remote[stage.fn] = ray.remote(stage.fn)
        threads = max(1, math.floor(stage.resources.num_cpus))
        # torch's threads: the task's CPUs, whatever the node has; OpenMP waits as this process does (fairgym.threads)
        env = {**{k: os.environ.get(k, v) for k, v in WAIT_POLICY_DEFAULTS.items()}, "OMP_NUM_THREADS": str(threads)}
        options = {"num_cpus": stage.resources.num_cpus, "num_gpus": stage.resources.num_gpus,
                   "max_retries": self.max_retries, "retry_exceptions": False, "name": stage.name,
                   "runtime_env": {"env_vars": env}}
        kwargs = {key: results[name] for key, name in stage.inputs.items()}
        return remote.options(**options).remote(*stage.args, **kwargs)

    def _run(self, ray: Any, plan: list[Stage]) -> dict[str, Any]:
        from ray.exceptions import RayError, RayTaskError

        waiting = list(plan)
        running: dict[Any, Stage] = {}  # object ref -> its stage
        results: dict[str, Any] = {}
        while waiting or running:
            for stage in [s for s in waiting if all(n in results for n in s.needs)]:
                waiting.remove(stage)
                running[self._submit(stage, results)] = stage
            done, _ = ray.wait(list(running), num_returns=1)
            stage = running.pop(done[0])
            try:
                results[stage.name] = ray.get(done[0])
            except RayError as exc:
                if stage.lost is None:
                    for ref in running:
                        ray.cancel(ref, recursive=True)
                    if isinstance(exc, RayTaskError):  # the stage's own error, as its own type
                        raise exc.as_instanceof_cause() from None
                    raise
                results[stage.name] = stage.lost(*lost_text(exc))
        return results


def lost_text(exc: BaseException) -> tuple[str, str]:
    """``("Type: message", traceback)`` of a task that failed on Ray: the remote error and traceback where the stage
    raised, else Ray's account of the death (worker crashed, node died)."""
    from ray.exceptions import RayTaskError

    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}", str(exc)
