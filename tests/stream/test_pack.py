"""Several detections per message of the detections topic: packing and splitting."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from firewatch.stream.pack import Packer, pack, split

PARTITIONS = [0, 1, 2, 3]


def test_lines_go_to_their_keys_partition_in_order_and_split_back_to_themselves() -> None:
    keys = [f"dev-{i % 7}".encode() for i in range(100)]
    lines = [b'{"n":%d,"device":"%s"}' % (i, k) for i, k in enumerate(keys)]
    messages = pack(lines, keys, Packer(PARTITIONS))
    kafka = DefaultPartitioner()
    for p in PARTITIONS:
        sent = [
            line
            for line, key in zip(lines, keys, strict=True)
            if kafka(key, PARTITIONS, PARTITIONS) == p
        ]
        values = [m for q, m in messages if q == p]
        got, _, numbers = split(values, list(range(len(values))))
        assert list(got) == sent  # the key's partition, as Kafka's partitioner gives it, in order
        assert numbers is not None and all(n is not None for n in numbers)


def test_a_message_is_cut_at_its_line_and_byte_limits_and_a_long_line_goes_alone() -> None:
    packer = Packer([0], max_lines=3, max_bytes=20)
    full = [packer.add(b"k", b"aaaa") for _ in range(3)]
    assert full == [[], [], [(0, b"aaaa\naaaa\naaaa")]]  # three lines
    assert packer.add(b"k", b"b" * 8) == [] and len(packer) == 1
    assert packer.add(b"k", b"c" * 15) == [(0, b"b" * 8)]  # would pass 20 bytes: sent first
    assert packer.add(b"k", b"d" * 30) == [(0, b"c" * 15), (0, b"d" * 30)]  # too long: alone
    assert packer.drain() == [] and len(packer) == 0


def test_a_newline_inside_a_line_becomes_a_space_and_drain_empties_the_packer() -> None:
    packer = Packer([0, 1], partitioner=lambda key, every, available: int(key or b"0"))
    packer.add(b"1", b'{"a":\n1}')
    packer.add(b"0", b"{}")
    assert packer.drain() == [(0, b"{}"), (1, b'{"a": 1}')]
    assert packer.drain() == []


def test_values_without_a_newline_are_split_into_nothing_new() -> None:
    values, offsets = [b"{}", b"  ", b"x"], [4, 5, 6]
    lines, at, numbers = split(values, offsets)
    assert lines is values and at is offsets and numbers is None


def test_blank_lines_within_a_message_are_skipped_and_a_blank_message_stays_one() -> None:
    lines, at, numbers = split([b"a\n\n b \n", b"c", b"\n\t\n", b"d\ne\n"], [1, 2, 3, 4])
    assert list(lines) == [b"a", b" b ", b"c", b"\n\t\n", b"d", b"e"]
    assert list(at) == [1, 1, 2, 3, 4, 4]
    assert numbers == [1, 3, None, None, 1, 2]
