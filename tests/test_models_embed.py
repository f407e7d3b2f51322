"""Model zoo and embedding pipeline on the tiny random model (offline, fast)."""
import numpy as np
import pytest

from core.data.base import LabeledImages
from core.embed import data_fingerprint, embed_dataset, embed_images, embed_prompts
from core.models import ModelUnavailableError, list_models, load_model, spec_for


@pytest.fixture(scope="module")
def tiny():
    return load_model("worldclip-tiny-random")


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (37, 32, 32, 3), dtype=np.uint8)
    return LabeledImages(images, rng.integers(0, 3, 37), ["red", "green", "blue"], "a photo of a {c} shape")


def test_registry_has_the_four_study_models_and_the_offline_default():
    keys = {s.key for s in list_models()}
    assert {"CLIP", "SigLIP", "CoCa", "EVA-02", "worldclip-tiny"} <= keys
    assert spec_for("CLIP").arch == "ViT-B-32" and spec_for("CLIP").pretrained == "openai"


def test_any_open_clip_pair_and_random_weights_are_labelled():
    spec = spec_for("ViT-B-16", "laion2b_s34b_b88k")
    assert (spec.arch, spec.pretrained, spec.random_weights) == ("ViT-B-16", "laion2b_s34b_b88k", False)
    rnd = spec_for("ViT-B-16")
    assert rnd.random_weights and "RANDOM WEIGHTS" in rnd.label and rnd.pretrained_tag == "random"
    with pytest.raises(ValueError, match="non-empty"):
        spec_for("")


def test_offline_download_failure_is_one_clear_sentence(monkeypatch):
    import open_clip

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", offline)
    with pytest.raises(ModelUnavailableError, match=r"ViT-B-32 \(openai\).*offline default model 'worldclip-tiny'"):
        load_model("CLIP")


