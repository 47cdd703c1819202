"""Sharded encoding: fixed-size shards, id index, manifest, and resuming after a kill."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyret.encode.cache import CachedEncoder
from polyret.encode.shards import encode_to_shards, load_shards, shard_paths
from polyret.errors import ConfigError, DataError

CORPUS = [(f"doc-{i}", f"text number {i}") for i in range(23)]


def test_layout_and_contents(tmp_path, counting_encoder):
    run = encode_to_shards(
        counting_encoder, CORPUS, tmp_path / "shards", shard_size=5, dtype="float32", prefix="p: ", show_progress=False
    )
    assert (run.encoded, run.reused, run.complete, run.count) == (5, 0, True, 23)
    out = run.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == 23 and manifest["n_shards"] == 5 and manifest["dim"] == 8
    assert manifest["settings"]["prefix"] == "p: " and manifest["settings"]["fingerprint"] == "counting-encoder"
    assert [entry["count"] for entry in manifest["shards"]] == [5, 5, 5, 5, 3]
    assert counting_encoder.calls == [5, 5, 5, 5, 3]
    ids, arrays = load_shards(out)
    assert ids == [item_id for item_id, _ in CORPUS]
    vectors = np.concatenate(arrays)
    np.testing.assert_array_equal(vectors, np.stack([counting_encoder.vector(t, "p: ") for _, t in CORPUS]))
    assert len(arrays) == 5 and arrays.count == 23 and [len(a) for a in arrays[1:3]] == [5, 5]


def test_plain_strings_get_positional_ids_and_float16(tmp_path, counting_encoder):
    out = encode_to_shards(
        counting_encoder, (text for _, text in CORPUS[:7]), tmp_path / "s", shard_size=4, show_progress=False
    ).out_dir
    ids, arrays = load_shards(out)
    assert ids == [str(i) for i in range(7)] and arrays[0].dtype == np.float16


def test_resumed_run_equals_an_uninterrupted_run(tmp_path, make_counting_encoder):
    whole = make_counting_encoder()
    encode_to_shards(whole, CORPUS, tmp_path / "whole", shard_size=4, show_progress=False)

    killed = make_counting_encoder(fail_after=3)  # dies while encoding the 4th shard
    with pytest.raises(KeyboardInterrupt):
        encode_to_shards(killed, CORPUS, tmp_path / "resumed", shard_size=4, show_progress=False)
    assert shard_paths(tmp_path / "resumed", 2)[0].exists() and not shard_paths(tmp_path / "resumed", 3)[0].exists()
    assert not json.loads((tmp_path / "resumed" / "manifest.json").read_text())["complete"]
    with pytest.raises(DataError, match="not finished"):
        load_shards(tmp_path / "resumed")

    resumer = make_counting_encoder()
    encode_to_shards(resumer, iter(CORPUS), tmp_path / "resumed", shard_size=4, show_progress=False)
    assert resumer.calls == [4, 4, 3]  # shards 3, 4, 5 only: the first three were kept
    ids_whole, arrays_whole = load_shards(tmp_path / "whole")
    ids_resumed, arrays_resumed = load_shards(tmp_path / "resumed")
    assert ids_whole == ids_resumed
    np.testing.assert_array_equal(np.concatenate(arrays_whole), np.concatenate(arrays_resumed))
    assert (tmp_path / "whole" / "ids.txt").read_text() == (tmp_path / "resumed" / "ids.txt").read_text()

    again = make_counting_encoder()  # a finished folder returns at once
    assert encode_to_shards(again, CORPUS, tmp_path / "resumed", shard_size=4, show_progress=False).complete
    assert again.calls == []


def test_ranks_split_the_shards_and_the_last_one_finishes_the_folder(tmp_path, make_counting_encoder):
    whole = make_counting_encoder()
    encode_to_shards(whole, CORPUS, tmp_path / "whole", shard_size=4, show_progress=False)

    ranks = [make_counting_encoder() for _ in range(3)]
    runs = [
        encode_to_shards(
            encoder, CORPUS, tmp_path / "split", shard_size=4, show_progress=False, rank=rank, world_size=3
        )
        for rank, encoder in enumerate(ranks)
    ]
    assert [encoder.calls for encoder in ranks] == [[4, 4], [4, 4], [4, 3]]  # shards 0,3 | 1,4 | 2,5
    assert [run.complete for run in runs] == [False, False, True]
    assert _files(tmp_path / "split") == _files(tmp_path / "whole")

    again = make_counting_encoder()  # rank 0 of a second launch finds the folder finished
    assert (
        encode_to_shards(
            again, CORPUS, tmp_path / "split", shard_size=4, show_progress=False, rank=0, world_size=3
        ).complete
        and again.calls == []
    )


def test_a_killed_rank_is_resumed_by_a_relaunch(tmp_path, make_counting_encoder):
    with pytest.raises(KeyboardInterrupt):
        encode_to_shards(
            make_counting_encoder(fail_after=1),
            CORPUS,
            tmp_path / "s",
            shard_size=4,
            show_progress=False,
            rank=0,
            world_size=2,
        )
    assert not encode_to_shards(
        make_counting_encoder(), CORPUS, tmp_path / "s", shard_size=4, show_progress=False, rank=1, world_size=2
    ).complete
    resumed = make_counting_encoder()
    run = encode_to_shards(resumed, CORPUS, tmp_path / "s", shard_size=4, show_progress=False, rank=0, world_size=2)
    assert resumed.calls == [4, 4] and run.reused == 1 and run.complete  # shard 0 kept; shards 2 and 4 encoded


def _files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_other_settings_or_changed_input_are_refused(tmp_path, make_counting_encoder):
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        encode_to_shards(make_counting_encoder(fail_after=1), CORPUS, out, shard_size=4, show_progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        encode_to_shards(make_counting_encoder(), CORPUS, out, shard_size=5, show_progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        encode_to_shards(make_counting_encoder(fingerprint="other"), CORPUS, out, shard_size=4, show_progress=False)
    with pytest.raises(DataError, match="input changed"):
        encode_to_shards(make_counting_encoder(), CORPUS[1:], out, shard_size=4, show_progress=False)


def test_cached_encoder_is_bypassed(tmp_path, polyret_home, counting_encoder):
    encode_to_shards(CachedEncoder(counting_encoder), CORPUS[:3], tmp_path / "s", shard_size=2, show_progress=False)
    assert counting_encoder.calls == [2, 1]
    assert not (polyret_home / "embeddings").exists()


def test_bad_arguments(tmp_path, counting_encoder):
    with pytest.raises(ConfigError, match="shard_size"):
        encode_to_shards(counting_encoder, CORPUS, tmp_path, shard_size=0)
    with pytest.raises(ConfigError, match="dtype"):
        encode_to_shards(counting_encoder, CORPUS, tmp_path, shard_size=2, dtype="int8")
    with pytest.raises(ConfigError, match="rank 2"):
        encode_to_shards(counting_encoder, CORPUS, tmp_path, shard_size=2, rank=2, world_size=2)
    with pytest.raises(DataError, match=r"'a' appears 2 times \(shards \[0, 1\]\)"):
        encode_to_shards(
            counting_encoder, [("a", "x"), ("b", "y"), ("a", "z")], tmp_path / "d", shard_size=2, show_progress=False
        )
    with pytest.raises(DataError, match="line break"):
        encode_to_shards(counting_encoder, [("a\nb", "text")], tmp_path / "x", shard_size=2, show_progress=False)


@pytest.mark.parametrize("name", ["../outside.npy", "/etc/passwd", "sub/shard.npy", "", ".hidden.npy", 7])
def test_a_manifest_cannot_point_outside_its_folder(tmp_path, counting_encoder, name):
    out = encode_to_shards(counting_encoder, CORPUS[:4], tmp_path / "s", shard_size=2, show_progress=False).out_dir
    (tmp_path / "outside.npy").write_bytes((out / "shard-00000.npy").read_bytes())
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][0]["file"] = name
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"manifest\.json: shard 0: file .* is not a file name in"):
        load_shards(out)
