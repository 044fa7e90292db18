"""Settings for the server ``bench/scale.py`` starts: the project's own, read from the same
environment, with one difference: the URLs add the benchmark's comparison views
(``bench/urls_bench.py``). Nothing else changes, so every page is served as in production."""

from jobboard.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bench"
