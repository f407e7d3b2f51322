"""What st.cache_resource and the forecast's model pool hand every session is one object: no page may change it.
Every page runs here with its widgets moved and a forecast made; the store's cached frame, the unverified-free
view of it, and the loaded model must come out as they went in (a column added in place, a model left in
train mode or with gradients on, would reach the next visitor)."""
import pandas as pd
import pytest

from tests.app_helpers import app_test, page, sample_zip


def _model_state(loaded) -> tuple:
    model = loaded.model
    return (model.training, {p.device.type for p in model.parameters()},
            sum(p.requires_grad for p in model.parameters()),
            {k: v.detach().clone() for k, v in list(model.state_dict().items())[:4]})


def _assert_same_model(before: tuple, after: tuple) -> None:
    assert before[:3] == after[:3], "(training, devices, parameters with gradients) changed"
    assert all(before[3][k].equal(after[3][k]) for k in before[3]), "weights changed"


class _Shared:
    """The cached frames as first seen, with deep copies to compare them with; a new read of the store (its 30 s
    over during the test) is taken as the new one to watch."""

    def __init__(self, roots) -> None:
        self.roots, self.seen = roots, {}

    def check(self, after: str) -> None:
        import app

        for what, frame in (("store", app.load_runs(self.roots, True)), ("verified", app.load_runs(self.roots))):
            held = self.seen.get(what)
            if held is not None and held[0] is frame:
                pd.testing.assert_frame_equal(frame, held[1], obj=f"the cached {what} frame after {after}")
                assert frame.attrs == held[2], f"the cached {what} frame's attrs after {after}"
            else:
                self.seen[what] = (frame, frame.copy(deep=True), dict(frame.attrs))


@pytest.mark.slow  # about 25 s: every page, two forecasts
def test_no_page_changes_the_frame_or_the_model_every_session_shares(fixture_store):
    import app
    import forecast_ui

    shared = _Shared(app.store_roots())
    shared.check("nothing")
    model = forecast_ui.warm_model("worldclip-tiny-random").result()
    state = _model_state(model)
    views = {"ranking": {"rank": "ood_change", "x": "net"}, "matrix": {"outcome": "norm_gain"},
             "compare": {}, "cards": {}, "about": {}, "runs": {"sort": "iimm", "order": "asc"}}
    for name, moves in views.items():
        at = (app_test() if name == "ranking" else page(name)).run()
        for key, value in moves.items():
            at.selectbox(key=key).set_value(value).run()
        assert not at.exception, name
        shared.check(name)
    page("runs").run().text_input(key="q").set_value("lora").run()
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    at.button(key="fc_run").click().run()
    assert not at.exception and "fc_result" in at.session_state
    at.text_input(key="fc_template").set_value("a picture of a {c}").run()
    at.button(key="fc_run").click().run()
    assert not at.exception
    shared.check("two forecasts")
    assert forecast_ui.warm_model("worldclip-tiny-random").result() is model
    _assert_same_model(state, _model_state(model))
