import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import original_augment
from kinetics import augment
from kinetics.convert import convert
from kinetics.dataset import ConvertedDataset, SkeletonBatches, open_array
from kinetics.errors import DataError
from kinetics.subsets import KINETICS_MOTION, SubsetSpec, rarest_classes
from kinetics.synth import SynthSpec, class_names, generate

ROOT = Path(__file__).resolve().parents[1]


def _person(x, y, score):
    pose = []
    for xi, yi in zip(x, y):
        pose += [xi, yi]
    return {"pose": pose, "score": list(score)}


def _write_raw(root, train_clips, val_clips=None, labels_override=None):
    """Write a raw release by hand: {split: {clip_id: (label_index, has_skeleton, data)}}."""
    for split, clips in (("train", train_clips), ("val", val_clips or train_clips)):
        (root / f"kinetics_{split}").mkdir(parents=True, exist_ok=True)
        labels = {}
        for clip_id, (label_index, has_skeleton, data) in clips.items():
            text = data if isinstance(data, str) else json.dumps(
                {"data": data, "label": f"class {label_index}", "label_index": label_index})
            (root / f"kinetics_{split}" / f"{clip_id}.json").write_text(text)
            labels[clip_id] = {"has_skeleton": has_skeleton, "label": f"class {label_index}",
                               "label_index": (labels_override or {}).get(clip_id, label_index)}
        (root / f"kinetics_{split}_label.json").write_text(json.dumps(labels))


def _frame(t, persons):
    return {"frame_index": t, "skeleton": persons}


def test_converter_centres_zeroes_and_keeps_the_two_highest_scoring_persons_per_frame(tmp_path):
    low = _person([0.1] * 18, [0.2] * 18, [0.1] * 18)
    high = _person([0.9] * 18, [0.8] * 18, [0.9] * 18)
    middle = _person([0.6] * 18, [0.4] * 18, [0.5] * 18)
    hidden = [0.7] * 18
    hidden[3] = 0.0  # joint 3 not detected: its x, y must become 0 although the pose says 0.6
    partly = _person([0.6] * 18, [0.6] * 18, hidden)
    data = [_frame(0, [low, high, middle]), _frame(2, [partly])]
    _write_raw(tmp_path / "raw", {"a": (1, True, data), "b": (0, False, [])})
    report = convert(tmp_path / "raw", tmp_path / "out", workers=1)

    array = np.load(tmp_path / "out" / "train_data.npy")
    names, labels = pickle.load(open(tmp_path / "out" / "train_label.pkl", "rb"))
    assert array.shape == (1, 3, 300, 18, 2) and array.dtype == np.float32
    assert names == ["a.json"] and labels == [1]
    assert report["splits"]["train"]["skipped"]["no_skeleton"] == 1
    clip = array[0]
    np.testing.assert_allclose(clip[:, 0, 0, 0], [0.4, 0.3, 0.9], atol=1e-6)  # high first: x-0.5, y-0.5
    np.testing.assert_allclose(clip[:, 0, 0, 1], [0.1, -0.1, 0.5], atol=1e-6)  # then middle; low dropped
    assert (clip[:, 1] == 0).all()  # frame 1 is absent
    np.testing.assert_allclose(clip[:, 2, 0, 0], [0.1, 0.1, 0.7], atol=1e-6)
    assert (clip[:, 2, 3, 0] == 0).all()  # undetected joint zeroed
    assert (clip[:, 2, :, 1] == 0).all()  # no second person in frame 2
    assert (clip[:, 3:] == 0).all()
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["source"] == "real"


def test_unconvertible_clips_are_skipped_counted_and_named(tmp_path):
    person = _person([0.5] * 18, [0.5] * 18, [1.0] * 18)
    clips = {"ok": (0, True, [_frame(0, [person])]),
             "long": (0, True, [_frame(0, [person]), _frame(300, [person])]),
             "negative": (0, True, [_frame(0, [_person([0.5] * 18, [0.5] * 18, [-0.2] * 18)])]),
             "broken": (0, True, '{"data": [')}
    _write_raw(tmp_path / "raw", clips)
    report = convert(tmp_path / "raw", tmp_path / "out", workers=1)
    train = report["splits"]["train"]
    assert train["clips"] == 1 and train["skipped"]["unconvertible"] == 3
    assert "negative.json: negative joint score" in " ".join(train["unconvertible"])
    reasons = " ".join(train["unconvertible"])
    assert "long.json: frame_index 300 exceeds the 300-frame layout" in reasons
    assert "broken.json: malformed JSON" in reasons
    assert np.load(tmp_path / "out" / "train_data.npy").shape[0] == 1  # shrunk in place to the kept clips


