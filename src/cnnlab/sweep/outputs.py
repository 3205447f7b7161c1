"""What a search leaves in its sweep folder, beside the trials' run folders and ``optuna.db``:

- ``best_experiment.yaml``: the best trial's overrides as an experiment config. A copy sits in
  ``experiment/`` so that ``cnnlab-train --config-dir SWEEP_DIR experiment=best_experiment``
  trains it (Hydra looks for ``experiment=NAME`` in ``experiment/NAME.yaml`` of each config
  folder); copy it into your own ``configs/experiment/`` to keep it;
- ``optimization_results.yaml``: the best trial's number, value and parameters, and how many
  trials the study holds in each state;
- ``optuna_history.png``, ``optuna_importance.png``, ``optuna_parallel.png``: Optuna's own
  matplotlib plots of the whole study (its history, the parameters' importance, and parallel
  coordinates), drawn where the study has what each needs.
"""

import logging
import warnings
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("cnnlab")

BEST = "best_experiment.yaml"
RESULTS = "optimization_results.yaml"
SKIPPED_GROUPS = ("hparams_search",)  # the search itself is not part of the best config


def write_outputs(
    study, sweep_dir: Path, config: DictConfig, n_trials: int, before: int, metric: str = "value"
) -> None:
    """Everything above, for the study as it stands after this command's ``n_trials``."""
    from optuna.trial import TrialState

    counts = {s.name.lower(): 0 for s in TrialState}
    for trial in study.trials:
        counts[trial.state.name.lower()] += 1
    results = {
        "study": study.study_name,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "trials": counts,
        "this_command": {"before": before, "run": n_trials},
    }
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        results.update(best_trial=best.number, best_value=best.value, best_params=best.params)
        text = experiment_yaml(best.user_attrs.get("overrides", []), choices_of(config),
                               header=best_header(study, best, sweep_dir, metric))  # fmt: skip
        (sweep_dir / "experiment").mkdir(exist_ok=True)
        for path in (sweep_dir / BEST, sweep_dir / "experiment" / BEST):
            path.write_text(text)
        log.info("Best trial %d (%s %.4f): %s; train it with: cnnlab-train --config-dir %s "
                 "experiment=best_experiment", best.number, metric, best.value, sweep_dir / BEST,
                 sweep_dir)  # fmt: skip
    else:
        log.warning("No trial of study %r has completed: no %s.", study.study_name, BEST)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS)
    log.info("Study %r: %s.", study.study_name,
             ", ".join(f"{n} {s}" for s, n in counts.items() if n))  # fmt: skip
    draw_plots(study, sweep_dir, metric)


def choices_of(config: DictConfig) -> set[str]:
    """The config groups of the composed config (``optimizer``, ``data``, ...)."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    return set(choices.keys())


def best_header(study, best, sweep_dir: Path, metric: str) -> str:
    return (
        f"Best trial {best.number} of Optuna study '{study.study_name}' "
        f"({metric} {best.value:.4f}, {study.direction.name.lower()}d), searched in {sweep_dir}.\n"
        f"Train it: cnnlab-train --config-dir {sweep_dir} experiment=best_experiment"
    )


def experiment_yaml(overrides: list[str], groups: set[str], header: str = "") -> str:
    """An experiment config (``# @package _global_``) that sets what ``overrides`` set:
    config groups through its defaults list, values as nested keys."""
    defaults, values, left_out = [], OmegaConf.create({}), []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key.startswith("hydra.") or key.startswith("hydra/") or key in SKIPPED_GROUPS:
            continue
        if override.is_delete():
            left_out.append(override.input_line)
        elif key == "experiment":  # the search's own experiment, under this one's settings
            defaults.insert(0, f"/experiment/{override.value()}")
        elif key in groups:
            defaults.append({f"override /{key}": override.value()})
        else:
            OmegaConf.update(values, key, override.value(), force_add=True)
    body = {"defaults": defaults + ["_self_"]} if defaults else {}
    body.update(OmegaConf.to_container(values))
    lines = ["# @package _global_"] + [f"# {line}" for line in header.splitlines()]
    lines += [f"# Left out (deletions): {' '.join(left_out)}"] if left_out else []
    return "\n".join(lines) + "\n" + OmegaConf.to_yaml(OmegaConf.create(body))


def draw_plots(study, sweep_dir: Path, metric: str = "value") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    for name, plot in (("optuna_history.png", plots.plot_optimization_history),
                       ("optuna_importance.png", plots.plot_param_importances),
                       ("optuna_parallel.png", plots.plot_parallel_coordinate)):  # fmt: skip
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks these plots experimental
                axes = plot(study, target_name=metric)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            log.info("No %s: %s", name, e)
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.savefig(sweep_dir / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
