"""About: what IIMM and the outcomes mean, how the numbers were measured, the papers, how to add results."""
import streamlit as st

import app
from core import cards, ranking
from core.text import counted, date_span

app.ensure_navigation()

st.title("About this leaderboard")
st.markdown("""
Fine-tuning a CLIP-style model on a new task buys accuracy on that task and often costs accuracy on
everything else ("forgetting"). This app ranks fine-tuning methods by both, and forecasts them for *your*
dataset before you train anything.

**The outcomes**, in accuracy points (percentage points of top-1 accuracy):
- **In-domain gain**: accuracy on the task after fine-tuning minus the zero-shot accuracy before it.
  *Normalised gain* divides it by the room left (100 − zero-shot accuracy).
- **Out-of-domain change**: the mean change of accuracy on held-out tasks the model was never fine-tuned on.
  Negative = forgetting; 0 = nothing lost.
- **Pareto / best trade-off**: no other method gains more *and* forgets less.

**IIMM** (Inter-Intra Modal Measure) is one number computed from a single forward pass of the frozen model
over the task's images and class prompts: the mean similarity between images and the *wrong* class prompts,
averaged with the mean similarity between different images. The IIMM paper found that tasks with a higher IIMM
gain more from fine-tuning and forget more, on four real models.

**How the numbers were measured.** Every row comes from a grid run (`jobs.grid`): one model × method ×
dataset × seed per run, one training recipe per method, the best validation checkpoint, accuracy on the task's
test split and on a fixed out-of-domain panel before and after training. Each run stores its config, code
revision, package versions, device, wall time, peak memory and the command that reproduces it (see *All runs*).
The ranking averages seeds per dataset first, then datasets; its intervals are 95 % t intervals over datasets.
""")
runs = app.load_runs(app.store_roots())
if not runs.empty:
    ok = runs[runs["status"] == "ok"]
    n_models = len(runs[["model", "pretrained"]].drop_duplicates())  # a model is a model · pretrained tag pair
    when = f", recorded {span}" if (span := date_span(runs["created_at"])) else ""  # by instant, in UTC
    trained = ranking.without_baselines(runs)["method"]  # the methods the Ranking ranks
    base = " (plus the zero-shot baseline)" if runs["method"].nunique() > trained.nunique() else ""
    st.info(f"**The data here:** {counted(len(runs), 'run')} ({len(ok):,} successful) of "
            f"{counted(n_models, 'model')}, {counted(trained.nunique(), 'method')}{base} and "
            f"{counted(runs['dataset'].nunique(), 'dataset')}{when}.")
st.markdown("""
**The shipped results are from toy models.** `worldclip-tiny (world-v1)`, the default, is a tiny CLIP
pretrained offline on this project's generated world (shapes, textures, letters, digits, land cover, charts).
It lets everything run without downloads; its numbers are not those of real CLIP models, and on it IIMM does
*not* reproduce the paper's relation. The four `world-v2` models (A to D) were pretrained the same way on a
long-tailed version of that world, built to test the claim; its pre-registered check failed (rarity lowered
zero-shot accuracy without making image embeddings more alike), so their runs are description, not a test of
the claim (see the README). Add runs of real models to rank them.

**Add your own results**
""")
st.code("python -m jobs.grid jobs/configs/smoke.toml --results results/smoke      # 2 tasks x 3 methods, minutes\n"
        "python -m jobs.grid jobs/configs/default.toml --results results/default  # the full grid\n"
        "python -m jobs.grid MY_GRID.toml --results results/mine --executor slurm # on a cluster\n"
        "python -m jobs.ingest path/to/results   # add records made elsewhere (validated; duplicates refused)",
        language="bash")
st.write("The app reads the shipped `jobs/results` and your own store (`results/`, or the folder in "
         "`$IIMM_RESULTS`); new runs appear within 30 s (the app rereads the store at most that often).")
st.header("Papers")
for citation in cards.CITATIONS.values():
    with st.expander(citation.label):
        st.markdown(f"[{citation.url}]({citation.url})")
        st.code(citation.bibtex, language="bibtex")
titles = cards.baseline_titles()
st.caption(f"Transferability scores compared on the Compare page: {', '.join(titles[:-1])} and {titles[-1]}, each "
           "written from its paper in core/transferability/, in the study's conventions.")