def test_clips_with_non_finite_values_bad_frame_entries_or_negative_frame_indices_are_skipped_and_named(tmp_path):
    person = _person([0.5] * 18, [0.5] * 18, [1.0] * 18)
    clips = {"ok": (0, True, [_frame(0, [person])]),
             "nan": (0, True, '{"data": [{"frame_index": 0, "skeleton": [{"pose": [NaN' + ', 0.5' * 35 + '], '
                              '"score": [' + ', '.join(['1.0'] * 18) + ']}]}], "label_index": 0}'),
             "infinite": (0, True, [_frame(0, [_person([float("inf")] * 18, [0.5] * 18, [1.0] * 18)])]),
             "short_pose": (0, True, [_frame(0, [{"pose": [0.5] * 10, "score": [1.0] * 18}])]),
             "no_score": (0, True, [_frame(0, [{"pose": [0.5] * 36}])]),
             "before_start": (0, True, [_frame(-1, [person])])}
    _write_raw(tmp_path / "raw", clips)
    train = convert(tmp_path / "raw", tmp_path / "out", workers=1)["splits"]["train"]
    reasons = " ".join(train["unconvertible"])
    assert train["clips"] == 1 and train["skipped"]["unconvertible"] == 5
    assert "nan.json: contains NaN or infinite coordinates" in reasons
    assert "infinite.json: contains NaN or infinite coordinates" in reasons
    assert "short_pose.json: frame 0 person 0 has 10 pose values and 18 scores, expected 36 and 18" in reasons
    assert "no_score.json: malformed frame entry (KeyError: 'score')" in reasons
    assert "before_start.json: frame_index -1 is not a non-negative integer" in reasons


def test_a_pool_of_converter_processes_writes_what_one_process_writes(synthetic, tmp_path):
    convert(synthetic / "raw", tmp_path / "pooled", workers=2)
    for name in ("train_data.npy", "val_data.npy", "class_names.json"):
        assert (tmp_path / "pooled" / name).read_bytes() == (synthetic / "converted" / name).read_bytes()
    assert pickle.load(open(tmp_path / "pooled" / "train_label.pkl", "rb")) == \
        pickle.load(open(synthetic / "converted" / "train_label.pkl", "rb"))


