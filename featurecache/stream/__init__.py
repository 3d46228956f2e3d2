"""Streaming artifacts to training loops: ``featurecache.open(ref).batches(...)`` and
``.to_torch()``. Read in data-flow order: refs (what a reference names), source (where the
verified bytes are read from), batching and prefetch (pure plumbing), plan (one pass over the
row groups), reader (the public object), torch (the DataLoader adapter)."""
