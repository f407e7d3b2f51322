"""Real models as a user who has their weights sees them: pretrained tags open_clip knows, and weights given
as a local file. Offline: the tiny architecture stands in for a real one, its weights written to tmp_path."""
from __future__ import annotations

import re

import pytest
import torch

from core.models import load_model, register_configs


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    import open_clip

    register_configs()
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.manual_seed(0)
    torch.save(open_clip.create_model("worldclip-tiny").state_dict(), path)
    return path


def _activations(model) -> set[str]:
    return {type(block.mlp.gelu).__name__ for tower in (model.transformer, model.visual.transformer)
            for block in tower.resblocks}


def test_weights_trained_with_quick_gelu_are_built_with_it(weights_file, monkeypatch):
    # OpenAI's CLIP weights (the registry's 'CLIP' = ViT-B-32/openai) were trained with QuickGELU; ViT-B-32's
    # config says GELU, and open_clip only warns ('QuickGELU mismatch') when the two are combined as given
    from open_clip import pretrained

    from core.embed import model_fingerprint

    monkeypatch.setitem(pretrained._PRETRAINED, "worldclip-tiny", {"qg": {"hf_hub": "x/y/", "quick_gelu": True}})
    monkeypatch.setattr("open_clip.factory.download_pretrained", lambda cfg, cache_dir=None: str(weights_file))
    monkeypatch.setattr("core.models.hub_reachable", lambda *a, **k: False)
    loaded = load_model("worldclip-tiny", pretrained="qg")
    assert _activations(loaded.model) == {"QuickGELU"}  # was GELU: another function than the published model
    assert "quick-gelu" in model_fingerprint(loaded)  # embeddings cached from the GELU build are not reused


def test_a_weights_file_replaced_in_place_is_not_served_the_old_files_cached_embeddings(tmp_path):
    # a user retrains and saves to the same path: the cache key named only the path
    import open_clip
    import numpy as np

    from core.data.registry import load_split
    from core.embed import embed_dataset

    register_configs()
    data = load_split("shape-kind", "test", max_items=8)
    path = tmp_path / "mine.pt"
    for seed in (0, 1):
        torch.manual_seed(seed)
        torch.save(open_clip.create_model("worldclip-tiny").state_dict(), path)
        loaded = load_model("worldclip-tiny", pretrained=str(path))
        fresh = embed_dataset(loaded, data, use_cache=False).image
        assert np.allclose(embed_dataset(loaded, data, cache_dir=tmp_path / "cache").image, fresh)


@pytest.mark.parametrize("pretrained, named", [("laion2b_typo", "laion2b_s34b_b79k"),
                                               ("/no/such/weights.pt", "weights file")])
def test_an_unknown_tag_or_missing_weights_file_is_refused_for_what_it_is_not_as_offline(pretrained, named):
    # was accepted by check_model (so by the grid's preflight on a machine online, every cell then failing) and
    # reported by load_model as 'the download failed ... this machine may be offline'
    from core.models import ModelUnavailableError, check_model

    with pytest.raises(ModelUnavailableError, match="has no pretrained weights|does not exist") as info:
        check_model("ViT-B-32", pretrained)
    assert named in str(info.value) and "offline —" not in str(info.value)
    assert check_model("ViT-B-32", "LAION2B-S34B-B79K").pretrained == "LAION2B-S34B-B79K"  # open_clip's spelling rules


def test_a_weights_file_says_so_and_never_asks_the_hub(weights_file, monkeypatch):
    # a user's checkpoint was described as 'open_clip download' (so on its model card) and its load first
    # waited up to 3 s for the hub to answer
    from core.models import spec_for

    path = weights_file

    def no_hub(*args, **kwargs):
        raise AssertionError("a weights file on disk asked the hub")

    monkeypatch.setattr("core.models.hub_reachable", no_hub)
    spec = spec_for("worldclip-tiny", str(path))
    assert spec.weights_source == f"the weights file {path}" and not spec.needs_download and not spec.random_weights
    assert load_model("worldclip-tiny", pretrained=str(path)).spec.weights_file
    assert spec_for("ViT-B-32", "laion2b_s34b_b79k").weights_source == "open_clip download"  # a tag


