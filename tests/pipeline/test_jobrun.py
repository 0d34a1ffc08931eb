"""A job run's bookkeeping, without services: what its final UpdateJob says about entries, and what a
retired provisional story does to its counters and its next update."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from storywire.v1 import common_pb2, store_pb2, synthesizer_pb2

from services.synthesizer.pipeline.jobrun import JobRun

R = common_pb2.LeftOutReason


def run() -> JobRun:
    coordinator: Any = SimpleNamespace(settings=SimpleNamespace(worker_stream_watchdog_seconds=20.0))
    return JobRun(coordinator, common_pb2.Job(id="00000000-0000-0000-0000-000000000001", attempts=1), "tok")


def story(key: str, ids: list[str], fallback: bool = False) -> common_pb2.Story:
    return common_pb2.Story(cluster_key=key, article_ids=ids, fallback=fallback)


async def test_the_done_update_carries_every_entry_in_no_story_with_its_reason() -> None:
    job = run()
    job.ledger.entries_found = 6
    job.ledger.not_taken = [
        common_pb2.LeftOutArticle(article_id="old", reason=R.LEFT_OUT_REASON_OUT_OF_WINDOW)
    ]
    job.ledger.written = ["a", "b", "c", "d", "e"]
    job.ledger.store_rejected([common_pb2.RejectedItem(index=4, key="https://x/e", reason="text too long")])
    job.ledger.synthesis_left_out = [
        common_pb2.LeftOutArticle(article_id="d", reason=R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL),
        common_pb2.LeftOutArticle(article_id="e", reason=R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL),
    ]
    job._written = {"k1": story("k1", ["a", "b", "c"])}
    request = job._request(common_pb2.JOB_STATE_DONE, "", renew_only=False)
    assert request.entries_found == 6
    assert list(request.final_cluster_keys) == ["k1"]
    reasons = {a.article_id: (a.reason, a.detail) for a in request.left_out}
    # the rejected article counts once, as rejected, with the store's reason
    assert reasons == {
        "old": (R.LEFT_OUT_REASON_OUT_OF_WINDOW, ""),
        "e": (R.LEFT_OUT_REASON_REJECTED, "text too long"),
        "d": (R.LEFT_OUT_REASON_CLUSTER_TOO_SMALL, ""),
    }


async def test_a_retired_story_leaves_the_counters_and_goes_with_the_next_update() -> None:
    job = run()
    job.state = common_pb2.JOB_STATE_SYNTHESIZING  # past the state change (an UpdateJob of its own)
    stories: Any = SimpleNamespace(put=_noop)
    session: Any = SimpleNamespace(totals=SimpleNamespace(proto=common_pb2.SynthesisTotals()))
    for key, ids in (("early", ["a", "b"]), ("final", ["a", "b", "c"])):
        cluster = common_pb2.Cluster(key=key, article_ids=ids, provisional=key == "early")
        await job._on_synthesized(session, synthesizer_pb2.SynthesizeResponse(cluster=cluster), stories)
        await job._on_synthesized(session, synthesizer_pb2.SynthesizeResponse(story=story(key, ids)), stories)
    retired = synthesizer_pb2.StoryRetired(cluster_key="early", replaced_by=["final"])
    await job._on_synthesized(session, synthesizer_pb2.SynthesizeResponse(retired=retired), stories)
    clustered, synth = job.stages[common_pb2.STAGE_CLUSTER], job.stages[common_pb2.STAGE_SYNTHESIZE]
    assert (clustered.done, synth.done, synth.total) == (3, 1, 1)
    update = job._request(common_pb2.JOB_STATE_UNSPECIFIED, "", renew_only=True)
    assert list(update.retired) == [store_pb2.RetiredStory(cluster_key="early", replaced_by=["final"])]
    assert not update.stages  # a renewal alone appends no progress event
    assert not job._request(common_pb2.JOB_STATE_UNSPECIFIED, "", renew_only=True).retired  # sent once
    done = job._request(common_pb2.JOB_STATE_DONE, "", renew_only=False)
    assert list(done.final_cluster_keys) == ["final"]


async def _noop(_item: object) -> None:
    return None