def test_the_data_command_makes_converts_and_names_classes(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "kinetics", *args], cwd=ROOT, capture_output=True, text=True)
    made = run("synth", "--out", str(tmp_path / "raw"), "--classes", "30", "--clips-per-class", "2", "--seed", "1")
    assert made.returncode == 0 and "wrote synthetic raw data (30 classes)" in made.stdout
    converted = run("convert", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "1")
    assert converted.returncode == 0 and json.loads(converted.stdout)["source"] == "synthetic"
    (tmp_path / "out" / "class_names.json").unlink()  # as arrays made by the original tools come
    named = run("class-names", "--label-json", str(tmp_path / "raw" / "kinetics_train_label.json"),
                "--out", str(tmp_path / "out"))
    assert named.returncode == 0 and "wrote 30 class names" in named.stdout
    assert json.loads((tmp_path / "out" / "class_names.json").read_text())[:30] == list(KINETICS_MOTION)
    missing = run("convert", "--raw", str(tmp_path / "absent"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "absent: raw dataset directory not found" in missing.stderr


def test_label_mismatch_stops_conversion_and_leaves_no_partial_file(tmp_path):
    person = _person([0.5] * 18, [0.5] * 18, [1.0] * 18)
    _write_raw(tmp_path / "raw", {"a": (3, True, [_frame(0, [person])])}, labels_override={"a": 4})
    with pytest.raises(DataError, match=r"a.json: label_index 3 disagrees with kinetics_train_label.json \(4\)"):
        convert(tmp_path / "raw", tmp_path / "out", workers=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_clip_missing_from_label_file_is_named(tmp_path):
    person = _person([0.5] * 18, [0.5] * 18, [1.0] * 18)
    _write_raw(tmp_path / "raw", {"a": (0, True, [_frame(0, [person])])})
    (tmp_path / "raw" / "kinetics_train" / "stray.json").write_text("{}")
    with pytest.raises(DataError, match="1 clip\\(s\\) have no entry in kinetics_train_label.json, e.g. stray.json"):
        convert(tmp_path / "raw", tmp_path / "out", workers=1)


def test_missing_raw_directory_or_label_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nothing: raw dataset directory not found"):
        convert(tmp_path / "nothing", tmp_path / "out")
    (tmp_path / "raw" / "kinetics_train").mkdir(parents=True)
    with pytest.raises(DataError, match="kinetics_train_label.json: label file not found"):
        convert(tmp_path / "raw", tmp_path / "out")


def test_rarest_classes_break_ties_by_class_index():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 2 + [3] * 9 + [4] * 1)
    assert rarest_classes(labels, 6, drop=3) == [1, 4, 5]  # 5 has none, 4 has one, then 1 before 2


def test_synthetic_data_is_deterministic_per_seed_and_labelled_synthetic(synthetic, tmp_path):
    small = SynthSpec(classes=30, clips_per_class=2, val_clips_per_class=1, seed=3)
    generate(tmp_path / "a", small)
    generate(tmp_path / "b", small)
    generate(tmp_path / "c", SynthSpec(classes=30, clips_per_class=2, val_clips_per_class=1, seed=4))
    name = "synth_train_005_0001.json"
    assert (tmp_path / "a" / "kinetics_train" / name).read_bytes() == (tmp_path / "b" / "kinetics_train" / name).read_bytes()
    assert (tmp_path / "a" / "kinetics_train" / name).read_bytes() != (tmp_path / "c" / "kinetics_train" / name).read_bytes()
    dataset = ConvertedDataset(synthetic / "converted")
    assert dataset.source == "synthetic"
    assert dataset.class_names[:30] == list(KINETICS_MOTION)


def test_synthetic_clips_carry_realistic_nuisance(synthetic):
    array = np.load(synthetic / "converted" / "train_data.npy")
    present = array[:, 2].max(axis=(2, 3)) > 0  # (N, T) frames with anyone
    lengths = present.sum(axis=1)
    assert lengths.min() < 200 < lengths.max()
    assert (array[:, 2, :, :, 1].max(axis=(1, 2)) > 0).mean() > 0.1  # second person in some clips
    missing_joints = (array[:, 2, :, :, 0] == 0) & present[:, :, None]
    assert 0.01 < missing_joints.sum() / (present.sum() * 18) < 0.2


def test_subset_rules_on_synthetic_labels(synthetic, tmp_path):
    dataset = ConvertedDataset(synthetic / "converted")
    motion = dataset.subset(SubsetSpec("kinetics-motion"))
    assert motion["train"].class_names == KINETICS_MOTION
    assert set(motion["train"].labels) == set(range(30)) and set(motion["val"].labels) == set(range(30))
    wide = dataset.subset(SubsetSpec("kinetics-392"))
    assert wide["train"].num_classes == 40 - 8
    dropped = set(range(40)) - set(wide["train"].original_classes)
    assert dropped == set(rarest_classes(dataset.splits["train"].labels, 40))
    listed = tmp_path / "classes.txt"
    listed.write_text("squat\npush up\n")
    chosen = dataset.subset(SubsetSpec("kinetics-392", classes_file=str(listed)))
    assert chosen["train"].class_names == ("squat", "push up")


def test_sampled_subset_is_seeded_and_capped_per_class(synthetic):
    dataset = ConvertedDataset(synthetic / "converted")
    a = dataset.subset(SubsetSpec("kinetics-motion", cap_per_class=2, sample_seed=1))
    b = dataset.subset(SubsetSpec("kinetics-motion", cap_per_class=2, sample_seed=1))
    c = dataset.subset(SubsetSpec("kinetics-motion", fraction_per_class=0.5, sample_seed=2))
    np.testing.assert_array_equal(a["train"].rows, b["train"].rows)
    assert np.bincount(a["train"].labels).max() == 2
    assert len(c["train"]) < len(dataset.subset(SubsetSpec())["train"])
    assert len(a["val"]) == len(dataset.subset(SubsetSpec())["val"])  # validation is never sampled


def test_unknown_class_names_and_empty_subsets_are_errors(synthetic, tmp_path):
    dataset = ConvertedDataset(synthetic / "converted")
    listed = tmp_path / "classes.txt"
    listed.write_text("squat\nunicycling on mars\n")
    with pytest.raises(DataError, match="classes.txt: 1 class name\\(s\\) unknown to the dataset: 'unicycling on mars'"):
        dataset.subset(SubsetSpec(classes_file=str(listed)))
    with pytest.raises(DataError, match="unknown subset 'kinetics-700'"):
        SubsetSpec("kinetics-700")


def _converted_copy(synthetic, tmp_path):
    out = tmp_path / "converted"
    out.mkdir()
    for f in (synthetic / "converted").iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    return out


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "val_data.npy").unlink(), "val_data.npy: data file not found"),
    (lambda d: np.save(d / "train_data.npy", np.zeros((2, 3, 300, 18, 2), np.float64)), "dtype is float64"),
    (lambda d: np.save(d / "train_data.npy", np.zeros((2, 3, 300, 25, 2), np.float32)), "shape is \\(2, 3, 300, 25, 2\\)"),
    (lambda d: (d / "train_data.npy").write_bytes((d / "train_data.npy").read_bytes()[:5000]), "truncated"),
    (lambda d: pickle.dump((["a"], [1, 2]), open(d / "train_label.pkl", "wb")), "1 clip names but 2 labels"),
    (lambda d: pickle.dump((["a"], [1]), open(d / "train_label.pkl", "wb")), "1 labels but train_data.npy holds"),
    (lambda d: (d / "val_label.pkl").write_bytes(b"garbage"), "val_label.pkl: not a \\(clip names, label indices\\)"),
])
def test_damaged_converted_files_are_named(synthetic, tmp_path, damage, message):
    root = _converted_copy(synthetic, tmp_path)
    damage(root)
    with pytest.raises(DataError, match=message):
        ConvertedDataset(root)


