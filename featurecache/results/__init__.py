"""What a feature returns, beyond one frame: composite results (Series, arrays, scalars and
tuples / lists / dicts of them) split into Parquet parts plus a JSON structure, and the check
of a return annotation at decoration time."""
