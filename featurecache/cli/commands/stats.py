"""``featurecache stats``: hits, misses, storage and the preprocessing time the cache saved."""

from __future__ import annotations

import typer

from featurecache.cli.output import JsonFlag, human_bytes, human_seconds, print_json, print_table


def stats(as_json: JsonFlag = False) -> None:
    """Per feature and in total: hits, misses, bytes stored, compute seconds stored, and
    preprocessing seconds avoided (the stored compute time of every hit)."""
    from featurecache.cli.context import catalog_session, echo_header, load, location_of, with_cache
    from featurecache.ops.stats import FeatureStats, cache_stats

    settings = load()
    with catalog_session(settings) as catalog:
        report = cache_stats(catalog)
    location = location_of(settings)
    if as_json:
        print_json(with_cache(report.to_json(), location))
        return
    echo_header(location)

    def line(name: str, s: FeatureStats) -> list[object]:
        rate = "-" if s.hit_rate is None else f"{s.hit_rate:.0%}"
        return [
            name,
            s.hits,
            s.misses,
            rate,
            s.artifacts,
            human_bytes(s.bytes_stored),
            human_seconds(s.compute_seconds_stored),
            human_seconds(s.seconds_avoided),
        ]

    total = report.total
    print_table(
        "cache statistics",
        ["feature", "hits", "misses", "hit %", "artifacts", "bytes", "compute", "saved"],
        [*(line(s.feature or "", s) for s in report.features), line("total", total)],
        shrink=("feature",),
    )
    typer.echo(
        f"saved {human_seconds(total.seconds_avoided)} of preprocessing over {total.hits:,} "
        f"hits; misses spent {human_seconds(total.compute_seconds_spent)} computing"
    )


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
