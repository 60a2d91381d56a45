"""runs.many: the stop-gap many-runs helper gives the same numbers on a process pool as in-process."""

from dropout_sim import compose_config
from dropout_sim.runs.many import map_tasks, summaries


def test_map_tasks_keeps_order_on_a_pool():
    assert map_tasks(abs, [-3, 2, -1, 5], n_jobs=2) == [3, 2, 1, 5]
    assert map_tasks(abs, [-3], n_jobs=2) == [3]


def test_summaries_on_a_pool_equal_in_process():
    cfgs = [compose_config(["cohort.size=120", "county.warmup_years=2", "horizon_months=60", f"replicate={r}"])
            for r in range(2)]
    one = summaries(cfgs, n_jobs=1)
    two = summaries(cfgs, n_jobs=2)
    assert [s["completion_5y"] for s in one] == [s["completion_5y"] for s in two]
