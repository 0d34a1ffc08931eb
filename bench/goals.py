"""The goals of the LLM benchmarks (issue 19), checked from a results file's rows:

- oracle wall / storywire wall >= 0.95 (storywire matches a peer told the capacity, without being told);
- storywire ahead of every peer whose efficiency is below 0.9;
- on ``cpu``, storywire's time to the first story within 1.2x the best static limit's;
- on ``sloppy`` (30 % bad answers), the seed job (through the three services) stores an accepted LLM
  story for >= 85 % of the clusters, with the calls beyond one per cluster counted.

The peers compared are those doing storywire's work (:mod:`bench.peers.common`); the sloppy profile's
peer marked "no answer check" ships what it gets and takes no part. Where storywire and the peers still
wrote different numbers of stories, the verdict is withheld ("not comparable").
"""

from __future__ import annotations

from typing import Any

ORACLE_RATIO, PEER_EFFICIENCY, FIRST_RATIO, ACCEPTED = 0.95, 0.9, 1.2, 0.85


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _not_comparable(mine: dict[str, Any], who: str, items: int) -> str:
    """The verdict withheld over unequal work: the walls say nothing of who is faster."""
    return f"**not comparable** (storywire {mine['items']} {mine['unit']}, {who} {items})"


def _groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """LLM rows by ``scenario profile`` (``seed queue``, ``adaptive K=4`` ...)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["scenario"] in {"seed", "adaptive"}:
            groups.setdefault(f"{r['scenario']} {r['variant'].split(':', 1)[0]}", []).append(r)
    return groups


def goal_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(where, goal, figures and verdict) for every goal the file has the rows for."""
    out = []
    for where, group in _groups(rows).items():
        mine = [
            r for r in group if "storywire synthesizer" in r["variant"] or "storywire default" in r["variant"]
        ]
        # the peers that do storywire's work (not the sloppy profile's peer that checks nothing)
        peers = [r for r in group if not any(w in r["variant"] for w in ("storywire", "no answer check"))]
        oracle = [r for r in peers if "oracle" in r["variant"]]
        if not mine or not oracle:
            continue
        sw, orc = mine[0], oracle[0]
        ratio = orc["wall_s"] / sw["wall_s"]
        verdict = _verdict(ratio >= ORACLE_RATIO)
        if sw["items"] != orc["items"]:
            verdict = _not_comparable(sw, "the oracle", orc["items"])
        measured = f"{orc['wall_s']:.3f} / {sw['wall_s']:.3f} = {ratio:.2f}: {verdict}"
        out.append((where, f"oracle wall / storywire wall >= {ORACLE_RATIO}", measured))
        weak = [r for r in peers if (r["efficiency"] or 1) < PEER_EFFICIENCY]
        behind = [r for r in weak if r["wall_s"] <= sw["wall_s"]]
        names = ", ".join(f"{r['variant'].split(': ', 1)[1]} {r['wall_s']:.3f}" for r in behind)
        ahead = _verdict(not behind)
        if any(r["items"] != sw["items"] for r in weak):
            ahead = _not_comparable(sw, "the peers", weak[0]["items"])
        out.append((where, f"ahead of every peer below {PEER_EFFICIENCY} of the ideal",
                    f"{len(weak) - len(behind)} of {len(weak)}" + (f"; not of {names}" if names else "")
                    + f": {ahead}"))  # fmt: skip
        if where == "seed cpu":
            best = sw["extra"]["best_static_first_s"]
            first = sw["first_s"] / best
            runs = ", ".join(f"{f:.3f}" for f in sw["extra"]["firsts"])
            out.append((where, f"first story within {FIRST_RATIO}x the best static limit's",
                        f"{sw['first_s']:.3f} s (runs {runs}) / {best:.3f} s = {first:.2f}x: "
                        f"{_verdict(first <= FIRST_RATIO)}"))  # fmt: skip
        if where == "seed sloppy":
            out.append(_accepted(where, sw, group))
    return out


def _accepted(where: str, stream: dict[str, Any], group: list[dict[str, Any]]) -> tuple[str, str, str]:
    """The sloppy goal: what the seed job through the three services stored (older files: the stream's
    last run), with the calls beyond one per cluster (regenerations and format retries) counted."""
    job = next((r for r in group if "end to end" in r["variant"] and "stored" in r["extra"]), None)
    if job is None:
        run = stream["extra"]["runs"][-1]
        share = (run["stories"] - run["fallbacks"]) / run["stories"]
        return (where, f"accepted LLM story for >= {ACCEPTED:.0%} of clusters",
                f"{run['stories'] - run['fallbacks']}/{run['stories']} = {share:.0%} with "
                f"{run['llm_calls']} calls for {run['stories']} clusters ({run['rejections']} "
                f"grounding rejections): {_verdict(share >= ACCEPTED)}")  # fmt: skip
    x = job["extra"]
    share = (x["stored"] - x["fallbacks"]) / x["stored"]
    return (where, f"the seed job stores an accepted LLM story for >= {ACCEPTED:.0%} of clusters",
            f"{x['stored'] - x['fallbacks']}/{x['stored']} = {share:.0%}; {x['llm_calls']} calls for "
            f"{x['stored']} clusters: {x['llm_calls'] - x['stored']} beyond one each ({x['rejections']} "
            f"grounding rejections): {_verdict(share >= ACCEPTED)}")  # fmt: skip


def goals_table(payload: dict[str, Any]) -> str:
    lines = ["| where | goal | measured |", "| --- | --- | --- |"]
    lines += [f"| {w} | {g} | {m} |" for w, g, m in goal_rows(payload["rows"])]
    return "\n".join(lines)
