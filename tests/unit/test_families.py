"""The family registry: every record is complete and consistent with the code it names, and no other module
dispatches on a family's name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from explorer_core.artifacts import CONFIG_SCHEMAS, RECIPE_FIELDS
from explorer_core.families import (
    FAMILIES,
    MNIST_SHAPES,
    UnknownFamilyError,
    is_model_family,
    limit_schema,
    model_family,
    model_field_schemas,
)
from explorer_core.models.configs import limits, parse_widths
from explorer_core.training.recipes import RECIPE_CLASSES, RECIPE_FAMILIES, TrainConfig
from explorer_core.training.trainer import PRESETS, config_from_args
from views.pages import FAMILY_PAGES, PAGES

ROOT = Path(__file__).resolve().parents[2]
TINY = {"latent_dim": 2, "hidden": (8,)}
TINY_FAMILY = {"gmvae": {"n_clusters": 3}, "vrnn": {"rnn_hidden": 4, "rnn_layers": 1}}


def tiny_model(name: str):
    spec = model_family(name)
    config = TrainConfig.for_family(name, **TINY, **TINY_FAMILY.get(name, {})).model_config()
    torch.manual_seed(0)
    return spec.model_class(spec.config_class(**config)).eval()


def test_the_registry_names_every_family_the_files_know():
    assert list(FAMILIES) == ["vae", "cvae", "gmvae", "vrnn"]
    assert set(FAMILIES) == set(CONFIG_SCHEMAS) == set(RECIPE_FIELDS["family"].choices)
    for name, spec in FAMILIES.items():
        assert spec.name == name
        assert (ROOT / PAGES[name].file).is_file()  # every family has its page (views/pages.py)
        assert PAGES[name].family is not None and PAGES[name].family.metrics  # and its views' facts
        assert spec.conditional is spec.model_class.conditional
    assert [n for n, s in FAMILIES.items() if s.conditional] == ["cvae"]
    assert list(FAMILY_PAGES) == list(FAMILIES)  # the views know the same families, in the same order
    assert list(RECIPE_FAMILIES) == list(FAMILIES)  # and so do the recipe classes (their ``families``)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(UnknownFamilyError, match=r"unknown model family 'fa'; known: \['cvae', 'gmvae'"):
        model_family("fa")
    assert is_model_family("vrnn") and not is_model_family("VRNN") and not is_model_family(None)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_family_s_recipes_build_its_model(name):
    spec = FAMILIES[name]
    fields = {f.name for f in dataclasses.fields(spec.train_config_class)}
    assert issubclass(spec.train_config_class, TrainConfig)
    assert set(spec.model_fields) <= fields and set(spec.recipe_defaults) <= fields
    views = FAMILY_PAGES[name].family
    assert {f.name for f in views.form} <= fields and set(spec.quick) <= fields
    for preset in spec.presets:
        config = PRESETS[preset]
        assert config.family == name
        assert spec.variant_for(config) in spec.variants
        spec.config_class(**config.model_config())
    quick = config_from_args("quick", name, {})
    assert quick.family == name and quick.epochs <= 2
    for variant in spec.variants:
        assert variant.matches(config_from_args("quick", name, dict(variant.fixed)))
    # every variant has one entry on the Training page, and every entry names a variant
    assert sorted(c.run_slug for c in views.training) == sorted(v.run_slug for v in spec.variants)


def test_the_gmvae_estimators_are_two_entries_with_their_own_run_ids():
    spec = FAMILIES["gmvae"]
    assert spec.variant_for(PRESETS["gmvae-gumbel"]).run_slug == "gmvae-gumbel"
    assert spec.variant_for(PRESETS["gmvae-marginal"]).run_slug == "gmvae"
    form = FAMILY_PAGES["gmvae"].family.form
    shown = [f.name for f in form if f.shown_for(PRESETS["gmvae-marginal"])]
    assert shown == ["n_clusters"]
    gumbel = PRESETS["gmvae-gumbel"]
    end = next(f for f in form if f.name == "temperature_final")
    assert end.value_for(gumbel) == pytest.approx(0.5)
    assert end.value_for(dataclasses.replace(gumbel, temperature_final=None)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_config_s_json_schema_is_derived_from_its_limits(name):
    """Each limit is written once, on the config class: the JSON schema takes its bounds from there."""
    spec = FAMILIES[name]
    schema = spec.config_schema
    assert list(schema.fields) == [f.name for f in dataclasses.fields(spec.config_class)]
    for field, limit in limits(spec.config_class):
        if limit is None or field.name in MNIST_SHAPES:
            continue
        entry = schema.fields[field.name]
        if limit.choices is not None:
            assert entry.choices == limit.choices
            continue
        number = entry.item if limit.max_items is not None else entry
        assert (number.lo, number.hi, number.integer) == (limit.lo, limit.hi, limit.integer)
        with pytest.raises(ValueError, match=field.name):
            spec.config_class(**{field.name: [limit.hi + 1] if limit.max_items else limit.hi + 1})


def test_a_recipe_s_json_schema_takes_the_limits_written_on_its_classes():
    """A recipe's own limits (epochs, preprocessing, ...) and its model fields' (the config classes') are
    written once: the recipe JSON's schema (RECIPE_FIELDS) has exactly those bounds."""
    for recipe in RECIPE_CLASSES:
        for field, limit in limits(recipe):
            if limit is not None:
                assert RECIPE_FIELDS[field.name] == limit_schema(limit), field.name
    for name, schema in model_field_schemas().items():
        assert RECIPE_FIELDS[name] == schema
    assert RECIPE_FIELDS["latent_dim"].hi == 1024  # the union over the families (the VRNN's stops at 256)
    assert list(RECIPE_FIELDS) == [
        "family",
        *dict.fromkeys(f.name for r in RECIPE_CLASSES for f in dataclasses.fields(r) if f.name != "family"),
    ]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_previews_are_images_with_fixed_noise(name):
    model = tiny_model(name)
    with torch.no_grad():
        a = FAMILIES[name].preview(model, 6, torch.Generator().manual_seed(3))
        b = FAMILIES[name].preview(model, 6, torch.Generator().manual_seed(3))
        c = FAMILIES[name].preview(model, 6, torch.Generator().manual_seed(4))
    assert a.reshape(6, -1).shape == (6, 784)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_evaluate_and_epoch_metrics_report_the_family_s_own_metrics(name):
    model = tiny_model(name)
    x = (torch.rand(20, 784, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    labels = torch.arange(20) % 10
    metrics = FAMILIES[name].evaluate(model, x, labels, iwae_k=4)
    assert metrics["n_images"] == 20 and metrics["elbo"] < 0
    assert ("iwae_bound" in metrics) == (name in ("vae", "cvae"))
    assert ("cluster_accuracy" in metrics) == FAMILIES[name].has_clusters
    assert ("per_row_kl" in metrics) == (name == "vrnn")
    per_epoch = FAMILIES[name].epoch_metrics(model, x, labels)
    assert set(per_epoch) == (
        {"cluster_accuracy", "conditional_entropy", "min_cluster_usage"} if name == "gmvae" else set()
    )


def test_no_module_dispatches_on_a_family_name():
    """The registry is the one place that says what differs between families (issue 14)."""
    pattern = re.compile(r"family (==|!=|in |not in )")
    allowed = {ROOT / "explorer_core" / "families.py", ROOT / "explorer_core" / "cli.py"}
    files = [*(ROOT / "explorer_core").rglob("*.py"), *(ROOT / "views").rglob("*.py"), ROOT / "app.py"]
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in files
        if path not in allowed
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_samples_through_one_protocol(name):
    model = tiny_model(name).eval()
    draws = model.sample(4, torch.Generator().manual_seed(0))
    means = model.sample(4, torch.Generator().manual_seed(0), means=True)
    assert draws.shape == means.shape == (4, 784)
    assert float(means.min()) >= 0 and float(means.max()) <= 1
    labelled = FAMILIES[name].conditional or FAMILIES[name].has_clusters
    y = torch.zeros(4, dtype=torch.long)
    if labelled:
        assert model.sample(4, torch.Generator().manual_seed(0), y=y).shape == (4, 784)
    else:
        with pytest.raises(ValueError, match="y must be None"):
            model.sample(4, torch.Generator().manual_seed(0), y=y)


def test_hidden_widths_are_read_by_one_parser_for_the_form_and_the_link():
    """The Training page's box ("500, 500") and Watch's link ("256-256") read widths with one function."""
    from explorer_core.explore.watch import config_from_query

    assert parse_widths("500, 500") == (500, 500) and parse_widths("500,500,") == (500, 500)
    assert parse_widths("256-256", separator="-") == (256, 256)
    with pytest.raises(ValueError, match="separated by commas"):
        parse_widths("500; 500")
    with pytest.raises(ValueError, match="positive width"):
        parse_widths("0, 5")
    assert config_from_query({"hidden": "128-128"}).hidden == (128, 128)
    assert config_from_query({"hidden": "128-x"}).hidden == config_from_query({}).hidden  # ignored