def test_a_stalled_weights_download_times_out_with_one_sentence(monkeypatch):
    """open_clip downloads weights with no socket timeout: a server that stopped sending hung the job for
    good. Now the download runs under a stall timeout (restored after) and a stall is one clear sentence."""
    import socket
    from urllib.error import URLError

    import open_clip

    from core.network import DOWNLOAD_STALL_S

    seen = []

    def stalled(*args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise URLError(TimeoutError("timed out"))  # how urllib reports a connect timeout

    monkeypatch.setattr("core.models.hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", stalled)
    before = socket.getdefaulttimeout()
    with pytest.raises(ModelUnavailableError, match=r"ViT-B-32 \(openai\) received nothing for 60 s"):
        load_model("CLIP")
    assert seen == [DOWNLOAD_STALL_S] and socket.getdefaulttimeout() == before


def test_random_model_flags_itself(tiny):
    assert tiny.random_weights and "RANDOM WEIGHTS" in tiny.label
    assert tiny.image_size == 32


def test_embed_images_is_batched_deterministic_and_reports_progress(tiny, sample):
    seen = []
    full = embed_images(tiny, sample.images, batch_size=64)
    batched = embed_images(tiny, sample.images, batch_size=5, progress=lambda d, t: seen.append((d, t)))
    assert full.shape == (37, 128) and full.dtype == np.float32
    np.testing.assert_allclose(full, batched, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    assert seen[-1] == (37, 37) and len(seen) == 8
    # order is kept: embedding a reversed input gives reversed rows
    np.testing.assert_allclose(embed_images(tiny, sample.images[::-1].copy(), batch_size=8), full[::-1], atol=1e-5)


def test_pil_images_take_the_model_preprocess(tiny):
    from PIL import Image

    ims = [Image.new("RGB", (50 + i, 40), (i * 30, 90, 200)) for i in range(4)]
    assert embed_images(tiny, ims).shape == (4, 128)


def test_prompt_ensembling_differs_from_single_template(tiny):
    one = embed_prompts(tiny, ["cat", "dog"], "a photo of a {c}")
    two = embed_prompts(tiny, ["cat", "dog"], ["a photo of a {c}", "a drawing of a {c}"])
    assert one.shape == two.shape == (2, 128)
    assert not np.allclose(one, two)
    with pytest.raises(ValueError, match=r"\{c\}"):
        embed_prompts(tiny, ["cat"], "no slot")


def test_cache_hit_skips_the_forward_pass(tiny, sample, tmp_path, monkeypatch):
    first = embed_dataset(tiny, sample, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    import core.embed as embed_module

    def boom(*a, **k):
        raise AssertionError("forward pass ran on a cache hit")

    monkeypatch.setattr(embed_module, "embed_images", boom)
    second = embed_dataset(tiny, sample, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.image, second.image)
    assert second.random_weights and "RANDOM" in second.model_label


def test_a_cache_that_cannot_be_written_costs_speed_not_the_run(tiny, sample, tmp_path, monkeypatch, caplog):
    import errno

    import core.embed as embed_module

    want = embed_dataset(tiny, sample, use_cache=False)
    real_savez = np.savez

    def disk_full(fh, **arrays):
        real_savez(fh, **arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(embed_module.np, "savez", disk_full)
    got = embed_dataset(tiny, sample, cache_dir=tmp_path / "full")
    np.testing.assert_array_equal(got.image, want.image)
    assert not list((tmp_path / "full").iterdir())  # no half-written temporary left
    assert "going on without the cache" in caplog.text
    monkeypatch.undo()
    caplog.clear()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    from core import file_modes  # the cache's temporaries are made there

    monkeypatch.setattr(file_modes.tempfile, "mkstemp", read_only)
    got = embed_dataset(tiny, sample, cache_dir=tmp_path / "ro")
    np.testing.assert_array_equal(got.image, want.image)
    assert "going on without the cache" in caplog.text


def test_random_weight_models_of_two_seeds_never_share_cache_entries(sample, tmp_path):
    import torch

    from core.embed import model_fingerprint

    with torch.random.fork_rng():  # leaves the global generator as other tests expect it
        torch.manual_seed(0)
        first = load_model("worldclip-tiny-random")
        torch.manual_seed(1)  # run_cell seeds torch before loading: another seed is another network
        second = load_model("worldclip-tiny-random")
        torch.manual_seed(0)
        again = load_model("worldclip-tiny-random")
    assert model_fingerprint(first) != model_fingerprint(second)
    assert model_fingerprint(again) == model_fingerprint(first)  # same seed, same network, same key
    a = embed_dataset(first, sample, cache_dir=tmp_path)
    b = embed_dataset(second, sample, cache_dir=tmp_path)
    np.testing.assert_array_equal(b.image, embed_dataset(second, sample, use_cache=False).image)
    assert not np.allclose(a.image, b.image) and len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["empty", "truncated", "wrong rows"])
def test_a_damaged_cache_entry_is_recomputed_not_fatal(tiny, sample, tmp_path, damage):
    want = embed_dataset(tiny, sample, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    if damage == "empty":
        entry.write_bytes(b"")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    else:
        np.savez(entry.with_suffix(""), image=want.image[:3], text=want.text)  # writes <key>.npz
    got = embed_dataset(tiny, sample, cache_dir=tmp_path)
    np.testing.assert_array_equal(got.image, want.image)
    with np.load(entry, allow_pickle=False) as z:  # the entry itself is rewritten whole
        np.testing.assert_array_equal(z["image"], want.image)
    np.testing.assert_array_equal(embed_dataset(tiny, sample, cache_dir=tmp_path).image, want.image)  # rewritten


def test_fingerprint_changes_with_data(sample):
    other = sample.subset(np.arange(36))
    assert data_fingerprint(sample) != data_fingerprint(other)
    assert data_fingerprint(sample) == data_fingerprint(sample.subset(np.arange(37)))


def test_unknown_model_message_names_what_the_user_typed():
    from core.models import check_model

    for typed, pretrained, shown in [("nosuchmodel", None, "'nosuchmodel'"), ("nosuch:tag", None, "'nosuch:tag'"),
                                     ("nosuch", "tag", "'nosuch' (pretrained 'tag')")]:
        with pytest.raises(ModelUnavailableError, match=r"^Unknown model ") as err:
            check_model(typed, pretrained)
        assert str(err.value).startswith(f"Unknown model {shown}: neither a registered name")
        assert ":random" not in str(err.value)  # a suffix nobody typed


@pytest.mark.parametrize("typed, pretrained, expected", [
    ("worldclip-tny", None, r"^Unknown model 'worldclip-tny' \(did you mean 'worldclip-tiny'\?\): neither a registered"),
    ("clip", None, r"^Unknown model 'clip' \(did you mean 'CLIP'\?\): neither"),
    ("ViT-B-32", "opena", r"^ViT-B-32 has no pretrained weights 'opena' \(did you mean 'openai'\?\): neither an open_clip"),
])
def test_a_misspelt_model_or_tag_is_told_the_closest_name(typed, pretrained, expected):
    # the errors listed eleven registered names (and pointed at open_clip's hundreds) but not the one meant
    from core.models import check_model

    with pytest.raises(ModelUnavailableError, match=expected):
        check_model(typed, pretrained)


@pytest.mark.parametrize("typed, pretrained", [("CLIP", "laion2b_s34b_b79k"), ("CLIP:laion2b_s34b_b79k", None)])
def test_a_registered_name_given_other_weights_is_not_called_unknown(typed, pretrained):
    # was "Unknown model 'CLIP' (pretrained …): neither a registered name (…, CLIP, …)": CLIP is one
    from core.models import check_model

    with pytest.raises(ModelUnavailableError, match=r"^'CLIP' is a registered name with its own weights \(ViT-B-32, "
                       r"pretrained 'openai'\), so it takes no pretrained 'laion2b_s34b_b79k'; for other weights name "
                       r"the architecture: 'ViT-B-32:laion2b_s34b_b79k'"):
        check_model(typed, pretrained)


def test_inputs_go_to_the_device_of_the_weights_and_outputs_come_back_to_the_cpu(tiny, sample):
    """A grid cell on a GPU moves the model there; the batches and tokens stayed on the CPU."""
    import dataclasses

    import torch

    seen = []

    class Elsewhere(torch.nn.Module):  # weights on "meta", standing in for a GPU
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))

        def encode_image(self, x, normalize=True):
            seen.append(("image", x.device.type))
            return torch.ones(len(x), 4, device="cpu")  # a real GPU returns its own device; .cpu() is needed

        def encode_text(self, tokens, normalize=True):
            seen.append(("text", tokens.device.type))
            return torch.ones(len(tokens), 4, device="cpu")

    fake = dataclasses.replace(tiny, model=Elsewhere())
    assert embed_images(fake, sample.images[:3]).shape == (3, 4)
    assert embed_prompts(fake, ["a", "b"], "a photo of a {c}").shape == (2, 4)
    assert seen == [("image", "meta"), ("text", "meta")]  # was: cpu, so every GPU cell failed


def test_a_cache_entry_made_on_the_cpu_is_not_read_for_a_model_on_another_device(sample, tmp_path):
    """The cache key named the model and the data, not where the model ran: after a GPU grid, check_before
    --device cpu read the GPU's embeddings (and a GPU run the CPU's), so it compared the stored numbers with
    themselves. A model on another device ("meta" stands in for a GPU) now has entries of its own."""
    import dataclasses

    import torch

    from core.embed import model_fingerprint

    shipped = load_model("worldclip-tiny")  # weights from a file: its fingerprint does not read the tensors
    on_cpu = embed_dataset(shipped, sample, cache_dir=tmp_path)

    class Elsewhere(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))

        def encode_image(self, x, normalize=True):
            return torch.full((len(x), 4), 0.5)

        def encode_text(self, tokens, normalize=True):
            return torch.full((len(tokens), 4), 0.5)

    elsewhere = dataclasses.replace(shipped, model=Elsewhere())
    assert model_fingerprint(elsewhere) != model_fingerprint(shipped)
    got = embed_dataset(elsewhere, sample, cache_dir=tmp_path)
    assert got.image.shape == (len(sample), 4) and on_cpu.image.shape[1] != 4  # its own pass, not the CPU's entry
    assert len(list(tmp_path.glob("*.npz"))) == 2
    np.testing.assert_array_equal(embed_dataset(shipped, sample, cache_dir=tmp_path).image, on_cpu.image)


def test_fingerprint_changes_with_labels_class_names_and_pil_geometry(sample):
    relabelled = LabeledImages(sample.images, (sample.labels + 1) % 3, sample.class_names, sample.template)
    renamed = LabeledImages(sample.images, sample.labels, ["red", "green", "navy"], sample.template)
    assert len({data_fingerprint(d) for d in (sample, relabelled, renamed)}) == 3
    from PIL import Image

    raw = bytes(range(24))  # the same 24 bytes as a 2x4 image, a 4x2 image, or a 6x4 grey one
    shapes = [Image.frombytes("RGB", (2, 4), raw), Image.frombytes("RGB", (4, 2), raw),
              Image.frombytes("L", (6, 4), raw)]
    prints = {data_fingerprint(LabeledImages([im], np.array([0]), ["a", "b"], "{c}")) for im in shapes}
    assert len(prints) == 3


def test_the_cache_keeps_each_prompt_templates_embeddings_apart(tiny, sample, tmp_path):
    photo = embed_dataset(tiny, sample, cache_dir=tmp_path, templates="a photo of a {c}")
    drawing = embed_dataset(tiny, sample, cache_dir=tmp_path, templates="a drawing of a {c}")
    assert len(list(tmp_path.glob("*.npz"))) == 2
    np.testing.assert_allclose(drawing.text, embed_prompts(tiny, sample.class_names, "a drawing of a {c}"), atol=1e-6)
    assert not np.allclose(photo.text, drawing.text)


def test_held_image_embeddings_skip_the_forward_pass_and_the_disk_cache(tiny, sample, tmp_path, monkeypatch):
    """A page keeps an upload's image embeddings in memory: given them, only the prompts are embedded, the cache
    folder is never touched, and the result equals a full embedding's."""
    import core.embed

    want = embed_dataset(tiny, sample, use_cache=False, templates="a drawing of a {c}")
    monkeypatch.setattr(core.embed, "embed_images", lambda *a, **k: pytest.fail("images embedded again"))
    got = embed_dataset(tiny, sample, cache_dir=tmp_path / "cache", templates="a drawing of a {c}",
                        image_embeddings=want.image)
    assert not (tmp_path / "cache").exists()
    np.testing.assert_array_equal(got.image, want.image)
    np.testing.assert_array_equal(got.text, want.text)
    np.testing.assert_array_equal(got.labels, want.labels)
    with pytest.raises(ValueError, match=r"one row per image \(37\)"):
        embed_dataset(tiny, sample, use_cache=False, image_embeddings=want.image[:-1])


def test_ensembled_prompt_embeddings_are_renormalised(tiny):
    two = embed_prompts(tiny, ["cat", "dog", "bird"], ["a photo of a {c}", "a drawing of a {c}"])
    np.testing.assert_allclose(np.linalg.norm(two, axis=1), 1.0, atol=1e-5)


def test_spec_keys_tags_families_and_downloads_are_what_records_and_pages_show():
    pair = spec_for("ViT-B-16", "laion2b_s34b_b88k")
    assert spec_for(pair.key) == pair and pair.key == "ViT-B-16:laion2b_s34b_b88k"  # the key names it back
    assert spec_for("ViT-B-16:random") == spec_for("ViT-B-16", "random") == spec_for("ViT-B-16")
    assert spec_for("ViT-B-16", "random").pretrained is None and spec_for("ViT-B-16", "random").random_weights
    siglip = spec_for("SigLIP")  # weights named by the hub id, not a pretrained tag: not random
    assert (siglip.random_weights, siglip.pretrained_tag, siglip.family) == (False, "timm/ViT-B-16-SigLIP", "siglip")
    assert "RANDOM" not in siglip.label and siglip.needs_download
    assert spec_for("EVA02-L-14", "merged2b_s4b_b131k").family == "eva02"  # ad hoc, not the registry entry
    assert spec_for("coca_ViT-B-32").family == "coca" and spec_for("ViT-L-14").family == "clip"
    downloads = {key: spec_for(key).needs_download for key in ("worldclip-tiny", "worldclip-tiny-random", "CLIP")}
    assert downloads == {"worldclip-tiny": False, "worldclip-tiny-random": False, "CLIP": True}


@pytest.mark.parametrize("name, pretrained, expected", [
    ("ViT-B-32", 5, r"pretrained must be a string \(an open_clip tag, a weights file's path, or 'random'\) or None, "
                    r"got 5"),
    ("hf-hub:", None, r"model 'hf-hub:' names no Hugging Face hub model; give its id, e\.g\. 'hf-hub:timm/"),
    (None, None, r"model name must be a non-empty string, got None"),
])
def test_a_pretrained_value_of_another_type_or_a_hub_name_without_id_is_refused_by_name(name, pretrained, expected):
    # pretrained 5 failed with "'int' object has no attribute 'strip'"; 'hf-hub:' passed check_model and its load
    # was reported as a download that failed, 'this machine may be offline'
    from core.models import check_model

    with pytest.raises(ValueError, match=expected):
        check_model(name, pretrained)


@pytest.mark.parametrize("name, pretrained", [("ViT-B-32:", None), ("ViT-B-32", ""), ("ViT-B-32", "  ")])
def test_an_empty_pretrained_tag_is_refused_not_an_unlabelled_random_model(name, pretrained):
    # 'ViT-B-32:' in a grid gave pretrained '' : random weights whose spec said random_weights False
    from core.models import spec_for

    with pytest.raises(ValueError, match="empty pretrained tag; give an open_clip tag, a weights file, or 'random'"):
        spec_for(name, pretrained)
    assert spec_for("ViT-B-32:random").random_weights  # the way to ask for random weights


def test_a_download_error_that_is_no_stall_keeps_its_own_name(monkeypatch):
    """With the hub reachable, only a stall becomes 'received nothing'; any other OSError is re-raised and
    load_model names it (not a TypeError from an unpacked None, and not a stall)."""
    import open_clip

    def reset(*args, **kwargs):
        raise ConnectionResetError("reset by peer")

    monkeypatch.setattr("core.models.hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", reset)
    with pytest.raises(ModelUnavailableError, match=r"the download failed \(ConnectionResetError\)") as info:
        load_model("CLIP")
    assert "received nothing" not in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize("key", ["worldclip-tiny", "worldclip-v2-a", "worldsiglip-v2-b"])
@pytest.mark.parametrize("content", [None, b"version https://git-lfs.github.com/spec/v1\n"])
def test_missing_or_unreadable_shipped_weights_name_the_command_that_remakes_them(key, content, tmp_path,
                                                                                   monkeypatch):
    """The message's command pretrains that very model (it said `python -m jobs.pretrain`, which remakes
    worldclip-tiny's weights only), and jobs.pretrain accepts it."""
    import re
    import shlex

    from core import models as model_zoo
    from jobs.pretrain import parse_args

    if content is not None:
        (tmp_path / spec_for(key).shipped_weights).write_bytes(content)
    monkeypatch.setattr(model_zoo, "ASSET_DIR", tmp_path)
    with pytest.raises(ModelUnavailableError) as info:
        load_model(key)
    command = re.search(r"`python -m jobs\.pretrain([^`]*)`", str(info.value))
    assert command, str(info.value)
    assert parse_args(shlex.split(command.group(1))).model == key


def test_an_upgraded_library_is_not_served_embeddings_the_old_one_computed(tiny, sample, tmp_path, monkeypatch):
    """The cache key named the model, the data and the prompts, not the libraries that compute an embedding: after
    an upgrade of torch or open_clip, the old version's embeddings were served as the new one's."""
    import open_clip
    import torch

    import core.embed as embed_module

    first = embed_dataset(tiny, sample, cache_dir=tmp_path)
    monkeypatch.setattr(embed_module, "embed_images", lambda *a, **k: first.image + 1.0)  # a forward pass ran
    for module in (torch, open_clip):
        monkeypatch.setattr(module, "__version__", module.__version__ + ".upgraded")
        np.testing.assert_array_equal(embed_dataset(tiny, sample, cache_dir=tmp_path).image, first.image + 1.0)
    assert len(list(tmp_path.glob("*.npz"))) == 3  # each version its own entry
    monkeypatch.undo()
    np.testing.assert_array_equal(embed_dataset(tiny, sample, cache_dir=tmp_path).image, first.image)  # still hit


def test_the_cache_key_hashes_the_weights_the_model_was_loaded_from(tmp_path, monkeypatch):
    """core.embed copied core.models.ASSET_DIR at import: with the weights folder moved (core.models.ASSET_DIR set,
    as jobs.pretrain and tests set it), load_model read the new folder's weights and model_fingerprint hashed the old
    folder's, so the embedding cache served the old weights' embeddings for the new ones."""
    from safetensors.torch import load_file, save_file

    from core import models as model_zoo
    from core.embed import model_fingerprint

    key = model_zoo.DEFAULT_MODEL
    name = spec_for(key).shipped_weights
    shipped = model_fingerprint(load_model(key))
    tensors = load_file(str(model_zoo.ASSET_DIR / name))
    first = next(iter(tensors))
    tensors[first] = tensors[first] + 1  # other weights, same file name
    save_file(tensors, str(tmp_path / name))
    monkeypatch.setattr(model_zoo, "ASSET_DIR", tmp_path)
    assert model_fingerprint(load_model(key)) != shipped
