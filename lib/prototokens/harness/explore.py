"""The explorers (ipywidgets) of the Explore sections: reconstruction (02), arrangements (04).

Pick a text (or type one), a length, an arrangement and a recipe; train with a live progress bar;
see the reconstruction coloured token by token, the curves, and the decoded text of the one
forward pass. It calls the same library functions and plots as the batch cells (``reconstruct``,
``optimization_plots.plot_curves``, ``reconstruction_html``), and shares their cache. ipywidgets is
imported here, lazily, so the rest of the library never needs a widget frontend.
"""

from __future__ import annotations

from typing import Sequence

from prototokens.engine.arrangements import ARRANGEMENTS, DEFAULT_ARRANGEMENT
from prototokens.engine.recipe import RECIPES
from prototokens.engine.reconstruction import load_result, reconstruct
from prototokens.engine.store import ResultStore
from prototokens.engine.train import Progress
from prototokens.inputs.data.base import Text
from prototokens.studies.optimization_plots import plot_curves, reconstruction_html


def reconstruction_explorer(
    lm,
    texts: Sequence = (),
    store: ResultStore | None = None,
    max_steps: int = 1000,
    num_tokens: int = 16,
):
    """Build and return the explorer widget (display it as the last expression of a cell)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    store = store or ResultStore()
    options = [("(type your own text below)", None)] + [
        (f"{t.text_id}: {t.text[:60]!r}", t) for t in texts
    ]
    pick = w.Dropdown(options=options, value=texts[0] if texts else None, description="text")
    typed = w.Textarea(
        placeholder="Type a text to reconstruct…", layout=w.Layout(width="95%", height="60px")
    )
    length = w.IntSlider(value=num_tokens, min=1, max=128, description="tokens")
    arrangement = w.Dropdown(
        options=list(ARRANGEMENTS), value=DEFAULT_ARRANGEMENT, description="arrangement"
    )
    recipe = w.Dropdown(options=list(RECIPES), value="paper", description="recipe")
    seed = w.IntText(value=0, description="seed")
    steps = w.IntText(value=max_steps, description="max steps")
    run = w.Button(description="Train", button_style="primary", icon="play")
    bar = w.FloatProgress(value=0, min=0, max=1, description="accuracy")
    status = w.HTML()
    out = w.Output()

    def target_item() -> Text:
        if pick.value is None:
            text = typed.value.strip()
            if not text:
                raise ValueError("type a text or pick one from the list")
            ids = tuple(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
            return Text("typed", "typed", "typed", text, ids[: length.value])
        t = pick.value
        return Text(
            t.text_id,
            t.source,
            t.label,
            t.text,
            tuple(t.token_ids[: length.value]),
            t.context,
            t.context_id,
            t.tokenizer_key,
        )

    def on_progress(p: Progress):
        if (
            p.mean_accuracy == p.mean_accuracy
        ):  # the engine's final report carries NaN: keep the bar
            bar.value = p.mean_accuracy
        status.value = f"step {p.step}/{p.max_steps} · {p.elapsed_s:.1f} s"

    def on_click(_):
        out.clear_output()
        run.disabled = True
        try:
            item = target_item()
            rec = RECIPES[recipe.value].with_budget(int(steps.value))
            df = reconstruct(
                lm,
                [item],
                arrangement=arrangement.value,
                recipe=rec,
                seeds=[int(seed.value)],
                store=store,
                progress=on_progress,
            )
            row = df.iloc[0]
            res = load_result(store, row)
            pred = list(row["predicted_ids"])  # decoded once by the engine, stored in the row
            bar.value = float(row["accuracy"])
            status.value = (
                f"<b>{row['status']}</b> after {row['steps']} steps · "
                f"accuracy {row['accuracy']:.3f} · "
                f"H_LM {row['h_lm_bits']:.1f} bits"
            )
            with out:
                display(HTML(reconstruction_html(lm.tokenizer, pred, item.token_ids)))
                display(HTML(f"<p><b>decoded:</b> {lm.tokenizer.decode(pred)!r}</p>"))
                # Non-interactive while the figure exists: JupyterLab 4.4+ with ipykernel 7 delivers
                # widget comm messages on a subshell thread, and each handled comm message fires
                # IPython's post_execute, where interactive pyplot redraws every open figure — this
                # one too, concurrently with us building it (matplotlib is not thread-safe: mathtext
                # ParseException / tight_layout ValueError). Off, those hooks leave it alone.
                with plt.ioff():
                    fig = plot_curves(
                        {
                            f"{item.text_id} seed {int(seed.value)}": (
                                res["loss_curve"],
                                res["accuracy_curve"],
                            )
                        }
                    )
                    display(fig)
                    plt.close(fig)  # displayed once, not again by the inline backend
        except Exception as exc:  # shown in the widget, not raised into the event loop
            status.value = f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>"
        finally:
            run.disabled = False

    run.on_click(on_click)
    return w.VBox(
        [
            w.HBox([pick, length]),
            typed,
            w.HBox([arrangement, recipe]),
            w.HBox([seed, steps, run]),
            w.HBox([bar, status]),
            out,
        ]
    )


def arrangement_explorer(
    lm,
    texts: Sequence[Text],
    store: ResultStore | None = None,
    recipe: str = "paper",
    max_steps: int = 300,
    num_tokens: int = 8,
):
    """Notebook 04's Explore widget: pick an arrangement and a length; the input layout is drawn
    at once (which vector at which position, which output predicts which token of the chosen
    text); Train reconstructs that prefix with ``reconstruct`` (same cache as the batch cells)
    and shows the one-pass decoding token by token."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    from prototokens.engine.metrics import start_token_id
    from prototokens.inputs.data.base import prefix
    from prototokens.studies.optimization_plots import plot_schematic

    if not texts:
        raise ValueError("arrangement_explorer needs at least one text")
    store = store or ResultStore()
    pick = w.Dropdown(options=[(f"{t.text_id}: {t.text[:50]!r}", t) for t in texts], value=texts[0])
    arrangement = w.Dropdown(
        options=list(ARRANGEMENTS), value=DEFAULT_ARRANGEMENT, description="arrangement"
    )
    longest = min(len(t.token_ids) for t in texts)
    length = w.IntSlider(value=min(num_tokens, longest), min=1, max=longest, description="N")
    seed = w.IntText(value=0, description="seed")
    run = w.Button(description="Train", button_style="primary", icon="play")
    status = w.HTML()
    layout_out, result_out = w.Output(), w.Output()
    start = lm.tokenizer.convert_ids_to_tokens([start_token_id(lm.tokenizer)])[0]

    def item() -> Text:
        return prefix(pick.value, int(length.value), lm.tokenizer)

    def draw(_=None):
        layout_out.clear_output(wait=True)
        result_out.clear_output()
        t = item()
        labels = [lm.tokenizer.decode([i]) for i in t.token_ids]
        with layout_out, plt.ioff():
            fig = plot_schematic(
                arrangement.value, len(labels), target_labels=labels, start_label=start
            )
            display(fig)
            plt.close(fig)

    def on_click(_):
        run.disabled = True
        result_out.clear_output()
        try:
            t = item()
            rec = RECIPES[recipe].with_budget(max_steps)
            status.value = f"training {arrangement.value} on {len(t.token_ids)} tokens…"
            row = reconstruct(
                lm,
                [t],
                arrangement=arrangement.value,
                recipe=rec,
                seeds=[int(seed.value)],
                store=store,
                progress=lambda p: setattr(status, "value", f"step {p.step}/{p.max_steps}"),
            ).iloc[0]
            status.value = (
                f"<b>{row['status']}</b> after {row['steps']} steps · accuracy "
                f"{row['accuracy']:.3f} · first wrong position {row['first_wrong']}"
            )
            with result_out:
                display(HTML(reconstruction_html(lm.tokenizer, row["predicted_ids"], t.token_ids)))
        except Exception as exc:  # shown in the widget, not raised into the event loop
            status.value = f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>"
        finally:
            run.disabled = False

    for control in (pick, arrangement, length):
        control.observe(draw, names="value")
    run.on_click(on_click)
    draw()
    return w.VBox(
        [pick, w.HBox([arrangement, length]), w.HBox([seed, run, status]), layout_out, result_out]
    )
