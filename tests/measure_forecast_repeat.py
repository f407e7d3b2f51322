"""How long the forecast page takes for a first forecast of an uploaded image sample, a repeat of it, and a
change of prompt template, per model.

Run: ``python -m tests.measure_forecast_repeat [MODEL ...] [--rounds N]`` (default: ``worldclip-tiny`` and
``ViT-B-32-random``, 1 round). The page runs in Streamlit's AppTest on the app's store, with the example
sample (``core.data.example.example_sample_zip``). The model is loaded before the clock starts (a server loads
it once); each figure is wall time from the rerun that reads the upload or the click to the page shown:

* upload: the rerun after the file arrives (the upload is read);
* first: "Run forecast" pressed;
* repeat: pressed again, nothing changed;
* template: the template changed (the rerun that checks the upload with it) plus "Run forecast" pressed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_MODELS = ("worldclip-tiny", "ViT-B-32-random")
OTHER_TEMPLATE = "a photo of a {c}."


def _timed(step) -> float:
    start = time.perf_counter()
    at = step()
    elapsed = time.perf_counter() - start
    if at.exception or at.error:
        raise RuntimeError(f"the page failed: {[e.value for e in (*at.exception, *at.error)]}")
    return elapsed


def measure(model_key: str) -> dict[str, float]:
    """Seconds for each step of one session on the forecast page with ``model_key`` (see the module's text)."""
    from streamlit.testing.v1 import AppTest

    import forecast_ui
    from core.data import example

    os.environ["IIMM_FORECAST_MODEL"] = model_key
    forecast_ui.warm_model(model_key).result()
    at = AppTest.from_file(os.path.join(os.path.dirname(__file__), "..", "pages", "forecast.py"),
                           default_timeout=600).run()
    if at.selectbox(key="fc_model").value != model_key:
        raise RuntimeError(f"the page did not pick {model_key}")
    zipped = example.example_sample_zip()
    at.file_uploader(key="fc_upload").set_value(("example.zip", zipped, "application/zip"))
    out = {"upload": _timed(at.run)}
    out["first"] = _timed(lambda: at.button(key="fc_run").click().run())
    out["repeat"] = _timed(lambda: at.button(key="fc_run").click().run())
    check = _timed(lambda: at.text_input(key="fc_template").set_value(OTHER_TEMPLATE).run())
    out["template"] = check + _timed(lambda: at.button(key="fc_run").click().run())
    out["images"] = at.session_state["fc_result"][1].n_images
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    for model_key in args.models:
        for r in range(args.rounds):
            t = measure(model_key)
            print(f"{model_key} round {r + 1}: {t['images']} images; upload read {t['upload']:.2f} s, "
                  f"first forecast {t['first']:.2f} s, repeat {t['repeat']:.2f} s, "
                  f"template change {t['template']:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