def test_an_architecture_already_built_with_quick_gelu_keeps_its_embedding_cache_key():
    # 'ViT-B-32-quickgelu' with the 'openai' tag was always built with QuickGELU, so its cached embeddings were
    # right; the 'quick-gelu' cache-key part (meant for GELU architectures given QuickGELU weights) discarded them
    from types import SimpleNamespace

    import torch

    from core.embed import model_fingerprint
    from core.models import needs_quick_gelu, spec_for

    on_cpu = torch.nn.Linear(1, 1)  # the key also names a device other than the CPU: a stand-in network on the CPU
    forced, own = spec_for("ViT-B-32", "openai"), spec_for("ViT-B-32-quickgelu", "openai")
    assert needs_quick_gelu(forced) and "quick-gelu" in model_fingerprint(SimpleNamespace(spec=forced, model=on_cpu))
    assert not needs_quick_gelu(own)
    assert model_fingerprint(SimpleNamespace(spec=own, model=on_cpu)) == "ViT-B-32-quickgelu|openai"  # as before c9f35f6


def test_a_records_tag_never_probes_the_servers_disk_and_a_bare_name_is_a_tag(tmp_path, monkeypatch):
    # the card of a submitted record saying pretrained '/etc/hostname' told anyone whether that file exists
    # ('the weights file …' against 'open_clip download'); a file in the working folder named like a tag was
    # taken for weights
    from core.models import spec_for

    real, missing = tmp_path / "real.pt", tmp_path / "missing.pt"
    real.write_bytes(b"x")
    assert spec_for("ViT-B-32", str(real)).weights_source == f"the weights file {real}"
    assert spec_for("ViT-B-32", str(missing)).weights_source == f"the weights file {missing}"  # same form
    assert not spec_for("ViT-B-32", str(missing)).weights_file and spec_for("ViT-B-32", str(real)).weights_file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laion2b_s34b_b79k").write_bytes(b"not weights")
    tag = spec_for("ViT-B-32", "laion2b_s34b_b79k")
    assert tag.weights_source == "open_clip download" and not tag.weights_file and tag.needs_download


def test_a_hub_models_card_names_the_hub_not_a_weights_file(tmp_path, monkeypatch):
    # an 'hf-hub:' model's records store its hub id ('laion/CLIP-…') as the pretrained tag: recognising a weights
    # file by a '/' made its card say 'the weights file laion/CLIP-…' (and a file at that relative path counted)
    from core import cards
    from core.models import spec_for

    hub = "hf-hub:laion/CLIP-ViT-g-14-laion2B-s12B-b42K"
    tag = spec_for(hub).pretrained_tag
    assert cards.model_card(hub, tag).weights_source == f"Hugging Face hub {tag}"
    assert spec_for(hub).weights_source == f"Hugging Face hub {tag}" and not spec_for(hub).random_weights
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laion").mkdir()
    (tmp_path / tag).write_bytes(b"not weights")
    assert not spec_for(hub, tag).weights_file and spec_for(hub, tag).needs_download


def test_a_bare_named_weights_file_is_told_how_to_be_named(tmp_path, monkeypatch):
    # 'mycheckpoint' existed but was refused as 'neither an open_clip tag … nor a weights file that exists'
    from core.models import ModelUnavailableError, check_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mycheckpoint").write_bytes(b"x")
    with pytest.raises(ModelUnavailableError, match=r"a path with a folder, e\.g\. \./mycheckpoint, or a \.pt/"):
        check_model("ViT-B-32", "mycheckpoint")


@pytest.mark.parametrize("path", ["/nonexistent/w.pt", "missing/w.bin", "w.safetensors"])
def test_a_missing_weights_file_is_named_as_missing(tmp_path, monkeypatch, path):
    """A missing absolute path was told how to name a file: 'e.g. .//nonexistent/w.pt'."""
    from core.models import ModelUnavailableError, check_model

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelUnavailableError, match=rf"the weights file {re.escape(path)} does not exist") as info:
        check_model("ViT-B-32", path)
    assert "e.g." not in str(info.value)


@pytest.mark.parametrize("content", [b"not a checkpoint", "state dict of another model"])
def test_a_weights_file_that_cannot_be_loaded_is_not_reported_as_a_failed_download(tmp_path, content):
    # a user's own file, junk or another architecture's, was reported as 'the download failed ... this machine may
    # be offline — use the offline default model', though nothing was downloaded
    import torch

    from core.models import ModelUnavailableError

    path = tmp_path / "mine.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save({"other.weight": torch.zeros(2)}, path)
    with pytest.raises(ModelUnavailableError, match=rf"The weights file {path} could not be loaded into "
                                                     r"worldclip-tiny \(\w+: .*\); is it a checkpoint") as info:
        load_model("worldclip-tiny", pretrained=str(path))
    assert "offline" not in str(info.value)
