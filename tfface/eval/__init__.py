"""tfface.eval: face verification protocols and reports.

- `verification`: the LFW 10-fold protocol (accuracy, facenet VAL@FAR), ROC AUC, EER,
  TAR@FAR, JSON + ROC PNG reports (NumPy only).
- `lfw`: LFW `pairs.txt` reading/writing and image paths.
- `bin_pack`: insightface `.bin` packs, read with a restricted unpickler.
- `pairs`: LFW-style pairs for held-out identities, the raw-pixel baseline.
- `cli` (`python -m tfface.eval`): evaluate a saved model on LFW or a `.bin` pack.
"""

from tfface.eval.bin_pack import evaluate_bin  # noqa: F401
from tfface.eval.bin_pack import load_bin  # noqa: F401
from tfface.eval.bin_pack import write_bin  # noqa: F401
from tfface.eval.lfw import pair_paths  # noqa: F401
from tfface.eval.lfw import read_pairs  # noqa: F401
from tfface.eval.lfw import write_pairs  # noqa: F401
from tfface.eval.pairs import PairIndices  # noqa: F401
from tfface.eval.pairs import evaluate_embeddings_on_pairs  # noqa: F401
from tfface.eval.pairs import make_lfw_style_pairs  # noqa: F401
from tfface.eval.pairs import raw_pixel_embeddings  # noqa: F401
from tfface.eval.verification import VerificationResult  # noqa: F401
from tfface.eval.verification import evaluate  # noqa: F401
from tfface.eval.verification import evaluate_scores  # noqa: F401
from tfface.eval.verification import format_result  # noqa: F401
from tfface.eval.verification import write_report  # noqa: F401
