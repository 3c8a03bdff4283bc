"""A load worker whose coordinator dies must end, not spin on a pipe that stays readable."""

from __future__ import annotations

import multiprocessing

from pi_im_bench import worker


def test_a_worker_ends_when_its_coordinator_goes_away():
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    spec = worker.WorkerSpec(
        index=0,
        workers=1,
        host="127.0.0.1",
        port=9,
        domain="bench.invalid",
        mechanism=None,
        cafile=None,
        accounts=[],
    )
    process = context.Process(target=worker.main, args=(spec, theirs))
    process.start()
    theirs.close()
    assert ours.recv()["kind"] == "tick"  # it is up and talking
    ours.close()  # what a killed coordinator leaves behind
    process.join(timeout=30)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive, "the worker outlived its coordinator"
    assert process.exitcode == 0