def test_a_label_beyond_the_class_names_names_the_split_it_is_in(synthetic, tmp_path):
    root = _converted_copy(synthetic, tmp_path)
    names, labels = pickle.load(open(root / "val_label.pkl", "rb"))
    labels[0] = 40  # the set has 40 class names
    pickle.dump((names, labels), open(root / "val_label.pkl", "wb"))
    with pytest.raises(DataError, match="40 class names, but val_label.pkl uses label 40"):
        ConvertedDataset(root)


@pytest.mark.parametrize("stride,window", [(1, 150), (3, 40)])
def test_a_training_batch_reads_only_its_windows_frames_and_equals_cropping_whole_clips(synthetic, stride, window):
    """The paper's window of 150 of 300 frames reads half the bytes; the CPU profile's 40 every-3rd frames, 119 of
    the 300. The batch is bit for bit the one whole clips, cropped by augment, give."""
    from kinetics.augment import augment
    from kinetics.dataset import Augmentation
    dataset = ConvertedDataset(synthetic / "converted")
    index = dataset.subset(SubsetSpec("kinetics-motion"))["train"]
    batches = SkeletonBatches(dataset.splits["train"], index, Augmentation(window=window), stride)
    positions = [5, 0, 17, 3]
    x, y = batches.__getitems__((1234, positions))
    total = dataset.splits["train"].shape[2]
    assert batches.frames_read == len(positions) * ((window - 1) * stride + 1) < len(positions) * total
    whole = torch.from_numpy(np.ascontiguousarray(
        np.load(dataset.splits["train"].data_path, mmap_mode="r")[index.rows[positions]][:, :, ::stride]))
    expected = augment(whole, window, torch.Generator().manual_seed(1234))
    assert torch.equal(x, expected) and y.tolist() == index.labels[positions].tolist()


