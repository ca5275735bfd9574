"""A local web app that shows a run's output folder: funnel, rows, rejected rows, live progress, two runs compared.

    python -m builders.view outputs/cosmopedia [outputs/cosmopedia-t08] [--port 7860]

`reading.py` reads the folder (never writes into it), `progress.py` a running generation's checkpoints,
`render.py` draws, `app.py` builds the Gradio app. Gradio is the optional extra `viewer`.
"""
