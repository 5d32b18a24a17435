"""The run directory of an analytic study (`model=gaussian|gmm|categorical|linreg`): one compiled program
computes every generation (`collapse.families.analytic.simulate`), so one marker covers all of them. A rerun
with at most the finished number of generations recomputes nothing; more generations recompute the study
(seconds), and the earlier generations come out the same."""

from __future__ import annotations

import logging
from collections.abc import Callable

from collapse import report, tables
from collapse.config import Config, to_dict
from collapse.files import load_json, metric_row, save_array, save_json
from collapse.store import RunDir

log = logging.getLogger("collapse")


def run(cfg: Config, store: RunDir, on_open: Callable[[RunDir], None] | None = None) -> RunDir:
    import jax

    from collapse.families import analytic

    analytic.check(cfg)
    if store.program_marker.exists() and load_json(store.program_marker).get("generations", 0) >= cfg.generations:
        log.info("%s: all %d generations done", store.path, cfg.generations)
        report.write(store)
        return store
    G, R = cfg.generations, cfg.replicates
    with store.lock():
        if on_open is not None:
            on_open(store)
        save_json(store.path / "config.json", to_dict(cfg))
        device = jax.devices()[0].device_kind
        log.info("run directory %s | %s | %d generations x %d replicates | regime=%s | device %s",
                 store.path, cfg.model.name, G, R, cfg.regime.name, device)
        sim = analytic.simulate(cfg, snapshots=tables.shown_generations(list(range(G))))
        save_array(store.path / "params" / "generation.npy", sim.generations)
        for name, array in sim.params.items():
            save_array(store.path / "params" / f"{name}.npy", array)
        values = {name: v.tolist() for name, v in sim.metrics.items()}
        rows = [metric_row(g, r, name, v[g][r], cfg.seed) for g in range(G) for r in range(R)
                for name, v in values.items()]
        store.write_run_metrics(rows)
        save_json(store.program_marker, {"generations": G, "replicates": R, "seconds": sim.seconds,
                                         "compile_seconds": sim.compile_seconds, "device": device})
        report.print_generation(G - 1, [row for row in rows if row["generation"] == G - 1],
                                sim.seconds + sim.compile_seconds)
        report.write(store, rows)
    return store
