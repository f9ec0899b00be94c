"""fairgym.analysis: metrics over recorded episodes, model diagnostics, reports and W&B (the toxicity scorers are
the Dialogue env's reward and live in ``fairgym.envs.toxicity``).

Modules (import the one you need; nothing heavy is imported here):

- ``metrics``: ``compute_metrics(episodes)``, ``trajectories(episodes)``, ``summary_table(metrics)``,
  ``write_metrics`` / ``read_metrics`` (``metrics.json``);
- ``trajectories``: the step table and the per-turn / cumulative machinery behind the trajectories (``per_turn``:
  any group statistic, turn by turn);
- ``turn_counts``: the families' trajectories from counts per turn and group and their running totals;
- ``plots``: matplotlib figures of trajectories and group metrics (``run_figures``, ``save_figures``);
- ``report``: ``write_report(run_dir)`` and reusable markdown pieces;
- ``wandb_log``: ``log_run(...)`` and ``log_figures(run, figures)``.
"""
