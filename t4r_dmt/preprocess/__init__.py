"""``t4r-dmt preprocess``: NVTabular workflows from raw logs to model-ready parquet.

Ranking data (this package's ``pipeline``, ``workflow`` and ``ops``): one row per impression with
behaviour sequences as-of the request time, candidate attributes, position-bias features, dense
features and binary labels; see DESIGN.md for the output contract. Session-based next-item data:
``sessions``. Entry points: ``command.run`` (the CLI) and ``pipeline.preprocess_ranking`` (frames in).

Imports stay lazy here: ``t4r_dmt.preprocess.command`` is imported by the CLI, and NVTabular is only
loaded by the modules that need it.
"""
