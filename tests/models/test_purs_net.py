"""The PURS network's pieces against their direct formulas (MODELS.md 3.3, 3.6)."""

from __future__ import annotations

import pytest
import torch

from models.purs_net import PURSConfig, PURSNet, init_purs_
from models.torch_utils import build_module

TINY = PURSConfig(hidden=16)


def _net(n_users: int = 5, n_items: int = 12, seed: int = 0) -> PURSNet:
    net = build_module(
        lambda: PURSNet(n_users, n_items, TINY), init_purs_, seed, torch.device("cpu")
    )
    assert isinstance(net, PURSNet)
    return net


def test_din_split_first_layer_equals_the_concatenation() -> None:
    net = _net()
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(2, 3, 16, generator=gen)
    query = torch.randn(2, 5, 16, generator=gen)
    k = keys[:, None].expand(-1, 5, -1, -1)
    q = query[:, :, None].expand(-1, -1, 3, -1)
    cat = torch.cat([k, k - q, q, k * q], dim=-1)  # (B, C, S, 4H), the CODE's input
    hidden = torch.relu(net.din2(torch.relu(net.din1(cat))))
    naive = torch.sigmoid(net.din3(hidden)).squeeze(-1)
    torch.testing.assert_close(net.din_activation(keys, query), naive, atol=1e-6, rtol=1e-5)


def test_per_user_factorisations_equal_the_direct_formulas() -> None:
    net = _net().eval()
    users = torch.tensor([0, 3])
    hist = torch.tensor([[12, 12, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    items = torch.tensor([[1, 9, 11, 4], [0, 2, 10, 7]])
    with torch.no_grad():
        net.ctr_affine.weight.uniform_(0.5, 1.5)
        net.ctr_affine.bias.uniform_(-0.5, 0.5)
        net.factor_affine.bias.uniform_(-0.5, 0.5)
        state = net.user_state(users, hist)
        item_vec = net.item_emb(items)
        query = torch.cat([item_vec, state.user_vec[:, None].expand_as(item_vec)], dim=-1)
        pref = state.pref[:, None].expand(-1, 4, -1)
        direct_ctr = net.ctr(net.ctr_affine(torch.cat([pref, query], dim=-1))).squeeze(-1)
        torch.testing.assert_close(net.ctr_score(state, item_vec), direct_ctr)
        w = torch.softmax(net.din_activation(state.keys, query) / 4.0, dim=-1)
        direct_factor = net.factor(net.factor_affine(w @ state.keys)).squeeze(-1)
        z, unexp = net.logits(state, users, items)
        bias = net.item_bias(items).squeeze(-1) + net.user_bias(users)
        f = unexp * torch.exp(-unexp)
        torch.testing.assert_close(z, bias + direct_ctr + direct_factor * f)


def test_user_state_is_shared_by_all_candidates_and_detached() -> None:
    net = _net().eval()
    users = torch.tensor([0, 3])
    hist = torch.tensor([[12, 12, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    items = torch.tensor([[1, 9, 11, 4], [0, 2, 10, 7]])
    state = net.user_state(users, hist)
    z_all, unexp_all = net.logits(state, users, items)
    for c in range(items.shape[1]):
        z_one, unexp_one = net.logits(net.user_state(users, hist), users, items[:, c : c + 1])
        torch.testing.assert_close(z_one[:, 0], z_all[:, c])
        torch.testing.assert_close(unexp_one[:, 0], unexp_all[:, c])
    assert not state.centres.requires_grad and not unexp_all.requires_grad  # stop-gradient
    assert float(state.weights[0].sum()) == pytest.approx(1.0)  # N_k / N over 8 real items
    assert float(state.weights[0, :2].sum()) == 0.0  # the two padding slots weigh nothing


def test_dropout_only_in_training() -> None:
    net = _net()
    users, hist = torch.tensor([1]), torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    net.eval()
    a = net.user_state(users, hist, torch.Generator().manual_seed(0)).pref
    b = net.user_state(users, hist).pref
    torch.testing.assert_close(a, b)
    net.train()
    c = net.user_state(users, hist, torch.Generator().manual_seed(0)).pref
    assert int((c == 0).sum()) > 0 and not torch.allclose(a, c)


def test_code_unexpectedness_is_at_most_the_paper_form() -> None:
    hist = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [12, 12, 12, 3, 3, 4, 10, 11, 0, 1]])
    users, items = torch.tensor([1, 2]), torch.tensor([[0, 5, 11], [2, 9, 4]])
    out = {}
    for form in ("paper", "code"):
        cfg = TINY.model_copy(update={"unexpectedness": form, "bandwidth": 0.5})
        net = build_module(lambda cfg=cfg: PURSNet(5, 12, cfg), init_purs_, 0, torch.device("cpu"))
        assert isinstance(net, PURSNet)
        net.eval()
        out[form] = net.logits(net.user_state(users, hist), users, items)[1]
    assert bool(torch.all(out["code"] <= out["paper"] + 1e-6))
    assert bool(torch.any(out["code"] < out["paper"] - 1e-4))
