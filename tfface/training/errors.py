"""Why a training run stops early: a non-finite step, collapsed embeddings, or a signal.

train.py maps them to exit statuses: `NonFiniteLossError` → 3, `EmbeddingCollapseError`
→ 4, `TrainingInterrupted` → 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

import signal


class NonFiniteLossError(RuntimeError):
    """Raised when a training step is not finite: its loss, its global gradient norm, or the
    model/optimizer state after it. Nothing non-finite is applied or saved.

    Attributes:
        step: the 1-based step that was not finite.
        last_checkpoint: the latest saved checkpoint (every save is checked finite), or None.
    """

    def __init__(self, message, step=None, last_checkpoint=None):
        super().__init__(message)
        self.step = step
        self.last_checkpoint = last_checkpoint


class EmbeddingCollapseError(RuntimeError):
    """Raised by `Trainer.fit` when every face of the training batches embeds to nearly
    the same point for several steps in a row (a collapse: the loss sits at the margin and
    the model no longer tells faces apart). The collapsed state is not saved.

    Attributes:
        step: the 1-based step at which the run stopped.
        last_checkpoint: the latest saved checkpoint, or None.
    """

    def __init__(self, message, step=None, last_checkpoint=None):
        super().__init__(message)
        self.step = step
        self.last_checkpoint = last_checkpoint


class TrainingInterrupted(RuntimeError):
    """Raised by `Trainer.fit` after SIGINT/SIGTERM, once the step in flight has finished
    and a checkpoint of it is saved.

    Attributes:
        step: the step the checkpoint holds.
        signum: the signal received.
        checkpoint: the checkpoint path.
        exit_code: 128 + signum (130 for SIGINT, 143 for SIGTERM), the shell convention.
    """

    def __init__(self, step, signum, checkpoint):
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted at step {step}; rerun the same command to resume "
            f"({name}; saved {checkpoint})"
        )
        self.step = step
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + int(signum)
