"""The forecast page reuses what a session's upload gave: its parse across templates and models."""
from tests.app_helpers import page, sample_zip


def _counted(monkeypatch, module, name: str) -> list:
    """Calls of ``module.name`` from now on, one entry each (the function still runs)."""
    calls, real = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _run(at):
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    return at.session_state["fc_result"][1]


def test_a_template_or_model_change_parses_the_upload_no_more(fixture_store, monkeypatch):
    """The parsed zip was pooled per (session, file, template, model): a new template or model parsed the whole
    zip again (every image decoded), though only the prompts name the template and the model only embeds."""
    import core.upload
    import forecast_ui

    forecast_ui._PARSED.clear()
    parses = _counted(monkeypatch, core.upload, "load_image_folder_zip")
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    first = _run(at)
    at.text_input(key="fc_template").set_value("a drawing of a {c}").run()
    other_prompts = _run(at)
    at.selectbox(key="fc_model").set_value("worldclip-tiny").run()
    other_model = _run(at)
    assert len(parses) == 1 and len(forecast_ui._PARSED) == 1
    assert other_prompts.zero_shot != first.zero_shot  # the new template was used, not the parse's
    assert other_model.model_label != first.model_label
    at.text_input(key="fc_template").set_value("a drawing").run()  # still refused as a parse refuses it
    assert at.button(key="fc_run").disabled and at.error[0].value.startswith("The prompt template must contain")
