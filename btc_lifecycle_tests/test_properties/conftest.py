"""One deterministic hypothesis profile for the property tests: a fixed seed, no example database."""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir

PROFILE = "btc_lifecycle_properties"

# derandomize: the same examples on every run and machine, so a red build is reproducible.
# database=None: no .hypothesis folder in the working tree. deadline=None: pandas and DuckDB
# timings vary with the load on a shared CI runner, and a slow example is not a wrong one.
settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=False,
    # No explain phase: on a failure it reruns the example hundreds of times to annotate lines.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(PROFILE)
# Even without a database, hypothesis keeps a .hypothesis folder (constants it collects) in the
# working directory: tests write only to temporary folders.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))