def test_non_finite_values_are_reported_with_the_clip(synthetic, tmp_path):
    root = _converted_copy(synthetic, tmp_path)
    array = np.load(root / "train_data.npy", mmap_mode="r+")
    array[1, 0, 5, 3, 0] = np.nan
    array.flush()
    dataset = ConvertedDataset(root)
    index = dataset.subset(SubsetSpec("kinetics-392"))["train"]
    batches = SkeletonBatches(dataset.splits["train"], index, None)
    position = int(np.flatnonzero(index.rows == 1)[0])
    with pytest.raises(DataError, match=r"train_data.npy: NaN or infinite values in clip row\(s\) \[1\]"):
        batches.__getitems__((0, [position]))


def test_original_tool_output_without_class_names_needs_them_for_kinetics_motion(synthetic, tmp_path):
    root = _converted_copy(synthetic, tmp_path)
    (root / "class_names.json").unlink()
    (root / "provenance.json").unlink()
    dataset = ConvertedDataset(root)
    assert dataset.source == "real"
    with pytest.raises(DataError, match="class_names.json: missing, and kinetics-motion is defined by class names"):
        dataset.subset(SubsetSpec("kinetics-motion"))
    assert dataset.subset(SubsetSpec("kinetics-392"))["train"].num_classes == 32


def test_converted_clips_mark_absent_joints_by_a_zero_score(synthetic):
    """What augmentation relies on: scores >= 0, and score 0 means x = y = 0."""
    array = open_array(ConvertedDataset(synthetic / "converted").splits["train"].data_path)
    absent = array[:, 2] == 0
    assert (array[:, 2] >= 0).all() and absent.any() and (~absent).any()
    assert (array[:, 0][absent] == 0).all() and (array[:, 1][absent] == 0).all()


