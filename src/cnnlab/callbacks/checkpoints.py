"""The checkpoints of a run: the best epoch by the monitored metric, and ``last.ckpt``.

One config node (``callbacks.model_checkpoint``) describes both, so that one key,
``callbacks.model_checkpoint.every_n_train_steps=N``, turns on step checkpoints. A Lightning
``ModelCheckpoint`` saves either every N steps or every N epochs, not both, so the newest state
gets callbacks of its own: one refreshes ``last.ckpt`` after every epoch's validation, and with
``every_n_train_steps`` a second one refreshes the same file every N training steps.
"""

from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

LAST = "last"  # checkpoints/last.ckpt, what ckpt_path=last resumes


def run_checkpoints(
    dirpath: str,
    filename: str,
    monitor: str | None,
    mode: str = "max",
    save_top_k: int = 1,
    every_n_train_steps: int | None = None,
    last: bool = True,
    **best_kwargs: Any,
) -> list[ModelCheckpoint]:
    """The ``ModelCheckpoint`` callbacks of a run, all writing into ``dirpath``.

    - the best ``save_top_k`` epochs by ``monitor`` (``mode``), named by ``filename`` (metric
      names hold a "/", so Lightning does not insert them: the pattern names what it shows);
      further ``best_kwargs`` go to this callback;
    - when ``last``: ``last.ckpt`` after every epoch, and also every ``every_n_train_steps``
      training steps when that is set (null: per epoch only).
    """
    if every_n_train_steps is not None and (
        isinstance(every_n_train_steps, bool) or int(every_n_train_steps) != every_n_train_steps
    ):
        raise ValueError(f"every_n_train_steps={every_n_train_steps!r} must be a whole number")
    callbacks = [
        ModelCheckpoint(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            mode=mode,
            save_top_k=save_top_k,
            save_last=False,
            auto_insert_metric_name=False,
            **best_kwargs,
        )
    ]
    if not last:
        return callbacks
    newest = dict(dirpath=dirpath, filename=LAST, save_top_k=1, enable_version_counter=False)
    callbacks.append(ModelCheckpoint(**newest))  # after each epoch's validation
    if every_n_train_steps:
        callbacks.append(ModelCheckpoint(**newest, every_n_train_steps=int(every_n_train_steps)))
    return callbacks
