"""tfface.data."""

from tfface.data.augment import augment  # noqa: F401
from tfface.data.augment import normalize  # noqa: F401
from tfface.data.bad_input import BadInputError  # noqa: F401
from tfface.data.bad_input import BadInputReport  # noqa: F401
from tfface.data.loader import load  # noqa: F401
from tfface.data.sampler import pk_batches  # noqa: F401
from tfface.data.synthetic import SyntheticFaces  # noqa: F401
from tfface.data.synthetic import SyntheticSource  # noqa: F401
