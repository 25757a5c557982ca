"""The research dashboard: a Streamlit app over the folders ``run.py`` writes.

It only reads what a run or a sweep left on disk (``summary.json``,
``ticks.parquet``, ``decisions.jsonl``, ``.hydra/config.yaml``, the sweep
CSVs) and draws it with :mod:`elastic_des.analysis.plots`; the one thing it computes
anew, a counterfactual, is :func:`elastic_des.analysis.counterfactual.replay`.
Start it with ``streamlit run dashboard/app.py -- --run-dir <run folder>``.
"""
