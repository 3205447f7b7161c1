"""SIGTERM and Ctrl-C end a run with a checkpoint and the command that resumes it.

Left to themselves, Lightning ends a run on SIGTERM after the running batch, or in the middle
of validation, with exit status 0 and nothing saved, and Ctrl-C raises KeyboardInterrupt
wherever the program is, in the middle of an optimizer step as well. ``Interrupt`` installs its
own handlers for both for the time of fit and turns them into a stop at the end of a training
batch,
the point where Lightning's own step checkpoints are taken and from which it resumes exactly:
it saves ``last.ckpt`` there (through the trainer, so atomically with ``AtomicCheckpointIO``)
and ends the run with ``RunInterrupted``, whose message names the resume command. A second
Ctrl-C stops at once; the last saved checkpoint stays as it was.
"""

import logging
import signal
import threading
from pathlib import Path

import lightning.pytorch as pl

from cnnlab.errors import UserError

log = logging.getLogger("cnnlab")


class RunInterrupted(UserError):
    """Training stopped on a signal after saving its state; the message says how to resume."""


class Interrupt(pl.Callback):
    """Stop on SIGTERM or the first Ctrl-C at the end of the running training batch, save
    ``last_path`` and raise ``RunInterrupted`` naming ``resume_command``.

    A signal that comes during validation is acted on at the end of the next training batch, or
    when training ends. No checkpoint is saved under ``fast_dev_run`` (it keeps no files).
    """

    def __init__(self, last_path: str, resume_command: str) -> None:
        self.last_path = str(last_path)
        self.resume_command = resume_command
        self.signal_name: str | None = None
        self._previous_sigint = None
        self._previous_sigterm = None

    # the handlers, installed for the time of fit (after Lightning's own) ------------------
    def _on_sigint(self, signum, frame) -> None:
        self.signal_name = "Ctrl-C"
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: at once
        log.warning("Ctrl-C: stopping after this training batch (press again to stop now).")

    def _on_sigterm(self, signum, frame) -> None:
        self.signal_name = "SIGTERM"
        log.warning("SIGTERM: stopping after this training batch.")

    def on_fit_start(self, trainer, pl_module) -> None:
        self.signal_name = None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _take_sigterm_back(self) -> None:
        """Lightning registers its SIGTERM handler after ``on_fit_start``, with ours inside it:
        its flag then ends the run (exit status 0, nothing saved) when the signal lands between
        our check at a batch's end and its own, in validation for instance. Ours alone again."""
        main = threading.current_thread() is threading.main_thread()
        if main and self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._take_sigterm_back()

    def on_train_start(self, trainer, pl_module) -> None:
        self._take_sigterm_back()

    def _restore_sigint(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        if self._previous_sigint is not None:
            if main:
                signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
        if self._previous_sigterm is not None:
            if main:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._restore_sigint()

    # stopping ------------------------------------------------------------------------------
    def _requested(self, trainer) -> str | None:
        if self.signal_name:
            return self.signal_name
        return "SIGTERM" if trainer.received_sigterm else None

    def _stop(self, trainer) -> None:
        name = self._requested(trainer)
        self._restore_sigint()
        if trainer.fast_dev_run:
            raise RunInterrupted(f"Training stopped by {name} (fast_dev_run: nothing saved).")
        trainer.save_checkpoint(self.last_path)
        where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
        raise RunInterrupted(
            f"Training stopped by {name} at {where}; its state is saved in {self.last_path}. "
            f"Resume it with: {self.resume_command}"
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._requested(trainer):
            self._stop(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._requested(trainer):
            self._stop(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_sigint()
        if isinstance(exception, KeyboardInterrupt):
            wait = getattr(trainer.strategy.checkpoint_io, "wait", None)
            if callable(wait):  # a save still being written in the background
                wait()
            last = Path(self.last_path)
            saved = f"the last saved state is {last}" if last.is_file() else "nothing was saved"
            log.error(
                "Stopped at once by a second Ctrl-C; %s. Resume it with: %s",
                saved,
                self.resume_command,
            )
