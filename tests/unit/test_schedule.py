"""The phase queue shared by the FA and "Watch it learn" experiments (explorer_core.inference.schedule)."""

import pytest

from explorer_core.inference.schedule import PhaseQueue, add_segment


def test_queue_merges_neighbours_and_takes_in_order():
    q = PhaseQueue()
    q.enqueue("e_step", 3)
    q.enqueue("e_step", 2)
    q.enqueue("m_step", 4)
    q.enqueue("joint", 1)
    assert q.segments() == [("e_step", 5), ("m_step", 4), ("joint", 1)] and len(q) == 3
    assert q.queued_steps == 10 and q.head() == ("e_step", 5)
    q.take(5)
    assert q.head() == ("m_step", 4)
    q.take(1)
    assert q.head() == ("m_step", 3)
    with pytest.raises(ValueError):
        q.take(4)  # more than the head holds: phases never run into each other
    q.clear()
    assert not q and q.head() is None and q.queued_steps == 0


@pytest.mark.parametrize("phase, n", [("gaussian", 3), ("e_step", 0), ("e_step", -1), ("m_step", 2.5)])
def test_queue_rejects_nonsense(phase, n):
    q = PhaseQueue()
    with pytest.raises(ValueError):
        q.enqueue(phase, n)
    assert q.queued_steps == 0


def test_queue_limit_and_schedules_are_all_or_nothing():
    q = PhaseQueue(max_steps=100)
    q.enqueue("joint", 60)
    with pytest.raises(ValueError):
        q.enqueue_schedule([("e_step", 20), ("m_step", 30)])  # 110 > 100
    assert q.segments() == [("joint", 60)]
    with pytest.raises(ValueError):
        q.enqueue_schedule([("e_step", 10), ("nonsense", 1)])
    assert q.segments() == [("joint", 60)]
    q.enqueue_schedule([("e_step", 20), ("m_step", 20)])
    assert q.segments() == [("joint", 60), ("e_step", 20), ("m_step", 20)]


def test_add_segment_extends_only_adjacent_runs_of_one_phase():
    segments: list[list] = []
    add_segment(segments, "e_step", 1, 10)
    add_segment(segments, "e_step", 11, 12)
    add_segment(segments, "m_step", 13, 13)
    add_segment(segments, "m_step", 20, 21)  # not adjacent: a new run
    add_segment(segments, "joint", 22, 21)  # empty: nothing
    assert segments == [["e_step", 1, 12], ["m_step", 13, 13], ["m_step", 20, 21]]