def _clip_batch(batch=3, frames=40, seed=0):
    """Clips as the converter writes them: scores in (0, 1], absent joints and empty frames all zero."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(batch, 3, frames, 18, 2)).astype(np.float32)
    x[:, 2] = gen.uniform(0.1, 1.0, size=(batch, frames, 18, 2))
    x[:, :, :5] = 0  # leading empty frames
    x[:, :, 30:] = 0  # trailing empty frames
    x[:, :, 10, 4, 0] = 0  # one absent joint
    return x


def test_choose_crops_contiguous_windows_and_pads_short_clips():
    x = torch.from_numpy(_clip_batch())
    gen = torch.Generator().manual_seed(0)
    cropped = augment.random_choose(x, 16, gen)
    assert cropped.shape == (3, 3, 16, 18, 2)
    for b in range(3):
        starts = [s for s in range(25) if torch.equal(x[b, :, s:s + 16], cropped[b])]
        assert starts, "a crop must be a contiguous window of its clip"
    padded = augment.random_choose(x, 64, gen)
    assert padded.shape[2] == 64
    for b in range(3):
        begin = int(torch.nonzero(padded[b].abs().sum(dim=(0, 2, 3)))[0])
        np.testing.assert_array_equal(padded[b, :, begin:begin + 25], x[b, :, 5:30])


def test_shift_moves_the_non_empty_span_intact():
    x = torch.from_numpy(_clip_batch())
    shifted = augment.random_shift(x, torch.Generator().manual_seed(1))
    for b in range(3):
        frames = torch.nonzero(shifted[b].abs().sum(dim=(0, 2, 3))).flatten()
        begin = int(frames[0])
        assert len(frames) == 25
        np.testing.assert_array_equal(shifted[b, :, begin:begin + 25], x[b, :, 5:30])
        ours = original_augment.random_shift(x[b].numpy(), bias=begin)
        np.testing.assert_array_equal(shifted[b].numpy(), ours)


def test_move_interpolates_linearly_and_matches_the_per_frame_original():
    x = torch.from_numpy(_clip_batch())
    params = augment.sample_move(3, x.shape[2], torch.Generator().manual_seed(2))
    for column in range(4):
        second_difference = params[:, 2:, column] - 2 * params[:, 1:-1, column] + params[:, :-2, column]
        assert second_difference.abs().max() < 1e-5  # linear in time
    moved = augment.apply_move_(x.clone(), params)
    for b in range(3):
        expected = original_augment.random_move(x[b].numpy(), params[b].numpy().astype(np.float64))
        np.testing.assert_allclose(moved[b].numpy(), expected, atol=1e-5)
    assert (moved[:, :, :5] == 0).all() and (moved[:, :, 30:] == 0).all()  # empty frames stay empty
    assert (moved[:, :, 10, 4, 0] == 0).all()  # absent joint stays absent
    assert set(np.round(np.degrees(params[:, [0, -1], 0].numpy()), 4).ravel()) <= set(augment.ANGLES_DEG)


def test_batches_are_the_same_for_the_same_seed_and_differ_for_another():
    x = torch.from_numpy(_clip_batch(batch=4, frames=60))
    one = augment.augment(x, 32, torch.Generator().manual_seed(5), shift=True)
    two = augment.augment(x, 32, torch.Generator().manual_seed(5), shift=True)
    other = augment.augment(x, 32, torch.Generator().manual_seed(6), shift=True)
    assert one.shape == (4, 3, 32, 18, 2) and torch.equal(one, two) and not torch.equal(one, other)


def test_move_parameters_are_drawn_from_the_originals_choices_each_one_equally_often():
    gen = torch.Generator().manual_seed(0)
    params = augment.sample_move(20_000, 2, gen)  # frame 0 is the start, frame 1 the end of the interpolation
    for column, choices in enumerate((np.radians(augment.ANGLES_DEG), augment.SCALES, augment.TRANSLATIONS,
                                      augment.TRANSLATIONS)):
        values = params[:, :, column].numpy().ravel()
        nearest = np.abs(values[:, None] - np.asarray(choices)[None, :]).argmin(axis=1)
        np.testing.assert_allclose(values, np.asarray(choices)[nearest], atol=1e-6)  # nothing outside the table
        shares = np.bincount(nearest, minlength=len(choices)) / len(values)
        np.testing.assert_allclose(shares, 1 / len(choices), atol=0.02)  # uniform over the table


def test_crop_and_shift_offsets_cover_their_whole_range_uniformly():
    gen = torch.Generator().manual_seed(0)
    crops = augment.choose_offset(30_000, 100, 40, gen).numpy()  # a 40-frame window of a 100-frame clip
    assert crops.min() == 0 and crops.max() == 60
    np.testing.assert_allclose(np.bincount(crops) / len(crops), 1 / 61, atol=0.006)
    pads = augment.choose_offset(30_000, 40, 100, gen).numpy()  # a 40-frame clip padded to 100 frames
    assert pads.max() == 0 and pads.min() == -60
    x = torch.from_numpy(_clip_batch(batch=1, frames=40)).expand(20_000, -1, -1, -1, -1)  # frames 5..29 present
    shifts = augment._shift_offset(x, gen).numpy()  # frame s of the result is frame s + offset
    assert shifts.max() == 5 and shifts.min() == 5 - 15  # the 25-frame span may start anywhere in 0..15
    np.testing.assert_allclose(np.bincount(shifts - shifts.min()) / len(shifts), 1 / 16, atol=0.01)


def test_too_few_synthetic_classes_for_kinetics_motion_is_refused():
    with pytest.raises(ValueError, match="at least 30"):
        class_names(12)


def test_sampled_training_sets_have_the_requested_size_and_balance(synthetic):
    dataset = ConvertedDataset(synthetic / "converted")
    full = dataset.subset(SubsetSpec("kinetics-392"))
    per_class = np.bincount(full["train"].labels)
    stratified = dataset.subset(SubsetSpec("kinetics-392", fraction_per_class=0.25, sample_seed=3))
    expected = np.maximum(1, np.round(per_class * 0.25)).astype(int)
    np.testing.assert_array_equal(np.bincount(stratified["train"].labels, minlength=len(per_class)), expected)
    uniform = dataset.subset(SubsetSpec("kinetics-392", fraction_per_class=0.25, sample_seed=3, sampling="uniform"))
    assert len(uniform["train"]) == expected.sum()  # the same budget, drawn over all clips at once
    assert not np.array_equal(np.bincount(uniform["train"].labels, minlength=len(per_class)), expected)
    capped = dataset.subset(SubsetSpec("kinetics-392", cap_per_class=3, sampling="uniform", sample_seed=1))
    assert len(capped["train"]) == np.minimum(per_class, 3).sum()
    for sampled in (stratified, uniform, capped):
        np.testing.assert_array_equal(sampled["val"].rows, full["val"].rows)  # validation is never sampled
    with pytest.raises(DataError, match="sampling must be one of stratified, uniform"):
        SubsetSpec(sampling="balanced")
