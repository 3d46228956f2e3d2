"""Maintenance of a cache, as library functions the CLI renders and tests call directly.

Each function takes a ``Catalog`` (and an ``ArtifactStore`` where files matter) and returns a
frozen dataclass with ``to_json()``:

* ``inventory``: ``list_artifacts`` (ls), ``show_artifact`` (show), ``set_pinned`` (pin/unpin);
* ``stats``: ``cache_stats``: calls, storage and the preprocessing time the cache saved;
* ``gc_run``: ``collect_garbage``: plan with ``featurecache.ops.gc_plan``, mark, then sweep;
* ``verify``: ``verify_cache``: reconcile catalog and store, and repair what is safe.
"""
