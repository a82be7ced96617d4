"""Device choice: cuda > mps > cpu, AEVB_DEVICE overrides, bad overrides are clear errors."""

import pytest
import torch

from explorer_core.device import DeviceError, device_info, pick_device


def test_override_cpu(monkeypatch):
    monkeypatch.setenv("AEVB_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_explicit_argument_beats_the_environment(monkeypatch):
    monkeypatch.setenv("AEVB_DEVICE", "not-a-device")
    assert pick_device("cpu") == torch.device("cpu")


def test_default_order(monkeypatch):
    monkeypatch.delenv("AEVB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("explorer_core.device._mps_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr("explorer_core.device._mps_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


@pytest.mark.parametrize("bad", ["not-a-device", "cuda:7", "mps"])
def test_unusable_overrides_are_clear_errors(monkeypatch, bad):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("explorer_core.device._mps_available", lambda: False)
    monkeypatch.setenv("AEVB_DEVICE", bad)
    with pytest.raises(DeviceError, match="AEVB_DEVICE"):
        pick_device()


def test_device_info_names_torch():
    info = device_info()
    assert torch.__version__ in info.label()
