import pytest
import torch
from torch import nn

import aelab
from aelab.data import Batches
from aelab.training import History, evaluate, fit, train_epoch


def toy_batches(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=gen)
    return Batches(images, torch.zeros(n, dtype=torch.long), 16, flatten=True, device="cpu", seed=seed)


class TinyAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(16, 4)
        self.decoder = nn.Sequential(nn.Linear(4, 16), nn.Sigmoid())

    def forward(self, x):
        z = self.encoder(x)
        return self.decoder(z), z


def test_fit_lowers_the_loss_and_keeps_a_history():
    torch.manual_seed(0)
    model = TinyAE()
    batches = toy_batches()
    before = evaluate(model, batches)
    history = fit(model, batches, epochs=30, lr=1e-2, val_batches=batches)
    assert isinstance(history, History)
    assert len(history.train_loss) == len(history.val_loss) == 30
    assert history.final_val_loss < 0.7 * before
    assert history.seconds > 0


def test_fit_uses_the_labs_own_epoch_functions():
    calls = []

    def my_train_epoch(model, batches, optimizer):
        calls.append("train")
        return 1.0

    def my_evaluate(model, batches):
        calls.append("eval")
        return 2.0

    history = fit(TinyAE(), toy_batches(), epochs=2, train_epoch_fn=my_train_epoch, evaluate_fn=my_evaluate,
                  val_batches=toy_batches())
    assert calls == ["train", "eval", "train", "eval"]
    assert history.train_loss == [1.0, 1.0] and history.val_loss == [2.0, 2.0]


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_fit_rejects_bad_epochs(epochs):
    with pytest.raises(ValueError, match="epochs"):
        fit(TinyAE(), toy_batches(), epochs=epochs)


def test_evaluate_restores_training_mode_and_builds_no_graph():
    model = TinyAE().train()
    assert evaluate(model, toy_batches()) > 0
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_train_epoch_weights_batches_by_size():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.zeros_like(x) + self.w, x

    images = torch.full((5, 1, 1, 2), 255, dtype=torch.uint8)
    batches = Batches(images, torch.zeros(5, dtype=torch.long), 2, flatten=True, device="cpu", shuffle=False)
    loss = train_epoch(Constant(), batches, torch.optim.SGD(Constant().parameters(), lr=0.0))
    assert loss == pytest.approx(1.0)


def test_progress_bar_writes_to_stdout_only(capsys, monkeypatch):
    monkeypatch.setenv("AELAB_PROGRESS", "1")
    fit(TinyAE(), toy_batches(), epochs=1)
    out, err = capsys.readouterr()
    assert err == ""
    monkeypatch.setenv("AELAB_PROGRESS", "0")
    fit(TinyAE(), toy_batches(), epochs=1)
    assert capsys.readouterr() == ("", "")


def test_record_appends_to_the_metrics_csv(tmp_path, monkeypatch):
    target = tmp_path / "m.csv"
    monkeypatch.setenv("AELAB_METRICS", str(target))
    monkeypatch.setenv("AELAB_BUDGET", "quick")
    aelab.record("lab00", "mse", 0.5)
    aelab.record("lab00", "nmi", 0.25)
    lines = target.read_text().splitlines()
    assert lines[0] == "lab,metric,value,budget,device,seconds"
    assert lines[1].startswith("lab00,mse,0.5,quick,") and lines[2].startswith("lab00,nmi,0.25,quick,")
    monkeypatch.delenv("AELAB_METRICS")
    assert aelab.record("lab00", "x", 1) == 1.0
