"""When the message_filters backend rebuilds its synchroniser: a backwards jump on one input,
and the old timeline's messages still in flight on the others dropped until they follow."""

from __future__ import annotations

from lipfault_ros.sync.jumps import Jump, JumpWatch

MS = 1_000_000


def test_a_backwards_jump_resets_once_and_in_flight_old_stamps_are_dropped():
    w = JumpWatch(500 * MS)
    for t in range(0, 3000, 100):  # three inputs, in step
        for s in 'cwj':
            assert w.follow(s, t * MS) is Jump.KEEP
    assert w.follow('w', 2950 * MS) is Jump.KEEP  # a little out of order: not a jump
    assert w.follow('w', 10 * MS) is Jump.RESET and w.resets == 1
    assert w.behind_s('c', 2000 * MS) == 0.9
    # the camera and joints still deliver the old timeline: dropped, not a new jump
    assert w.follow('c', 3000 * MS) is Jump.DROP
    assert w.follow('j', 3050 * MS) is Jump.DROP
    # their first stamp of the new timeline belongs to the same jump
    assert w.follow('c', 20 * MS) is Jump.KEEP and w.follow('j', 30 * MS) is Jump.KEEP
    assert w.resets == 1
    assert w.follow('c', 120 * MS) is Jump.KEEP and w.follow('w', 110 * MS) is Jump.KEEP
    # the next loop is a new jump
    assert w.follow('j', 4000 * MS) is Jump.KEEP
    assert w.follow('j', 0) is Jump.RESET and w.resets == 2


def test_the_first_stamp_of_an_input_is_kept_whatever_it_is():
    w = JumpWatch(500 * MS)
    assert w.follow('c', 10_000 * MS) is Jump.KEEP
    assert w.follow('w', 0) is Jump.KEEP  # another input, far behind: no jump of its own
    assert w.resets == 0
