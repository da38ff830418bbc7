"""Recordings are scrubbed of machine paths, UUIDs and the host name, keeping structure."""

from __future__ import annotations

from tests.harness.scrub import HOST_PLACEHOLDER, Scrubber


def test_paths_are_replaced_longest_first_in_values_and_keys() -> None:
    scrubber = Scrubber([("/tmp/x", "/root-dir"), ("/tmp/x/workspace", "/workspace")], hostname="box")

    scrubbed = scrubber.value({"cwd": "/tmp/x/workspace/a.txt", "/tmp/x/home": ["/tmp/x/workspace"], "n": 3})

    assert scrubbed == {"cwd": "/workspace/a.txt", "/root-dir/home": ["/workspace"], "n": 3}


def test_uuids_map_to_stable_fake_uuids_within_one_scrubber() -> None:
    scrubber = Scrubber([], hostname="box")
    first = "01a20b5a-cb2b-7a53-af99-fa932283c6fe"
    second = "01a20b5a-cb39-7ca1-a1ca-4872265f1037"

    scrubbed = scrubber.value([first, f"rollout-{second}.jsonl", first.upper()])

    assert scrubbed == [
        "00000000-0000-7000-8000-000000000001",
        "rollout-00000000-0000-7000-8000-000000000002.jsonl",
        "00000000-0000-7000-8000-000000000001",
    ]


def test_a_value_equal_to_the_host_name_becomes_a_placeholder() -> None:
    scrubber = Scrubber([], hostname="box")

    assert scrubber.value({"serverName": "box", "other": "boxes"}) == {
        "serverName": HOST_PLACEHOLDER,
        "other": "boxes",
    }
